/**
 * The fetching half of a resolver: a `Source` for one database that asks
 * peers over libp2p (sync-p2p.md §5–§6, §8.2).
 *
 * - Identical in-flight requests (same `requestKey`) from several callers
 * share one network fetch; each caller gets the response with its own
 * feedback callback. A caller whose signal aborts leaves; when the last one
 * leaves the network fetch is cancelled.
 * - A fresh request goes to the peer with the best latency score; after a
 * failure (no data, timeout, reset, dial failure) the peer's score is
 * penalised by the timeout, and the retry goes, after a back-off, to a
 * shuffled other peer. With no usable peer it waits for one. It never
 * rejects on a transient failure: only the caller's abort (`Aborted`) or
 * shutdown (`Unavailable`) end a request early.
 * - A peer whose bytes do not decode or do not answer the request (wrong
 * variant, proof size, op or pin count, unknown status, oversized frame) is
 * blocked at once and the request retried elsewhere; a peer whose response
 * the engine rejects (`feedback(false)`) is blocked too. Blocking is
 * permanent for the resolver's lifetime. A verdict never given blames no one.
 * - Per peer, at most `maxConcurrent` requests are outstanding and a token
 * bucket bounds the request rate, so a client stays within what servers
 * admit.
 */

import { InvalidDataLengthError, InvalidDataLengthLengthError } from '@libp2p/utils'
import { varintSize } from '../codec/writer.ts'
import { encodeRequest, requestKey, requestProblem } from '../sync/messages.ts'
import { ServeError } from '../sync/source.ts'
import { frameStream } from './frames.ts'
import { ProtocolViolation, parseResponseFrame, requestShapeProblem } from './protocol.ts'
import { linked, sleep } from './signals.ts'
import { openStream } from './streams.ts'
import type { PeerLimiter } from './limits.ts'
import type { ResolverMetrics } from './metrics.ts'
import type { Notifier, PeerBook } from './peers.ts'
import type { ResolverKind } from './protocol.ts'
import type { Linked } from './signals.ts'
import type { OpBytesReader, Request, Response } from '../sync/messages.ts'
import type { Feedback, Served, ServeOptions, Source } from '../sync/source.ts'
import type { Logger, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/**
 * Which peers a source asks: `'connected'` (every connected peer that
 * advertises the protocol, learned through identify), a fixed list (dialled
 * on demand), or a function called whenever a peer is needed.
 */
export type PeerSelection = 'connected' | PeerId[] | (() => Iterable<PeerId>)

export interface NetworkSourceOptions {
  /** Reads one operation's exact bytes (the database's op codec). */
  codec: OpBytesReader
  /** Default `'connected'`. */
  peers?: PeerSelection
  /** Per-request deadline in ms (dial, write, read). Default: the resolver's. */
  timeout?: number
  /** First retry delay in ms; doubles per retry up to `maxRetryDelay`. */
  retryDelay?: number
  maxRetryDelay?: number
  /** Largest response frame accepted. Default: the resolver's. */
  maxResponseBytes?: number
}

/** A list of candidate peers that can say when it changes. */
export interface PeerProvider {
  peers(): PeerId[]
  /** Resolves when the list may have changed, or after `ms`. */
  changed(ms: number, signal: AbortSignal): Promise<void>
  /** The peer does not speak the protocol (forget it until it says otherwise). */
  unsupported(peer: PeerId): void
  /** Replace the list (only providers built from a fixed list support it). */
  set?(peers: PeerId[]): void
  close(): void
}

/** What a source shares with its resolver service. */
export interface ClientContext {
  kind: ResolverKind
  self: PeerId
  connectionManager: ConnectionManager
  book: PeerBook
  outbound: PeerLimiter
  /** Notified whenever an outbound slot is released. */
  slots: Notifier
  metrics: ResolverMetrics
  log: Logger
  /** Aborted when the service stops. */
  shutdown(): AbortSignal | undefined
  block(peer: PeerId, reason: string): void
  runOnLimitedConnection: boolean
  pollInterval: number
}

export interface ResolvedClientOptions {
  protocol: string
  codec: OpBytesReader
  provider: PeerProvider
  timeout: number
  retryDelay: number
  maxRetryDelay: number
  maxResponseBytes: number
}

interface Caller {
  resolve(s: Served): void
  reject(e: ServeError): void
  cleanup(): void
}

interface Pending {
  key: string
  request: Request
  bytes: Uint8Array
  controller: AbortController
  callers: Set<Caller>
}

type Attempt =
  | { type: 'response', response: Response, latency: number }
  | { type: 'no-data' | 'timeout' | 'failure' | 'invalid' | 'aborted', reason?: string }

function isOversized (err: unknown): boolean {
  return err instanceof InvalidDataLengthError || err instanceof InvalidDataLengthLengthError ||
    (err as Error)?.name === 'StreamBufferError'
}

export class NetworkSource implements Source {
  readonly db: string
  private readonly ctx: ClientContext
  private readonly options: ResolvedClientOptions
  private readonly pending = new Map<string, Pending>()
  private closed = false
  private readonly onClose?: () => void

  constructor (db: string, ctx: ClientContext, options: ResolvedClientOptions, onClose?: () => void) {
    this.db = db
    this.ctx = ctx
    this.options = options
    this.onClose = onClose
  }

  /** The protocol id this source fetches over. */
  get protocol (): string {
    return this.options.protocol
  }

  /** Number of distinct requests currently being fetched. */
  get inflight (): number {
    return this.pending.size
  }

  /** Replace the peers asked (sources created with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    if (this.options.provider.set === undefined) { throw new TypeError('this source discovers its peers; it has no fixed list to replace') }
    this.options.provider.set(peers)
  }

  /** Stop fetching: pending callers get `Unavailable`. */
  close (): void {
    if (this.closed) { return }
    this.closed = true
    for (const p of [...this.pending.values()]) { this.fail(p, new ServeError('Unavailable', 'source closed')) }
    this.options.provider.close()
    this.onClose?.()
  }

  async serve (request: Request, options: ServeOptions = {}): Promise<Served> {
    const problem = requestProblem(request) ?? requestShapeProblem(this.ctx.kind, request)
    if (problem !== undefined) { throw new ServeError('InvalidRequest', problem) }
    const signal = options.signal
    if (signal?.aborted === true) { throw new ServeError('Aborted', 'serve aborted') }
    const shutdown = this.ctx.shutdown()
    if (this.closed || shutdown === undefined || shutdown.aborted) { throw new ServeError('Unavailable', 'resolver is not running') }
    const key = requestKey(request)
    let p = this.pending.get(key)
    const fresh = p === undefined
    if (p === undefined) {
      p = { key, request, bytes: encodeRequest(request), controller: new AbortController(), callers: new Set() }
      this.pending.set(key, p)
    }
    const entry = p
    const result = new Promise<Served>((resolve, reject) => {
      const onAbort = (): void => {
        this.leave(entry, caller)
        reject(new ServeError('Aborted', 'serve aborted'))
      }
      const caller: Caller = {
        resolve,
        reject,
        cleanup: () => { signal?.removeEventListener('abort', onAbort) }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      entry.callers.add(caller)
    })
    if (fresh) { void this.run(entry, shutdown) }
    return result
  }

  private leave (p: Pending, caller: Caller): void {
    if (!p.callers.delete(caller)) { return }
    caller.cleanup()
    if (p.callers.size === 0) {
      if (this.pending.get(p.key) === p) { this.pending.delete(p.key) }
      p.controller.abort()
    }
  }

  private fail (p: Pending, err: ServeError): void {
    if (this.pending.get(p.key) === p) { this.pending.delete(p.key) }
    const callers = [...p.callers]
    p.callers.clear()
    p.controller.abort()
    for (const c of callers) {
      c.cleanup()
      c.reject(err)
    }
  }

  /** Fetch `p` until it is answered, every caller left, or the service stops. */
  private async run (p: Pending, shutdown: AbortSignal): Promise<void> {
    const link = linked([p.controller.signal, shutdown])
    try {
      await this.fetchLoop(p, link.signal)
    } finally {
      link.dispose()
    }
  }

  private async fetchLoop (p: Pending, signal: AbortSignal): Promise<void> {
    let retry = 0
    let last: string | undefined
    try {
      while (!signal.aborted) {
        const peer = await this.choosePeer(retry === 0, last, signal)
        if (peer === undefined) { break }
        const result = await this.attempt(peer, p, signal)
        if (result.type === 'response') {
          this.deliver(p, peer, result.response, result.latency)
          return
        }
        if (result.type === 'aborted') { break }
        last = peer.toString()
        retry++
        const delay = Math.min(this.options.maxRetryDelay, this.options.retryDelay * 2 ** Math.min(retry - 1, 20))
        await sleep(delay, signal)
      }
    } catch (err) {
      this.ctx.log.error('fetch of %s on %s failed unexpectedly: %s', p.key, this.db, (err as Error)?.message)
      this.fail(p, new ServeError('Unavailable', 'resolver failure', { cause: err }))
      return
    }
    if (p.callers.size > 0) { this.fail(p, new ServeError('Unavailable', 'resolver stopped')) }
  }

  private deliver (p: Pending, peer: PeerId, response: Response, latency: number): void {
    if (this.pending.get(p.key) === p) { this.pending.delete(p.key) }
    const callers = [...p.callers]
    p.callers.clear()
    const id = peer.toString()
    const state = { scored: false }
    for (const c of callers) {
      let decided = false
      const feedback: Feedback = (valid) => {
        if (decided) { return }
        decided = true
        this.ctx.metrics.verdict(valid === true)
        if (valid !== true) {
          this.ctx.block(peer, `its ${p.request.type} response for ${p.key} failed verification`)
        } else if (!state.scored) {
          state.scored = true
          this.ctx.book.record(id, latency)
        }
      }
      c.cleanup()
      c.resolve({ response, feedback })
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
  private async attempt (peer: PeerId, p: Pending, signal: AbortSignal): Promise<Attempt> {
    const id = peer.toString()
    try {
      const result = await this.exchange(peer, p, signal)
      this.account(peer, result)
      return result
    } finally {
      this.ctx.outbound.release(id)
      this.ctx.slots.notify()
    }
  }

  private account (peer: PeerId, result: Attempt): void {
    const { metrics, book, log } = this.ctx
    const id = peer.toString()
    switch (result.type) {
      case 'response':
        metrics.fetch('response', result.latency / 1000)
        return
      case 'aborted':
        metrics.fetch('aborted')
        return
      case 'invalid':
        metrics.fetch('invalid')
        this.ctx.block(peer, result.reason ?? 'protocol violation')
        return
      default:
        metrics.fetch(result.type === 'no-data' ? 'no_data' : result.type)
        book.record(id, this.options.timeout)
        log.trace('%s from %s on %s: %s', result.type, id, this.db, result.reason ?? '')
    }
  }

  /** Open a stream, send the request frame, read one response frame. */
  private async exchange (peer: PeerId, p: Pending, signal: AbortSignal): Promise<Attempt> {
    const link = linked([signal], this.options.timeout)
    try {
      return await this.exchangeWithin(peer, p, signal, link)
    } finally {
      link.dispose()
    }
  }

  private async exchangeWithin (peer: PeerId, p: Pending, signal: AbortSignal, link: Linked): Promise<Attempt> {
    const both = link.signal
    const started = performance.now()
    let stream: Stream
    try {
      stream = await openStream(this.ctx.connectionManager, peer, this.options.protocol, {
        signal: both,
        runOnLimitedConnection: this.ctx.runOnLimitedConnection
      })
    } catch (err) {
      if (signal.aborted) { return { type: 'aborted' } }
      if ((err as Error)?.name === 'UnsupportedProtocolError') { this.options.provider.unsupported(peer) }
      return { type: link.timedOut() ? 'timeout' : 'failure', reason: (err as Error)?.message }
    }
    let body: Uint8Array
    try {
      const lp = frameStream(stream, { maxDataLength: this.options.maxResponseBytes })
      await lp.write(p.bytes, { signal: both })
      this.ctx.metrics.bytesOut(p.bytes.length + 1)
      await stream.close({ signal: both })
      const frame = await lp.read({ signal: both })
      body = frame
      this.ctx.metrics.bytesIn(body.length + varintSize(body.length))
      await stream.closeRead()
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (signal.aborted) { return { type: 'aborted' } }
      if (link.timedOut()) { return { type: 'timeout' } }
      if (isOversized(err)) { return { type: 'invalid', reason: `oversized response: ${(err as Error).message}` } }
      return { type: 'failure', reason: (err as Error)?.message }
    }
    return this.parse(body, p, performance.now() - started)
  }

  private parse (body: Uint8Array, p: Pending, latency: number): Attempt {
    try {
      const frame = parseResponseFrame(body, p.request, this.options.codec)
      return frame.type === 'no-data' ? { type: 'no-data' } : { type: 'response', response: frame.response, latency }
    } catch (err) {
      const reason = err instanceof ProtocolViolation ? err.message : `unparseable response: ${(err as Error)?.message}`
      return { type: 'invalid', reason }
    }
  }
}
