/**
 * The state sync engine (commonware `storage/src/qmdb/sync`): fetch the operations `[start, end)`
 * of a remote log from an untrusted `Source`, verify every response against a
 * trusted target, follow target updates, and rebuild the database.
 *
 * Per response, in the reference order: the proof's size must be the
 * request's; the variant must match; an operations response must carry
 * between 1 and `maxOps` operations; the root is the current target's if the
 * request was for its size, else a retained older root (none → dropped
 * silently, the gap is re-requested); the range proof must verify; a
 * boundary response for the current target's start must also prove the
 * pinned nodes. A rejected response is reported to the source (`feedback`),
 * and re-requested; a source that gives no feedback is final, so its invalid
 * response ends the sync (`InvalidResponse`).
 *
 * Verified operations are applied to the journal in order (stopping at the
 * first hole) and flushed, so a restarted sync resumes from what it had;
 * requests stay within a window past the journal, so operations waiting
 * behind a hole are bounded (see `maxOutstandingRequests`). On
 * reaching the target the engine reports it once, optionally waits for an
 * explicit finish (taking any newer target first), rebuilds the database and
 * requires its root to be the target's.
 */

import { hex } from '../codec/index.ts'
import { MAX_LEAVES, digestEquals, verifyProofAndPinnedNodes, verifyRangeProof } from '../merkle/index.ts'
import { SYNC_REBUILD_STEP } from '../qmdb/core.ts'
import { compactToTarget, targetAdvances } from '../qmdb/target.ts'
import { Channel, ChannelClosedError } from './channel.ts'
import { ConfigurationError, SyncError } from './errors.ts'
import { findNextGap } from './gaps.ts'
import { OutstandingRequests } from './requests.ts'
import type { SyncKind } from './kinds.ts'
import type { BoundaryResponse, OperationsRequest, OperationsResponse, Request } from './messages.ts'
import type { Served, Source } from './source.ts'
import type { Digest } from '../merkle/index.ts'
import type { SyncJournal } from '../qmdb/sync-journal.ts'
import type { CompactTarget, Target } from '../qmdb/target.ts'

export interface SyncProgress {
  /** Database name (as given in the options). */
  database: string
  /** Operations of the current target already verified and journaled. */
  synced: number
  /** Operations the current target spans. */
  total: number
  target: Target
}

export interface SyncEngineOptions<DB> {
  kind: SyncKind<DB>
  /** The trusted target; a compact database's `syncTarget()` (a `CompactTarget`) is taken as it is. */
  target: Target | CompactTarget
  /** Where operations come from; the engine passes it the kind's codec with every request. */
  source: Source
  /** Name used in progress reports and errors. */
  name?: string
  /**
   * Concurrent fetches, the boundary request included (default 8). Fetches start at most
   * `max(65536, 4 × maxOutstandingRequests × fetchBatchSize)` operations past the journal,
   * which bounds the verified operations held in memory while waiting for an earlier answer.
   */
  maxOutstandingRequests?: number
  /** Operations per request (default 1000). */
  fetchBatchSize?: number
  /** Operations hashed (and the MMR written) per step when rebuilding the MMR (default 16384). */
  applyBatchSize?: number
  /** Superseded target roots kept to verify in-flight requests (default 16). */
  maxRetainedRoots?: number
  /** Newer targets; only strictly advancing ones are adopted. */
  updates?: Channel<Target>
  /** If given, the engine waits for one item (or fails when it closes empty) after reaching a target. */
  finish?: Channel<void>
  /** Each reached target is sent here once (the send awaits capacity; a closed channel is forgotten). */
  reached?: Channel<Target>
  onProgress?(p: SyncProgress): void
  signal?: AbortSignal
}

/** Operations a request may start past the journal, at least (see `maxOutstandingRequests`). */
const MIN_WINDOW = 1 << 16

type FetchEvent = { id: number, served: Served } | { id: number, error: unknown }

/** Sync one database to its target (and its updates); resolves with the rebuilt, durable database. */
export async function syncDatabase<DB> (options: SyncEngineOptions<DB>): Promise<DB> {
  return new SyncEngine(options).run()
}

export class SyncEngine<DB> {
  private readonly opts: SyncEngineOptions<DB>
  private readonly name: string
  private readonly maxOutstanding: number
  private readonly fetchBatchSize: number
  private readonly maxRetainedRoots: number
  private target: Target
  private journal!: SyncJournal
  private readonly outstanding = new OutstandingRequests()
  private readonly fetched = new Map<number, Uint8Array[]>()
  private pins: Digest[] | undefined
  private readonly retained = new Map<number, Digest>()
  private readonly events = new Channel<FetchEvent>()
  private updatesOpen: boolean
  private finishOpen: boolean
  private finishRequested = false
  private reachedReported = false
  private flushError: unknown
  /** resolves 'abort' when the caller's signal aborts (one listener for the whole sync) */
  private readonly aborted: Promise<'abort'> | undefined

  constructor (options: SyncEngineOptions<DB>) {
    this.opts = options
    this.name = options.name ?? options.kind.name
    this.maxOutstanding = Math.max(1, options.maxOutstandingRequests ?? 8)
    this.fetchBatchSize = Math.max(1, options.fetchBatchSize ?? 1000)
    this.maxRetainedRoots = Math.max(0, options.maxRetainedRoots ?? 16)
    this.target = 'size' in options.target ? compactToTarget(options.target) : options.target
    this.updatesOpen = options.updates !== undefined
    this.finishOpen = options.finish !== undefined
    const signal = options.signal
    this.aborted = signal === undefined
      ? undefined
      : new Promise(resolve => {
        signal.addEventListener('abort', () => {
          this.outstanding.clear()
          resolve('abort')
        }, { once: true })
      })
  }

  /** The target currently synced to. */
  get currentTarget (): Target { return this.target }

  async run (): Promise<DB> {
    const { start, end } = this.target.range
    if (end > MAX_LEAVES || start >= end) { throw new SyncError('InvalidTarget', `target range [${start}, ${end})`) }
    try {
      this.journal = await this.opts.kind.openJournal(this.target.range)
      if (this.journal.size === end) { this.pins = await this.opts.kind.localPinnedNodes(this.journal, this.target) }
      this.progress()
      this.schedule()
      for (;;) {
        const db = await this.step()
        if (db !== undefined) { return db }
      }
    } finally {
      this.outstanding.clear()
      this.events.close()
    }
  }

  private get needsPins (): boolean {
    return this.target.range.start > 0 && this.pins === undefined
  }

  private async step (): Promise<DB | undefined> {
    this.opts.signal?.throwIfAborted()
    if (this.flushError !== undefined) { throw new SyncError('Database', 'persisting sync progress failed', { cause: this.flushError }) }
    this.drainFinish()
    const end = this.target.range.end
    if (this.journal.size > end) { throw new SyncError('InvalidState', `journal size ${this.journal.size} beyond target end ${end}`) }
    if (this.journal.size === end && !this.needsPins) {
      if (!this.finishRequested && await this.takeQueuedUpdate()) { return undefined }
      if (!this.reachedReported) {
        this.reachedReported = true
        await this.opts.reached?.send(this.target).catch(err => {
          if (!(err instanceof ChannelClosedError)) { throw err }
        })
      }
      if (!(this.finishOpen && !this.finishRequested)) { return this.complete() }
    }
    await this.waitAndHandle()
    return undefined
  }

  /** A pending finish signal is taken without waiting; a closed finish channel fails the sync. */
  private drainFinish (): void {
    if (!this.finishOpen || this.opts.finish === undefined) { return }
    const r = this.opts.finish.tryRecv()
    if (r === 'closed') { throw new SyncError('FinishChannelClosed', 'the finish channel closed before a finish signal') }
    if (r !== 'empty') {
      this.finishRequested = true
      this.finishOpen = false
    }
  }

  /** Adopt the first queued advancing target, if any (non-advancing ones are dropped). */
  private async takeQueuedUpdate (): Promise<boolean> {
    const updates = this.opts.updates
    if (!this.updatesOpen || updates === undefined) { return false }
    for (;;) {
      const r = updates.tryRecv()
      if (r === 'empty') { return false }
      if (r === 'closed') {
        this.updatesOpen = false
        return false
      }
      if (targetAdvances(r.value, this.target)) {
        await this.retarget(r.value)
        return true
      }
    }
  }

  private async waitAndHandle (): Promise<void> {
    const waits: Array<Promise<'fetch' | 'update' | 'finish' | 'abort'>> = []
    if (this.outstanding.size > 0) { waits.push(this.events.ready().then(() => 'fetch' as const)) }
    if (this.updatesOpen && this.opts.updates !== undefined) { waits.push(this.opts.updates.ready().then(() => 'update' as const)) }
    if (this.finishOpen && this.opts.finish !== undefined) { waits.push(this.opts.finish.ready().then(() => 'finish' as const)) }
    if (waits.length === 0) { throw new SyncError('SyncStalled', 'nothing outstanding and no channel that could produce an event') }
    if (this.aborted !== undefined) { waits.push(this.aborted) }
    const which = await Promise.race(waits)
    if (which === 'abort') { throw new SyncError('Aborted', 'sync aborted', { cause: this.opts.signal?.reason }) }
    if (which === 'finish') {
      this.drainFinish()
      return
    }
    if (which === 'update') {
      const r = this.opts.updates?.tryRecv()
      if (r === 'closed') {
        this.updatesOpen = false
      } else if (r !== undefined && r !== 'empty' && targetAdvances(r.value, this.target)) {
        await this.retarget(r.value)
      }
      return
    }
    const ev = this.events.tryRecv()
    if (ev !== 'empty' && ev !== 'closed') {
      this.handleFetch(ev.value)
      // applied first: the request window starts at the journal's new size
      this.applyOperations()
      this.schedule()
    }
  }

  // ---- requests ---------------------------------------------------------------

  private schedule (): void {
    const { start, end } = this.target.range
    if (this.needsPins && !this.outstanding.hasStart(start)) {
      this.issue({ type: 'boundary', size: end, start })
    }
    // no request starts more than `window` operations past the journal: a slow answer at the
    // journal's tip holds at most that much verified data waiting in `fetched`, however long it takes
    const window = Math.max(MIN_WINDOW, 4 * this.maxOutstanding * this.fetchBatchSize)
    while (this.outstanding.size < this.maxOutstanding) {
      const fetched = [...this.fetched.entries()].map(([s, ops]) => ({ start: s, count: ops.length })).sort((a, b) => a.start - b.start)
      const gap = findNextGap(this.journal.size, end, fetched, this.outstanding.ranges())
      if (gap === undefined || gap.start >= this.journal.size + window) { break }
      this.issue({ type: 'operations', size: end, start: gap.start, maxOps: Math.min(this.fetchBatchSize, gap.end - gap.start) })
    }
  }

  private issue (request: Request): void {
    const o = this.outstanding.add(request)
    // the caller's signal aborts every outstanding request (see the constructor): no derived signals
    this.opts.source.serve(request, { signal: o.controller.signal, codec: this.opts.kind.codec }).then(
      served => { this.events.trySend({ id: o.id, served }) },
      error => { this.events.trySend({ id: o.id, error }) }
    )
  }

  /** Validate one fetch result (see the module comment for the order of checks). */
  private handleFetch (ev: FetchEvent): void {
    const o = this.outstanding.get(ev.id)
    if (o === undefined) { return } // superseded or aborted: tolerated
    this.outstanding.remove(ev.id, false)
    if ('error' in ev) {
      if (o.controller.signal.aborted) { return }
      // a local mistake is reported as itself: its message names the fix
      if (ev.error instanceof ConfigurationError) { throw ev.error }
      throw new SyncError('Source', `source failed for ${describe(o.request)}: ${(ev.error as Error)?.message ?? String(ev.error)}`, { cause: ev.error })
    }
    const { response, feedback } = ev.served
    const req = o.request
    const reject = (why: string): void => {
      if (feedback === undefined) { throw new SyncError('InvalidResponse', `${this.name}: ${why} (${describe(req)})`) }
      feedback(false)
    }
    if (response.proof.leaves !== req.size) { reject(`proof for ${response.proof.leaves} leaves, requested ${req.size}`); return }
    if (response.type !== req.type) { reject(`${response.type} response to a ${req.type} request`); return }
    if (response.type === 'operations' && req.type === 'operations') {
      const why = this.checkOperations(req, response)
      if (why === 'drop') { return }
      if (why !== undefined) { reject(why); return }
      feedback?.(true)
      this.fetched.set(req.start, response.ops)
      return
    }
    if (response.type === 'boundary') {
      const why = this.checkBoundary(req, response)
      if (why === 'drop') { return }
      if (why !== undefined) { reject(why); return }
      feedback?.(true)
      this.fetched.set(req.start, [response.op])
    }
  }

  /** Why an operations response is invalid, `'drop'` if its root is gone, or undefined if valid. */
  private checkOperations (req: OperationsRequest, response: OperationsResponse): string | undefined {
    if (response.ops.length === 0 || response.ops.length > req.maxOps) { return `${response.ops.length} operations for maxOps ${req.maxOps}` }
    const root = this.rootFor(req.size)
    if (root === undefined) { return 'drop' } // no root for that size any more: the gap is re-requested
    if (!verifyRangeProof(response.proof, req.start, response.ops, root)) { return 'range proof does not verify' }
    return undefined
  }

  /** Like `checkOperations`; keeps the pinned nodes when this boundary is the one the target needs. */
  private checkBoundary (req: Request, response: BoundaryResponse): string | undefined {
    const needPins = req.size === this.target.range.end && this.needsPins && req.start === this.target.range.start
    if (needPins) {
      if (!verifyProofAndPinnedNodes(response.proof, req.start, [response.op], response.pinnedNodes, this.target.root)) { return 'boundary proof or pinned nodes do not verify' }
      this.pins = response.pinnedNodes
      return undefined
    }
    const root = this.rootFor(req.size)
    if (root === undefined) { return 'drop' }
    if (!verifyRangeProof(response.proof, req.start, [response.op], root)) { return 'boundary operation does not verify' }
    return undefined
  }

  private rootFor (size: number): Digest | undefined {
    return size === this.target.range.end ? this.target.root : this.retained.get(size)
  }

  /** Append contiguous fetched operations to the journal, from its current size. */
  private applyOperations (): void {
    let appended = false
    for (;;) {
      const size = this.journal.size
      let found: [number, Uint8Array[]] | undefined
      for (const [s, ops] of this.fetched) {
        if (s + ops.length <= size) {
          this.fetched.delete(s)
          continue
        }
        if (s <= size) { found = [s, ops] }
      }
      if (found === undefined) { break }
      this.fetched.delete(found[0])
      this.journal.append(found[1].slice(size - found[0]))
      appended = true
    }
    if (appended) {
      this.journal.flush().catch(err => { this.flushError = err })
      this.progress()
    }
  }

  // ---- target updates -----------------------------------------------------------

  private async retarget (next: Target): Promise<void> {
    if (digestEquals(next.root, this.target.root)) {
      throw new SyncError('SyncTargetRootUnchanged', `target moved to [${next.range.start}, ${next.range.end}) with the same root`)
    }
    await this.journal.resize(next.range.start)
    const old = this.target
    this.outstanding.removeAtOrBefore(next.range.start)
    this.fetched.clear()
    this.pins = undefined
    if (this.maxRetainedRoots > 0) {
      this.retained.set(old.range.end, old.root)
      while (this.retained.size > this.maxRetainedRoots) {
        this.retained.delete(this.retained.keys().next().value as number)
      }
    }
    this.target = next
    this.reachedReported = false
    this.progress()
    this.schedule()
  }

  private async complete (): Promise<DB> {
    await this.journal.flush()
    let built
    try {
      built = await this.opts.kind.build(this.journal, this.pins, this.target, this.opts.applyBatchSize ?? SYNC_REBUILD_STEP)
    } catch (err) {
      throw new SyncError('Database', `${this.name}: rebuilding the database failed: ${(err as Error).message}`, { cause: err })
    }
    if (!digestEquals(built.root, this.target.root)) {
      throw new SyncError('RootMismatch', `${this.name}: rebuilt root ${shortHex(built.root)} is not the target root ${shortHex(this.target.root)}`)
    }
    try {
      return await built.commit()
    } catch (err) {
      throw new SyncError('Database', `${this.name}: persisting the synced database failed: ${(err as Error).message}`, { cause: err })
    }
  }

  private progress (): void {
    const { start, end } = this.target.range
    this.opts.onProgress?.({ database: this.name, synced: Math.max(0, this.journal.size - start), total: end - start, target: this.target })
  }
}

function describe (r: Request): string {
  return r.type === 'operations' ? `operations(size ${r.size}, start ${r.start}, max ${r.maxOps})` : `boundary(size ${r.size}, start ${r.start})`
}

function shortHex (d: Uint8Array): string {
  return hex(d).slice(0, 16)
}
