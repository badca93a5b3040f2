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
 * The service shell (`net/service.ts`) owns what is per peer: latency
 * scores, the block list, the inbound and outbound limits, metrics, and the
 * peer accessors (`block`, `blockedPeers`, `onBlockPeer`, `score`).
 */

import { serviceCapabilities } from '@libp2p/interface'
import { MemoryDatastore } from 'datastore-core'
import { ServiceMetrics } from '../net/metrics.ts'
import { SwitchablePeers } from '../net/providers.ts'
import { RequestService, SERVICE_DEFAULTS, resolveSettings } from '../net/service.ts'
import { Kv } from '../storage/kv.ts'
import { MarshalClient } from './client.ts'
import { GOSSIP_LIMITS, Marshal } from './marshal.ts'
import { marshalProtocolId } from './protocol.ts'
import { MarshalServer } from './server.ts'
import { BlockStore } from './store.ts'
import type { Fetched, LatestFinalization } from './client.ts'
import type { MarshalReader } from './server.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { Admission } from '../net/admission.ts'
import type { PeerSelection } from '../net/providers.ts'
import type { ServiceComponents, ServiceInit } from '../net/service.ts'
import type { PeerId } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export type MarshalServiceComponents = ServiceComponents

/**
 * Options of the marshal service. Defaults that differ from the other
 * services: inbound per peer 16 concurrent streams, 200/s, burst 400 (no
 * total cap); `readTimeout` 5000 ms; `blockTag` `qmdb-marshal-blocked`.
 */
export interface MarshalServiceInit<B extends MarshalBlock, F> extends ServiceInit {
  /** Chain name: one protocol-id segment `[A-Za-z0-9._-]{1,64}`. */
  chain: string
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
}

const DEFAULTS = {
  maxServeBlocks: 128,
  maxBlocksPerRequest: 128
}

export class MarshalService<B extends MarshalBlock, F> extends RequestService {
  readonly protocol: string
  readonly chain: string
  /** The fetcher of this service (give it to a marshal built elsewhere). */
  readonly fetcher: MarshalClient<B, F>
  /** The store of the marshal the service built (undefined when `init.marshal` was given). */
  readonly store: BlockStore<B, F> | undefined
  private readonly init: MarshalServiceInit<B, F>
  private readonly answers: MarshalServer<B, F>
  private readonly provider = new SwitchablePeers()
  private readonly ownMarshal: boolean
  private current: Marshal<B, F>
  private broadcastFn: ((bytes: Uint8Array) => void) | undefined
  /** blocks `admitBlock` accepted, decoded, until gossipsub delivers them (weak: nothing stays behind) */
  private readonly admitted = new WeakMap<Uint8Array, B>()

  constructor (components: MarshalServiceComponents, init: MarshalServiceInit<B, F>) {
    // an honest peer behind the tip has no recent blocks: only its timeouts are strikes (src/net/peers.ts)
    const settings = resolveSettings(init, { ...SERVICE_DEFAULTS, blockTag: 'qmdb-marshal-blocked', strikes: { ...SERVICE_DEFAULTS.strikes, noData: false } })
    super(components, settings, 'marshal', new ServiceMetrics(components.metrics, 'marshal'))
    this.init = init
    this.chain = init.chain
    this.protocol = marshalProtocolId(settings.protocolPrefix, init.chain)
    this.answers = new MarshalServer({
      codec: init.codec,
      scheme: init.scheme,
      maxServeBlocks: init.maxServeBlocks ?? DEFAULTS.maxServeBlocks,
      maxResponseBytes: settings.maxResponseBytes
    }, this.log)
    this.fetcher = new MarshalClient(this.client(this.protocol, this.provider), {
      codec: init.codec,
      scheme: init.scheme,
      maxBlocksPerRequest: init.maxBlocksPerRequest ?? DEFAULTS.maxBlocksPerRequest
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
    this.answers.attach(this.current)
  }

  readonly [Symbol.toStringTag] = '@libp2p-qmdb/marshal'
  readonly [serviceCapabilities]: string[] = ['@libp2p-qmdb/marshal']

  /** The marshal this service fills and serves. */
  get marshal (): Marshal<B, F> {
    return this.current
  }

  protected async starting (): Promise<void> {
    this.provider.current = this.peerProvider(this.protocol, this.init.peers ?? 'connected')
    await this.handle(this.protocol, this.answers)
  }

  protected async stopping (): Promise<void> {
    this.provider.close()
    if (this.ownMarshal) { this.current.stop() }
  }

  // ---- serving and gossip hooks -------------------------------------------------------

  /** Serve from `reader` instead (e.g. a marshal built elsewhere); `undefined` serves nothing. */
  attach (reader: MarshalReader<B, F> | undefined): void {
    this.answers.attach(reader)
  }

  /**
   * The gossip topic validator of blocks, run before a block is relayed
   * (`Marshal.admitBlock`: 'reject' for oversized or undecodable bytes,
   * 'ignore' outside the plausible height window); an accepted block is
   * handed to `onBlock` without decoding it again.
   */
  async admitBlock (bytes: Uint8Array): Promise<Admission> {
    const result = await this.current.admitBlock(bytes, {
      maxBlocksAhead: this.init.maxBlocksAhead ?? GOSSIP_LIMITS.maxBlocksAhead,
      maxUnlinkedAhead: this.init.maxUnlinkedAhead ?? GOSSIP_LIMITS.maxUnlinkedAhead
    })
    if (result.admission === 'accept') { this.admitted.set(bytes, result.block) }
    return result.admission
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
}

export function marshalService<B extends MarshalBlock, F> (init: MarshalServiceInit<B, F>): (components: MarshalServiceComponents) => MarshalService<B, F> {
  return (components) => new MarshalService(components, init)
}
