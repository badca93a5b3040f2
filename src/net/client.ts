/**
 * The fetching loop every request/response client of a node runs (the
 * resolvers' network sources, the marshal's fetcher; commonware
 * `resolver/src/p2p`): ask peers one at a time until one answers with data.
 *
 * - A fresh request goes to the peer with the best latency score; after a
 * failure (no data, timeout, reset, dial failure, protocol not spoken) the
 * peer's score is penalised by the timeout and the retry goes, after an
 * exponential back-off, to a shuffled other peer. With no usable peer it
 * waits for one. It never gives up on a transient failure: only the
 * caller's signal (the caller gave up, the service stopped) ends it early.
 * - A peer whose answer breaks the protocol (the protocol's parser throws:
 * undecodable, wrong answer, oversized frame) is blocked at once and the
 * request retried elsewhere; so is a peer whose data the caller later
 * rejects (`verdict(false)`). A verdict never given blames no one.
 * - A peer that timed out (on an open stream) or had no data for a request
 * another peer then answered earns a strike in the peer book; enough strikes
 * in a row block it for a bounded time (the strike rule, `src/net/peers.ts`,
 * docs/PROTOCOLS.md). An unreachable peer (no stream) earns none. A peer
 * that timed out on a stream it accepted is asked that request again in the
 * background (`src/net/recheck.ts`): ranked last by its score it would
 * otherwise rarely be asked again, and never reach the strike limit.
 * - Per peer, at most `maxConcurrent` requests are outstanding and a token
 * bucket bounds the request rate (the service's outbound `PeerLimiter`), so
 * a client stays within what servers admit; re-asks take the same slots.
 *
 * The protocol supplies only the request bytes and the response parser.
 */

import { exchange } from './exchange.ts'
import { StrikeTally } from './peers.ts'
import { ProtocolViolation } from './protocol.ts'
import { sleep } from './signals.ts'
import type { PeerLimiter } from './limits.ts'
import type { ServiceMetrics } from './metrics.ts'
import type { Notifier, PeerBook } from './peers.ts'
import type { Parsed } from './protocol.ts'
import type { PeerProvider } from './providers.ts'
import type { RecheckOutcome, Rechecks } from './recheck.ts'
import type { Logger, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** What a client shares with its service (built by `RequestService`). */
export interface ClientContext {
  self: PeerId
  connectionManager: ConnectionManager
  book: PeerBook
  outbound: PeerLimiter
  /** Notified whenever an outbound slot is released. */
  slots: Notifier
  metrics: ServiceMetrics
  log: Logger
  /** Aborted when the service stops; undefined while it is not running. */
  shutdown(): AbortSignal | undefined
  block(peer: PeerId, reason: string): void
  /** The strike rule blocked `peer` for `ms` (`src/net/peers.ts`). */
  struck(peer: PeerId, reason: string, ms: number): void
  /** Where stallers are asked again (none: they are not). */
  rechecks?: Rechecks<PeerId>
  runOnLimitedConnection: boolean
  pollInterval: number
}

export interface ClientOptions {
  protocol: string
  provider: PeerProvider
  /** Per-request deadline (dial, write, read) in ms. */
  timeout: number
  /** First retry delay (ms), doubling per retry up to `maxRetryDelay`. */
  retryDelay: number
  maxRetryDelay: number
  /** Largest response frame body accepted. */
  maxResponseBytes: number
}

/**
 * The outcome of asking one peer. `undecodable` is a failure the protocol
 * does not (yet) blame on the peer; `invalid` blocks the peer.
 */
export type Attempt<T> =
  | { type: 'data', value: T, latency: number }
  | { type: 'no-data' | 'timeout' | 'failure' | 'aborted' | 'unsupported', reason?: string, unreachable?: boolean }
  | { type: 'invalid' | 'undecodable', reason: string }

/** A response body that the protocol does not blame on the peer (yet): retried elsewhere, nobody blocked. */
export class Undecodable extends Error {
  readonly name = 'Undecodable'
}

/** One request as the loop sees it. */
export interface Ask<T> {
  /** The request frame body. */
  bytes: Uint8Array
  /** Names the request in logs and block reasons. */
  key: string
  /**
   * Read a response body. Throwing blocks the peer (`invalid`), except
   * `Undecodable` (`undecodable`, nobody blocked).
   */
  parse(body: Uint8Array, peer: PeerId): Parsed<T>
  /** Peers not to ask. */
  skip?: ReadonlySet<string>
  /** Told each failed attempt after it is accounted; true ends the loop (the caller has settled the request). */
  failed?(peer: PeerId, attempt: Attempt<T>, signal: AbortSignal): Promise<boolean>
  /**
   * For protocols whose data is verified after `parse` (by the caller): judge data a suspect
   * sent when asked this request again (`src/net/recheck.ts`) against what the caller accepted
   * from another peer. True ends the suspicion; false blocks the suspect (its answer is false);
   * undefined (nothing accepted to judge by, yet) counts as saying nothing. Without it, any data
   * answer ends the suspicion, which is right when `parse` itself verifies.
   */
  judge?(value: T): boolean | undefined
}

/** Data from a peer, and the round trip that fetched it. */
export interface Answer<T> {
  value: T
  peer: PeerId
  latency: number
}

export class RequestClient {
  readonly ctx: ClientContext
  private readonly options: ClientOptions

  constructor (ctx: ClientContext, options: ClientOptions) {
    this.ctx = ctx
    this.options = options
  }

  get protocol (): string {
    return this.options.protocol
  }

  get provider (): PeerProvider {
    return this.options.provider
  }

  get timeout (): number {
    return this.options.timeout
  }

  /** Replace the peers asked (clients built with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    if (this.options.provider.set === undefined) { throw new TypeError('this client discovers its peers; it has no fixed list to replace') }
    this.options.provider.set(peers)
  }

  close (): void {
    this.options.provider.close()
  }

  /** Candidate peers: the provider's, without this node and blocked peers (and `skip`). */
  candidates (skip?: ReadonlySet<string>): PeerId[] {
    const { book } = this.ctx
    const self = this.ctx.self.toString()
    return this.options.provider.peers().filter(p => {
      const id = p.toString()
      return id !== self && !book.isBlocked(id) && skip?.has(id) !== true
    })
  }

  /**
   * The caller's judgement of data `peer` sent: valid records the round trip
   * in the peer's score (when `latency` is given), invalid blocks the peer.
   */
  verdict (peer: PeerId, valid: boolean, latency: number | undefined, reason: string): void {
    this.ctx.metrics.verdict(valid)
    if (!valid) {
      this.ctx.block(peer, reason)
    } else if (latency !== undefined) {
      this.ctx.book.record(peer.toString(), latency)
    }
  }

  /** Ask peers until one answers with data; undefined once `signal` aborts or `failed` ends the loop. */
  async fetch<T> (ask: Ask<T>, signal: AbortSignal): Promise<Answer<T> | undefined> {
    let retry = 0
    let last: string | undefined
    const tally = new StrikeTally<PeerId>(this.ctx.book, ask.key)
    while (!signal.aborted) {
      const peer = await this.choosePeer(retry === 0, last, ask.skip, signal)
      if (peer === undefined) { return undefined }
      const result = await this.attempt(peer, ask, signal)
      if (result.type === 'data') {
        const rechecks = this.ctx.rechecks
        const stalled = rechecks === undefined ? undefined : (p: PeerId) => { rechecks.stalled(p, async s => this.reask(p, ask, s)) }
        for (const out of tally.answered(peer, stalled)) { this.ctx.struck(out.peer, out.reason, out.ms) }
        return { value: result.value, peer, latency: result.latency }
      }
      if (result.type === 'aborted') { return undefined }
      // reached, and had nothing: a strike if another peer answers (`src/net/peers.ts`)
      if (result.type === 'no-data' || (result.type === 'timeout' && result.unreachable !== true)) { tally.miss(peer, result.type) }
      if (ask.failed !== undefined && await ask.failed(peer, result, signal)) { return undefined }
      last = peer.toString()
      retry++
      await sleep(Math.min(this.options.maxRetryDelay, this.options.retryDelay * 2 ** Math.min(retry - 1, 20)), signal)
    }
    return undefined
  }

  /** Ask `peer` again for what another peer served it (`src/net/recheck.ts`), in an outbound slot; the answer is judged, not used. */
  private async reask (peer: PeerId, ask: Ask<unknown>, signal: AbortSignal): Promise<RecheckOutcome> {
    if (!this.ctx.outbound.tryAcquire(peer.toString()).ok) { return 'other' }
    const result = await this.attempt(peer, ask, signal)
    if (result.type === 'invalid') { return 'invalid' } // blocked as it was accounted
    if (result.type === 'data' && ask.judge !== undefined) {
      const ok = ask.judge(result.value)
      if (ok === undefined) { return 'other' }
      if (!ok) {
        this.verdict(peer, false, undefined, `its answer to ${ask.key}, asked again, contradicts the data another peer served`)
        return 'invalid'
      }
    }
    if (result.type === 'data' || result.type === 'no-data') { return result.type }
    return result.type === 'timeout' && result.unreachable !== true ? 'timeout' : 'other'
  }

  /** The next peer to ask (holding an outbound slot), or undefined once `signal` aborts. */
  private async choosePeer (fresh: boolean, last: string | undefined, skip: ReadonlySet<string> | undefined, signal: AbortSignal): Promise<PeerId | undefined> {
    const { book, outbound, slots, pollInterval } = this.ctx
    while (!signal.aborted) {
      const candidates = this.candidates(skip)
      if (candidates.length === 0) {
        await this.options.provider.changed(pollInterval, signal)
        continue
      }
      let wait = pollInterval
      for (const peer of book.order(candidates, fresh, last)) {
        const admit = outbound.tryAcquire(peer.toString())
        if (admit.ok) { return peer }
        if (admit.reason === 'rate') { wait = Math.min(wait, Math.max(1, admit.retryInMs)) }
      }
      await slots.wait(wait, signal)
    }
    return undefined
  }

  /** One request to `peer` (which holds an outbound slot, released here). */
  private async attempt<T> (peer: PeerId, ask: Ask<T>, signal: AbortSignal): Promise<Attempt<T>> {
    let result: Attempt<T>
    try {
      result = await this.exchangeWith(peer, ask, signal)
    } finally {
      this.ctx.outbound.release(peer.toString())
      this.ctx.slots.notify()
    }
    this.account(peer, ask, result)
    return result
  }

  private async exchangeWith<T> (peer: PeerId, ask: Ask<T>, signal: AbortSignal): Promise<Attempt<T>> {
    const r = await exchange(this.ctx.connectionManager, peer, this.options.protocol, ask.bytes, {
      signal,
      timeout: this.options.timeout,
      maxResponseBytes: this.options.maxResponseBytes,
      runOnLimitedConnection: this.ctx.runOnLimitedConnection,
      metrics: this.ctx.metrics
    })
    if (r.type !== 'frame') {
      if (r.type === 'oversized') { return { type: 'invalid', reason: `oversized response: ${r.reason ?? ''}` } }
      return { type: r.type, reason: r.reason, unreachable: r.unreachable }
    }
    try {
      const parsed = ask.parse(r.body, peer)
      return parsed.type === 'no-data' ? { type: 'no-data' } : { type: 'data', value: parsed.value, latency: r.latency }
    } catch (err) {
      if (err instanceof Undecodable) { return { type: 'undecodable', reason: err.message } }
      const reason = err instanceof ProtocolViolation ? err.message : `unparseable response: ${(err as Error)?.message}`
      return { type: 'invalid', reason }
    }
  }

  private account (peer: PeerId, ask: Ask<unknown>, result: Attempt<unknown>): void {
    const { metrics, book, log } = this.ctx
    switch (result.type) {
      case 'data':
        metrics.fetch('response', result.latency / 1000)
        return
      case 'aborted':
        metrics.fetch('aborted')
        return
      case 'invalid':
        metrics.fetch('invalid')
        this.ctx.block(peer, `${ask.key}: ${result.reason}`)
        return
      case 'undecodable':
        metrics.fetch('invalid')
        return
      case 'unsupported':
        this.options.provider.unsupported(peer)
        metrics.fetch('failure')
        book.record(peer.toString(), this.options.timeout)
        return
      default:
        metrics.fetch(result.type === 'no-data' ? 'no_data' : result.type)
        book.record(peer.toString(), this.options.timeout)
        log.trace('%s from %p for %s: %s', result.type, peer, ask.key, result.reason ?? '')
    }
  }
}
