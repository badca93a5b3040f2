/**
 * A scripted in-memory marshal for the stateful tests: a block store by
 * digest (subscriptions wait until a block is `put`), finalized blocks by
 * height, ordered delivery of finalized blocks to the manager with a bounded
 * window of unacknowledged blocks, and a processed height that advances as
 * acknowledgements arrive (in order).
 */

import { digestKey } from '../../src/stateful/index.ts'
import type { Acknowledgement, Block, FinalizedReporter, Marshal } from '../../src/stateful/index.ts'

export type AckState = 'pending' | 'acked' | 'cancelled'

interface Waiter<B> {
  resolve(b: B | undefined): void
}

export class MockMarshal<B extends Block> implements Marshal<B> {
  readonly maxPendingAcks: number
  /** The window actually enforced when delivering (default `maxPendingAcks`). */
  readonly deliveryWindow: number
  readonly blocks = new Map<string, B>()
  readonly finalizedByHeight = new Map<number, B>()
  /** Durable processed height (advanced by acknowledgements). */
  processed: number | undefined
  /** `subscribeBlock` calls per hex digest. */
  readonly fetches = new Map<string, number>()
  /** Digests `subscribeBlock` gives up on at once (resolves undefined). */
  readonly unavailable = new Set<string>()
  readonly disseminated: B[] = []
  readonly pruned: number[] = []
  readonly acks = new Map<number, AckState>()
  /** Delivered heights, in order. */
  readonly delivered: number[] = []
  stopped = false
  private readonly waiters = new Map<string, Array<Waiter<B>>>()
  private readonly queue: B[] = []
  private inflight = 0
  private reporter: FinalizedReporter<B> | undefined
  private readonly ackWaiters: Array<() => void> = []

  constructor (opts: { maxPendingAcks?: number, deliveryWindow?: number, genesis?: B, processed?: number } = {}) {
    this.maxPendingAcks = opts.maxPendingAcks ?? 1
    this.deliveryWindow = opts.deliveryWindow ?? this.maxPendingAcks
    this.processed = opts.processed
    if (opts.genesis !== undefined) {
      this.put(opts.genesis)
      this.finalizedByHeight.set(0, opts.genesis)
    }
  }

  /** Make blocks available by digest. */
  put (...blocks: B[]): void {
    for (const b of blocks) {
      const key = digestKey(b.digest)
      this.blocks.set(key, b)
      const ws = this.waiters.get(key)
      this.waiters.delete(key)
      for (const w of ws ?? []) { w.resolve(b) }
    }
  }

  /** Record blocks as finalized (stored by height) without delivering them. */
  store (...blocks: B[]): void {
    for (const b of blocks) {
      this.put(b)
      this.finalizedByHeight.set(b.height, b)
    }
  }

  async subscribeBlock (digest: Uint8Array, options: { height?: number, signal?: AbortSignal }): Promise<B | undefined> {
    const key = digestKey(digest)
    this.fetches.set(key, (this.fetches.get(key) ?? 0) + 1)
    const have = this.blocks.get(key)
    if (have !== undefined) { return have }
    if (this.unavailable.has(key) || this.stopped) { return undefined }
    const signal = options.signal
    if (signal?.aborted === true) { throw signal.reason }
    return new Promise<B | undefined>((resolve, reject) => {
      const list = this.waiters.get(key) ?? []
      const w: Waiter<B> = { resolve }
      list.push(w)
      this.waiters.set(key, list)
      signal?.addEventListener('abort', () => {
        const l = this.waiters.get(key)
        if (l !== undefined) { this.waiters.set(key, l.filter(x => x !== w)) }
        reject(signal.reason)
      }, { once: true })
    })
  }

  /** Pending `subscribeBlock` calls for `digest`. */
  waiting (digest: Uint8Array): number {
    return this.waiters.get(digestKey(digest))?.length ?? 0
  }

  async getFinalizedBlock (height: number): Promise<B | undefined> {
    return this.finalizedByHeight.get(height)
  }

  async getProcessedHeight (): Promise<number | undefined> {
    return this.processed
  }

  disseminate (block: B): void {
    this.disseminated.push(block)
    this.put(block)
  }

  prune (height: number): void {
    this.pruned.push(height)
  }

  attach (reporter: FinalizedReporter<B>): void {
    this.reporter = reporter
    this.pump()
  }

  /** Finalize blocks: store them and deliver them in order, respecting the ack window. */
  finalize (...blocks: B[]): void {
    for (const b of blocks) {
      this.store(b)
      this.queue.push(b)
    }
    this.pump()
  }

  private pump (): void {
    while (this.reporter !== undefined && !this.stopped && this.inflight < this.deliveryWindow && this.queue.length > 0) {
      const b = this.queue.shift() as B
      this.inflight++
      this.delivered.push(b.height)
      this.acks.set(b.height, 'pending')
      this.reporter.finalized(b, this.ackFor(b.height))
    }
  }

  private ackFor (height: number): Acknowledgement {
    let done = false
    return {
      acknowledge: () => {
        if (done) { throw new Error(`ack of height ${height} released twice`) }
        done = true
        this.acks.set(height, 'acked')
        this.processed = Math.max(this.processed ?? 0, height)
        this.inflight--
        this.notifyAcks()
        this.pump()
      },
      cancel: () => {
        if (done) { return }
        done = true
        this.acks.set(height, 'cancelled')
        this.inflight--
        this.stopped = true
        this.notifyAcks()
      }
    }
  }

  private notifyAcks (): void {
    for (const w of this.ackWaiters.splice(0)) { w() }
  }

  /** Resolves once the ack of `height` is no longer pending. */
  async ackOutcome (height: number): Promise<AckState> {
    for (;;) {
      const s = this.acks.get(height)
      if (s !== undefined && s !== 'pending') { return s }
      await new Promise<void>(resolve => { this.ackWaiters.push(resolve) })
    }
  }

  /** Blocks queued but not delivered yet. */
  get queued (): number {
    return this.queue.length
  }
}
