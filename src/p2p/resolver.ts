/**
 * The libp2p resolver services (following @libp2p/ping and @libp2p/fetch):
 * `standardResolver()` serves and fetches operation ranges and boundaries on
 * `/<prefix>/<chain>/<db>/sync/standard/1.0.0`; `compactResolver()` serves
 * and fetches database tips on `/<prefix>/<chain>/<db>/sync/compact/1.0.0`.
 * One protocol namespace per database name (`examples/serve-and-sync.ts`
 * shows a complete program).
 *
 * Serving: a handler is registered for every database declared in
 * `databases` (a name list, or a `DatabaseRegistry` shared by both
 * resolvers) so identify advertises it from the start, and for every
 * `attach`; until a source is attached, every request gets no-data.
 * Fetching: `source(db)` returns a `NetworkSource` (a sync `Source`) for a
 * declared database; `syncDatabase` gives it the kind's codec.
 *
 * Local mistakes throw `ConfigurationError` at once, naming the fix: an
 * undeclared database, a source that cannot serve the resolver's protocol,
 * `peers: 'connected'` without identify.
 *
 * The service owns what is per peer rather than per database: latency
 * scores, the block list, and the inbound and outbound limits.
 */

import { serviceCapabilities, setMaxListeners } from '@libp2p/interface'
import { CompactSource } from '../sync/compact-source.ts'
import { ConfigurationError } from '../sync/errors.ts'
import { PeerBlocker } from './blocking.ts'
import { NetworkSource } from './client.ts'
import { PeerLimiter } from './limits.ts'
import { ResolverMetrics } from './metrics.ts'
import { Notifier, PeerBook } from './peers.ts'
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PROTOCOL_PREFIX, checkDbName, protocolId } from './protocol.ts'
import { ConnectedPeers, FunctionPeers, StaticPeers } from './providers.ts'
import { DatabaseRegistry } from './registry.ts'
import { ResolverServer } from './server.ts'
import type { BlockHook } from './blocking.ts'
import type { ClientContext, NetworkSourceOptions, PeerProvider } from './client.ts'
import type { RateLimit } from './limits.ts'
import type { ResolverKind } from './protocol.ts'
import type { ServerConfig } from './server.ts'
import type { Source } from '../sync/source.ts'
import type { ComponentLogger, Logger, Metrics, PeerId, PeerStore, Startable } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

export interface QmdbResolverComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

export interface QmdbResolverInit {
  /** First protocol-id segment(s). Default `qmdb`. */
  protocolPrefix?: string
  /** Chain name, the segment after the prefix (as in the marshal and probe protocols). Default `default`. */
  chain?: string
  /**
   * The databases served and fetched: names, or a registry shared with the
   * other resolver. Serving starts with no-data until a source is attached;
   * `source(db)` refuses a name not declared here.
   */
  databases?: string[] | DatabaseRegistry
  /** Largest `maxOps` served; larger operations requests are answered with this many. Default 1024. */
  maxServeOps?: number
  /** Largest response frame, sent or accepted. Default 4 MiB. */
  maxResponseBytes?: number
  /**
   * Inbound limits. Per peer: 16 concurrent streams, 200/s, burst 400; over
   * all peers (every database of this resolver): 64 concurrent streams.
   * Excess streams are reset before being read.
   */
  inbound?: { maxConcurrent?: number, maxTotal?: number, rate?: RateLimit }
  /** Per-peer outbound limits. Defaults: 8 concurrent requests, 100/s, burst 200. */
  outbound?: { maxConcurrent?: number, rate?: RateLimit }
  /** Time a peer has to send its request frame (ms). Default 2000. */
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
  /** How often a source without progress logs why and emits `stall` (ms). Default 3000. */
  stallInterval?: number
  /** A source's waiting requests fail (`ServeError('Stalled')`) after this long without progress (ms). Default 120000. */
  stallTimeout?: number
  /** libp2p stream limits per connection for each protocol. Defaults 64 / 64. */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  runOnLimitedConnection?: boolean
  /** Peer-store tag put on blocked peers. Default `qmdb-blocked`. */
  blockTag?: string
  /** Also close connections to a blocked peer. Default false. */
  disconnectBlocked?: boolean
}

const DEFAULTS = {
  maxServeOps: 1024,
  inboundConcurrent: 16,
  inboundTotal: 64,
  inboundRate: { perSecond: 200, burst: 400 },
  outboundConcurrent: 8,
  outboundRate: { perSecond: 100, burst: 200 },
  readTimeout: 2000,
  serveTimeout: 30_000,
  timeout: 5000,
  retryDelay: 100,
  maxRetryDelay: 2000,
  initialLatency: 1000,
  pollInterval: 1000,
  stallInterval: 3000,
  stallTimeout: 120_000,
  maxStreams: 64,
  chain: 'default'
}

function serverConfig (init: QmdbResolverInit, kind: ResolverKind): ServerConfig {
  return {
    kind,
    maxServeOps: init.maxServeOps ?? DEFAULTS.maxServeOps,
    maxResponseBytes: init.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    readTimeout: init.readTimeout ?? DEFAULTS.readTimeout,
    serveTimeout: init.serveTimeout ?? DEFAULTS.serveTimeout
  }
}

/**
 * Whether libp2p was given a service with identify's capability, or
 * undefined when the components do not say (not libp2p's own container).
 */
function hasIdentify (components: QmdbResolverComponents): boolean | undefined {
  const all = (components as unknown as { components?: unknown }).components
  if (all === null || typeof all !== 'object') { return undefined }
  return Object.values(all).some(service => {
    const caps = (service as Record<symbol, unknown> | undefined)?.[serviceCapabilities]
    return Array.isArray(caps) && caps.includes('@libp2p/identify')
  })
}

export class QmdbResolver implements Startable {
  readonly kind: ResolverKind
  readonly prefix: string
  readonly chain: string
  /** The databases this resolver serves and fetches (shared when given as a registry). */
  readonly databases: DatabaseRegistry
  private unsubscribe: (() => void) | undefined
  private readonly components: QmdbResolverComponents
  private readonly init: QmdbResolverInit
  private readonly log: Logger
  private readonly metrics: ResolverMetrics
  private readonly server: ResolverServer
  private readonly book: PeerBook
  private readonly outbound: PeerLimiter
  private readonly slots = new Notifier()
  private readonly handled = new Set<string>()
  private readonly sources = new Set<NetworkSource>()
  private readonly blocker: PeerBlocker
  private controller: AbortController | undefined
  private readonly ctx: ClientContext

  constructor (components: QmdbResolverComponents, init: QmdbResolverInit, kind: ResolverKind) {
    this.components = components
    this.init = init
    this.kind = kind
    this.prefix = init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX
    this.chain = init.chain ?? DEFAULTS.chain
    protocolId(this.prefix, this.chain, 'db', kind) // validates prefix and chain at construction
    this.databases = init.databases instanceof DatabaseRegistry ? init.databases : new DatabaseRegistry(init.databases ?? [])
    this[serviceCapabilities] = [`@libp2p-qmdb/${kind}-resolver`]
    this.log = components.logger.forComponent(`libp2p:qmdb:${kind}-resolver`)
    this.metrics = new ResolverMetrics(components.metrics, kind)
    const inbound = new PeerLimiter(init.inbound?.rate ?? DEFAULTS.inboundRate, init.inbound?.maxConcurrent ?? DEFAULTS.inboundConcurrent, init.inbound?.maxTotal ?? DEFAULTS.inboundTotal)
    this.server = new ResolverServer(serverConfig(init, kind), db => this.servingSource(db), inbound, this.metrics, this.log)
    this.book = new PeerBook({ initialLatency: init.initialLatency ?? DEFAULTS.initialLatency })
    this.blocker = new PeerBlocker({
      book: this.book,
      components,
      tag: this.init.blockTag ?? 'qmdb-blocked',
      disconnect: this.init.disconnectBlocked === true,
      onCount: n => { this.metrics.blockedPeers(n) },
      log: this.log
    })
    this.outbound = new PeerLimiter(init.outbound?.rate ?? DEFAULTS.outboundRate, init.outbound?.maxConcurrent ?? DEFAULTS.outboundConcurrent)
    this.ctx = {
      kind,
      self: components.peerId,
      connectionManager: components.connectionManager,
      book: this.book,
      outbound: this.outbound,
      slots: this.slots,
      metrics: this.metrics,
      log: this.log,
      shutdown: () => this.controller?.signal,
      block: (peer, reason) => { this.block(peer, reason) },
      runOnLimitedConnection: init.runOnLimitedConnection ?? false,
      pollInterval: init.pollInterval ?? DEFAULTS.pollInterval
    }
  }

  readonly [Symbol.toStringTag] = '@libp2p-qmdb/resolver'
  readonly [serviceCapabilities]: string[]

  /** The protocol id for database `db`. */
  protocol (db: string): string {
    return protocolId(this.prefix, this.chain, db, this.kind)
  }

  /** The source answering `db` here: the standard protocol cannot be answered by a compact database's tip. */
  private servingSource (db: string): Source | undefined {
    const source = this.databases.source(db)
    return this.kind === 'standard' && source instanceof CompactSource ? undefined : source
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    this.controller = new AbortController()
    setMaxListeners(Infinity, this.controller.signal)
    this.unsubscribe = this.databases.onDeclare(db => {
      this.register(db).catch(err => { this.log.error('cannot register %s: %s', db, (err as Error)?.message) })
    })
    for (const db of this.databases.names()) { await this.register(db) }
  }

  async stop (): Promise<void> {
    const controller = this.controller
    if (controller === undefined) { return }
    this.controller = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
    controller.abort()
    this.slots.notify()
    for (const source of [...this.sources]) { source.close() }
    this.sources.clear()
    const protocols = [...this.handled]
    this.handled.clear()
    for (const db of protocols) { await this.components.registrar.unhandle(this.protocol(db)) }
  }

  private async register (db: string): Promise<void> {
    if (this.handled.has(db)) { return }
    this.handled.add(db)
    const max = this.init.maxInboundStreams ?? DEFAULTS.maxStreams
    await this.components.registrar.handle(this.protocol(db), async (stream, connection) => {
      await this.server.handle(db, stream, connection)
    }, {
      maxInboundStreams: max,
      maxOutboundStreams: this.init.maxOutboundStreams ?? DEFAULTS.maxStreams,
      runOnLimitedConnection: this.init.runOnLimitedConnection ?? false
    })
  }

  // ---- serving ------------------------------------------------------------

  /**
   * Serve database `db` from `source` (replacing any previous source),
   * declaring it if needed. With a shared registry, every resolver sharing it
   * serves the source. A `CompactSource` is refused by the standard resolver.
   */
  async attach (db: string, source: Source): Promise<void> {
    checkDbName(db)
    if (this.kind === 'standard' && source instanceof CompactSource) {
      throw new ConfigurationError('WrongSource', `the standard resolver serves full databases; attach ${db}'s CompactSource to the compact resolver`)
    }
    this.databases.serve(db, source)
    if (this.controller !== undefined) { await this.register(db) }
  }

  /** Stop serving `db`: requests get no-data until the next `attach`. */
  detach (db: string): void {
    this.databases.stopServing(db)
  }

  isAttached (db: string): boolean {
    return this.servingSource(db) !== undefined
  }

  // ---- fetching -----------------------------------------------------------

  /**
   * A `Source` fetching database `db` from peers. Requests on the compact
   * resolver must have the compact shape (`Boundary{size, size-1}` or, for
   * size 1, `Operations{1, 0, 1}`).
   */
  source (db: string, options: NetworkSourceOptions = {}): NetworkSource {
    this.databases.require(db)
    if ((options.peers ?? 'connected') === 'connected' && hasIdentify(this.components) === false) {
      throw new ConfigurationError('MissingIdentify', 'peers: \'connected\' finds serving peers through identify: add identify() from @libp2p/identify to the node\'s services, or pass peers: [peerId, ...]')
    }
    const protocol = this.protocol(db)
    const source = new NetworkSource(db, this.ctx, {
      protocol,
      codec: options.codec,
      provider: this.provider(protocol, options),
      timeout: options.timeout ?? this.init.timeout ?? DEFAULTS.timeout,
      retryDelay: options.retryDelay ?? this.init.retryDelay ?? DEFAULTS.retryDelay,
      maxRetryDelay: options.maxRetryDelay ?? this.init.maxRetryDelay ?? DEFAULTS.maxRetryDelay,
      maxResponseBytes: options.maxResponseBytes ?? this.init.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      stallInterval: options.stallInterval ?? this.init.stallInterval ?? DEFAULTS.stallInterval,
      stallTimeout: options.stallTimeout ?? this.init.stallTimeout ?? DEFAULTS.stallTimeout
    }, () => { this.sources.delete(source) })
    this.sources.add(source)
    return source
  }

  private provider (protocol: string, options: NetworkSourceOptions): PeerProvider {
    const peers = options.peers ?? 'connected'
    if (peers === 'connected') {
      const provider = new ConnectedPeers(protocol, this.components, this.log)
      provider.start().catch(err => { this.log.error('cannot track peers for %s: %s', protocol, (err as Error)?.message) })
      return provider
    }
    if (typeof peers === 'function') { return new FunctionPeers(peers) }
    return new StaticPeers(peers)
  }

  // ---- peers --------------------------------------------------------------

  /**
   * Block `peer` for good: no more fetches go to it. Tags it in the peer
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
  onBlock (hook: BlockHook): () => void {
    return this.blocker.onBlock(hook)
  }

  /** Latency score (ms moving average) of `peer`. */
  score (peer: PeerId): number {
    return this.book.score(peer.toString())
  }
}

/** The standard resolver: operation ranges and boundaries of full databases. */
export function standardResolver (init: QmdbResolverInit = {}): (components: QmdbResolverComponents) => QmdbResolver {
  return (components) => new QmdbResolver(components, init, 'standard')
}

/** The compact resolver: the tip (last commit and pins) of full and compact databases. */
export function compactResolver (init: QmdbResolverInit = {}): (components: QmdbResolverComponents) => QmdbResolver {
  return (components) => new QmdbResolver(components, init, 'compact')
}
