/**
 * The fetching half of the marshal service: a `BlockFetcher` (the interface
 * `Marshal` fills gaps and resolves digests through) that asks peers over
 * `/<prefix>/<chain>/marshal/1.0.0`.
 *
 * - A fresh request goes to the peer with the best latency score; after a
 * failure (no data, timeout, reset, dial failure) the peer's score is
 * penalised by the timeout and the retry goes, after an exponential
 * back-off, to a shuffled other peer. With no usable peer it waits for one.
 * It never rejects on a transient failure: only the caller's signal or the
 * service stopping end a request (rejecting with `MarshalError('Stopped')`
 * or the signal's reason).
 * - A peer whose answer breaks the protocol (see `protocol.ts`: undecodable,
 * wrong digest, broken range, certificate that does not verify, oversized
 * frame) is blocked at once and the request retried elsewhere; so is a peer
 * whose data the caller rejects through `feedback(false)` (e.g. a range
 * that does not chain to the certified tip). Blocking is permanent for the
 * service's lifetime; a verdict never given blames no one.
 * - Per peer, at most `maxConcurrent` requests are outstanding and a token
 * bucket bounds the request rate.
 */

import { ProtocolViolation } from '../p2p/protocol.ts'
import { linked, sleep } from '../p2p/signals.ts'
import { exchange } from './exchange.ts'
import { encodeMarshalRequest, marshalRequestKey, parseBlockResponse, parseFinalizedResponse, parseLatestResponse } from './protocol.ts'
import { MarshalError } from './types.ts'
import type { BlockFetcher } from './marshal.ts'
import type { MarshalRequest, Parsed, RangeEntry } from './protocol.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { PeerProvider } from '../p2p/client.ts'
import type { PeerLimiter } from '../p2p/limits.ts'
import type { ResolverMetrics } from '../p2p/metrics.ts'
import type { Notifier, PeerBook } from '../p2p/peers.ts'
import type { Feedback } from '../sync/source.ts'
import type { Logger, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** What a client shares with its service. */
export interface MarshalClientContext {
  self: PeerId
  connectionManager: ConnectionManager
  book: PeerBook
  outbound: PeerLimiter
  /** Notified whenever an outbound slot is released. */
  slots: Notifier
  metrics: ResolverMetrics
  log: Logger
  /** Aborted when the service stops; undefined while it is not running. */
  shutdown(): AbortSignal | undefined
  block(peer: PeerId, reason: string): void
  runOnLimitedConnection: boolean
  pollInterval: number
}

export interface MarshalClientOptions<B extends MarshalBlock, F> {
  protocol: string
  codec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  provider: PeerProvider
  /** Per-request deadline (ms). */
  timeout: number
  /** First retry delay (ms), doubling per retry up to `maxRetryDelay`. */
  retryDelay: number
  maxRetryDelay: number
  /** Largest response frame accepted. */
  maxResponseBytes: number
  /** Largest range asked for in one request (longer ranges are cut to their top). */
  maxBlocksPerRequest: number
}

/** A fetched value and the verdict hook for it: `feedback(false)` blocks the peer that sent it. */
export interface Fetched<T> {
  value: T
  peer: PeerId
  feedback: Feedback
}

export interface LatestFinalization<F> {
  height: number
  finalization: F
  /** The certificate as received. */
  bytes: Uint8Array
}

type Attempt<T> =
  | { type: 'data', value: T, latency: number }
  | { type: 'no-data' | 'timeout' | 'failure' | 'invalid' | 'aborted' | 'unsupported', reason?: string }

export class MarshalClient<B extends MarshalBlock, F> implements BlockFetcher {
  private readonly ctx: MarshalClientContext
  private readonly options: MarshalClientOptions<B, F>

  constructor (ctx: MarshalClientContext, options: MarshalClientOptions<B, F>) {
    this.ctx = ctx
    this.options = options
  }

  get protocol (): string {
    return this.options.protocol
  }

  /** Replace the peers asked (clients built with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    if (this.options.provider.set === undefined) { throw new TypeError('this client discovers its peers; it has no fixed list to replace') }
    this.options.provider.set(peers)
  }

  close (): void {
    this.options.provider.close()
  }

  async fetchBlock (digest: Uint8Array, options: { height?: number, signal: AbortSignal }): Promise<{ bytes: Uint8Array, feedback?(valid: boolean): void }> {
    const got = await this.request({ type: 'block', digest }, body => parseBlockResponse(body, digest, this.options.codec), options.signal)
    return { bytes: got.value, feedback: got.feedback }
  }

  async fetchFinalized (from: number, to: number, options: { signal: AbortSignal }): Promise<{ blocks: RangeEntry[], feedback?(valid: boolean): void }> {
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from <= to)) {
      throw new RangeError(`invalid height range [${from}, ${to}]`)
    }
    const low = Math.max(from, to - this.options.maxBlocksPerRequest + 1)
    const got = await this.request({ type: 'finalized', from: low, to },
      body => parseFinalizedResponse(body, low, to, this.options.codec, this.options.scheme), options.signal)
    return { blocks: got.value, feedback: got.feedback }
  }

  /** Some peer's latest finalization (verified; not necessarily the network's newest). */
  async fetchLatest (options: { signal: AbortSignal }): Promise<Fetched<LatestFinalization<F>>> {
    return this.request({ type: 'latest' }, body => parseLatestResponse(body, this.options.scheme), options.signal)
  }

  /** Ask peers until one answers `req` with data that parses, or `signal` aborts. */
  private async request<T> (req: MarshalRequest, parse: (body: Uint8Array) => Parsed<T>, signal: AbortSignal): Promise<Fetched<T>> {
    const shutdown = this.ctx.shutdown()
    if (shutdown === undefined || shutdown.aborted) { throw new MarshalError('Stopped', 'the marshal service is not running') }
    signal.throwIfAborted()
    const link = linked([signal, shutdown])
    try {
      const got = await this.loop(req, encodeMarshalRequest(req), parse, link.signal)
      if (got !== undefined) { return got }
    } finally {
      link.dispose()
    }
    if (signal.aborted) { throw signal.reason ?? new MarshalError('Stopped', 'aborted') }
    throw new MarshalError('Stopped', 'the marshal service stopped')
  }

  private async loop<T> (req: MarshalRequest, bytes: Uint8Array, parse: (body: Uint8Array) => Parsed<T>, signal: AbortSignal): Promise<Fetched<T> | undefined> {
    let retry = 0
    let last: string | undefined
    while (!signal.aborted) {
      const peer = await this.choosePeer(retry === 0, last, signal)
      if (peer === undefined) { return undefined }
      const result = await this.attempt(peer, req, bytes, parse, signal)
      if (result.type === 'data') {
        return { value: result.value, peer, feedback: this.feedback(peer, req, result.latency) }
      }
      if (result.type === 'aborted') { return undefined }
      last = peer.toString()
      retry++
      await sleep(Math.min(this.options.maxRetryDelay, this.options.retryDelay * 2 ** Math.min(retry - 1, 20)), signal)
    }
    return undefined
  }

  private feedback (peer: PeerId, req: MarshalRequest, latency: number): Feedback {
    let decided = false
    return (valid) => {
      if (decided) { return }
      decided = true
      this.ctx.metrics.verdict(valid)
      if (valid) {
        this.ctx.book.record(peer.toString(), latency)
      } else {
        this.ctx.block(peer, `its answer to ${marshalRequestKey(req)} failed validation`)
      }
    }
  }

  /** The next peer to ask (holding an outbound slot), or undefined once `signal` aborts. */
  private async choosePeer (fresh: boolean, last: string | undefined, signal: AbortSignal): Promise<PeerId | undefined> {
    const { book, outbound, slots, pollInterval } = this.ctx
    const self = this.ctx.self.toString()
    while (!signal.aborted) {
      const candidates = this.options.provider.peers().filter(p => {
        const id = p.toString()
        return id !== self && !book.isBlocked(id)
      })
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
  private async attempt<T> (peer: PeerId, req: MarshalRequest, bytes: Uint8Array, parse: (body: Uint8Array) => Parsed<T>, signal: AbortSignal): Promise<Attempt<T>> {
    let result: Attempt<T>
    try {
      result = await this.exchangeWith(peer, bytes, parse, signal)
    } finally {
      this.ctx.outbound.release(peer.toString())
      this.ctx.slots.notify()
    }
    this.account(peer, req, result)
    return result
  }

  private async exchangeWith<T> (peer: PeerId, bytes: Uint8Array, parse: (body: Uint8Array) => Parsed<T>, signal: AbortSignal): Promise<Attempt<T>> {
    const r = await exchange(this.ctx.connectionManager, peer, this.options.protocol, bytes, {
      signal,
      timeout: this.options.timeout,
      maxResponseBytes: this.options.maxResponseBytes,
      runOnLimitedConnection: this.ctx.runOnLimitedConnection
    })
    this.ctx.metrics.bytesOut(bytes.length + 1)
    if (r.type === 'oversized') { return { type: 'invalid', reason: `oversized response: ${r.reason ?? ''}` } }
    if (r.type !== 'frame') { return { type: r.type, reason: r.reason } }
    this.ctx.metrics.bytesIn(r.body.length)
    try {
      const parsed = parse(r.body)
      return parsed.type === 'no-data' ? { type: 'no-data' } : { type: 'data', value: parsed.value, latency: r.latency }
    } catch (err) {
      const reason = err instanceof ProtocolViolation ? err.message : `unparseable response: ${(err as Error)?.message}`
      return { type: 'invalid', reason }
    }
  }

  private account (peer: PeerId, req: MarshalRequest, result: Attempt<unknown>): void {
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
        this.ctx.block(peer, `${marshalRequestKey(req)}: ${result.reason ?? 'protocol violation'}`)
        return
      case 'unsupported':
        this.options.provider.unsupported(peer)
        metrics.fetch('failure')
        book.record(peer.toString(), this.options.timeout)
        return
      default:
        metrics.fetch(result.type === 'no-data' ? 'no_data' : result.type)
        book.record(peer.toString(), this.options.timeout)
        log.trace('%s from %p for %s: %s', result.type, peer, marshalRequestKey(req), result.reason ?? '')
    }
  }
}
