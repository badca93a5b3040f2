/**
 * The stateful pending-tip manager: the `Application` interface, the block
 * store (marshal) contract, the `Stateful` manager and its startup
 * strategies (commonware `glue/src/stateful`, docs/ARCHITECTURE.md).
 */
export { Stateful, type StatefulInit } from './stateful.ts'
export {
  type Application, type Block, type Context, type Round, type Anchor, type Proposed, type ReadersOf,
  anchorOf, compareRounds, roundsEqual, contextsEqual, digestKey, bytesEqual
} from './types.ts'
export type { BlockProvider, Acknowledgement, FinalizedReporter, Marshal } from './marshal.ts'
export {
  marshalSync, processedAnchor, reconcileToBlock, skipFinalizedBlock,
  type StartupStrategy, type StartupEnv, type StartupResult, type SyncMetadata
} from './startup.ts'
export { Pruning, type PruneConfig, type PruneTask } from './pruning.ts'
export { StatefulFatalError, StatefulStoppedError, AncestryError, type StatefulFatalCode, type StatefulFatalDetails, type ApplicationPhase } from './errors.ts'
export { ancestry, isParentOf } from './ancestry.ts'
export { disposition, type Disposition, type Progress, type FinalizationBoundary } from './verification.ts'
export { DURATION_BUCKETS, type StatefulMetrics, type MetricsOptions } from './metrics.ts'
export { stateSync, classifyHandoffs, type StateSyncInit, type Handoff } from './state-sync.ts'
export { SyncPlan, StateSyncMetadata, SyncPlanError, type SyncState, type MarshalStartOf } from './sync-plan.ts'
