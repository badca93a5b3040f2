/**
 * The marshal libp2p service (following @libp2p/ping and @libp2p/fetch):
 * serves local blocks and finalizations on `/<prefix>/<chain>/marshal/1.0.0`
 * and fetches missing ones from peers for its `Marshal`.
 *
 * ```ts
 * const node = await createLibp2p({ ..., services: {
 *   identify: identify(),
 *   marshal: marshalService({ chain: 'main', codec, scheme, datastore })
 * } })
 * const { marshal } = node.services.marshal
 * await marshal.start({ genesis })   // or { floor } from the probe
 * marshal.attach(reporter)           // ordered finalized blocks with acks
 * await marshal.finalized(cert)      // from consensus: fills gaps from peers
 * ```
 *
 * Ownership: unless `init.marshal` is given, the service builds a
 * `BlockStore` (on `init.store`, or `init.datastore`, or memory) and a
 * `Marshal` whose fetcher is this service's client, and stops that marshal
 * when the service stops (a stopped marshal does not restart: make a new
 * node). A marshal built elsewhere can use `service.fetcher` as its fetcher
 * and be served with `attach`.
 *
 * Gossip is optional and not a dependency: feed blocks and certificates
 * received on any channel to `onBlock` / `onFinalization`, and give
 * `setBroadcast` the function that publishes blocks this node disseminates.
 * On gossipsub, `admitBlock` is the blocks topic's validator: nothing
 * undecodable, outside the plausible height window or (past the first few
 * heights above the finalized tip) linked to nothing known is relayed or
 * stored.
 *
 * The service owns what is per peer: latency scores, the block list, and
 * the inbound and outbound limits.
 */

import { serviceCapabilities, setMaxListeners } from '@libp2p/interface'
import { MemoryDatastore } from 'datastore-core'
import { PeerBlocker } from '../p2p/blocking.ts'
import { PeerLimiter } from '../p2p/limits.ts'
import { ResolverMetrics } from '../p2p/metrics.ts'
import { Notifier, PeerBook } from '../p2p/peers.ts'
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PROTOCOL_PREFIX } from '../p2p/protocol.ts'
import { ConnectedPeers, FunctionPeers, StaticPeers } from '../p2p/providers.ts'
import { Kv } from '../storage/kv.ts'
import { MarshalClient } from './client.ts'
import { Marshal } from './marshal.ts'
import { marshalProtocolId } from './protocol.ts'
import { MarshalServer } from './server.ts'
import { BlockStore } from './store.ts'
import type { Fetched, LatestFinalization, MarshalClientContext } from './client.ts'
import type { MarshalReader } from './server.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { Admission } from '../p2p/admission.ts'
import type { BlockHook } from '../p2p/blocking.ts'
import type { PeerProvider, PeerSelection } from '../p2p/client.ts'
import type { RateLimit } from '../p2p/limits.ts'
import type { ComponentLogger, Logger, Metrics, PeerId, PeerStore, Startable } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Datastore } from 'interface-datastore'

export interface MarshalServiceComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
  logger: ComponentLogger
  metrics?: Metrics
}

export interface MarshalServiceInit<B extends MarshalBlock, F> {
  /** Chain name: one protocol-id segment `[A-Za-z0-9._-]{1,64}`. */
  chain: string
  /** First protocol-id segment(s). Default `qmdb`. */
  protocolPrefix?: string
  codec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  /** Serve this marshal instead of building one (it is not stopped with the service). */
  marshal?: Marshal<B, F>
  /** Store of the marshal the service builds. Default: a store on `datastore`. */
  store?: BlockStore<B, F>
  /** Datastore of the store the service builds. Default: in memory. */
  datastore?: Datastore
  /** Key prefix of that store. Default `/marshal/<chain>`. */
  storePrefix?: string
  /** Options of the marshal the service builds. */
  maxPendingAcks?: number
  backfillBatch?: number
  /** `admitBlock` ignores gossiped blocks more than this many heights above the finalized tip. Default 64. */
  maxBlocksAhead?: number
  /** Above this many heights past the finalized tip, `admitBlock` ignores a block whose parent is not stored here (unless this node waits for it). Default 4. */
  maxUnlinkedAhead?: number
  /** Publishes blocks the built marshal disseminates (same as calling `setBroadcast`). */
  broadcast?(bytes: Uint8Array): void
  /** Which peers to fetch from. Default `'connected'` (needs identify). */
  peers?: PeerSelection
  /** Largest range served per request. Default 128. */
  maxServeBlocks?: number
  /** Largest range asked per request. Default 128. */
  maxBlocksPerRequest?: number
  /** Largest response frame, sent or accepted. Default 4 MiB. */
  maxResponseBytes?: number
  /** Per-peer inbound limits. Defaults: 16 concurrent streams, 200/s, burst 400. */
  inbound?: { maxConcurrent?: number, rate?: RateLimit }
  /** Per-peer outbound limits. Defaults: 8 concurrent requests, 100/s, burst 200. */
  outbound?: { maxConcurrent?: number, rate?: RateLimit }
  /** Time a peer has to send its request frame (ms). Default 5000. */
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
  /** libp2p stream limits per connection. Defaults 64 / 64. */
  maxInboundStreams?: number
  maxOutboundStreams?: number
  runOnLimitedConnection?: boolean
  /** Peer-store tag put on blocked peers. Default `qmdb-marshal-blocked`. */
  blockTag?: string
  /** Also close connections to a blocked peer. Default false. */
  disconnectBlocked?: boolean
}

const DEFAULTS = {
  maxServeBlocks: 128,
  maxBlocksPerRequest: 128,
  inboundConcurrent: 16,
  inboundRate: { perSecond: 200, burst: 400 },
  outboundConcurrent: 8,
  outboundRate: { perSecond: 100, burst: 200 },
  readTimeout: 5000,
  serveTimeout: 30_000,
  timeout: 5000,
  retryDelay: 100,
  maxRetryDelay: 2000,
  initialLatency: 1000,
  pollInterval: 1000,
  maxStreams: 64,
  maxBlocksAhead: 64,
  maxUnlinkedAhead: 4
}

/** A provider that is replaced on every start (a closed provider cannot be reopened). */
class SwitchablePeers implements PeerProvider {
  current: PeerProvider | undefined
  private readonly idle = new Notifier()

  peers (): PeerId[] {
    return this.current?.peers() ?? []
  }

  async changed (ms: number, signal: AbortSignal): Promise<void> {
    await (this.current === undefined ? this.idle.wait(ms, signal) : this.current.changed(ms, signal))
  }

  unsupported (peer: PeerId): void {
    this.current?.unsupported(peer)
  }

  set (peers: PeerId[]): void {
    if (this.current?.set === undefined) { throw new TypeError('this service discovers its peers; it has no fixed list to replace') }
    this.current.set(peers)
  }

  close (): void {
    this.current?.close()
    this.current = undefined
    this.idle.notify()
  }
}

export class MarshalService<B extends MarshalBlock, F> implements Startable {
  readonly protocol: string
  readonly chain: string
  /** The fetcher of this service (give it to a marshal built elsewhere). */
  readonly fetcher: MarshalClient<B, F>
  /** The store of the marshal the service built (undefined when `init.marshal` was given). */
  readonly store: BlockStore<B, F> | undefined
  private readonly components: MarshalServiceComponents
  private readonly init: MarshalServiceInit<B, F>
  private readonly log: Logger
  private readonly metrics: ResolverMetrics
  private readonly server: MarshalServer<B, F>
  private readonly book: PeerBook
  private readonly outbound: PeerLimiter
  private readonly slots = new Notifier()
  private readonly provider = new SwitchablePeers()
  private readonly blocker: PeerBlocker
  private readonly ownMarshal: boolean
  private current: Marshal<B, F>
  private broadcastFn: ((bytes: Uint8Array) => void) | undefined
  /** blocks `admitBlock` accepted, decoded, until gossipsub delivers them (weak: nothing stays behind) */
  private readonly admitted = new WeakMap<Uint8Array, B>()
  private controller: AbortController | undefined

  constructor (components: MarshalServiceComponents, init: MarshalServiceInit<B, F>) {
    this.components = components
    this.init = init
    this.chain = init.chain
    this.protocol = marshalProtocolId(init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX, init.chain)
    this.log = components.logger.forComponent('libp2p:qmdb:marshal')
    this.metrics = new ResolverMetrics(components.metrics, 'marshal')
    this.server = buildServer(init, this.metrics, this.log)
    this.book = new PeerBook({ initialLatency: init.initialLatency ?? DEFAULTS.initialLatency })
    this.blocker = new PeerBlocker({
      book: this.book,
      components,
      tag: this.init.blockTag ?? 'qmdb-marshal-blocked',
      disconnect: this.init.disconnectBlocked === true,
      onCount: n => { this.metrics.blockedPeers(n) },
      log: this.log
    })
    this.outbound = new PeerLimiter(init.outbound?.rate ?? DEFAULTS.outboundRate, init.outbound?.maxConcurrent ?? DEFAULTS.outboundConcurrent)
    this.fetcher = buildClient(this.protocol, init, this.provider, {
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
    })
    this.ownMarshal = init.marshal === undefined
    if (init.marshal !== undefined) {
      this.store = undefined
      this.current = init.marshal
    } else {
      this.store = init.store ?? new BlockStore(new Kv(init.datastore ?? new MemoryDatastore()), init.storePrefix ?? `/marshal/${init.chain}`, init.codec, init.scheme)
      this.current = new Marshal({
        store: this.store,
        codec: init.codec,
        scheme: init.scheme,
        fetcher: this.fetcher,
        maxPendingAcks: init.maxPendingAcks,
        backfillBatch: init.backfillBatch,
        broadcast: (bytes) => { this.broadcastFn?.(bytes) },
        log: this.log
      })
    }
    this.broadcastFn = init.broadcast
    this.server.attach(this.current)
  }

  readonly [Symbol.toStringTag] = '@libp2p-qmdb/marshal'
  readonly [serviceCapabilities]: string[] = ['@libp2p-qmdb/marshal']

  /** The marshal this service fills and serves. */
  get marshal (): Marshal<B, F> {
    return this.current
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    this.controller = new AbortController()
    setMaxListeners(Infinity, this.controller.signal)
    this.provider.current = this.makeProvider()
    await this.components.registrar.handle(this.protocol, async (stream, connection) => {
      await this.server.handle(stream, connection)
    }, {
      maxInboundStreams: this.init.maxInboundStreams ?? DEFAULTS.maxStreams,
      maxOutboundStreams: this.init.maxOutboundStreams ?? DEFAULTS.maxStreams,
      runOnLimitedConnection: this.init.runOnLimitedConnection ?? false
    })
  }

  async stop (): Promise<void> {
    const controller = this.controller
    if (controller === undefined) { return }
    this.controller = undefined
    controller.abort()
    this.slots.notify()
    this.provider.close()
    if (this.ownMarshal) { this.current.stop() }
    await this.components.registrar.unhandle(this.protocol)
  }

  private makeProvider (): PeerProvider {
    const peers = this.init.peers ?? 'connected'
    if (peers === 'connected') {
      const provider = new ConnectedPeers(this.protocol, this.components, this.log)
      provider.start().catch(err => { this.log.error('cannot track peers for %s: %s', this.protocol, (err as Error)?.message) })
      return provider
    }
    if (typeof peers === 'function') { return new FunctionPeers(peers) }
    return new StaticPeers(peers)
  }

  // ---- serving and gossip hooks -------------------------------------------------------

  /** Serve from `reader` instead (e.g. a marshal built elsewhere); `undefined` serves nothing. */
  attach (reader: MarshalReader<B, F> | undefined): void {
    this.server.attach(reader)
  }

  /**
   * The gossip topic validator of blocks, run before a block is relayed:
   * 'reject' for an oversized or undecodable message (the sender is
   * penalised); 'ignore' for a block outside the plausible height window
   * (at or below the finalized tip, or more than `maxBlocksAhead` above it,
   * or any block before the marshal knows its tip), and for one more than
   * `maxUnlinkedAhead` above the tip that links to nothing known: its parent
   * is not stored here and nothing here waits for it (a waiter means a
   * verified proposal or certificate named it). Near the tip an unlinked
   * block is accepted: gossip may deliver a child before its parent. An
   * ignored block is still fetched by digest when consensus needs it. Else
   * 'accept'; an accepted block is handed to `onBlock` without decoding it
   * again.
   */
  async admitBlock (bytes: Uint8Array): Promise<Admission> {
    if (bytes.length > this.init.codec.maxBytes) { return 'reject' }
    let block: B
    try {
      block = this.init.codec.decode(bytes)
    } catch {
      return 'reject'
    }
    const tip = this.current.finalizedTip
    if (tip < 0 || block.height <= tip || block.height > tip + (this.init.maxBlocksAhead ?? DEFAULTS.maxBlocksAhead)) { return 'ignore' }
    if (block.height > tip + (this.init.maxUnlinkedAhead ?? DEFAULTS.maxUnlinkedAhead) && !this.current.awaits(block.digest) && !(await this.current.hasBlock(block.parent))) { return 'ignore' }
    this.admitted.set(bytes, block)
    return 'accept'
  }

  /** A block received on a gossip channel (stored if it decodes; admitted by `admitBlock` if a validator runs). */
  async onBlock (bytes: Uint8Array): Promise<B | undefined> {
    const admitted = this.admitted.get(bytes)
    if (admitted !== undefined) {
      this.admitted.delete(bytes)
      await this.current.storeBlock(admitted)
      return admitted
    }
    if (bytes.length > this.init.codec.maxBytes) { return undefined }
    return this.current.receiveBlock(bytes)
  }

  /**
   * A finalization certificate received on a gossip channel: true iff it
   * decoded, verified and was recorded (its block and ancestors are then
   * fetched as needed).
   */
  async onFinalization (bytes: Uint8Array): Promise<boolean> {
    if (bytes.length > this.init.scheme.maxBytes) { return false }
    let f: F
    try {
      f = this.init.scheme.decode(bytes)
      if (!this.init.scheme.verify(f)) { return false }
    } catch {
      return false
    }
    try {
      await this.current.finalized(f)
      return true
    } catch (err) {
      this.log('finalization from gossip rejected: %s', (err as Error)?.message)
      return false
    }
  }

  /** Publish blocks this node disseminates through `fn` (e.g. a gossipsub topic). */
  setBroadcast (fn: ((bytes: Uint8Array) => void) | undefined): void {
    this.broadcastFn = fn
  }

  // ---- fetching -------------------------------------------------------------------------

  /** Some peer's verified latest finalization (retries until `signal` aborts). */
  async fetchLatest (options: { signal: AbortSignal }): Promise<Fetched<LatestFinalization<F>>> {
    return this.fetcher.fetchLatest(options)
  }

  /** Replace the peers asked (services configured with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    this.provider.set(peers)
  }

  // ---- peers ------------------------------------------------------------------------------

  /** Block `peer` for good: no more fetches go to it. */
  block (peer: PeerId, reason: string): void {
    this.blocker.block(peer, reason)
  }

  isBlocked (peer: PeerId): boolean {
    return this.book.isBlocked(peer.toString())
  }

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

function buildServer<B extends MarshalBlock, F> (init: MarshalServiceInit<B, F>, metrics: ResolverMetrics, log: Logger): MarshalServer<B, F> {
  return new MarshalServer({
    codec: init.codec,
    scheme: init.scheme,
    maxServeBlocks: init.maxServeBlocks ?? DEFAULTS.maxServeBlocks,
    maxResponseBytes: init.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    readTimeout: init.readTimeout ?? DEFAULTS.readTimeout,
    serveTimeout: init.serveTimeout ?? DEFAULTS.serveTimeout
  }, new PeerLimiter(init.inbound?.rate ?? DEFAULTS.inboundRate, init.inbound?.maxConcurrent ?? DEFAULTS.inboundConcurrent), metrics, log)
}

function buildClient<B extends MarshalBlock, F> (protocol: string, init: MarshalServiceInit<B, F>, provider: PeerProvider, ctx: MarshalClientContext): MarshalClient<B, F> {
  return new MarshalClient(ctx, {
    protocol,
    codec: init.codec,
    scheme: init.scheme,
    provider,
    timeout: init.timeout ?? DEFAULTS.timeout,
    retryDelay: init.retryDelay ?? DEFAULTS.retryDelay,
    maxRetryDelay: init.maxRetryDelay ?? DEFAULTS.maxRetryDelay,
    maxResponseBytes: init.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    maxBlocksPerRequest: init.maxBlocksPerRequest ?? DEFAULTS.maxBlocksPerRequest
  })
}

export function marshalService<B extends MarshalBlock, F> (init: MarshalServiceInit<B, F>): (components: MarshalServiceComponents) => MarshalService<B, F> {
  return (components) => new MarshalService(components, init)
}
