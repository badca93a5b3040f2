/**
 * The finalized block store ("marshal", commonware `consensus/src/marshal`): it turns
 * finalization certificates into an ordered stream of finalized blocks for
 * the stateful manager, and serves blocks by digest.
 *
 * - Finalized blocks are delivered in strictly increasing, gap-free height
 * order, each only after it is durably stored, at least once across
 * restarts; at most `maxPendingAcks` are unacknowledged at a time.
 * - Acknowledgements are processed in order; each advances the processed
 * height, which is persisted once per drained run of acks. A cancelled
 * acknowledgement stops delivery (the consumer shut down); redelivery
 * happens after a restart, from `processed + 1`.
 * - A certificate at height `T` finalizes the block it names and, through
 * parent links, every ancestor: missing ancestors are fetched (by height
 * range, verified top-down against the parent digests, else by digest), so
 * gaps fill without a certificate per height.
 * - A start floor (a verified finalization) makes marshal begin at the
 * floor's block (`processed = height - 1`) unless durable progress is
 * already at or past it.
 * - Certificates whose block is missing cost bounded work however many
 * arrive while peers cannot serve: they wait in a table of at most
 * `maxPendingFinalizations` (the lowest round is dropped first), and only
 * the highest-round one is fetched by digest — one fetch loop in all, and
 * none while a gap fill runs below a higher finalized round. The others
 * name ancestors of that block, so the gap fill reaches them through parent
 * links and stores each with its certificate; one whose block arrives by any
 * route (gossip, a fetch) is finalized then. A dropped certificate's block
 * is still finalized (and delivered) through a descendant, only without its
 * certificate, like a height simplex finalized indirectly. A certificate at
 * or below the processed round whose block is gone (pruned) is ignored: its
 * height was delivered already.
 */

import { setMaxListeners } from '@libp2p/interface'
import { hex } from '../codec/index.ts'
import { linked } from '../net/signals.ts'
import { MarshalError, compareRounds } from './types.ts'
import type { BlockStore } from './store.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock, Round } from './types.ts'
import type { FinalizedReporter } from '../chain/index.ts'
import type { Logger } from '@libp2p/interface'

export type { Acknowledgement, FinalizedReporter } from '../chain/index.ts'

/** Fetches data from peers. Results carry a `feedback` so bad peers can be blamed. */
export interface BlockFetcher {
  /** The encoded block with `digest` (keeps trying peers until `signal` aborts). */
  fetchBlock(digest: Uint8Array, options: { height?: number, signal: AbortSignal }): Promise<{ bytes: Uint8Array, feedback?(valid: boolean): void }>
  /** Encoded finalized blocks `[from, to]` (newest last), each with its certificate if the peer has one. */
  fetchFinalized(from: number, to: number, options: { signal: AbortSignal }): Promise<{ blocks: Array<{ block: Uint8Array, finalization?: Uint8Array }>, feedback?(valid: boolean): void }>
}

export type MarshalStart<B, F> = { genesis: B } | { floor: F }

/** How far above the finalized tip a gossiped block may be (`Marshal.admitBlock`). */
export interface GossipLimits {
  /** Heights above the tip beyond which every block is ignored. */
  maxBlocksAhead: number
  /** Heights above the tip beyond which a block linking to nothing known is ignored. */
  maxUnlinkedAhead: number
}

/** The gossip window's defaults: 64 heights, unlinked blocks within 4. */
export const GOSSIP_LIMITS: GossipLimits = { maxBlocksAhead: 64, maxUnlinkedAhead: 4 }

export interface MarshalOptions<B extends MarshalBlock, F> {
  store: BlockStore<B, F>
  codec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  fetcher?: BlockFetcher
  /** Delivered but unacknowledged blocks (default 16). */
  maxPendingAcks?: number
  /** Finalized blocks fetched per range request when filling gaps (default 64). */
  backfillBatch?: number
  /** How long one range request for missing finalized blocks may take before falling back to fetching by digest (default 3000 ms). */
  rangeTimeoutMs?: number
  /** Certificates kept while their block is missing; beyond it the lowest round is dropped (default 64). */
  maxPendingFinalizations?: number
  /** Called to broadcast a block this node disseminates (e.g. gossipsub). */
  broadcast?(bytes: Uint8Array): void
  log?: Logger
}

interface Waiter<B> {
  resolve(b: B | undefined): void
}

/** A verified certificate whose block is not stored yet. */
interface PendingFinalization<F> {
  cert: F
  round: Round
  digest: Uint8Array
  /** settles the `finalized` calls waiting on this certificate */
  done: Promise<void>
  settle(err?: unknown): void
}

export class Marshal<B extends MarshalBlock, F> {
  readonly maxPendingAcks: number
  private readonly store: BlockStore<B, F>
  private readonly codec: BlockCodec<B>
  private readonly scheme: FinalizationScheme<F>
  private readonly fetcher?: BlockFetcher
  private readonly backfillBatch: number
  private readonly rangeTimeoutMs: number
  private readonly maxPendingFinalizations: number
  private readonly broadcast?: (bytes: Uint8Array) => void
  private readonly log?: Logger
  private reporter: FinalizedReporter<B> | undefined
  private processed: number | undefined
  private processedRound: Round = { epoch: 0, view: 0 }
  /** heights delivered and not yet released, in order, with their ack state */
  private readonly delivered: Array<{ height: number, round: Round, acked: boolean }> = []
  /** highest height such that every height from the delivery cursor up is finalized locally */
  private contiguous = -1
  /** the highest certified finalized height seen */
  private tipHeight = -1
  /** the highest round of a certificate stored with its block */
  private tipRound: Round | undefined
  private nextDelivery = 0
  private stopped = false
  private readonly abort = new AbortController()
  private readonly waiters = new Map<string, Array<Waiter<B>>>()
  /** certificates waiting for their block, by block digest (hex) */
  private readonly pending = new Map<string, PendingFinalization<F>>()
  /** the one pending certificate whose block is being fetched */
  private active: { key: string, stop: AbortController } | undefined
  private filling: Promise<void> | undefined
  private persisting: Promise<void> = Promise.resolve()
  private pumping = false

  constructor (options: MarshalOptions<B, F>) {
    this.store = options.store
    this.codec = options.codec
    this.scheme = options.scheme
    this.fetcher = options.fetcher
    this.maxPendingAcks = Math.max(1, options.maxPendingAcks ?? 16)
    this.backfillBatch = Math.max(1, options.backfillBatch ?? 64)
    this.rangeTimeoutMs = options.rangeTimeoutMs ?? 3000
    this.maxPendingFinalizations = Math.max(1, options.maxPendingFinalizations ?? 64)
    this.broadcast = options.broadcast
    this.log = options.log
    // the parent of every block subscription and range fetch, each detached
    // when it settles (test/marshal/subscribe.spec.ts): many waiting at once
    // (a node catching up, its peers slow) is load, not a listener leak
    setMaxListeners(Infinity, this.abort.signal)
  }

  /**
   * Open from storage and apply the start: store the genesis block, or
   * install a floor. Returns the durable processed height and round.
   */
  async start (start: MarshalStart<B, F>): Promise<{ processedHeight: number | undefined, round: Round }> {
    const p = await this.store.getProcessed()
    this.processed = p.height
    this.processedRound = p.round
    if ('genesis' in start) {
      if (start.genesis.height !== 0) { throw new MarshalError('InvalidFinalization', 'the genesis block must be at height 0') }
      if (await this.store.getFinalizedDigest(0) === undefined) { await this.store.setFinalized(start.genesis) }
    } else {
      await this.installFloor(start.floor)
    }
    this.nextDelivery = this.processed === undefined ? 0 : this.processed + 1
    this.contiguous = this.nextDelivery - 1
    this.tipHeight = Math.max(this.tipHeight, (await this.store.latestFinalizedHeight()) ?? -1)
    await this.advanceContiguous()
    return { processedHeight: this.processed, round: this.processedRound }
  }

  private async installFloor (floor: F): Promise<void> {
    if (!this.scheme.verify(floor)) { throw new MarshalError('InvalidFinalization', 'the start floor does not verify') }
    const round = this.scheme.round(floor)
    if (this.processed !== undefined && compareRounds(round, this.processedRound) <= 0) {
      this.log?.('ignoring floor at %o: processed progress is at %o', round, this.processedRound)
      return
    }
    const block = await this.getOrFetch(this.scheme.payload(floor))
    if (block === undefined) { throw new MarshalError('Unavailable', 'the floor block could not be obtained') }
    await this.store.setFinalized(block, floor)
    if (this.processed === undefined || block.height - 1 > this.processed) {
      this.processed = block.height - 1
      this.processedRound = round
      await this.store.setProcessed(this.processed, round)
    }
    this.tipHeight = Math.max(this.tipHeight, block.height)
    this.raiseTipRound(round)
  }

  /** Start delivering finalized blocks to `reporter`. */
  attach (reporter: FinalizedReporter<B>): void {
    this.reporter = reporter
    void this.pump()
  }

  stop (): void {
    this.stopped = true
    this.abort.abort(new MarshalError('Stopped', 'marshal stopped'))
    for (const list of this.waiters.values()) {
      for (const w of list) { w.resolve(undefined) }
    }
    this.waiters.clear()
    for (const p of this.pending.values()) { p.settle() }
    this.pending.clear()
    this.active = undefined
  }

  // ---- inputs -------------------------------------------------------------------

  /**
   * A finalization from consensus (or a peer): verified, stored, and its
   * block and ancestors filled in. Resolves once its block is finalized
   * locally, or the certificate is dropped from the pending table, or
   * marshal stops.
   */
  async finalized (cert: F): Promise<void> {
    if (this.stopped) { return }
    if (!this.scheme.verify(cert)) { throw new MarshalError('InvalidFinalization', 'finalization does not verify') }
    const digest = this.scheme.payload(cert)
    const block = await this.store.getBlock(digest)
    if (block !== undefined) {
      await this.finalizeBlock(block, cert)
      return
    }
    if (this.stopped || compareRounds(this.scheme.round(cert), this.processedRound) <= 0) { return }
    const k = hex(digest)
    let p = this.pending.get(k)
    if (p === undefined) {
      let settle: (err?: unknown) => void = () => {}
      const done = new Promise<void>((resolve, reject) => {
        settle = err => { if (err === undefined) { resolve() } else { reject(err) } }
      })
      p = { cert, round: this.scheme.round(cert), digest, done, settle }
      this.pending.set(k, p)
      this.trimPending()
      this.elect()
      // the block may have been stored between the lookup above and parking the certificate
      this.store.getBlock(digest).then(b => { if (b !== undefined) { this.arrived(b) } }, () => {})
    }
    await p.done
  }

  private async finalizeBlock (block: B, cert: F): Promise<void> {
    const existing = await this.store.getFinalizedDigest(block.height)
    if (existing !== undefined && hex(existing) !== hex(block.digest)) {
      throw new MarshalError('ConflictingFinalization', `two finalized blocks at height ${block.height}`)
    }
    await this.store.setFinalized(block, cert)
    this.tipHeight = Math.max(this.tipHeight, block.height)
    this.raiseTipRound(this.scheme.round(cert))
    this.kickFill()
  }

  private raiseTipRound (round: Round): void {
    if (this.tipRound === undefined || compareRounds(round, this.tipRound) > 0) { this.tipRound = round }
  }

  /** Store `block` as finalized by the gap fill, with its certificate if one came or is pending. */
  private async fillFinalized (block: B, cert?: F): Promise<void> {
    const p = this.claim(block.digest)
    await this.store.setFinalized(block, cert ?? p?.cert)
    p?.settle()
  }

  /** Remove the pending certificate for `digest` (stopping its fetch), if any. */
  private claim (digest: Uint8Array): PendingFinalization<F> | undefined {
    const k = hex(digest)
    const p = this.pending.get(k)
    if (p === undefined) { return undefined }
    this.pending.delete(k)
    if (this.active?.key === k) {
      this.active.stop.abort()
      this.active = undefined
    }
    return p
  }

  /** A stored block: finalize it if a pending certificate names it. */
  private arrived (block: B): void {
    const p = this.claim(block.digest)
    if (p === undefined) { return }
    this.finalizeBlock(block, p.cert).then(() => { p.settle() }, err => { p.settle(err) })
    this.elect()
  }

  /** Drop the lowest-round pending certificates beyond the cap. */
  private trimPending (): void {
    while (this.pending.size > this.maxPendingFinalizations) {
      let lowest: PendingFinalization<F> | undefined
      for (const p of this.pending.values()) {
        if (lowest === undefined || compareRounds(p.round, lowest.round) < 0) { lowest = p }
      }
      const p = this.claim((lowest as PendingFinalization<F>).digest) as PendingFinalization<F>
      p.settle()
    }
  }

  /**
   * Fetch the block of the highest-round pending certificate, and only it;
   * nothing while the gap fill runs and that round is below a finalized
   * one (the block is an ancestor the fill reaches).
   */
  private elect (): void {
    if (this.stopped || this.fetcher === undefined) { return }
    let best: PendingFinalization<F> | undefined
    for (const p of this.pending.values()) {
      if (best === undefined || compareRounds(p.round, best.round) > 0) { best = p }
    }
    if (best !== undefined && this.filling !== undefined && this.tipRound !== undefined && compareRounds(best.round, this.tipRound) < 0) { best = undefined }
    const k = best === undefined ? undefined : hex(best.digest)
    if (this.active?.key === k) { return }
    this.active?.stop.abort()
    this.active = undefined
    if (best === undefined || k === undefined) { return }
    const stop = new AbortController()
    const active = { key: k, stop }
    this.active = active
    const link = linked([this.abort.signal, stop.signal])
    this.fetchByDigest(best.digest, undefined, link.signal).then(b => {
      if (b !== undefined) { this.wake(b) }
    }, () => {
      // peers failed outright: the next certificate elects again
      if (this.active === active) { this.active = undefined }
    }).finally(() => { link.dispose() })
  }

  /**
   * Judge a gossiped block before it is relayed or stored (the blocks
   * topic's validator; the simulator runs it too): 'reject' for an oversized
   * or undecodable message (the sender is at fault); 'ignore' for a block
   * outside the plausible height window — at or below the finalized tip,
   * more than `maxBlocksAhead` above it, or any block before the tip is
   * known — and for one more than `maxUnlinkedAhead` above the tip that
   * links to nothing known: its parent is not stored here and nothing here
   * waits for it (a waiter means a verified proposal or certificate named
   * it). Near the tip an unlinked block is accepted: gossip may deliver a
   * child before its parent. An ignored block is still fetched by digest
   * when consensus needs it. An accepted block comes back decoded, for
   * `storeBlock`.
   */
  async admitBlock (bytes: Uint8Array, limits: GossipLimits = GOSSIP_LIMITS): Promise<{ admission: 'accept', block: B } | { admission: 'ignore' | 'reject' }> {
    if (bytes.length > this.codec.maxBytes) { return { admission: 'reject' } }
    let block: B
    try {
      block = this.codec.decode(bytes)
    } catch {
      return { admission: 'reject' }
    }
    const tip = this.tipHeight
    if (tip < 0 || block.height <= tip || block.height > tip + limits.maxBlocksAhead) { return { admission: 'ignore' } }
    if (block.height > tip + limits.maxUnlinkedAhead && !this.awaits(block.digest) && !(await this.hasBlock(block.parent))) { return { admission: 'ignore' } }
    return { admission: 'accept', block }
  }

  /** A block received from the network (e.g. gossip); ignored if it does not decode. */
  async receiveBlock (bytes: Uint8Array): Promise<B | undefined> {
    let block: B
    try {
      block = this.codec.decode(bytes)
    } catch {
      return undefined
    }
    await this.storeBlock(block)
    return block
  }

  /** Store a decoded block from the network (already admitted) and hand it to whoever waits for it. */
  async storeBlock (block: B): Promise<void> {
    await this.store.putBlock(block)
    this.wake(block)
  }

  /** Highest certified finalized height known here (-1 before `start`). */
  get finalizedTip (): number {
    return this.tipHeight
  }

  /** Store a block this node proposed and broadcast it. */
  async disseminate (block: B): Promise<void> {
    await this.store.putBlock(block)
    this.wake(block)
    this.broadcast?.(this.codec.encode(block))
  }

  private wake (block: B): void {
    this.arrived(block)
    const k = hex(block.digest)
    const list = this.waiters.get(k)
    if (list === undefined) { return }
    this.waiters.delete(k)
    for (const w of list) { w.resolve(block) }
  }

  // ---- lookups --------------------------------------------------------------------

  /**
   * The block with `digest`: local, else fetched from peers; `undefined` once
   * stopped. The network fetch ends as soon as the block arrives by any route
   * or the caller leaves; listeners on the marshal's long-lived stop signal
   * are detached when the call settles (no `AbortSignal.any`, which on
   * Node 20 retains every derived signal as long as the parent lives).
   */
  async subscribeBlock (digest: Uint8Array, options: { height?: number, signal?: AbortSignal } = {}): Promise<B | undefined> {
    const local = await this.store.getBlock(digest)
    if (local !== undefined) { return local }
    if (this.stopped) { return undefined }
    const finished = new AbortController()
    const link = linked(options.signal !== undefined ? [options.signal, this.abort.signal, finished.signal] : [this.abort.signal, finished.signal])
    const signal = link.signal
    return new Promise<B | undefined>((resolve, reject) => {
      const k = hex(digest)
      let settled = false
      const finish = (): void => {
        settled = true
        signal.removeEventListener('abort', onAbort)
        // stop the network fetch (through the link), then detach the link from its parents
        finished.abort()
        link.dispose()
      }
      const waiter: Waiter<B> = {
        resolve: b => {
          if (settled) { return }
          finish()
          resolve(b)
        }
      }
      const list = this.waiters.get(k) ?? []
      list.push(waiter)
      this.waiters.set(k, list)
      const onAbort = (): void => {
        if (settled) { return }
        finish()
        const l = this.waiters.get(k)?.filter(w => w !== waiter) ?? []
        if (l.length === 0) { this.waiters.delete(k) } else { this.waiters.set(k, l) }
        if (this.stopped) { resolve(undefined) } else { reject(options.signal?.reason ?? new Error('aborted')) }
      }
      signal.addEventListener('abort', onAbort, { once: true })
      if (signal.aborted) {
        onAbort()
        return
      }
      // the block may have been stored between the lookup above and registering the waiter
      this.store.getBlock(digest).then(b => { if (b !== undefined) { this.wake(b) } }, () => {})
      if (this.fetcher !== undefined) {
        this.fetchByDigest(digest, options.height, signal).then(b => {
          if (b !== undefined) { this.wake(b) }
        }, () => {})
      }
    })
  }

  private async getOrFetch (digest: Uint8Array, height?: number): Promise<B | undefined> {
    return (await this.store.getBlock(digest)) ?? this.subscribeBlock(digest, { height })
  }

  /** Fetch and validate a block by digest from peers (blaming a peer that sends other bytes). */
  private async fetchByDigest (digest: Uint8Array, height: number | undefined, signal: AbortSignal): Promise<B | undefined> {
    const fetcher = this.fetcher
    if (fetcher === undefined) { return undefined }
    for (;;) {
      signal.throwIfAborted()
      const { bytes, feedback } = await fetcher.fetchBlock(digest, { height, signal })
      let block: B | undefined
      try {
        block = this.codec.decode(bytes)
      } catch {
        block = undefined
      }
      if (block !== undefined && hex(block.digest) === hex(digest)) {
        feedback?.(true)
        await this.store.putBlock(block)
        return block
      }
      feedback?.(false)
    }
  }

  /** Whether someone waits for the block with `digest` (`subscribeBlock`: consensus verifying a proposal, a certificate's block). */
  awaits (digest: Uint8Array): boolean {
    return this.waiters.has(hex(digest))
  }

  /** Whether the block with `digest` is stored locally (no network, no decode). */
  async hasBlock (digest: Uint8Array): Promise<boolean> {
    return this.store.hasBlock(digest)
  }

  /** The block with `digest` if it is stored locally (no network; finalized or not). */
  async getBlock (digest: Uint8Array): Promise<B | undefined> {
    return this.store.getBlock(digest)
  }

  async getFinalizedBlock (height: number): Promise<B | undefined> {
    return this.store.getFinalizedBlock(height)
  }

  async getFinalization (height: number): Promise<F | undefined> {
    return this.store.getFinalization(height)
  }

  /** The newest stored finalization and its height. */
  async latestFinalization (): Promise<{ height: number, finalization: F } | undefined> {
    const h = await this.store.latestFinalizationHeight()
    if (h === undefined) { return undefined }
    const f = await this.store.getFinalization(h)
    return f === undefined ? undefined : { height: h, finalization: f }
  }

  async getProcessedHeight (): Promise<number | undefined> {
    return (await this.store.getProcessed()).height
  }

  /** Drop stored blocks below `height` (never at or above the processed height). */
  async prune (height: number): Promise<void> {
    const limit = this.processed === undefined ? 0 : this.processed
    await this.store.pruneBelow(Math.min(height, limit))
  }

  // ---- gap filling ------------------------------------------------------------------

  private kickFill (): void {
    if (this.filling !== undefined) { return }
    this.filling = this.fill().catch(err => {
      if (!this.stopped) { this.log?.error('filling finalized blocks failed: %e', err) }
    }).finally(() => {
      this.filling = undefined
      if (this.contiguous < this.tipHeight && !this.stopped) {
        this.kickFill()
      } else {
        // certificates the fill did not reach (their block came some other way, or never will by parent links)
        for (const p of this.pending.values()) {
          this.store.getBlock(p.digest).then(b => { if (b !== undefined) { this.arrived(b) } }, () => {})
        }
        this.elect()
      }
    })
  }

  /** Make every height between the delivery cursor and the certified tip finalized locally. */
  private async fill (): Promise<void> {
    for (;;) {
      await this.advanceContiguous()
      if (this.stopped || this.contiguous >= this.tipHeight) { return }
      // the lowest finalized height above the gap anchors the fill
      let above = this.contiguous + 1
      while (above <= this.tipHeight && await this.store.getFinalizedDigest(above) === undefined) { above++ }
      if (above > this.tipHeight) { return }
      const top = await this.store.getFinalizedBlock(above) as B
      const from = Math.max(this.contiguous + 1, above - this.backfillBatch)
      await this.fillBelow(top, from)
    }
  }

  /** Finalize heights `[from, top.height)` by walking parent links down from `top`. */
  private async fillBelow (top: B, from: number): Promise<void> {
    let expected = top.parent
    let h = top.height - 1
    // blocks already here (notarized, gossiped, proposed) need no network: a
    // height finalized only through a descendant's certificate has no
    // finalization anywhere, so peers cannot serve it by height
    while (h >= from && !this.stopped) {
      if (await this.store.getFinalizedDigest(h) !== undefined) { return }
      const local = await this.store.getBlock(expected)
      if (local === undefined || local.height !== h) { break }
      await this.fillFinalized(local)
      expected = local.parent
      h--
    }
    if (this.fetcher !== undefined && h >= from) {
      // one range request, verified top-down against the parent digests;
      // bounded, because peers may lack these heights as much as we do
      const timer = new AbortController()
      const link = linked([this.abort.signal, timer.signal])
      const t = setTimeout(() => { timer.abort() }, this.rangeTimeoutMs)
      const got = await this.fetcher.fetchFinalized(from, h, { signal: link.signal }).catch(() => undefined).finally(() => {
        clearTimeout(t)
        link.dispose()
      })
      if (got !== undefined) {
        let ok = got.blocks.length > 0
        for (let i = got.blocks.length - 1; i >= 0 && h >= from; i--) {
          const block = this.decodeOrUndefined(got.blocks[i].block)
          if (block === undefined || block.height !== h || hex(block.digest) !== hex(expected)) {
            ok = false
            break
          }
          const certBytes = got.blocks[i].finalization
          const cert = certBytes === undefined ? undefined : this.decodeCertOrUndefined(certBytes)
          if (certBytes !== undefined && (cert === undefined || !this.scheme.verify(cert) || hex(this.scheme.payload(cert)) !== hex(block.digest))) {
            ok = false
            break
          }
          await this.fillFinalized(block, cert)
          expected = block.parent
          h--
        }
        got.feedback?.(ok)
      }
    }
    // whatever is still missing: by digest, one parent at a time
    while (h >= from && !this.stopped) {
      const known = await this.store.getFinalizedDigest(h)
      if (known !== undefined) { return }
      const block = await this.getOrFetch(expected, h)
      if (block === undefined) { return }
      if (block.height !== h) { throw new MarshalError('InvalidFinalization', `block ${hex(expected)} claims height ${block.height}, expected ${h}`) }
      await this.fillFinalized(block)
      expected = block.parent
      h--
    }
  }

  private decodeOrUndefined (bytes: Uint8Array): B | undefined {
    try {
      return this.codec.decode(bytes)
    } catch {
      return undefined
    }
  }

  private decodeCertOrUndefined (bytes: Uint8Array): F | undefined {
    try {
      return this.scheme.decode(bytes)
    } catch {
      return undefined
    }
  }

  private async advanceContiguous (): Promise<void> {
    while (await this.store.getFinalizedDigest(this.contiguous + 1) !== undefined) { this.contiguous++ }
    void this.pump()
  }

  // ---- delivery ----------------------------------------------------------------------

  private async pump (): Promise<void> {
    if (this.pumping || this.reporter === undefined) { return }
    this.pumping = true
    try {
      while (!this.stopped && this.delivered.length < this.maxPendingAcks && this.nextDelivery <= this.contiguous) {
        const height = this.nextDelivery
        const block = await this.store.getFinalizedBlock(height)
        if (block === undefined) { break }
        const cert = await this.store.getFinalization(height)
        const round = cert !== undefined ? this.scheme.round(cert) : this.processedRound
        const entry = { height, round, acked: false }
        this.delivered.push(entry)
        this.nextDelivery++
        let done = false
        this.reporter.finalized(block, {
          acknowledge: () => {
            if (done) { return }
            done = true
            entry.acked = true
            this.release()
          },
          cancel: () => {
            if (done) { return }
            done = true
            this.stopped = true
          }
        })
      }
    } finally {
      this.pumping = false
    }
  }

  /** Release acknowledged blocks in order and persist the new processed height once. */
  private release (): void {
    let advanced = false
    while (this.delivered.length > 0 && this.delivered[0].acked) {
      const e = this.delivered.shift() as { height: number, round: Round }
      this.processed = e.height
      if (compareRounds(e.round, this.processedRound) > 0) { this.processedRound = e.round }
      advanced = true
    }
    if (!advanced) { return }
    const height = this.processed as number
    const round = this.processedRound
    this.persisting = this.persisting.then(async () => { await this.store.setProcessed(height, round) }).catch(err => {
      this.log?.error('persisting the processed height failed: %e', err)
    })
    void this.persisting.then(async () => { await this.pump() })
  }

  /** Resolves once every acknowledged height is durably recorded. */
  async flush (): Promise<void> {
    await this.persisting
  }
}
