/**
 * The shell of every request/response libp2p service of a node (the
 * resolvers, marshal, probe), in the style of `@libp2p/ping` and
 * `@libp2p/fetch`: resolved options with per-service defaults, start/stop
 * (`Startable`), protocol handlers, and what the service owns per peer —
 * latency scores, the block list, inbound and outbound limits, metrics.
 * The services add only their protocol: codecs, verification, and what
 * they serve from.
 *
 * Invariants: every handler registered through `handle` is unregistered by
 * `stop`; `shutdown` is aborted by `stop`, which ends every client loop of
 * the service; a peer blocked for bad data stays blocked for the service's
 * lifetime, one struck out by the strike rule (`src/net/peers.ts`) for a
 * bounded time.
 */

import { setMaxListeners } from '@libp2p/interface'
import { PeerBlocker } from './blocking.ts'
import { RequestClient } from './client.ts'
import { PeerLimiter } from './limits.ts'
import { ServiceMetrics } from './metrics.ts'
import { DEFAULT_STRIKES, Notifier, PeerBook } from './peers.ts'
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PROTOCOL_PREFIX } from './protocol.ts'
import { peerProvider } from './providers.ts'
import { Rechecks } from './recheck.ts'
import { RequestServer } from './server.ts'
import type { BlockHook } from './blocking.ts'
import type { ClientContext } from './client.ts'
import type { RateLimit } from './limits.ts'
import type { StrikeRule } from './peers.ts'
import type { PeerProvider, PeerSelection } from './providers.ts'
import type { RequestHandler } from './server.ts'
import type { ComponentLogger, Logger, Metrics, PeerId, PeerStore, Startable } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export interface ServiceComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

/** Options every request/response service takes (defaults per service: see its init type). */
export interface ServiceInit {
  /** First protocol-id segment(s). Default `qmdb`. */
  protocolPrefix?: string
  /** Largest response frame, sent or accepted. Default 4 MiB. */
  maxResponseBytes?: number
  /**
   * Inbound limits, per peer (concurrent streams, rate) and over all peers
   * (`maxTotal` concurrent streams). Excess streams are reset before being read.
   */
  inbound?: { maxConcurrent?: number, maxTotal?: number, rate?: RateLimit }
  /** Per-peer outbound limits. Defaults: 8 concurrent requests, 100/s, burst 200. */
  outbound?: { maxConcurrent?: number, rate?: RateLimit }
  /** Time a peer has to send its request frame (ms). */
  readTimeout?: number
  /** Time to produce and write an answer (ms). Default 30000. */
  serveTimeout?: number
  /** Per-request deadline when fetching (ms). Default 5000. */
  timeout?: number
  /** Retry back-off: first delay and cap (ms). Defaults 100 and 2000. */
  retryDelay?: number
  maxRetryDelay?: number
  /** Latency score of a peer never measured (ms). Default 1000. */
  initialLatency?: number
  /** How often a waiting fetch re-checks for peers (ms). Default 1000. */
  pollInterval?: number
  /** libp2p stream limits per connection for each protocol. Defaults 64 / 64. */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  runOnLimitedConnection?: boolean
  /** Peer-store tag put on blocked peers. */
  blockTag?: string
  /** Also close connections to a blocked peer. Default false. */
  disconnectBlocked?: boolean
  /**
   * The strike rule (`src/net/peers.ts`): `limit` requests in a row that a
   * peer timed out on or had no data for, while another peer answered them,
   * block it for `blockMs`, doubling per strike-out up to `maxBlockMs`.
   * Defaults 3, 30 s, 10 min; `limit: 0` turns it off; `noData: false`
   * counts only timeouts (marshal's default). A peer that timed out on a
   * stream it accepted is asked that request again in the background, at
   * most every `recheckMs` (default 10 s), `maxRechecks` (default 2) at once
   * (`src/net/recheck.ts`); `recheckMs: 0` turns that off.
   */
  strikes?: Partial<StrikeRule>
}

/** Every option resolved. */
export interface ServiceSettings {
  protocolPrefix: string
  maxResponseBytes: number
  inbound: { maxConcurrent: number, maxTotal: number, rate: RateLimit }
  outbound: { maxConcurrent: number, rate: RateLimit }
  readTimeout: number
  serveTimeout: number
  timeout: number
  retryDelay: number
  maxRetryDelay: number
  initialLatency: number
  pollInterval: number
  maxInboundStreams: number
  maxOutboundStreams: number
  runOnLimitedConnection: boolean
  blockTag: string
  disconnectBlocked: boolean
  strikes: StrikeRule
}

/** The defaults shared by the services; each overrides what differs. */
export const SERVICE_DEFAULTS: ServiceSettings = {
  protocolPrefix: DEFAULT_PROTOCOL_PREFIX,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
  inbound: { maxConcurrent: 16, maxTotal: Infinity, rate: { perSecond: 200, burst: 400 } },
  outbound: { maxConcurrent: 8, rate: { perSecond: 100, burst: 200 } },
  readTimeout: 5000,
  serveTimeout: 30_000,
  timeout: 5000,
  retryDelay: 100,
  maxRetryDelay: 2000,
  initialLatency: 1000,
  pollInterval: 1000,
  maxInboundStreams: 64,
  maxOutboundStreams: 64,
  runOnLimitedConnection: false,
  blockTag: 'qmdb-blocked',
  disconnectBlocked: false,
  strikes: DEFAULT_STRIKES
}

/** The entries of `o` that are set (among `keys` when given). */
function defined<T extends object> (o: T | undefined, keys?: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o ?? {})) {
    if (v !== undefined && (keys === undefined || keys.includes(k))) { out[k] = v }
  }
  return out as Partial<T>
}

/** Durations (ms) that must be positive: a zero poll interval or timeout would spin or fail every request at once. */
const DURATIONS = ['readTimeout', 'serveTimeout', 'timeout', 'retryDelay', 'maxRetryDelay', 'pollInterval'] as const
/** Counts and sizes that must be whole numbers ≥ 1. */
const COUNTS = ['maxResponseBytes', 'maxInboundStreams', 'maxOutboundStreams'] as const

/**
 * `init` over `defaults`, option by option (an option left undefined keeps
 * its default). A value that cannot work is a `RangeError` naming the
 * option, at construction rather than as a spinning loop or a silent
 * refusal later; rate limits and concurrency are checked by `PeerLimiter`.
 */
export function resolveSettings (init: ServiceInit, defaults: ServiceSettings): ServiceSettings {
  const settings: ServiceSettings = {
    ...defaults,
    ...defined(init, Object.keys(defaults)),
    inbound: { ...defaults.inbound, ...defined(init.inbound) },
    outbound: { ...defaults.outbound, ...defined(init.outbound) },
    strikes: { ...defaults.strikes, ...defined(init.strikes) }
  }
  for (const key of DURATIONS) {
    const v = settings[key]
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) { throw new RangeError(`${key} must be a finite number of ms > 0, got ${String(v)}`) }
  }
  for (const key of COUNTS) {
    const v = settings[key]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) { throw new RangeError(`${key} must be a whole number >= 1, got ${String(v)}`) }
  }
  const { limit, blockMs, maxBlockMs, recheckMs, maxRechecks } = settings.strikes
  if (!(Number.isFinite(recheckMs) && recheckMs >= 0)) { throw new RangeError(`strikes.recheckMs must be a finite number of ms >= 0, got ${String(recheckMs)}`) }
  if (!Number.isSafeInteger(maxRechecks) || maxRechecks < 0) { throw new RangeError(`strikes.maxRechecks must be a whole number >= 0, got ${String(maxRechecks)}`) }
  if (!Number.isSafeInteger(limit) || limit < 0) { throw new RangeError(`strikes.limit must be a whole number >= 0, got ${String(limit)}`) }
  if (!(blockMs > 0) || !Number.isFinite(blockMs) || !(maxBlockMs >= blockMs) || !Number.isFinite(maxBlockMs)) {
    throw new RangeError(`strikes.blockMs must be a finite number of ms > 0 and maxBlockMs at least that, got ${String(blockMs)} and ${String(maxBlockMs)}`)
  }
  if (settings.maxRetryDelay < settings.retryDelay) { throw new RangeError(`maxRetryDelay (${settings.maxRetryDelay}) is below retryDelay (${settings.retryDelay})`) }
  if (typeof settings.initialLatency !== 'number' || !(settings.initialLatency >= 0) || !Number.isFinite(settings.initialLatency)) {
    throw new RangeError(`initialLatency must be a finite number of ms >= 0, got ${String(settings.initialLatency)}`)
  }
  return settings
}

export abstract class RequestService<M extends ServiceMetrics = ServiceMetrics> implements Startable {
  protected readonly components: ServiceComponents
  protected readonly settings: ServiceSettings
  protected readonly log: Logger
  protected readonly metrics: M
  protected readonly book: PeerBook
  protected readonly blocker: PeerBlocker
  protected readonly server: RequestServer
  /** Outbound limits and the notifier of freed slots, shared by the service's clients. */
  protected readonly outbound: PeerLimiter
  protected readonly slots = new Notifier()
  /** Stallers asked again (the strike rule's second half), shared by the service's clients. */
  private readonly rechecks: Rechecks<PeerId>
  private readonly handled = new Set<string>()
  private controller: AbortController | undefined

  /** `name` names the log component (`libp2p:qmdb:<name>`). */
  constructor (components: ServiceComponents, settings: ServiceSettings, name: string, metrics: M) {
    this.components = components
    this.settings = settings
    this.log = components.logger.forComponent(`libp2p:qmdb:${name}`)
    this.metrics = metrics
    this.book = new PeerBook({ initialLatency: settings.initialLatency, strikes: settings.strikes })
    this.rechecks = new Rechecks(this.book, settings.strikes, (peer, reason, ms) => { this.blocker.struck(peer, reason, ms) })
    metrics.countBlocked(() => this.book.blockedCount)
    this.blocker = new PeerBlocker({
      book: this.book,
      components,
      tag: settings.blockTag,
      disconnect: settings.disconnectBlocked,
      log: this.log
    })
    const { inbound, outbound } = settings
    this.server = new RequestServer(settings, new PeerLimiter(inbound.rate, inbound.maxConcurrent, inbound.maxTotal), metrics, this.log)
    this.outbound = new PeerLimiter(outbound.rate, outbound.maxConcurrent)
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  /** Aborted when the service stops; undefined while it is not running. */
  protected get shutdown (): AbortSignal | undefined {
    return this.controller?.signal
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    this.controller = new AbortController()
    setMaxListeners(Infinity, this.controller.signal)
    this.rechecks.start()
    await this.starting()
  }

  async stop (): Promise<void> {
    const controller = this.controller
    if (controller === undefined) { return }
    this.controller = undefined
    controller.abort()
    this.rechecks.stop()
    this.slots.notify()
    await this.stopping()
    const protocols = [...this.handled]
    this.handled.clear()
    for (const protocol of protocols) { await this.components.registrar.unhandle(protocol) }
  }

  /** What the service does after its shutdown signal exists (register handlers, start discovery). */
  protected async starting (): Promise<void> {}

  /** What the service does after its shutdown signal aborted, before its handlers are unregistered. */
  protected async stopping (): Promise<void> {}

  /** Serve `protocol` with `handler` (once per protocol until `stop`); `answered` is told of every answer sent. */
  protected async handle<Req> (protocol: string, handler: RequestHandler<Req>, answered?: () => void): Promise<void> {
    if (this.handled.has(protocol)) { return }
    await this.components.registrar.handle(protocol, async (stream, connection) => {
      if (await this.server.handle(stream, connection, handler, this.shutdown)) { answered?.() }
    }, {
      maxInboundStreams: this.settings.maxInboundStreams,
      maxOutboundStreams: this.settings.maxOutboundStreams,
      runOnLimitedConnection: this.settings.runOnLimitedConnection
    })
    // only once registered: a failed registration (another owner's handler) is not ours to unhandle at stop
    this.handled.add(protocol)
  }

  /** The peers to ask on `protocol` for `selection`. */
  protected peerProvider (protocol: string, selection: PeerSelection): PeerProvider {
    return peerProvider(selection, protocol, this.components, this.log)
  }

  /** A client of this service on `protocol` asking `provider`'s peers (`overrides` per client). */
  protected client (protocol: string, provider: PeerProvider, overrides: Partial<Pick<ServiceSettings, 'timeout' | 'retryDelay' | 'maxRetryDelay' | 'maxResponseBytes'>> = {}): RequestClient {
    const s = this.settings
    return new RequestClient(this.clientContext(), {
      protocol,
      provider,
      timeout: overrides.timeout ?? s.timeout,
      retryDelay: overrides.retryDelay ?? s.retryDelay,
      maxRetryDelay: overrides.maxRetryDelay ?? s.maxRetryDelay,
      maxResponseBytes: overrides.maxResponseBytes ?? s.maxResponseBytes
    })
  }

  private clientContext (): ClientContext {
    return {
      self: this.components.peerId,
      connectionManager: this.components.connectionManager,
      book: this.book,
      outbound: this.outbound,
      slots: this.slots,
      metrics: this.metrics,
      log: this.log,
      shutdown: () => this.shutdown,
      block: (peer, reason) => { this.block(peer, reason) },
      struck: (peer, reason, ms) => { this.blocker.struck(peer, reason, ms) },
      rechecks: this.rechecks,
      runOnLimitedConnection: this.settings.runOnLimitedConnection,
      pollInterval: this.settings.pollInterval
    }
  }

  // ---- peers ------------------------------------------------------------------------------

  /**
   * Block `peer` for good (unlike the strike rule's bounded blocks): no more requests go to it. Tags it in the peer
   * store (`blockTag`) and, if configured, closes its connections.
   */
  block (peer: PeerId, reason: string): void {
    this.blocker.block(peer, reason)
  }

  isBlocked (peer: PeerId): boolean {
    return this.book.isBlocked(peer.toString())
  }

  /** Blocked peer ids and why they were blocked. */
  blockedPeers (): Map<string, string> {
    return this.book.blocked()
  }

  /** Be told whenever a peer gets blocked; returns an unsubscribe function. */
  onBlockPeer (hook: BlockHook): () => void {
    return this.blocker.onBlock(hook)
  }

  /** Latency score (ms moving average) of `peer`. */
  score (peer: PeerId): number {
    return this.book.score(peer.toString())
  }
}
