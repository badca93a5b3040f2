/**
 * The processor (commonware `glue/src/stateful/actor/processor/mod.rs`, `glue/src/stateful/actor/processor/verifier.rs`, `glue/src/stateful/actor/durability.rs`): forks batches for a
 * block from its parent's state, runs the application, caches the results
 * in the pending map, recovers missing ancestor states by walking back and
 * replaying, and applies finalized blocks to the databases.
 *
 * Outcomes of preparing a parent state: `ok`, `invalid` (provably invalid
 * ancestry: stale, non-contiguous, replay mismatch, incompatible with
 * finalized history), `incomplete` (the block provider could not supply an
 * ancestor: the caller parks), `cancelled`.
 *
 * Invariants kept here:
 * - nothing is cached unless its merkleized state matches `syncTargets`;
 * - each replayed ancestor is cached at once (a cancelled recovery resumes
 * from there), and verification replays are shared per digest;
 * - finalization never reconstructs the winner while a replay of it is in
 * flight, and reuses a cached or replayed state when one exists;
 * - `lastProcessed` advances only after the database apply and the
 * `finalized` hook.
 */

import { isParentOf, ancestry } from './ancestry.ts'
import { StatefulFatalError } from './errors.ts'
import { ReplayRegistry } from './replay.ts'
import { anchorOf, bytesEqual, contextsEqual, digestKey } from './types.ts'
import { abortReason, raceSignal, secondsSince, waitForAbort } from './util.ts'
import type { ApplicationPhase } from './errors.ts'
import type { Marshal } from './marshal.ts'
import type { StatefulMetrics } from './metrics.ts'
import type { ExecutionState } from './pending.ts'
import type { PruneTask, Pruning } from './pruning.ts'
import type { Flight, ReplayOutcome } from './replay.ts'
import type { Application, Block, Context } from './types.ts'
import type { FinalizationBoundary, Job, ProgressHandle } from './verification.ts'
import type { Barrier, DatabaseRecord, DatabaseSet, MerkleizedOf, SyncTargetsOf, UnmerkleizedOf } from '../qmdb/index.ts'
import type { Logger } from '@libp2p/interface'

export type StepOutcome = ReplayOutcome | 'cancelled'

export type Prepared<Dbs extends DatabaseRecord> =
  | { ok: true, batches: UnmerkleizedOf<Dbs> }
  | { ok: false, reason: Exclude<StepOutcome, 'ok'> }

export interface Finalized<T> {
  barrier?: Barrier
  prune?: PruneTask<T>
}

export interface ProcessorInit<B extends Block, Dbs extends DatabaseRecord> {
  application: Application<B, Dbs>
  databases: DatabaseSet<Dbs>
  marshal: Marshal<B>
  state: ExecutionState<Dbs>
  metrics: StatefulMetrics
  log: Logger
  pruning?: Pruning<SyncTargetsOf<Dbs>>
}

const CANCELLED = Symbol('cancelled')

/** `promise`, or `CANCELLED` once `signal` aborts. */
async function cancellable<T> (promise: Promise<T>, signal: AbortSignal): Promise<T | typeof CANCELLED> {
  try {
    return await raceSignal(promise, signal)
  } catch (err) {
    if (signal.aborted) { return CANCELLED }
    throw err
  }
}

function hexOf (d: Uint8Array): string {
  return digestKey(d)
}

/**
 * The application threw outside a cancellation: fatal. Only what the
 * application *returns* as invalid is a verdict; an exception is a bug, data
 * corruption or non-determinism, and answering consensus on it would let this
 * node's votes diverge from its state.
 */
function applicationFailed (phase: ApplicationPhase, block: Block, err: unknown): StatefulFatalError {
  const what = { propose: 'building on', verify: 'executing', replay: 'executing', reconstruct: 'executing', finalized: 'observing' }[phase]
  return new StatefulFatalError('ApplicationFailed', `the application threw while ${what} the block: ${(err as Error)?.message ?? String(err)}`, { phase, digest: hexOf(block.digest), height: block.height, cause: err })
}

export class Processor<B extends Block, Dbs extends DatabaseRecord> {
  readonly replays = new ReplayRegistry()
  readonly state: ExecutionState<Dbs>
  private readonly app: Application<B, Dbs>
  private readonly databases: DatabaseSet<Dbs>
  private readonly marshal: Marshal<B>
  private readonly metrics: StatefulMetrics
  private readonly log: Logger
  private readonly pruning?: Pruning<SyncTargetsOf<Dbs>>

  constructor (init: ProcessorInit<B, Dbs>) {
    this.app = init.application
    this.databases = init.databases
    this.marshal = init.marshal
    this.state = init.state
    this.metrics = init.metrics
    this.log = init.log
    this.pruning = init.pruning
  }

  private updatePendingGauge (): void {
    this.metrics.pendingBlocks.set(this.state.pending.size)
  }

  // ---- preparing a parent state -------------------------------------

  /**
   * Batches forked from `parent`'s state, recovering it first if needed.
   * `progress` set = a verification (shared replays); unset = a proposal.
   */
  async prepareBatches (parent: B, signal: AbortSignal, progress?: ProgressHandle): Promise<Prepared<Dbs>> {
    const key = hexOf(parent.digest)
    if (!this.state.isKnown(key)) {
      const r = await this.rebuildPending(parent, signal, progress)
      if (r !== 'ok') { return { ok: false, reason: r } }
    }
    if (signal.aborted) { return { ok: false, reason: 'cancelled' } }
    const fork = this.state.forkBatches(key)
    return fork.ok ? { ok: true, batches: fork.batches } : { ok: false, reason: 'invalid' }
  }

  /** Walk back from `target` to a known state, then replay forward oldest first. */
  async rebuildPending (target: B, signal: AbortSignal, progress?: ProgressHandle): Promise<StepOutcome> {
    const start = performance.now()
    const path: B[] = []
    let cursor = target
    for (;;) {
      if (this.state.isKnown(hexOf(cursor.digest))) { break }
      if (cursor.height <= this.state.lastProcessed.height) {
        this.log('ancestor at height %d is at or below the processed height %d and not the processed block', cursor.height, this.state.lastProcessed.height)
        return 'invalid'
      }
      const parent = await cancellable(this.marshal.subscribeBlock(cursor.parent, { height: cursor.height - 1, signal }), signal)
      if (parent === CANCELLED) { return 'cancelled' }
      if (parent === undefined) { return 'incomplete' }
      if (!isParentOf(parent, cursor)) {
        this.log('ancestor of the block at height %d is not contiguous', cursor.height)
        return 'invalid'
      }
      path.push(cursor)
      cursor = parent
    }
    path.reverse()
    for (const block of path) {
      const r = progress !== undefined ? await this.replayBlockShared(block, signal, progress) : await this.replayBlock(block, signal)
      if (r !== 'ok') { return r }
    }
    this.updatePendingGauge()
    this.metrics.rebuildPendingDepth.set(path.length)
    this.metrics.rebuildPendingDuration.observe(secondsSince(start))
    return 'ok'
  }

  /** Replay one block on its parent's state and cache it. */
  async replayBlock (block: B, signal: AbortSignal): Promise<StepOutcome> {
    const parent = hexOf(block.parent)
    const fork = this.state.forkBatches(parent)
    if (!fork.ok) { return 'invalid' }
    let merkleized
    try {
      merkleized = await this.app.apply(block.context, block, fork.batches, { signal })
    } catch (err) {
      if (signal.aborted) { return 'cancelled' }
      throw applicationFailed('replay', block, err)
    }
    if (signal.aborted) { return 'cancelled' }
    const mismatch = this.databases.mismatchedTarget(merkleized, this.app.syncTargets(block))
    if (mismatch !== undefined) {
      this.log('replayed block at height %d does not match its %s commitment', block.height, mismatch)
      return 'invalid'
    }
    if (!this.state.cachePending(hexOf(block.digest), parent, block.height, block.context.round, merkleized)) { return 'invalid' }
    this.updatePendingGauge()
    return 'ok'
  }

  /** `replayBlock` with one flight per digest shared between verifications. */
  async replayBlockShared (block: B, signal: AbortSignal, progress: ProgressHandle): Promise<StepOutcome> {
    const key = hexOf(block.digest)
    const parent = hexOf(block.parent)
    for (;;) {
      const claim = this.replays.claim(key, k => this.state.isReady(k))
      if (claim.kind === 'ready') { return 'ok' }
      progress.replaying(key, parent, block.context.round)
      if (claim.kind === 'owner') {
        let r: StepOutcome
        try {
          r = await this.replayBlock(block, signal)
        } catch (err) {
          this.replays.finish(claim.flight, undefined)
          throw err
        }
        this.replays.finish(claim.flight, r === 'cancelled' ? undefined : r)
        return r
      }
      const r = await cancellable(claim.flight.done, signal)
      if (r === CANCELLED) { return 'cancelled' }
      if (r === undefined || r === 'ok') { continue }
      if (this.state.finalizationRecovers(key)) { continue }
      return r
    }
  }

  // ---- proposal --------------------------------------------------------------

  /**
   * Build a block on `ctx.parent`. The digest, or `undefined` if no block can
   * be built; throws the abort reason when cancelled (also after parking).
   */
  async propose (ctx: Context, signal: AbortSignal): Promise<Uint8Array | undefined> {
    const start = performance.now()
    const parent = await raceSignal(this.marshal.subscribeBlock(ctx.parent.digest, { signal }), signal)
    if (parent === undefined || !bytesEqual(parent.digest, ctx.parent.digest)) { return undefined }
    const prepared = await this.prepareBatches(parent, signal)
    if (!prepared.ok) {
      if (prepared.reason === 'invalid') { return undefined }
      if (prepared.reason === 'incomplete') { await waitForAbort(signal) }
      throw abortReason(signal)
    }
    let proposed
    try {
      proposed = await this.app.propose(ctx, ancestry(this.marshal, [parent], signal), prepared.batches, { signal })
    } catch (err) {
      if (signal.aborted) { throw abortReason(signal) }
      throw applicationFailed('propose', parent, err)
    }
    if (signal.aborted) { throw abortReason(signal) }
    if (proposed === undefined) { return undefined }
    const { block, merkleized } = proposed
    const key = hexOf(block.digest)
    if (!isParentOf(parent, block) || !contextsEqual(block.context, ctx) || !bytesEqual(block.parent, ctx.parent.digest)) {
      throw new StatefulFatalError('ProposalInconsistent', 'proposed block must extend the requested parent in the requested context', { digest: key, height: block.height })
    }
    const mismatch = this.databases.mismatchedTarget(merkleized, this.app.syncTargets(block))
    if (mismatch !== undefined) {
      throw new StatefulFatalError('ProposedStateMismatch', 'proposed state must match block commitments', { digest: key, height: block.height, database: mismatch })
    }
    if (!this.state.cachePending(key, hexOf(parent.digest), block.height, ctx.round, merkleized)) {
      throw new StatefulFatalError('ProposalParentIncompatible', 'proposal parent must remain compatible until the proposal completes', { digest: key, height: block.height })
    }
    this.updatePendingGauge()
    try {
      await this.marshal.disseminate(block)
    } catch (err) {
      this.log.error('handing the proposed block at height %d to marshal failed: %e', block.height, err)
    }
    this.metrics.proposeDuration.observe(secondsSince(start))
    return block.digest
  }

  // ---- verification ------------------------------------------------------------

  private accepted (start: number): true {
    this.metrics.verifyDuration.observe(secondsSince(start))
    return true
  }

  /** One verification attempt: the verdict, or `undefined` (cancelled, or parked until cancelled). */
  async verify (job: Job): Promise<boolean | undefined> {
    const { request, signal, progress } = job
    const start = performance.now()
    const ctx = request.ctx
    const candidate = await cancellable(this.marshal.subscribeBlock(request.digest, { signal }), signal)
    if (candidate === CANCELLED) { return undefined }
    if (candidate === undefined) {
      await waitForAbort(signal)
      return undefined
    }
    if (!bytesEqual(candidate.digest, request.digest) || !contextsEqual(candidate.context, ctx) || !bytesEqual(candidate.parent, ctx.parent.digest)) {
      this.log('block at height %d does not carry the consensus context it is verified in', candidate.height)
      return false
    }
    const key = hexOf(candidate.digest)
    if (this.state.pending.has(key)) { return this.accepted(start) }
    const processed = await this.processedVerdict(candidate, signal)
    if (processed !== 'above') { return processed === true ? this.accepted(start) : processed }
    const parent = await cancellable(this.marshal.subscribeBlock(candidate.parent, { height: candidate.height - 1, signal }), signal)
    if (parent === CANCELLED) { return undefined }
    if (parent === undefined) {
      await waitForAbort(signal)
      return undefined
    }
    if (!isParentOf(parent, candidate)) { return false }
    const prepared = await this.prepareBatches(parent, signal, progress)
    if (!prepared.ok) {
      if (prepared.reason === 'invalid') {
        this.log('verification of the block at height %d failed: invalid ancestry (pending %d, processed %s)', candidate.height, this.state.pending.size, this.state.lastProcessed.key)
        return false
      }
      if (prepared.reason === 'incomplete') { await waitForAbort(signal) }
      return undefined
    }
    const parentKey = hexOf(parent.digest)
    progress.verifying(key, parentKey, ctx.round)
    return this.verifyOn(ctx, candidate, parent, prepared.batches, signal, start)
  }

  /**
   * Candidates at or below the processed height (step 3): true iff it is
   * the canonical block there; `undefined` = park then no verdict.
   */
  private async processedVerdict (candidate: B, signal: AbortSignal): Promise<boolean | 'above' | undefined> {
    const lp = this.state.lastProcessed
    if (candidate.height > lp.height) { return 'above' }
    if (candidate.height === lp.height) { return bytesEqual(candidate.digest, lp.digest) }
    const canonical = await cancellable(this.marshal.getFinalizedBlock(candidate.height), signal)
    if (canonical === CANCELLED) { return undefined }
    if (canonical === undefined) {
      await waitForAbort(signal)
      return undefined
    }
    return bytesEqual(canonical.digest, candidate.digest)
  }

  private async verifyOn (ctx: Context, candidate: B, parent: B, batches: UnmerkleizedOf<Dbs>, signal: AbortSignal, start: number): Promise<boolean | undefined> {
    let merkleized
    let targets: SyncTargetsOf<Dbs>
    try {
      merkleized = await this.app.verify(ctx, ancestry(this.marshal, [candidate, parent], signal), batches, { signal })
      if (signal.aborted) { return undefined }
      if (merkleized === undefined) { return false }
      targets = this.app.syncTargets(candidate)
    } catch (err) {
      if (signal.aborted) { return undefined }
      throw applicationFailed('verify', candidate, err)
    }
    const mismatch = this.databases.mismatchedTarget(merkleized, targets)
    if (mismatch !== undefined) {
      this.log('verified state of the block at height %d does not match its %s commitment', candidate.height, mismatch)
      return false
    }
    if (!this.state.cachePending(hexOf(candidate.digest), hexOf(parent.digest), candidate.height, ctx.round, merkleized)) {
      this.log('verification result of the block at height %d became incompatible before caching', candidate.height)
      return false
    }
    this.updatePendingGauge()
    return this.accepted(start)
  }

  // ---- finalization -------------------------------------------------------

  /** The snapshot deciding what happens to running verifications when `block` is finalized. */
  finalizationBoundary (block: B): FinalizationBoundary {
    const a = anchorOf(block)
    const lp = this.state.lastProcessed
    return {
      digest: a.key,
      round: a.round,
      processedDigest: lp.key,
      processedRound: lp.round,
      compatible: this.state.compatiblePending(a.key, a.round)
    }
  }

  /**
   * Apply finalized `block` to the databases. `null` for a duplicate of the
   * processed block. `startSync` starts a durability flush right after the
   * apply (returned as `barrier`).
   */
  async finalize (block: B, startSync: boolean): Promise<Finalized<SyncTargetsOf<Dbs>> | null> {
    const f = anchorOf(block)
    const lp = this.state.lastProcessed
    if (f.height < lp.height) {
      throw new StatefulFatalError('FinalizedBelowProcessed', `received finalized block below processed height ${lp.height}`, { digest: f.key, height: f.height })
    }
    if (f.height === lp.height) {
      if (f.key !== lp.key) {
        throw new StatefulFatalError('ConflictingFinalizedBlock', 'received conflicting finalized block at processed height', { digest: f.key, height: f.height })
      }
      return null
    }
    const start = performance.now()
    const targets = this.app.syncTargets(block)
    const state = this.state
    if (state.finalizing !== undefined || state.finalizingBatch !== undefined || state.finalizingCompatible.size > 0) {
      throw new StatefulFatalError('InvariantViolated', 'finalization must be serialized', { digest: f.key, height: f.height })
    }
    state.finalizing = f
    state.finalizingCompatible = state.compatiblePending(f.key, f.round)

    const owner = await this.claimWinner(f.key)
    const reconstructed = owner !== undefined ? await this.reconstruct(block, targets, owner) : undefined
    const entry = state.pending.get(f.key)
    const batch = entry?.merkleized ?? reconstructed
    if (batch === undefined) {
      throw new StatefulFatalError('InvariantViolated', 'finalization must have a cached or reconstructed batch', { digest: f.key, height: f.height })
    }
    state.pending.delete(f.key)
    state.finalizingBatch = batch
    let removed = 0
    for (const key of [...state.pending.keys()]) {
      if (!state.finalizingCompatible.has(key)) {
        state.pending.delete(key)
        removed++
      }
    }
    if (removed > 0) { this.metrics.prunedForks.inc(removed) }
    this.updatePendingGauge()
    if (owner !== undefined) { this.replays.finish(owner, 'ok') }

    try {
      await this.databases.apply(batch)
    } catch (err) {
      throw new StatefulFatalError('DatabaseApplyFailed', `database apply failed: ${(err as Error)?.message}`, { digest: f.key, height: f.height, database: (err as { database?: string }).database, cause: err })
    }
    const barrier = startSync ? this.databases.finalize() : undefined
    await this.runFinalizedHook(block)
    const prune = this.pruning?.observeFinalized(f.height, targets)

    state.finalizingBatch = undefined
    state.finalizingCompatible = new Set()
    state.finalizing = undefined
    state.lastProcessed = f
    this.metrics.finalizeDuration.observe(secondsSince(start))
    return { barrier, prune }
  }

  /** Wait out any replay of the winner; then either it is cached or we own its reconstruction. */
  private async claimWinner (key: string): Promise<Flight | undefined> {
    for (;;) {
      const flight = this.replays.get(key)
      if (flight !== undefined) {
        const r = await flight.done
        if (r !== undefined && r !== 'ok') { this.log('replay of the finalized block ended %s; finalization continues', r) }
        continue
      }
      if (this.state.pending.has(key)) { return undefined }
      return this.replays.register(key)
    }
  }

  private async reconstruct (block: B, targets: SyncTargetsOf<Dbs>, owner: Flight): Promise<MerkleizedOf<Dbs>> {
    const key = owner.key
    let merkleized
    try {
      merkleized = await this.app.apply(block.context, block, this.databases.newBatches())
    } catch (err) {
      this.replays.finish(owner, undefined)
      throw applicationFailed('reconstruct', block, err)
    }
    const mismatch = this.databases.mismatchedTarget(merkleized, targets)
    if (mismatch !== undefined) {
      this.replays.finish(owner, undefined)
      throw new StatefulFatalError('FinalizeReconstructionMismatch', 'finalize reconstruction must match block commitments', { digest: key, height: block.height, database: mismatch })
    }
    return merkleized
  }

  /** The application's `finalized` observer (a failure is fatal). */
  async runFinalizedHook (block: B): Promise<void> {
    await reportFinalized(this.app, block, this.databases)
  }
}

/**
 * Call the application's `finalized` observer with read-only facades of the
 * databases; its failure is fatal (`ApplicationFailed` in phase `finalized`).
 */
export async function reportFinalized<B extends Block, Dbs extends DatabaseRecord> (app: Application<B, Dbs>, block: B, databases: DatabaseSet<Dbs>): Promise<void> {
  if (app.finalized === undefined) { return }
  try {
    await app.finalized(block.context, block, databases.readers())
  } catch (err) {
    throw applicationFailed('finalized', block, err)
  }
}
