/**
 * State sync: wire types, the `Source` contract, the engine, database kinds
 * and the multi-database coordinator.
 */
export * from './messages.ts'
export * from './source.ts'
export * from './local-source.ts'
export { Channel, ChannelClosedError, type ChannelOptions, type TryRecv } from './channel.ts'
export { findNextGap, type Covered } from './gaps.ts'
export { OutstandingRequests, type Outstanding } from './requests.ts'
export { SyncError, type SyncErrorCode, ConfigurationError, type ConfigurationErrorCode } from './errors.ts'
export {
  type SyncKind, type SyncBuilt, anySync, currentSync, orderedAnySync, orderedCurrentSync, immutableSync, keylessSync, compactSync, MemoryJournal
} from './kinds.ts'
export { syncDatabase, SyncEngine, type SyncEngineOptions, type SyncProgress } from './engine.ts'
export {
  type Target, type CompactTarget, encodeTarget, decodeTarget, encodeCompactTarget, decodeCompactTarget, targetAdvances,
  compactToTarget, targetsEqual, compactTargetsEqual, InvalidTargetError
} from '../qmdb/target.ts'
export { CompactSource } from './compact-source.ts'
export {
  syncDatabaseSet, type AnchorLike, type MemberSync, type MemberRecord, type MemberDbs, type MemberTargets, type TipUpdate,
  type CoordinatorOptions, type CoordinatorResult
} from './coordinator.ts'
