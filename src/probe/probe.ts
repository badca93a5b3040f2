/**
 * The probe (commonware `glue/src/stateful/probe`): floor discovery for state sync, then serving.
 *
 * Discovery: while someone waits in `subscribe` and no floor is selected,
 * the probe runs request rounds. A round clears the sample, asks every
 * participant of the solicited committee (the `minimumEpoch` committee) for
 * its latest finalization, and lasts `retryTimeout`; then the next round
 * starts ("deadline elapsed"). A reply is handled in this order:
 * 1. a peer that is not pending (already replied this round, or a floor is
 * selected) or a reply from an earlier round is ignored before decoding;
 * 2. a malformed frame, unknown tag or undecodable finalization blocks the
 * peer; "no finalization" is ignored;
 * 3. a finalization below `minimumEpoch` is stale and one this node cannot
 * judge (`judgeable` false) is ignored, neither blocks;
 * 4. a finalization from a non-participant or one that does not verify
 * blocks the peer (forged certificates never count);
 * 5. the reply is recorded and the sample tries to select a floor (see
 * `sample.ts` for the policies; `f + 1` distinct peers with `f` from the
 * committee size unless `faults` is given).
 * No request is sent while nobody subscribes (a pure source never solicits).
 *
 * Service: once a source of finalizations is attached (`attach(marshal)`)
 * and no subscriber waits, the probe answers requests with the source's
 * latest finalization and never solicits again; `subscribe` then returns the
 * cached floor or rejects with `ProbeError('NoFloor')`. Until then requests
 * are answered with "no finalization".
 *
 * Invariants: a floor verifies, is at or above `minimumEpoch`, is selected at
 * most once, and is what every subscriber gets; a blocked peer stays blocked
 * for the service's lifetime and is never asked again.
 */

import { serviceCapabilities, setMaxListeners } from '@libp2p/interface'
import { exchange } from '../marshal/exchange.ts'
import { PeerBlocker } from '../p2p/blocking.ts'
import { frameStream } from '../p2p/frames.ts'
import { PeerLimiter } from '../p2p/limits.ts'
import { Notifier, PeerBook } from '../p2p/peers.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../p2p/protocol.ts'
import { ConnectedPeers } from '../p2p/providers.ts'
import { RateLimitedError } from '../p2p/server.ts'
import { linked } from '../p2p/signals.ts'
import { ProbeMetrics } from './metrics.ts'
import { MAX_PROBE_REQUEST_FRAME, PROBE_NONE, PROBE_REQUEST, ProbeViolation, isProbeRequest, parseProbeResponse, probeProtocolId, probeResponse } from './protocol.ts'
import { Sample, maxFaults } from './sample.ts'
import type { ReplyOutcome } from './metrics.ts'
import type { FloorPolicy } from './sample.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { BlockHook } from '../p2p/blocking.ts'
import type { RateLimit } from '../p2p/limits.ts'
import type { ComponentLogger, Connection, Logger, Metrics, PeerId, PeerStore, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export class ProbeError extends Error {
  readonly name = 'ProbeError'
  readonly code: 'Stopped' | 'NoFloor' | 'Aborted'

  constructor (code: ProbeError['code'], message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}

/** Where a serving probe reads its latest finalization (`Marshal` provides it). */
export interface LatestFinalizationSource<F> {
  latestFinalization(): Promise<{ height: number, finalization: F } | undefined>
}

export interface ProbeComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

export interface ProbeInit<F> {
  /** Chain name: one protocol-id segment. */
  chain: string
  /** Default `qmdb`. */
  protocolPrefix?: string
  scheme: FinalizationScheme<F>
  /**
   * The solicited committee (its `minimumEpoch` members): the only peers
   * asked and allowed to reply; `n` is its size (this node included if it is
   * a member). Default: every connected peer speaking the protocol, which
   * needs `faults`.
   */
  participants?: PeerId[] | (() => Iterable<PeerId>)
  /** `f`: a floor needs `f + 1` distinct peers. Default `floor((n - 1) / 3)`. */
  faults?: number
  /** Default `'agreement'` (see `sample.ts`). */
  policy?: FloorPolicy
  /** Finalizations of earlier epochs are stale. Default 0. */
  minimumEpoch?: number
  /** Whether this node can judge `f` (e.g. knows its epoch's validator set). Default: always. */
  judgeable?(f: F): boolean
  /** Length of a request round (ms). Default 5000. */
  retryTimeout?: number
  /** Per-request deadline (ms). Default: `retryTimeout`. */
  timeout?: number
  /** Per-peer inbound limits. Defaults: 4 concurrent, 20/s, burst 40. */
  inbound?: { maxConcurrent?: number, rate?: RateLimit }
  /** Time a peer has to send its request (ms). Default 5000. */
  readTimeout?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
  runOnLimitedConnection?: boolean
  /** Peer-store tag put on blocked peers. Default `qmdb-probe-blocked`. */
  blockTag?: string
}

interface Subscriber<F> {
  resolve(f: F): void
  reject(err: Error): void
}

export type ProbePhase = 'discovery' | 'service'

export class Probe<F> implements Startable {
  readonly protocol: string
  private readonly components: ProbeComponents
  private readonly init: ProbeInit<F>
  private readonly scheme: FinalizationScheme<F>
  private readonly log: Logger
  private readonly metrics: ProbeMetrics
  private readonly sample: Sample<F>
  private readonly book = new PeerBook({ initialLatency: 0 })
  private readonly inbound: PeerLimiter
  private readonly wake = new Notifier()
  private readonly subscribers = new Set<Subscriber<F>>()
  private readonly blocker: PeerBlocker
  private connected: ConnectedPeers | undefined
  private source: LatestFinalizationSource<F> | undefined
  private currentPhase: ProbePhase = 'discovery'
  private controller: AbortController | undefined
  private discovering: Promise<void> | undefined
  private round = 0
  private requestsSent = 0
  private answered = 0
  private stopped = false

  constructor (components: ProbeComponents, init: ProbeInit<F>) {
    if (init.participants === undefined && init.faults === undefined) {
      throw new RangeError('a probe without a participant list needs `faults`')
    }
    if (init.retryTimeout !== undefined && !(init.retryTimeout > 0)) { throw new RangeError('retryTimeout must be positive') }
    this.components = components
    this.init = init
    this.scheme = init.scheme
    this.protocol = probeProtocolId(init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX, init.chain)
    this.log = components.logger.forComponent('libp2p:qmdb:probe')
    this.metrics = new ProbeMetrics(components.metrics)
    this.blocker = new PeerBlocker({
      book: this.book,
      components,
      tag: init.blockTag ?? 'qmdb-probe-blocked',
      onCount: n => { this.metrics.blockedPeers(n) },
      log: this.log
    })
    this.sample = new Sample(init.scheme, init.policy ?? 'agreement')
    this.inbound = new PeerLimiter(init.inbound?.rate ?? { perSecond: 20, burst: 40 }, init.inbound?.maxConcurrent ?? 4)
  }

  readonly [Symbol.toStringTag] = '@libp2p-qmdb/probe'
  readonly [serviceCapabilities]: string[] = ['@libp2p-qmdb/probe']

  get phase (): ProbePhase {
    return this.currentPhase
  }

  /** The selected floor, if any. */
  get floor (): F | undefined {
    return this.sample.floor
  }

  /** Request rounds started, requests sent, and inbound requests answered so far. */
  get stats (): { rounds: number, requests: number, served: number } {
    return { rounds: this.round, requests: this.requestsSent, served: this.answered }
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    this.controller = new AbortController()
    this.stopped = false
    setMaxListeners(Infinity, this.controller.signal)
    await this.components.registrar.handle(this.protocol, async (stream, connection) => {
      await this.serve(stream, connection)
    }, {
      maxInboundStreams: this.init.maxInboundStreams ?? 32,
      maxOutboundStreams: this.init.maxOutboundStreams ?? 32,
      runOnLimitedConnection: this.init.runOnLimitedConnection ?? false
    })
    if (this.init.participants === undefined) {
      this.connected = new ConnectedPeers(this.protocol, this.components, this.log)
      await this.connected.start()
    }
    this.kick()
  }

  async stop (): Promise<void> {
    const controller = this.controller
    if (controller === undefined) { return }
    this.controller = undefined
    this.stopped = true
    controller.abort()
    this.wake.notify()
    this.connected?.close()
    this.connected = undefined
    const waiting = [...this.subscribers]
    this.subscribers.clear()
    for (const s of waiting) { s.reject(new ProbeError('Stopped', 'the probe stopped')) }
    await this.discovering
    await this.components.registrar.unhandle(this.protocol)
  }

  // ---- mailbox ----------------------------------------------------------------------------

  /**
   * The floor: the cached one, else the one discovery selects. Keep waiting
   * until it resolves; an abort leaves (discovery stops when nobody waits).
   */
  async subscribe (options: { signal?: AbortSignal } = {}): Promise<F> {
    const floor = this.sample.floor
    if (floor !== undefined) { return floor }
    if (this.currentPhase === 'service') { throw new ProbeError('NoFloor', 'discovery ended without a floor') }
    if (this.stopped) { throw new ProbeError('Stopped', 'the probe stopped') }
    const signal = options.signal
    if (signal?.aborted === true) { throw signal.reason ?? new ProbeError('Aborted', 'subscription aborted') }
    return new Promise<F>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.subscribers.delete(sub)) { return }
        reject(signal?.reason ?? new ProbeError('Aborted', 'subscription aborted'))
        this.subscribersChanged()
      }
      const sub: Subscriber<F> = {
        resolve: f => {
          signal?.removeEventListener('abort', onAbort)
          resolve(f)
        },
        reject: err => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.subscribers.add(sub)
      this.kick()
    })
  }

  /** Serve finalizations from `source`; the probe enters service once no subscriber waits. */
  attach (source: LatestFinalizationSource<F>): void {
    this.source = source
    this.maybeServe()
  }

  private subscribersChanged (): void {
    if (this.subscribers.size === 0) {
      this.sample.reset()
      this.wake.notify()
    }
    this.maybeServe()
  }

  private maybeServe (): void {
    if (this.currentPhase === 'discovery' && this.source !== undefined && this.subscribers.size === 0) {
      this.currentPhase = 'service'
      this.log('service phase (floor %s)', this.sample.floor === undefined ? 'none' : 'selected')
      this.wake.notify()
    }
  }

  // ---- discovery --------------------------------------------------------------------------

  private kick (): void {
    if (this.discovering !== undefined || this.controller === undefined || !this.seeking()) { return }
    const signal = this.controller.signal
    this.discovering = this.discover(signal).catch(err => {
      this.log.error('discovery failed: %s', (err as Error)?.message)
    }).finally(() => {
      this.discovering = undefined
      if (!signal.aborted) { this.kick() }
    })
  }

  private seeking (): boolean {
    return this.currentPhase === 'discovery' && this.subscribers.size > 0 && this.sample.floor === undefined
  }

  private async discover (signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.seeking()) {
      if (this.round > 0) { this.log('re-requesting finalizations: deadline elapsed') }
      await this.requestRound(signal)
    }
  }

  /** One round: clear the sample, ask every participant, wait out `retryTimeout` (or a floor). */
  private async requestRound (signal: AbortSignal): Promise<void> {
    this.round++
    const round = this.round
    this.sample.reset()
    this.metrics.round()
    const retryTimeout = this.init.retryTimeout ?? 5000
    // the round's requests end with the round (deadline, floor, no subscriber, stop)
    const requests = new AbortController()
    setMaxListeners(Infinity, requests.signal)
    const link = linked([signal], retryTimeout)
    try {
      const self = this.components.peerId.toString()
      for (const peer of this.participants()) {
        const id = peer.toString()
        if (id === self || this.book.isBlocked(id)) { continue }
        this.requestsSent++
        this.metrics.request()
        void this.ask(peer, round, requests.signal)
      }
      while (!link.signal.aborted && this.seeking()) { await this.wake.wait(retryTimeout, link.signal) }
    } finally {
      link.dispose()
      requests.abort()
    }
  }

  private participants (): PeerId[] {
    const p = this.init.participants
    if (p === undefined) { return this.connected?.peers() ?? [] }
    return typeof p === 'function' ? [...p()] : p
  }

  private isParticipant (peer: PeerId): boolean {
    if (this.init.participants === undefined) { return true }
    const id = peer.toString()
    return this.participants().some(p => p.toString() === id)
  }

  private threshold (): number {
    const n = this.participants().length
    return (this.init.faults ?? maxFaults(n)) + 1
  }

  private async ask (peer: PeerId, round: number, signal: AbortSignal): Promise<void> {
    const r = await exchange(this.components.connectionManager, peer, this.protocol, PROBE_REQUEST, {
      signal,
      timeout: this.init.timeout ?? this.init.retryTimeout ?? 5000,
      maxResponseBytes: this.scheme.maxBytes + 1,
      runOnLimitedConnection: this.init.runOnLimitedConnection
    })
    if (r.type === 'aborted') { return }
    const id = peer.toString()
    // 1. only a pending peer of the current round counts; nothing else is even decoded
    if (round !== this.round || !this.sample.pending(id) || this.book.isBlocked(id)) {
      this.metrics.reply('late')
      return
    }
    if (r.type === 'oversized') {
      this.reply('invalid', peer, `oversized frame: ${r.reason ?? ''}`)
      return
    }
    if (r.type !== 'frame') {
      if (r.type === 'unsupported') { this.connected?.unsupported(peer) }
      this.metrics.reply('failure')
      this.log.trace('no reply from %p: %s %s', peer, r.type, r.reason ?? '')
      return
    }
    this.handleReply(peer, r.body)
  }

  private handleReply (peer: PeerId, body: Uint8Array): void {
    // 2. the frame
    let f: F | undefined
    try {
      f = parseProbeResponse(body, this.scheme)
    } catch (err) {
      this.reply('invalid', peer, err instanceof ProbeViolation ? err.message : String(err))
      return
    }
    if (f === undefined) {
      this.reply('no_data', peer)
      return
    }
    // 3. stale or unjudgeable: not misbehaviour
    if (this.scheme.round(f).epoch < (this.init.minimumEpoch ?? 0)) {
      this.reply('stale', peer)
      return
    }
    if (this.init.judgeable !== undefined && !this.init.judgeable(f)) {
      this.reply('unjudgeable', peer)
      return
    }
    // 4. forged or from outside the committee
    if (!this.isParticipant(peer)) {
      this.reply('invalid', peer, 'finalization sent by non-participant')
      return
    }
    if (!this.verifies(f)) {
      this.reply('invalid', peer, 'invalid finalization')
      return
    }
    // 5. count it
    if (this.subscribers.size === 0) {
      this.sample.reset()
      return
    }
    this.sample.record(peer.toString(), f)
    this.reply('recorded', peer)
    this.trySelect()
  }

  private verifies (f: F): boolean {
    try {
      return this.scheme.verify(f)
    } catch {
      return false
    }
  }

  private reply (outcome: ReplyOutcome, peer: PeerId, reason?: string): void {
    this.metrics.reply(outcome)
    if (outcome === 'invalid') { this.block(peer, reason ?? 'protocol violation') }
  }

  private trySelect (): void {
    const floor = this.sample.select(this.threshold(), f => this.init.judgeable?.(f) ?? true)
    if (floor === undefined) { return }
    const r = this.scheme.round(floor)
    this.log('floor selected at epoch %d view %d', r.epoch, r.view)
    const waiting = [...this.subscribers]
    this.subscribers.clear()
    for (const s of waiting) { s.resolve(floor) }
    this.wake.notify()
    this.maybeServe()
  }

  // ---- serving ----------------------------------------------------------------------------

  /** Answer one inbound request. Never throws. */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const admitted = this.inbound.tryAcquire(peer)
    if (!admitted.ok) {
      this.metrics.serve('limited')
      stream.abort(new RateLimitedError(`too many requests (${admitted.reason})`))
      return
    }
    try {
      const lp = frameStream(stream, { maxDataLength: MAX_PROBE_REQUEST_FRAME, maxBufferSize: 4 * MAX_PROBE_REQUEST_FRAME })
      const link = linked([], this.init.readTimeout ?? 5000)
      try {
        const frame = await lp.read({ signal: link.signal })
        if (!isProbeRequest(frame)) { throw new ProbeViolation('not a probe request') }
        await stream.closeRead()
      } catch (err) {
        this.metrics.serve('malformed')
        this.log.trace('malformed probe request from %s: %s', peer, (err as Error)?.message)
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      } finally {
        link.dispose()
      }
      const body = await this.answer()
      const write = linked([], this.init.readTimeout ?? 5000)
      try {
        await lp.write(body, { signal: write.signal })
        await stream.close({ signal: write.signal })
      } finally {
        write.dispose()
      }
      this.answered++
      this.metrics.serve(body === PROBE_NONE ? 'no_data' : 'response')
    } catch (err) {
      this.metrics.serve('error')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.inbound.release(peer)
    }
  }

  private async answer (): Promise<Uint8Array> {
    if (this.currentPhase !== 'service' || this.source === undefined) { return PROBE_NONE }
    try {
      const latest = await this.source.latestFinalization()
      return latest === undefined ? PROBE_NONE : probeResponse(this.scheme, latest.finalization)
    } catch (err) {
      this.log('no finalization to serve: %s', (err as Error)?.message)
      return PROBE_NONE
    }
  }

  // ---- peers ------------------------------------------------------------------------------

  block (peer: PeerId, reason: string): void {
    this.blocker.block(peer, reason)
  }

  isBlocked (peer: PeerId): boolean {
    return this.book.isBlocked(peer.toString())
  }

  blockedPeers (): Map<string, string> {
    return this.book.blocked()
  }

  onBlockPeer (hook: BlockHook): () => void {
    return this.blocker.onBlock(hook)
  }
}

export function probeService<F> (init: ProbeInit<F>): (components: ProbeComponents) => Probe<F> {
  return (components) => new Probe(components, init)
}
