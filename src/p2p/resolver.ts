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
 * The service shell (`net/service.ts`) owns what is per peer rather than
 * per database: latency scores, the block list, the inbound and outbound
 * limits, metrics; this adds the databases and the resolver protocol.
 */

import { serviceCapabilities } from '@libp2p/interface'
import { ServiceMetrics } from '../net/metrics.ts'
import { RequestService, SERVICE_DEFAULTS, resolveSettings } from '../net/service.ts'
import { CompactSource } from '../sync/compact-source.ts'
import { ConfigurationError } from '../sync/errors.ts'
import { NetworkSource } from './client.ts'
import { checkDbName, protocolId } from './protocol.ts'
import { DatabaseRegistry } from './registry.ts'
import { resolverHandler } from './server.ts'
import type { NetworkSourceOptions } from './client.ts'
import type { ResolverKind } from './protocol.ts'
import type { ServerConfig } from './server.ts'
import type { ServiceComponents, ServiceInit, ServiceSettings } from '../net/service.ts'
import type { Source } from '../sync/source.ts'

export type QmdbResolverComponents = ServiceComponents

/**
 * Options of a resolver. Defaults that differ from the other services:
 * inbound per peer 16 concurrent streams, 200/s, burst 400, and over all
 * peers (every database of this resolver) 64 concurrent streams;
 * `readTimeout` 2000 ms; `blockTag` `qmdb-blocked`.
 */
export interface QmdbResolverInit extends ServiceInit {
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
  /** How often a source without progress logs why and emits `stall` (ms). Default 3000. */
  stallInterval?: number
  /** A source's waiting requests fail (`ServeError('Stalled')`) after this long without progress (ms). Default 120000. */
  stallTimeout?: number
}

const DEFAULTS = {
  maxServeOps: 1024,
  stallInterval: 3000,
  stallTimeout: 120_000,
  chain: 'default'
}

const RESOLVER_DEFAULTS: ServiceSettings = {
  ...SERVICE_DEFAULTS,
  inbound: { ...SERVICE_DEFAULTS.inbound, maxTotal: 64 },
  readTimeout: 2000
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

export class QmdbResolver extends RequestService {
  readonly kind: ResolverKind
  readonly prefix: string
  readonly chain: string
  /** The databases this resolver serves and fetches (shared when given as a registry). */
  readonly databases: DatabaseRegistry
  private unsubscribe: (() => void) | undefined
  private readonly init: QmdbResolverInit
  private readonly config: ServerConfig
  private readonly sources = new Set<NetworkSource>()

  constructor (components: QmdbResolverComponents, init: QmdbResolverInit, kind: ResolverKind) {
    super(components, resolveSettings(init, RESOLVER_DEFAULTS), `${kind}-resolver`, new ServiceMetrics(components.metrics, kind))
    this.init = init
    this.kind = kind
    this.prefix = this.settings.protocolPrefix
    this.chain = init.chain ?? DEFAULTS.chain
    protocolId(this.prefix, this.chain, 'db', kind) // validates prefix and chain at construction
    this.databases = init.databases instanceof DatabaseRegistry ? init.databases : new DatabaseRegistry(init.databases ?? [])
    this[serviceCapabilities] = [`@libp2p-qmdb/${kind}-resolver`]
    this.config = { kind, maxServeOps: init.maxServeOps ?? DEFAULTS.maxServeOps, maxResponseBytes: this.settings.maxResponseBytes }
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

  protected async starting (): Promise<void> {
    this.unsubscribe = this.databases.onDeclare(db => {
      this.register(db).catch(err => { this.log.error('cannot register %s: %s', db, (err as Error)?.message) })
    })
    for (const db of this.databases.names()) { await this.register(db) }
  }

  protected async stopping (): Promise<void> {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    for (const source of [...this.sources]) { source.close() }
    this.sources.clear()
  }

  private async register (db: string): Promise<void> {
    await this.handle(this.protocol(db), resolverHandler(db, this.config, () => this.servingSource(db), this.log))
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
    if (this.isStarted()) { await this.register(db) }
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
    const peers = options.peers ?? 'connected'
    if (peers === 'connected' && hasIdentify(this.components) === false) {
      throw new ConfigurationError('MissingIdentify', 'peers: \'connected\' finds serving peers through identify: add identify() from @libp2p/identify to the node\'s services, or pass peers: [peerId, ...]')
    }
    const protocol = this.protocol(db)
    const client = this.client(protocol, this.peerProvider(protocol, peers), options)
    const source = new NetworkSource(db, client, {
      kind: this.kind,
      codec: options.codec,
      stallInterval: options.stallInterval ?? this.init.stallInterval ?? DEFAULTS.stallInterval,
      stallTimeout: options.stallTimeout ?? this.init.stallTimeout ?? DEFAULTS.stallTimeout
    }, () => { this.sources.delete(source) })
    this.sources.add(source)
    return source
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
