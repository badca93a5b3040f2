/**
 * Errors of the stateful manager.
 *
 * `StatefulFatalError` is every invariant violation the reference treats as a
 * panic (commonware `glue/src/stateful/mod.rs`): the manager logs it, stops, cancels every
 * unreleased marshal acknowledgement and rejects every waiting caller with
 * it. It is never swallowed: continuing after one would let this node's
 * state silently diverge from the chain. The error names the block (digest,
 * height) and the database member where the condition concerns one.
 *
 * `StatefulStoppedError` is what callers waiting on a stopped manager get
 * (the reference's "actor dropped" panics on the caller side).
 */

export type StatefulFatalCode =
  // configuration / startup
  | 'PruneConfigInvalid'
  | 'FloorAnchorMissing'
  | 'SyncBlockMissing'
  | 'RewindMismatch'
  | 'SyncMetadataFailed'
  | 'StateSyncInProgress'
  // state sync
  | 'StateSyncFailed'
  | 'AckWindowExceeded'
  | 'HandoffDigestMismatch'
  | 'HandoffNotConsecutive'
  // database layer (the member is named in `database`)
  | 'DatabaseApplyFailed'
  | 'DatabaseSyncFailed'
  | 'DatabasePruneFailed'
  | 'DatabaseRewindFailed'
  // consensus-input invariants
  | 'FinalizedBelowProcessed'
  | 'ConflictingFinalizedBlock'
  | 'FinalizedHeightsNotIncreasing'
  | 'FinalizeReconstructionMismatch'
  | 'ProposedStateMismatch'
  | 'ProposalInconsistent'
  | 'ProposalParentIncompatible'
  // the application threw (in `phase`); only a returned verdict is "invalid"
  | 'ApplicationFailed'
  // internal invariants (a bug in this module)
  | 'InvariantViolated'

/**
 * Where the application failed: building a block (`propose`, on the named
 * parent), checking one (`verify`), re-executing an ancestor during lazy
 * recovery (`replay`) or a finalized block that was not cached
 * (`reconstruct`), or observing a finalized block (`finalized`).
 */
export type ApplicationPhase = 'propose' | 'verify' | 'replay' | 'reconstruct' | 'finalized'

export interface StatefulFatalDetails {
  /** Hex digest of the block concerned. */
  digest?: string
  height?: number
  /** The database member concerned. */
  database?: string
  /** For `ApplicationFailed`: the application call that threw. */
  phase?: ApplicationPhase
  cause?: unknown
}

export class StatefulFatalError extends Error {
  readonly name = 'StatefulFatalError'
  readonly code: StatefulFatalCode
  readonly digest?: string
  readonly height?: number
  readonly database?: string
  readonly phase?: ApplicationPhase

  constructor (code: StatefulFatalCode, message: string, details: StatefulFatalDetails = {}) {
    const where = [
      details.phase !== undefined ? `in ${details.phase}` : undefined,
      details.height !== undefined ? `height ${details.height}` : undefined,
      details.digest !== undefined ? `block ${details.digest.slice(0, 16)}` : undefined,
      details.database !== undefined ? `database ${details.database}` : undefined
    ].filter(s => s !== undefined).join(', ')
    super(`${code}: ${message}${where === '' ? '' : ` (${where})`}`, { cause: details.cause })
    this.code = code
    this.digest = details.digest
    this.height = details.height
    this.database = details.database
    this.phase = details.phase
  }
}

/** The manager stopped (or never started) while the caller was waiting. */
export class StatefulStoppedError extends Error {
  readonly name = 'StatefulStoppedError'
  readonly code = 'Stopped'

  constructor (message = 'the stateful manager is stopped') {
    super(message)
  }
}

/** Ancestry blocks that are not a contiguous parent chain (a misbehaving block provider). */
export class AncestryError extends Error {
  readonly name = 'AncestryError'
  readonly code = 'AncestryNotContiguous'
}
