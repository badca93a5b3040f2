/**
 * Running a node: configuration, identity, metrics endpoint and `createNode`.
 */
export { createNode, type QmdbNode, type NodeStatus, type NodeEvents, type NodeServices } from './node.ts'
export {
  type NodeApplication, type NodeDatabase, type DatabaseStorage, anyDatabase, currentDatabase, orderedAnyDatabase, orderedCurrentDatabase,
  immutableDatabase, keylessDatabase, compactImmutableDatabase, compactKeylessDatabase
} from './application.ts'
export type { DatabaseStatus } from './status.ts'
export { loadConfig, validateConfig, optionalInts, ConfigError, type NodeConfig, type ConsensusConfig, type SyncConfigFile, type PruneConfigFile } from './config.ts'
export { loadOrCreateKey, IdentityError } from './identity.ts'
export { PeerKeeper, type PeerKeeperOptions } from './peer-keeper.ts'
export { startMetricsServer, type MetricsServer } from './metrics-server.ts'
