/**
 * The fetching half of a resolver: a `Source` for one database that asks
 * peers over libp2p (commonware `resolver/src/p2p`, `glue/src/stateful/db/p2p`).
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
 * - The operation codec comes from the caller (the sync engine passes its
 * kind's), so it is given once. Until one response has verified with it, a
 * response that does not decode is not blamed on its peer: the codec may be
 * the local mistake. If every candidate peer's answer fails to decode (and no
 * new peer appears within a poll interval), the request fails with
 * `ConfigurationError('CodecMismatch')`; once the codec is proven, those
 * peers are blocked after all.
 * - No progress (no response delivered while requests wait) is logged with its
 * likely cause every `stallInterval` and emitted as a `stall` event; after
 * `stallTimeout` the waiting requests fail with `ServeError('Stalled')`.
 */

import { InvalidDataLengthError, InvalidDataLengthLengthError } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import { CodecError, varintSize } from '../codec/index.ts'
import { ConfigurationError } from '../sync/errors.ts'
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
  /**
   * Reads one operation's exact bytes, for callers of `serve` that pass no
   * codec themselves. Not needed with `syncDatabase`: the engine passes its
   * kind's codec.
   */
  codec?: OpBytesReader
  /** Default `'connected'`. */
  peers?: PeerSelection
  /** Per-request deadline in ms (dial, write, read). Default: the resolver's. */
  timeout?: number
  /** First retry delay in ms; doubles per retry up to `maxRetryDelay`. */
  retryDelay?: number
  maxRetryDelay?: number
  /** Largest response frame accepted. Default: the resolver's. */
  maxResponseBytes?: number
  /** How often a source without progress logs why and emits `stall` (ms). Default: the resolver's (3000). */
  stallInterval?: number
  /** Waiting requests fail with `ServeError('Stalled')` after this long without progress (ms). Default: the resolver's (120000). */
  stallTimeout?: number
}

/**
 * Why a source makes no progress: no candidate peer (none connected speaks
 * the protocol), every candidate blocked, every answer no-data, or answers
 * that time out or fail.
 */
export type StallReason = 'no-peers' | 'all-blocked' | 'no-data' | 'failing'

export interface StallInfo {
  database: string
  protocol: string
  reason: StallReason
  /** The cause in words, with what to check. */
  message: string
  /** Time without a response (ms). */
  since: number
  /** Requests waiting. */
  waiting: number
}

export interface NetworkSourceEvents {
  stall: CustomEvent<StallInfo>
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
  codec?: OpBytesReader
  provider: PeerProvider
  timeout: number
  retryDelay: number
  maxRetryDelay: number
  maxResponseBytes: number
  stallInterval: number
  stallTimeout: number
}

interface Caller {
  resolve(s: Served): void
  reject(e: ServeError | ConfigurationError): void
  cleanup(): void
}

interface Pending {
  key: string
  request: Request
  bytes: Uint8Array
  codec: OpBytesReader
  controller: AbortController
  callers: Set<Caller>
  /** Peers whose answer did not decode while the codec was unproven. */
  undecodable: Set<string>
}

type Attempt =
  | { type: 'response', response: Response, latency: number }
  | { type: 'no-data' | 'timeout' | 'failure' | 'invalid' | 'undecodable' | 'aborted', reason?: string }

function isOversized (err: unknown): boolean {
  return err instanceof InvalidDataLengthError || err instanceof InvalidDataLengthLengthError ||
    (err as Error)?.name === 'StreamBufferError'
}

export class NetworkSource extends TypedEventEmitter<NetworkSourceEvents> implements Source {
  readonly db: string
  private readonly ctx: ClientContext
  private readonly options: ResolvedClientOptions
  private readonly pending = new Map<string, Pending>()
  private closed = false
  private readonly onClose?: () => void
  /** Codecs a verified response decoded with: decode failures under them are the peer's. */
  private readonly proven = new WeakSet<OpBytesReader>()
  /** Peers that sent bytes an unproven codec could not decode (blocked if that codec is proven). */
  private readonly suspects = new Map<string, { peer: PeerId, codec: OpBytesReader, reason: string }>()
  /** When the source last delivered a response, or started waiting after being idle. */
  private progressAt = Date.now()
  /** Outcomes of the attempts since `progressAt`. */
  private readonly since = { attempts: 0, noData: 0 }
  private stallTimer: ReturnType<typeof setInterval> | undefined

  constructor (db: string, ctx: ClientContext, options: ResolvedClientOptions, onClose?: () => void) {
    super()
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
    this.stopWatch()
    for (const p of [...this.pending.values()]) { this.fail(p, new ServeError('Unavailable', 'source closed')) }
    this.options.provider.close()
    this.onClose?.()
  }

  async serve (request: Request, options: ServeOptions = {}): Promise<Served> {
    const problem = requestProblem(request) ?? requestShapeProblem(this.ctx.kind, request)
    if (problem !== undefined) { throw new ServeError('InvalidRequest', problem) }
    const codec = options.codec ?? this.options.codec
    if (codec === undefined) {
      throw new ConfigurationError('MissingCodec', `no operation codec to decode ${this.db}'s responses: sync with syncDatabase (it passes its kind's codec), or pass { codec: kind.codec } to source() or serve()`)
    }
    const signal = options.signal
    if (signal?.aborted === true) { throw new ServeError('Aborted', 'serve aborted') }
    const shutdown = this.ctx.shutdown()
    if (this.closed || shutdown === undefined || shutdown.aborted) { throw new ServeError('Unavailable', 'resolver is not running') }
    const key = requestKey(request)
    let p = this.pending.get(key)
    const fresh = p === undefined
    if (p === undefined) {
      p = { key, request, bytes: encodeRequest(request), codec, controller: new AbortController(), callers: new Set(), undecodable: new Set() }
      if (this.pending.size === 0) { this.watch() }
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
      this.forget(p)
      p.controller.abort()
    }
  }

  private forget (p: Pending): void {
    if (this.pending.get(p.key) === p) { this.pending.delete(p.key) }
    if (this.pending.size === 0) { this.stopWatch() }
  }

  /** Start the stall watch (the source was idle until now). */
  private watch (): void {
    this.progress()
    if (this.stallTimer !== undefined || this.closed) { return }
    this.stallTimer = setInterval(() => { this.checkStall() }, Math.max(10, this.options.stallInterval))
    // a stall watch alone must not keep the process alive
    this.stallTimer.unref?.()
  }

  private stopWatch (): void {
    if (this.stallTimer !== undefined) { clearInterval(this.stallTimer) }
    this.stallTimer = undefined
  }

  private progress (): void {
    this.progressAt = Date.now()
    this.since.attempts = 0
    this.since.noData = 0
  }

  private checkStall (): void {
    if (this.pending.size === 0) { return }
    const since = Date.now() - this.progressAt
    if (since < this.options.stallInterval) { return }
    const info = this.stallInfo(since)
    this.ctx.log('%s: no progress for %d ms: %s', this.db, since, info.message)
    this.safeDispatchEvent('stall', { detail: info })
    if (since >= this.options.stallTimeout) {
      for (const p of [...this.pending.values()]) {
        this.fail(p, new ServeError('Stalled', `${this.db}: no progress for ${since} ms: ${info.message}`))
      }
    }
  }

  private stallInfo (since: number): StallInfo {
    const all = this.options.provider.peers().filter(p => !p.equals(this.ctx.self))
    const usable = all.filter(p => !this.ctx.book.isBlocked(p.toString()))
    const protocol = this.options.protocol
    let reason: StallReason
    let message: string
    if (all.length === 0) {
      reason = 'no-peers'
      message = `no peer to ask speaks ${protocol}: connect to a peer serving it, and check the chain and database name match the server's (it must declare or attach "${this.db}")`
    } else if (usable.length === 0) {
      reason = 'all-blocked'
      message = `all ${all.length} peers speaking ${protocol} are blocked (see resolver.blockedPeers())`
    } else if (this.since.attempts > 0 && this.since.noData === this.since.attempts) {
      reason = 'no-data'
      message = `every answer from ${usable.length} peer(s) was no-data: the server has no source attached for "${this.db}", has pruned the range, or never had the target's state`
    } else {
      reason = 'failing'
      message = `requests to ${usable.length} peer(s) time out or fail (${this.since.attempts} attempts)`
    }
    return { database: this.db, protocol, reason, message, since, waiting: this.pending.size }
  }

  private fail (p: Pending, err: ServeError | ConfigurationError): void {
    this.forget(p)
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
        const peer = await this.choosePeer(retry === 0, last, p.undecodable, signal)
        if (peer === undefined) { break }
        const result = await this.attempt(peer, p, signal)
        if (result.type === 'response') {
          this.deliver(p, peer, result.response, result.latency)
          return
        }
        if (result.type === 'aborted') { break }
        // a codec mistake shows on every peer; one more poll lets a new peer tell the two apart
        if (result.type === 'undecodable' && this.allUndecodable(p) && await this.stillAllUndecodable(p, signal)) {
          this.fail(p, new ConfigurationError('CodecMismatch', `every peer's answer for ${this.db} fails to decode with this codec (${result.reason ?? ''}): the sync kind's options (key, value, encoding, ordered) must match the serving database's; no peer was blamed`))
          return
        }
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

  /** Every candidate peer sent `p` bytes that do not decode (with the codec unproven). */
  private allUndecodable (p: Pending): boolean {
    const candidates = this.options.provider.peers().filter(peer => !peer.equals(this.ctx.self) && !this.ctx.book.isBlocked(peer.toString()))
    return candidates.every(peer => p.undecodable.has(peer.toString()))
  }

  /** After waiting up to a poll interval for the candidates to change: whether every candidate still sent undecodable bytes. */
  private async stillAllUndecodable (p: Pending, signal: AbortSignal): Promise<boolean> {
    await this.options.provider.changed(this.ctx.pollInterval, signal)
    return !signal.aborted && this.allUndecodable(p)
  }

  /** `codec` decoded a response that verified: earlier failures to decode with it were the peers'. */
  private proveCodec (codec: OpBytesReader): void {
    if (this.proven.has(codec)) { return }
    this.proven.add(codec)
    for (const [id, suspect] of this.suspects) {
      if (suspect.codec !== codec) { continue }
      this.suspects.delete(id)
      this.ctx.block(suspect.peer, suspect.reason)
    }
  }

  private deliver (p: Pending, peer: PeerId, response: Response, latency: number): void {
    this.forget(p)
    this.progress()
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
          return
        }
        this.proveCodec(p.codec)
        if (!state.scored) {
          state.scored = true
          this.ctx.book.record(id, latency)
        }
      }
      c.cleanup()
      c.resolve({ response, feedback })
    }
  }

  /** The next peer to ask (holding an outbound slot), or undefined once `signal` aborts. */
  private async choosePeer (fresh: boolean, last: string | undefined, skip: ReadonlySet<string>, signal: AbortSignal): Promise<PeerId | undefined> {
    const { book, outbound, slots, pollInterval } = this.ctx
    const self = this.ctx.self.toString()
    while (!signal.aborted) {
      const candidates = this.options.provider.peers().filter(p => {
        const id = p.toString()
        return id !== self && !book.isBlocked(id) && !skip.has(id)
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
      this.account(peer, p, result)
      return result
    } finally {
      this.ctx.outbound.release(id)
      this.ctx.slots.notify()
    }
  }

  private account (peer: PeerId, p: Pending, result: Attempt): void {
    const { metrics, book, log } = this.ctx
    const id = peer.toString()
    if (result.type !== 'aborted') { this.since.attempts++ }
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
      case 'undecodable':
        metrics.fetch('invalid')
        this.suspects.set(id, { peer, codec: p.codec, reason: result.reason ?? 'undecodable response' })
        log('%s on %s: %s (not blamed until the codec is proven)', id, this.db, result.reason ?? '')
        return
      default:
        if (result.type === 'no-data') { this.since.noData++ }
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
    return this.parse(peer, body, p, performance.now() - started)
  }

  private parse (peer: PeerId, body: Uint8Array, p: Pending, latency: number): Attempt {
    try {
      const frame = parseResponseFrame(body, p.request, p.codec)
      return frame.type === 'no-data' ? { type: 'no-data' } : { type: 'response', response: frame.response, latency }
    } catch (err) {
      const reason = err instanceof ProtocolViolation ? err.message : `unparseable response: ${(err as Error)?.message}`
      if (!this.proven.has(p.codec) && err instanceof ProtocolViolation && err.cause instanceof CodecError) {
        p.undecodable.add(peer.toString())
        return { type: 'undecodable', reason }
      }
      return { type: 'invalid', reason }
    }
  }
}
