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
import { exchange } from '../net/exchange.ts'
import { Notifier } from '../net/peers.ts'
import { ConnectedPeers } from '../net/providers.ts'
import { RequestService, SERVICE_DEFAULTS, resolveSettings } from '../net/service.ts'
import { linked } from '../net/signals.ts'
import { ProbeMetrics } from './metrics.ts'
import { PROBE_NONE, PROBE_REQUEST, ProbeViolation, parseProbeResponse, probeHandler, probeProtocolId, probeResponse } from './protocol.ts'
import { Sample, maxFaults } from './sample.ts'
import type { ReplyOutcome } from './metrics.ts'
import type { FloorPolicy } from './sample.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { RequestHandler } from '../net/server.ts'
import type { ServiceComponents, ServiceInit } from '../net/service.ts'
import type { PeerId } from '@libp2p/interface'

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

export type ProbeComponents = ServiceComponents

/**
 * Options of the probe. Of the service options it takes the protocol prefix,
 * inbound limits (defaults: 4 concurrent per peer, 20/s, burst 40),
 * `readTimeout` (5000 ms; also the time to write an answer), stream limits
 * (32 / 32) and `blockTag` (`qmdb-probe-blocked`).
 */
export interface ProbeInit<F> extends Pick<ServiceInit, 'protocolPrefix' | 'inbound' | 'readTimeout' | 'maxInboundStreams' | 'maxOutboundStreams' | 'runOnLimitedConnection' | 'blockTag'> {
  /** Chain name: one protocol-id segment. */
  chain: string
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
}

interface Subscriber<F> {
  resolve(f: F): void
  reject(err: Error): void
}

export type ProbePhase = 'discovery' | 'service'

export class Probe<F> extends RequestService<ProbeMetrics> {
  readonly protocol: string
  private readonly init: ProbeInit<F>
  private readonly scheme: FinalizationScheme<F>
  private readonly sample: Sample<F>
  private readonly subscribers = new Set<Subscriber<F>>()
  /** Wakes discovery: a floor, a subscriber leaving, a stop. */
  private readonly wake = new Notifier()
  private readonly handler: RequestHandler<true>
  private connected: ConnectedPeers | undefined
  private source: LatestFinalizationSource<F> | undefined
  private currentPhase: ProbePhase = 'discovery'
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
    const readTimeout = init.readTimeout ?? 5000
    super(components, resolveSettings(init, {
      ...SERVICE_DEFAULTS,
      inbound: { maxConcurrent: 4, maxTotal: Infinity, rate: { perSecond: 20, burst: 40 } },
      readTimeout,
      serveTimeout: readTimeout,
      initialLatency: 0,
      maxInboundStreams: 32,
      maxOutboundStreams: 32,
      blockTag: 'qmdb-probe-blocked'
    }), 'probe', new ProbeMetrics(components.metrics))
    this.init = init
    this.scheme = init.scheme
    this.protocol = probeProtocolId(this.settings.protocolPrefix, init.chain)
    this.sample = new Sample(init.scheme, init.policy ?? 'agreement')
    this.handler = probeHandler(async () => this.answer())
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

  protected async starting (): Promise<void> {
    this.stopped = false
    await this.handle(this.protocol, this.handler, () => { this.answered++ })
    if (this.init.participants === undefined) {
      this.connected = new ConnectedPeers(this.protocol, this.components, this.log)
      await this.connected.start()
    }
    this.kick()
  }

  protected async stopping (): Promise<void> {
    this.stopped = true
    this.wake.notify()
    this.connected?.close()
    this.connected = undefined
    const waiting = [...this.subscribers]
    this.subscribers.clear()
    for (const s of waiting) { s.reject(new ProbeError('Stopped', 'the probe stopped')) }
    await this.discovering
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
    const signal = this.shutdown
    if (this.discovering !== undefined || signal === undefined || !this.seeking()) { return }
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
      runOnLimitedConnection: this.settings.runOnLimitedConnection,
      metrics: this.metrics
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
}

export function probeService<F> (init: ProbeInit<F>): (components: ProbeComponents) => Probe<F> {
  return (components) => new Probe(components, init)
}
