/**
 * The verification pool (commonware `glue/src/stateful/actor/processor/verifier.rs`): every verification
 * request runs as its own concurrent job; a finalization or a prune can
 * quiesce jobs (abort them and wait until they settled) and either retry them
 * later or reject them.
 *
 * Rules:
 * - a job's verdict is delivered as soon as it is computed, unless the job
 * was invalidated first; a delivered verdict is never retracted;
 * - an invalidated job's verdict is discarded, even if it was computed;
 * - a job reports its phase (`acquiring`, `replaying`, `verifying`), which
 * decides what a finalization does with it (dispositions);
 * - quiescing waits for the job's own work (application calls included) to
 * settle, so nothing it started still reads the databases when the caller
 * mutates or prunes them (the application must honour its abort signal).
 */

import { linked } from '../net/signals.ts'
import { StatefulFatalError } from './errors.ts'
import { compareRounds, roundsEqual } from './types.ts'
import { deferred } from './util.ts'
import type { Context, Round } from './types.ts'
import type { Deferred } from './util.ts'

export type Progress =
  | { phase: 'acquiring' }
  | { phase: 'replaying' | 'verifying', digest: string, parent: string, round: Round }

export type Disposition = 'retain' | 'retry' | 'reject'

/** A snapshot taken when a finalized block W arrives. */
export interface FinalizationBoundary {
  digest: string
  round: Round
  processedDigest: string
  processedRound: Round
  /** W and its pending descendants. */
  compatible: Set<string>
}

/** What a finalization does with a job in phase `progress` (table). */
export function disposition (boundary: FinalizationBoundary, progress: Progress): Disposition {
  if (progress.phase === 'acquiring') { return 'retry' }
  const atProcessed = progress.digest === boundary.processedDigest && roundsEqual(progress.round, boundary.processedRound)
  const descendant = compareRounds(progress.round, boundary.round) > 0 && boundary.compatible.has(progress.parent)
  if (progress.phase === 'replaying') {
    if (atProcessed) { return 'retry' }
    if (progress.digest === boundary.digest) { return 'retain' }
    return descendant ? 'retain' : 'reject'
  }
  if (progress.digest === boundary.digest || atProcessed) { return 'retry' }
  return descendant ? 'retain' : 'reject'
}

/** A caller's verification request; it may outlive several attempts (jobs). */
export class VerifyRequest {
  readonly ctx: Context
  readonly digest: Uint8Array
  readonly signal: AbortSignal
  /** The caller's promise: the verdict, or a rejection (abort, stop, fatal). */
  readonly promise: Promise<boolean>
  private settled = false
  private readonly settle: Deferred<boolean>

  constructor (ctx: Context, digest: Uint8Array, signal: AbortSignal) {
    this.ctx = ctx
    this.digest = digest
    this.signal = signal
    this.settle = deferred<boolean>()
    this.promise = this.settle.promise
  }

  /** The caller is gone or already answered. */
  get obsolete (): boolean {
    return this.settled || this.signal.aborted
  }

  get isSettled (): boolean {
    return this.settled
  }

  respond (valid: boolean): void {
    if (this.settled) { return }
    this.settled = true
    this.settle.resolve(valid)
  }

  fail (err: unknown): void {
    if (this.settled) { return }
    this.settled = true
    this.settle.reject(err)
  }
}

/** Progress of one job, updated by the verifier. */
export class ProgressHandle {
  current: Progress = { phase: 'acquiring' }

  replaying (digest: string, parent: string, round: Round): void {
    this.current = { phase: 'replaying', digest, parent, round }
  }

  verifying (digest: string, parent: string, round: Round): void {
    this.current = { phase: 'verifying', digest, parent, round }
  }
}

export interface Job {
  readonly id: number
  readonly request: VerifyRequest
  readonly progress: ProgressHandle
  /** Aborts on caller cancellation, invalidation or manager stop. */
  readonly signal: AbortSignal
}

interface JobRecord extends Job {
  controller: AbortController
  invalidated: Disposition | undefined
  done: Promise<void>
}

/** One attempt: the verdict, or `undefined` for none (cancelled, parked until cancelled). */
export type Verifier = (job: Job) => Promise<boolean | undefined>

export class Verifications {
  private readonly jobs = new Map<number, JobRecord>()
  private nextId = 0
  private readonly verifier: Verifier
  private readonly stopSignal: AbortSignal
  private readonly onError: (err: unknown) => void

  constructor (verifier: Verifier, stopSignal: AbortSignal, onError: (err: unknown) => void) {
    this.verifier = verifier
    this.stopSignal = stopSignal
    this.onError = onError
  }

  get size (): number {
    return this.jobs.size
  }

  /** Start a job for `request` (dropped silently if the caller is gone). */
  schedule (request: VerifyRequest): void {
    if (request.obsolete) { return }
    if (this.nextId >= Number.MAX_SAFE_INTEGER) { throw new StatefulFatalError('InvariantViolated', 'verification request ID overflowed') }
    const id = ++this.nextId
    const controller = new AbortController()
    // disposed when the job ends: the stop signal lives as long as the manager
    const link = linked([request.signal, controller.signal, this.stopSignal])
    const job: JobRecord = {
      id,
      request,
      progress: new ProgressHandle(),
      controller,
      signal: link.signal,
      invalidated: undefined,
      done: Promise.resolve()
    }
    this.jobs.set(id, job)
    job.done = this.run(job).finally(() => { link.dispose() })
  }

  private async run (job: JobRecord): Promise<void> {
    let verdict: boolean | undefined
    try {
      verdict = await this.verifier(job)
    } catch (err) {
      // a fatal error stops the manager; anything else (the block provider
      // failing, a bug) leaves this attempt without a verdict
      if (!job.signal.aborted || err instanceof StatefulFatalError) { this.onError(err) }
      verdict = undefined
    }
    if (job.invalidated !== undefined) { return }
    this.jobs.delete(job.id)
    if (verdict !== undefined) { job.request.respond(verdict) }
  }

  /**
   * Invalidate every job whose disposition is not `retain` and wait until
   * they settled. Retained jobs keep running (their verdicts are delivered).
   */
  async quiesceWhere (decide: (progress: Progress) => Disposition): Promise<{ retry: VerifyRequest[], reject: VerifyRequest[] }> {
    const stopped: JobRecord[] = []
    for (const job of this.jobs.values()) {
      const d = decide(job.progress.current)
      if (d === 'retain') { continue }
      job.invalidated = d
      stopped.push(job)
    }
    for (const job of stopped) { job.controller.abort(new Error('verification invalidated')) }
    await Promise.all(stopped.map(async j => j.done))
    const retry: VerifyRequest[] = []
    const reject: VerifyRequest[] = []
    for (const job of stopped) {
      this.jobs.delete(job.id)
      if (job.request.obsolete) { continue }
      if (job.invalidated === 'retry') { retry.push(job.request) } else { reject.push(job.request) }
    }
    return { retry, reject }
  }

  /** Quiesce everything (pruning barrier); every job is retried. */
  async quiesce (): Promise<VerifyRequest[]> {
    const { retry } = await this.quiesceWhere(() => 'retry')
    return retry
  }

  /** Wait for every job to settle (after the stop signal aborted them). */
  async drain (): Promise<void> {
    await Promise.all([...this.jobs.values()].map(async j => j.done))
  }
}
