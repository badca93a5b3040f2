/**
 * libp2p-qmdb: verifiable application state (QMDB), speculative forks and
 * peer-to-peer state sync for chains built on js-libp2p.
 *
 * The root export is what an application mounts and calls: the databases and
 * their proofs, state sync and its libp2p resolvers, the stateful pending-tip
 * manager and `createNode`. Everything else is reachable per layer through
 * the subpath exports (`libp2p-qmdb/merkle`, `/qmdb`, `/sync`, `/p2p`,
 * `/stateful`, `/consensus`, `/marshal`, `/probe`, `/node`, `/light`, `/codec`,
 * `/storage`); the layers and the route of data between them are described
 * in docs/ARCHITECTURE.md.
 */

// Errors of every layer, so callers can `instanceof` without a subpath import.
export { CodecError, type CodecErrorCode } from './codec/index.ts'
export { MerkleError, type MerkleErrorCode } from './merkle/index.ts'
export { StorageError, type StorageErrorCode } from './storage/index.ts'

// Proof verification (light clients need nothing else from the Merkle layer).
export {
  type Digest, type Proof, verifyRangeProof, encodeProof, decodeProof, digestEquals
} from './merkle/index.ts'

// Databases.
export {
  QmdbError, type QmdbErrorCode, type Encoding, type FieldCodec, fixedField, varField,
  AnyDb, type AnyDbOptions, CurrentDb, type CurrentDbOptions, OrderedAnyDb, OrderedCurrentDb,
  ImmutableDb, type ImmutableDbOptions, KeylessDb, type KeylessDbOptions,
  CompactImmutableDb, type CompactImmutableOptions, CompactKeylessDb, type CompactKeylessOptions,
  type Target, type CompactTarget, compactToTarget,
  type ManagedDb, type ReadersOf, DatabaseSet, DatabaseSetError,
  type AnyReader, type CurrentReader, type ImmutableReader, type KeylessReader, type CompactReader,
  type OrderedAnyReader, type OrderedCurrentReader,
  type OperationProof, type CurrentRangeProof, type OpsRootWitness, verifyOperationProof, verifyCurrentRange, verifyOpsRootWitness,
  type OrderedKeyValueProof, type ExclusionProof, verifyOrderedKeyValueProof, verifyExclusionProof
} from './qmdb/index.ts'

// State sync.
export {
  syncDatabase, syncDatabaseSet, type SyncEngineOptions, type SyncProgress,
  type SyncKind, anySync, currentSync, orderedAnySync, orderedCurrentSync, immutableSync, keylessSync, compactSync,
  type Source, LocalSource, CompactSource, ServeError, SyncError, type SyncErrorCode, ConfigurationError, type ConfigurationErrorCode
} from './sync/index.ts'

// The libp2p resolvers (services) and the peers they fetch from.
export {
  standardResolver, compactResolver, type QmdbResolver, type QmdbResolverInit, type QmdbResolverComponents,
  DatabaseRegistry, NetworkSource, type NetworkSourceOptions, type PeerSelection, ConnectedPeers, StaticPeers, FunctionPeers
} from './p2p/index.ts'

// The stateful pending-tip manager.
export {
  Stateful, type StatefulInit, type Application, type Block, type Context, type Round, type Anchor, type Proposed,
  type Marshal, type Acknowledgement, type FinalizedReporter,
  StatefulFatalError, StatefulStoppedError, type StatefulFatalCode, type ApplicationPhase
} from './stateful/index.ts'

// A runnable node: consensus, marshal, probe, state sync and the manager, for one application.
export {
  createNode, type QmdbNode, type NodeStatus, type NodeEvents, type NodeApplication, type NodeDatabase,
  anyDatabase, currentDatabase, orderedAnyDatabase, orderedCurrentDatabase, immutableDatabase, keylessDatabase,
  compactImmutableDatabase, compactKeylessDatabase, loadConfig, validateConfig, ConfigError, type NodeConfig
} from './node/index.ts'

// Light clients: verified reads of `current` databases from any peer, trusting only a validator set.
export {
  lightClient, type LightClient, type LightClientInit, type GetOptions, LightError, type LightErrorCode,
  type LightApplication, type LightDatabase, type LightValue, lightServer, type LightServer
} from './light/index.ts'

export { installPolyfills } from './polyfill.ts'
