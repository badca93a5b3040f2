/**
 * `Stateful`: the pending-tip manager between a consensus engine, the block
 * store (marshal) and the application (commonware `glue/src/stateful/actor/core/mod.rs`, `glue/src/stateful/actor/core/processing.rs`, `glue/src/stateful/actor/durability.rs`).
 *
 * Consensus calls `propose(ctx)` and `verify(ctx, digest)`; marshal calls
 * `finalized(block, ack)`. Requests go through one FIFO mailbox drained by a
 * single loop, which keeps the reference's ordering guarantees:
 * - one database mutation at a time (apply, flush start, prune, rewind);
 * - one proposal at a time, run inline; while it runs, verifications keep
 * being admitted, but the first other message (a finalization, say) waits
 * behind it together with everything after it (FIFO barrier);
 * - verifications run as concurrent jobs and keep running while a
 * finalization waits or runs, unless the finalization's boundary says they
 * must be retried or rejected;
 * - at most one durability flush in flight; finalized blocks are
 * acknowledged to marshal only once a flush covering them is durable;
 * - a due prune runs at a mutation boundary after a full quiesce.
 *
 * A `StatefulFatalError` anywhere stops the manager: it is logged, reported
 * through `onFatal` and `whenStopped()`, every waiting caller is rejected
 * with it and every unreleased acknowledgement is cancelled.
 */

import { defaultLogger } from '@libp2p/logger'
import { linked } from '../net/signals.ts'
import { Durability } from './durability.ts'
import { StatefulFatalError, StatefulStoppedError } from './errors.ts'
import { createMetrics } from './metrics.ts'
import { ExecutionState } from './pending.ts'
import { Processor } from './processor.ts'
import { Pruning } from './pruning.ts'
import { marshalSync, skipFinalizedBlock } from './startup.ts'
import { NEVER, Notifier, abortReason, deferred } from './util.ts'
import { VerifyRequest, Verifications, disposition } from './verification.ts'
import type { Acknowledgement, FinalizedReporter, Marshal } from './marshal.ts'
import type { StatefulMetrics } from './metrics.ts'
import type { PruneConfig, PruneTask } from './pruning.ts'
import type { StartupStrategy, SyncMetadata } from './startup.ts'
import type { Anchor, Application, Block, Context } from './types.ts'
import type { Deferred } from './util.ts'
import type { DatabaseRecord, DatabaseSet, SyncTargetsOf } from '../qmdb/index.ts'
import type { ComponentLogger, Logger, Metrics } from '@libp2p/interface'
import type { Registry } from 'prom-client'

export interface StatefulInit<B extends Block, Dbs extends DatabaseRecord> {
  application: Application<B, Dbs>
  /** The opened databases; optional when the startup strategy builds them (state sync). */
  databases?: DatabaseSet<Dbs>
  marshal: Marshal<B>
  /** Periodic pruning of the databases and of marshal; none when omitted. */
  prune?: PruneConfig
  /** How to reach a processed anchor at start (default: `marshalSync()`). */
  startup?: StartupStrategy<B, Dbs>
  /** The durable state-sync record, if the node keeps one. */
  metadata?: SyncMetadata
  /** Hand the databases to whatever serves them to peers, before processing starts. */
  attachDatabases?(databases: DatabaseSet<Dbs>): Promise<void>
  logger?: ComponentLogger
  /** libp2p metrics; or `registry`, a prom-client registry. */
  metrics?: Metrics
  registry?: Registry
  metricsPrefix?: string
  /** Called once if the manager stops on a fatal error. */
  onFatal?(err: StatefulFatalError): void
}

interface ProposeMessage {
  kind: 'propose'
  ctx: Context
  signal: AbortSignal
  settle: Deferred<Uint8Array | undefined>
}

type Message<B extends Block, Dbs extends DatabaseRecord> =
  | ProposeMessage
  | { kind: 'verify', request: VerifyRequest }
  | { kind: 'finalized', block: B, ack: Acknowledgement }
  | { kind: 'subscribe', settle: Deferred<DatabaseSet<Dbs>> }
  | { kind: 'read', run(dbs: DatabaseSet<Dbs>, height: number): void, fail(err: Error): void }

type Status = 'created' | 'starting' | 'processing' | 'stopped'

function isObsolete<B extends Block, Dbs extends DatabaseRecord> (m: Message<B, Dbs>): boolean {
  if (m.kind === 'verify') { return m.request.obsolete }
  if (m.kind === 'propose') { return m.signal.aborted }
  return false
}

function toFatal (err: unknown): StatefulFatalError {
  if (err instanceof StatefulFatalError) { return err }
  return new StatefulFatalError('InvariantViolated', `unexpected failure: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

export class Stateful<B extends Block, Dbs extends DatabaseRecord> implements FinalizedReporter<B> {
  readonly [Symbol.toStringTag] = 'libp2p-qmdb/stateful'
  private readonly init: StatefulInit<B, Dbs>
  private readonly log: Logger
  private readonly metrics: StatefulMetrics
  private readonly strategy: StartupStrategy<B, Dbs>
  private readonly pruning?: Pruning<SyncTargetsOf<Dbs>>
  private databases: DatabaseSet<Dbs> | undefined
  private status: Status = 'created'
  private readonly stopController = new AbortController()
  private readonly notifier = new Notifier()
  private readonly mailbox: Array<Message<B, Dbs>> = []
  private deferredMessage: Message<B, Dbs> | undefined
  private readonly liveVerifies = new Set<VerifyRequest>()
  private readonly liveProposals = new Set<ProposeMessage>()
  private processor?: Processor<B, Dbs>
  private verifications?: Verifications
  private durability?: Durability
  private pendingPrune: PruneTask<SyncTargetsOf<Dbs>> | undefined
  private skipFinalizedUntil: number | undefined
  private startPromise: Promise<void> | undefined
  private loopDone: Promise<void> = Promise.resolve()
  private fatal: StatefulFatalError | undefined
  private readonly stopped = deferred<void>()

  constructor (init: StatefulInit<B, Dbs>) {
    this.init = init
    this.databases = init.databases
    this.log = (init.logger ?? defaultLogger()).forComponent('libp2p:qmdb:stateful')
    this.metrics = createMetrics({ metrics: init.metrics, registry: init.registry, prefix: init.metricsPrefix })
    this.metrics.syncDone.set(0)
    this.strategy = init.startup ?? marshalSync<B, Dbs>()
    if (init.prune !== undefined) { this.pruning = new Pruning(init.prune, init.marshal.maxPendingAcks) }
    this.stopped.promise.catch(() => {})
  }

  // ---- lifecycle ------------------------------------------------------------------

  /** Run the startup strategy and enter processing. Resolves once processing runs. */
  async start (): Promise<void> {
    if (this.startPromise === undefined) {
      if (this.status !== 'created') { throw this.fatal ?? new StatefulStoppedError() }
      this.status = 'starting'
      this.startPromise = this.startup()
    }
    await this.startPromise
  }

  isStarted (): boolean {
    return this.status === 'processing'
  }

  /** Stop: no new work, running work is cancelled, waiting callers rejected, unreleased acks cancelled. */
  async stop (): Promise<void> {
    if (this.status === 'stopped') {
      await this.loopDone
      return
    }
    const reason = new StatefulStoppedError()
    this.halt(reason)
    await this.startPromise?.catch(() => {})
    await this.loopDone
    await this.verifications?.drain()
    this.shutdown(reason)
    this.stopped.resolve()
  }

  /** Resolves when the manager stopped cleanly; rejects with the fatal error that stopped it. */
  async whenStopped (): Promise<void> {
    await this.stopped.promise
  }

  /** The fatal error that stopped the manager, if any. */
  get failure (): StatefulFatalError | undefined {
    return this.fatal
  }

  /** The processed anchor (latest finalized block applied and reported). */
  get lastProcessed (): Anchor | undefined {
    return this.processor?.state.lastProcessed
  }

  /** Number of speculative block states held. */
  get pendingBlocks (): number {
    return this.processor?.state.pending.size ?? 0
  }

  /** Whether a speculative state for `digest` is held. */
  hasPending (digest: string): boolean {
    return this.processor?.state.pending.has(digest) ?? false
  }

  /** Unacknowledged finalized blocks waiting for durability. */
  get heldAcks (): number {
    return this.durability?.heldAcks ?? 0
  }

  // ---- consensus- and marshal-facing interface ----------------------------------------

  /** Build a block on `ctx.parent`: its digest, or `undefined`. Rejects with the abort reason when cancelled. */
  async propose (ctx: Context, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | undefined> {
    this.checkOpen()
    const signal = options.signal ?? NEVER
    if (signal.aborted) { throw abortReason(signal) }
    if (this.status === 'starting' && this.strategy.rejectsProposals === true) { return undefined }
    const msg: ProposeMessage = { kind: 'propose', ctx, signal, settle: deferred() }
    this.liveProposals.add(msg)
    const onAbort = (): void => { msg.settle.reject(abortReason(signal)) }
    signal.addEventListener('abort', onAbort, { once: true })
    this.enqueue(msg)
    try {
      return await msg.settle.promise
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.liveProposals.delete(msg)
    }
  }

  /**
   * Verify the block `digest` proposed in `ctx`. Resolves once a stable
   * verdict exists; stays pending to abstain (until `signal` aborts, then
   * rejects with the abort reason).
   */
  async verify (ctx: Context, digest: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    this.checkOpen()
    const signal = options.signal ?? NEVER
    if (signal.aborted) { throw abortReason(signal) }
    const request = new VerifyRequest(ctx, digest, signal)
    this.liveVerifies.add(request)
    const onAbort = (): void => { request.fail(abortReason(signal)) }
    signal.addEventListener('abort', onAbort, { once: true })
    this.enqueue({ kind: 'verify', request })
    try {
      return await request.promise
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.liveVerifies.delete(request)
    }
  }

  /** A finalized block from marshal (in height order); `ack` is released once its state is durable. */
  finalized (block: B, ack: Acknowledgement): void {
    if (this.status === 'stopped') {
      ack.cancel(this.fatal ?? new StatefulStoppedError())
      return
    }
    if (this.status !== 'processing' && this.strategy.onFinalized !== undefined) {
      let taken: boolean
      try {
        taken = this.strategy.onFinalized(block, ack)
      } catch (err) {
        // never thrown into marshal: the manager stops and cancels every ack
        try { ack.cancel(err as Error) } catch { /* marshal is gone */ }
        this.fail(err)
        return
      }
      if (taken) { return }
    }
    this.enqueue({ kind: 'finalized', block, ack })
  }

  /** The databases, once processing runs (behind any queued work). Holders must never prune them. */
  async subscribeDatabases (): Promise<DatabaseSet<Dbs>> {
    this.checkOpen()
    const settle = deferred<DatabaseSet<Dbs>>()
    this.enqueue({ kind: 'subscribe', settle })
    return settle.promise
  }

  /**
   * Run `fn` on the databases between two mailbox messages, with the height of
   * the latest applied finalized block: a consistent view (status pages,
   * tests) that never sees half of an apply.
   */
  async readApplied<T> (fn: (dbs: DatabaseSet<Dbs>, height: number) => T): Promise<T> {
    this.checkOpen()
    const settle = deferred<T>()
    this.enqueue({
      kind: 'read',
      run: (dbs, height) => {
        try { settle.resolve(fn(dbs, height)) } catch (err) { settle.reject(err as Error) }
      },
      fail: err => { settle.reject(err) }
    })
    return settle.promise
  }

  private checkOpen (): void {
    if (this.fatal !== undefined) { throw this.fatal }
    if (this.status === 'stopped') { throw new StatefulStoppedError() }
  }

  private enqueue (msg: Message<B, Dbs>): void {
    this.mailbox.push(msg)
    this.notifier.notify()
  }

  /** The next live message (obsolete ones are dropped). */
  private nextMessage (): Message<B, Dbs> | undefined {
    for (;;) {
      const m = this.mailbox.shift()
      if (m === undefined || !isObsolete(m)) { return m }
    }
  }

  /** The databases once startup produced them. */
  private get dbs (): DatabaseSet<Dbs> {
    if (this.databases === undefined) { throw new StatefulFatalError('InvariantViolated', 'no databases: the startup strategy did not provide them') }
    return this.databases
  }

  // ---- startup ---------------------------------------------------------------------

  private async startup (): Promise<void> {
    try {
      const result = await this.strategy.run({
        application: this.init.application,
        databases: this.databases,
        marshal: this.init.marshal,
        metadata: this.init.metadata,
        log: this.log,
        signal: this.stopController.signal
      })
      if (this.status !== 'starting') { throw this.fatal ?? new StatefulStoppedError() }
      if (result.databases !== undefined) { this.databases = result.databases }
      const state = new ExecutionState(this.dbs, result.anchor)
      const processor = new Processor({
        application: this.init.application,
        databases: this.dbs,
        marshal: this.init.marshal,
        state,
        metrics: this.metrics,
        log: this.log,
        pruning: this.pruning
      })
      this.processor = processor
      this.verifications = new Verifications(async job => processor.verify(job), this.stopController.signal, err => { this.onJobError(err) })
      this.durability = new Durability(result.anchor.height)
      this.skipFinalizedUntil = result.skipFinalizedUntil
      await this.init.attachDatabases?.(this.dbs)
      if (this.status !== 'starting') { throw this.fatal ?? new StatefulStoppedError() }
      const held = (result.requeue ?? []).map(({ block, ack }) => ({ kind: 'finalized' as const, block, ack }))
      this.mailbox.unshift(...held)
      this.metrics.syncDone.set(1)
      this.status = 'processing'
      this.log('processing from height %d', result.anchor.height)
      this.loopDone = this.loop().catch(err => { this.fail(err) })
    } catch (err) {
      if (err instanceof StatefulStoppedError) { throw err }
      this.fail(err)
      throw this.fatal ?? toFatal(err)
    }
  }

  // ---- the processing loop ---------------------------------------------------------

  private get halted (): boolean {
    return this.stopController.signal.aborted
  }

  private async loop (): Promise<void> {
    while (!this.halted) {
      if (this.pendingPrune === undefined) { this.startSync() }
      const durability = this.durability as Durability
      if (this.pendingPrune !== undefined && durability.needsSync()) {
        await this.pruneStep()
        continue
      }
      const msg = this.deferredMessage ?? this.nextMessage()
      this.deferredMessage = undefined
      if (msg !== undefined) {
        await this.handle(msg)
        continue
      }
      if (this.pendingPrune !== undefined) {
        await this.pruneStep()
        continue
      }
      await this.notifier.wait()
    }
  }

  /** Start a successor flush for any applied but uncovered suffix. */
  private startSync (): void {
    const durability = this.durability as Durability
    if (!durability.needsSync()) { return }
    const height = durability.latestApplied()
    const barrier = this.dbs.finalize()
    durability.started(height, barrier, () => { this.notifier.notify() }, err => { this.fail(err) })
  }

  private async handle (msg: Message<B, Dbs>): Promise<void> {
    switch (msg.kind) {
      case 'verify':
        (this.verifications as Verifications).schedule(msg.request)
        return
      case 'propose':
        await this.runProposal(msg)
        return
      case 'finalized':
        await this.handleFinalized(msg.block, msg.ack)
        return
      case 'subscribe':
        msg.settle.resolve(this.dbs)
        return
      case 'read':
        msg.run(this.dbs, (this.durability as Durability).latestApplied())
        return
      default:
        throw new StatefulFatalError('InvariantViolated', 'unknown mailbox message')
    }
  }

  /** Admit queued verifications while a proposal runs; false once a non-verify message blocks intake. */
  private intakeDuringProposal (): boolean {
    for (;;) {
      const m = this.nextMessage()
      if (m === undefined) { return true }
      if (m.kind === 'verify') {
        (this.verifications as Verifications).schedule(m.request)
        continue
      }
      this.deferredMessage = m
      return false
    }
  }

  private async runProposal (msg: ProposeMessage): Promise<void> {
    const processor = this.processor as Processor<B, Dbs>
    const link = linked([msg.signal, this.stopController.signal])
    const signal = link.signal
    const status = { finished: false }
    let fatal: StatefulFatalError | undefined
    const task = processor.propose(msg.ctx, signal).then(
      digest => { msg.settle.resolve(digest) },
      err => {
        if (err instanceof StatefulFatalError) {
          fatal = err
          msg.settle.reject(err)
        } else if (signal.aborted) {
          msg.settle.reject(abortReason(signal))
        } else {
          this.log.error('proposal at view %d failed: %e', msg.ctx.round.view, err)
          msg.settle.resolve(undefined)
        }
      }
    ).finally(() => {
      link.dispose()
      status.finished = true
      this.notifier.notify()
    })
    let intake = true
    while (!status.finished) {
      if (intake) { intake = this.intakeDuringProposal() }
      if (status.finished) { break }
      await this.notifier.wait()
    }
    await task
    if (fatal !== undefined) { throw fatal }
  }

  private async handleFinalized (block: B, ack: Acknowledgement): Promise<void> {
    try {
      await this.finalizeOne(block, ack)
    } catch (err) {
      // the ack is neither queued nor held by the durability tracker yet
      try { ack.cancel(err as Error) } catch { /* marshal is gone */ }
      throw err
    }
  }

  private async finalizeOne (block: B, ack: Acknowledgement): Promise<void> {
    const processor = this.processor as Processor<B, Dbs>
    const verifications = this.verifications as Verifications
    const durability = this.durability as Durability
    const skip = skipFinalizedBlock(this.skipFinalizedUntil, block.height)
    this.skipFinalizedUntil = skip.until
    if (skip.skip) {
      await processor.runFinalizedHook(block)
      ack.acknowledge()
      return
    }
    const boundary = processor.finalizationBoundary(block)
    const { retry, reject } = await verifications.quiesceWhere(p => disposition(boundary, p))
    const startSync = durability.syncActive === undefined
    const applied = await processor.finalize(block, startSync)
    if (applied === null) {
      ack.acknowledge()
    } else {
      durability.applied(block.height, ack)
      if (applied.barrier !== undefined) {
        durability.started(block.height, applied.barrier, () => { this.notifier.notify() }, err => { this.fail(err) })
      }
      if (applied.prune !== undefined) { this.pendingPrune = applied.prune }
    }
    for (const r of reject) { r.respond(false) }
    this.requeue(retry)
  }

  private requeue (requests: VerifyRequest[]): void {
    for (const request of requests) {
      if (!request.obsolete) { this.mailbox.push({ kind: 'verify', request }) }
    }
    if (requests.length > 0) { this.notifier.notify() }
  }

  /** prune at a mutation boundary, after a full quiesce and a flush covering the target. */
  private async pruneStep (): Promise<void> {
    const task = this.pendingPrune as PruneTask<SyncTargetsOf<Dbs>>
    this.pendingPrune = undefined
    const durability = this.durability as Durability
    const processor = this.processor as Processor<B, Dbs>
    await durability.syncActive?.promise
    if (this.halted) { return }
    const retry = await (this.verifications as Verifications).quiesce()
    try {
      if (!processor.replays.idle) {
        throw new StatefulFatalError('InvariantViolated', 'verification replay remained active after quiescence')
      }
      if (!durability.covers(task.barrierHeight)) {
        if (!durability.needsSync()) {
          throw new StatefulFatalError('InvariantViolated', 'uncovered prune target must have unapplied durability', { height: task.barrierHeight })
        }
        this.startSync()
        await durability.syncActive?.promise
        if (this.halted) { return }
        if (!durability.covers(task.barrierHeight)) {
          throw new StatefulFatalError('InvariantViolated', 'prune target must be durable before pruning', { height: task.barrierHeight })
        }
      }
      try {
        await this.dbs.prune(task.qmdbTarget)
      } catch (err) {
        throw new StatefulFatalError('DatabasePruneFailed', `database prune failed: ${(err as Error)?.message}`, { height: task.barrierHeight, database: (err as { database?: string }).database, cause: err })
      }
      this.log('pruned the databases to height %d and marshal below height %d', task.barrierHeight, task.marshalHeight)
      Promise.resolve(this.init.marshal.prune(task.marshalHeight)).catch(err => {
        this.log.error('marshal prune below %d failed: %e', task.marshalHeight, err)
      })
    } finally {
      this.requeue(retry)
    }
  }

  // ---- stopping ---------------------------------------------------------------------

  private onJobError (err: unknown): void {
    if (err instanceof StatefulFatalError) {
      this.fail(err)
      return
    }
    this.log.error('verification attempt failed without a verdict: %e', err)
  }

  /** Stop accepting and cancel running work. */
  private halt (reason: Error): void {
    this.status = 'stopped'
    if (!this.stopController.signal.aborted) { this.stopController.abort(reason) }
    this.notifier.notify()
  }

  /** Reject every waiting caller and cancel every unreleased acknowledgement. */
  private shutdown (reason: Error): void {
    const queued = this.mailbox.splice(0)
    if (this.deferredMessage !== undefined) { queued.unshift(this.deferredMessage) }
    this.deferredMessage = undefined
    for (const m of queued) {
      if (m.kind === 'finalized') {
        try { m.ack.cancel(reason) } catch { /* marshal is gone */ }
      } else if (m.kind === 'subscribe') {
        m.settle.reject(reason)
      } else if (m.kind === 'read') {
        m.fail(reason)
      }
    }
    for (const p of this.liveProposals) { p.settle.reject(reason) }
    for (const r of this.liveVerifies) { r.fail(reason) }
    try { this.strategy.cancel?.(reason) } catch { /* marshal is gone */ }
    this.durability?.close(reason)
  }

  /** A fatal error: log, stop, reject everyone, cancel acks. */
  private fail (err: unknown): void {
    if (this.fatal !== undefined) { return }
    if (err instanceof StatefulStoppedError && this.status === 'stopped') { return }
    const fatal = toFatal(err)
    this.fatal = fatal
    this.log.error('stopping on a fatal error: %s', fatal.message)
    this.halt(fatal)
    this.shutdown(fatal)
    this.stopped.reject(fatal)
    try {
      this.init.onFatal?.(fatal)
    } catch { /* the observer's failure must not mask the fatal error */ }
  }
}
