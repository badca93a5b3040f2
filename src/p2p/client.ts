/**
 * The fetching half of a resolver: a `Source` for one database that asks
 * peers over libp2p (commonware `resolver/src/p2p`, `glue/src/stateful/db/p2p`)
 * through the kit's client loop (`net/client.ts`: best-scored peer first,
 * back-off and retry elsewhere on failure, per-peer limits, blocking of a
 * peer whose answer breaks the protocol or fails verification). It never
 * rejects on a transient failure: only the caller's abort (`Aborted`) or
 * shutdown (`Unavailable`) end a request early. What it adds:
 *
 * - Identical in-flight requests (same `requestKey`) from several callers
 * share one network fetch; each caller gets the response with its own
 * feedback callback. A caller whose signal aborts leaves; when the last one
 * leaves the network fetch is cancelled.
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

import { TypedEventEmitter } from 'main-event'
import { CodecError } from '../codec/index.ts'
import { MerkleError, reconstructRoot, verifyProofAndPinnedNodes, verifyRangeProof } from '../merkle/index.ts'
import { Undecodable } from '../net/client.ts'
import { ProtocolViolation } from '../net/protocol.ts'
import { linked } from '../net/signals.ts'
import { ConfigurationError } from '../sync/errors.ts'
import { encodeRequest, requestKey, requestProblem } from '../sync/messages.ts'
import { ServeError } from '../sync/source.ts'
import { parseResponseFrame, requestShapeProblem } from './protocol.ts'
import type { ResolverKind } from './protocol.ts'
import type { Ask, Attempt, RequestClient } from '../net/client.ts'
import type { Parsed } from '../net/protocol.ts'
import type { PeerSelection } from '../net/providers.ts'
import type { OpBytesReader, Request, Response } from '../sync/messages.ts'
import type { Feedback, Served, ServeOptions, Source } from '../sync/source.ts'
import type { PeerId } from '@libp2p/interface'

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

/** What a source adds to its client: the codec given at creation and the stall watch. */
export interface SourceSettings {
  kind: ResolverKind
  codec?: OpBytesReader
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
  /** The response a caller verified (its feedback was valid): what a suspect's answer when asked again is judged by. */
  accepted?: Response
}

/**
 * Whether `answer` to `req` is as true as `accepted`, a response to the same request its caller
 * verified against the trusted root: the root `accepted` reconstructs is that root, so `answer`
 * must prove its own operations under it (it may carry fewer operations: servers cap differently).
 * Both passed `parseResponseFrame` (shape and proof size).
 */
export function answerAgrees (req: Request, accepted: Response, answer: Response): boolean {
  try {
    const root = accepted.type === 'operations'
      ? reconstructRoot(accepted.proof, req.start, accepted.ops)
      : reconstructRoot(accepted.proof, req.start, [accepted.op])
    if (answer.type === 'operations') { return verifyRangeProof(answer.proof, req.start, answer.ops, root) }
    return answer.pinnedNodes.length > 0
      ? verifyProofAndPinnedNodes(answer.proof, req.start, [answer.op], answer.pinnedNodes, root)
      : verifyRangeProof(answer.proof, req.start, [answer.op], root)
  } catch (err) {
    if (err instanceof MerkleError) { return false }
    throw err
  }
}

export class NetworkSource extends TypedEventEmitter<NetworkSourceEvents> implements Source {
  readonly db: string
  private readonly client: RequestClient
  private readonly settings: SourceSettings
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

  constructor (db: string, client: RequestClient, settings: SourceSettings, onClose?: () => void) {
    super()
    this.db = db
    this.client = client
    this.settings = settings
    this.onClose = onClose
  }

  /** The protocol id this source fetches over. */
  get protocol (): string {
    return this.client.protocol
  }

  /** Number of distinct requests currently being fetched. */
  get inflight (): number {
    return this.pending.size
  }

  /** Replace the peers asked (sources created with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    this.client.setPeers(peers)
  }

  /** Stop fetching: pending callers get `Unavailable`. */
  close (): void {
    if (this.closed) { return }
    this.closed = true
    this.stopWatch()
    for (const p of [...this.pending.values()]) { this.fail(p, new ServeError('Unavailable', 'source closed')) }
    this.client.close()
    this.onClose?.()
  }

  async serve (request: Request, options: ServeOptions = {}): Promise<Served> {
    const problem = requestProblem(request) ?? requestShapeProblem(this.settings.kind, request)
    if (problem !== undefined) { throw new ServeError('InvalidRequest', problem) }
    const codec = options.codec ?? this.settings.codec
    if (codec === undefined) {
      throw new ConfigurationError('MissingCodec', `no operation codec to decode ${this.db}'s responses: sync with syncDatabase (it passes its kind's codec), or pass { codec: kind.codec } to source() or serve()`)
    }
    const signal = options.signal
    if (signal?.aborted === true) { throw new ServeError('Aborted', 'serve aborted') }
    const shutdown = this.client.ctx.shutdown()
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
    this.stallTimer = setInterval(() => { this.checkStall() }, Math.max(10, this.settings.stallInterval))
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
    if (since < this.settings.stallInterval) { return }
    const info = this.stallInfo(since)
    this.client.ctx.log('%s: no progress for %d ms: %s', this.db, since, info.message)
    this.safeDispatchEvent('stall', { detail: info })
    if (since >= this.settings.stallTimeout) {
      for (const p of [...this.pending.values()]) {
        this.fail(p, new ServeError('Stalled', `${this.db}: no progress for ${since} ms: ${info.message}`))
      }
    }
  }

  private stallInfo (since: number): StallInfo {
    const self = this.client.ctx.self
    const all = this.client.provider.peers().filter(p => !p.equals(self))
    const usable = this.client.candidates()
    const protocol = this.protocol
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
      const got = await this.client.fetch(this.ask(p), link.signal)
      if (got !== undefined) {
        this.deliver(p, got.peer, got.value, got.latency)
        return
      }
    } catch (err) {
      this.client.ctx.log.error('fetch of %s on %s failed unexpectedly: %s', p.key, this.db, (err as Error)?.message)
      this.fail(p, new ServeError('Unavailable', 'resolver failure', { cause: err }))
      return
    } finally {
      link.dispose()
    }
    if (p.callers.size > 0) { this.fail(p, new ServeError('Unavailable', 'resolver stopped')) }
  }

  /** `p` as the client loop asks it. */
  private ask (p: Pending): Ask<Response> {
    return {
      bytes: p.bytes,
      key: p.key,
      skip: p.undecodable,
      parse: (body, peer) => this.parse(body, peer, p),
      judge: answer => p.accepted === undefined ? undefined : answerAgrees(p.request, p.accepted, answer),
      failed: async (peer, attempt, signal) => this.failed(peer, attempt, p, signal)
    }
  }

  private parse (body: Uint8Array, peer: PeerId, p: Pending): Parsed<Response> {
    try {
      const frame = parseResponseFrame(body, p.request, p.codec)
      return frame.type === 'no-data' ? frame : { type: 'data', value: frame.response }
    } catch (err) {
      if (!this.proven.has(p.codec) && err instanceof ProtocolViolation && err.cause instanceof CodecError) {
        p.undecodable.add(peer.toString())
        throw new Undecodable(err.message)
      }
      throw err
    }
  }

  /** Account a failed attempt; true when `p` was failed here (every peer's answer is undecodable). */
  private async failed (peer: PeerId, attempt: Attempt<Response>, p: Pending, signal: AbortSignal): Promise<boolean> {
    this.since.attempts++
    if (attempt.type === 'no-data') { this.since.noData++ }
    if (attempt.type !== 'undecodable') { return false }
    this.suspects.set(peer.toString(), { peer, codec: p.codec, reason: attempt.reason })
    this.client.ctx.log('%p on %s: %s (not blamed until the codec is proven)', peer, this.db, attempt.reason)
    // a codec mistake shows on every peer; one more poll lets a new peer tell the two apart
    if (this.allUndecodable(p) && await this.stillAllUndecodable(p, signal)) {
      this.fail(p, new ConfigurationError('CodecMismatch', `every peer's answer for ${this.db} fails to decode with this codec (${attempt.reason}): the sync kind's options (key, value, encoding, ordered) must match the serving database's; no peer was blamed`))
      return true
    }
    return false
  }

  /** Every candidate peer sent `p` bytes that do not decode (with the codec unproven). */
  private allUndecodable (p: Pending): boolean {
    const candidates = this.client.candidates()
    // no candidate left (the peer that answered went away) is no evidence about the codec
    return candidates.length > 0 && candidates.every(peer => p.undecodable.has(peer.toString()))
  }

  /** After waiting up to a poll interval for the candidates to change: whether every candidate still sent undecodable bytes. */
  private async stillAllUndecodable (p: Pending, signal: AbortSignal): Promise<boolean> {
    await this.client.provider.changed(this.client.ctx.pollInterval, signal)
    return !signal.aborted && this.allUndecodable(p)
  }

  /** `codec` decoded a response that verified: earlier failures to decode with it were the peers'. */
  private proveCodec (codec: OpBytesReader): void {
    if (this.proven.has(codec)) { return }
    this.proven.add(codec)
    for (const [id, suspect] of this.suspects) {
      if (suspect.codec !== codec) { continue }
      this.suspects.delete(id)
      this.client.ctx.block(suspect.peer, suspect.reason)
    }
  }

  private deliver (p: Pending, peer: PeerId, response: Response, latency: number): void {
    this.forget(p)
    this.progress()
    const callers = [...p.callers]
    p.callers.clear()
    const state = { scored: false }
    for (const c of callers) {
      let decided = false
      const feedback: Feedback = (valid) => {
        if (decided) { return }
        decided = true
        if (valid === true) {
          this.proveCodec(p.codec)
          p.accepted ??= response
        }
        this.client.verdict(peer, valid === true, state.scored ? undefined : latency, `its ${p.request.type} response for ${p.key} failed verification`)
        if (valid === true) { state.scored = true }
      }
      c.cleanup()
      c.resolve({ response, feedback })
    }
  }
}
