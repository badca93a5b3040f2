/**
 * `createNode(config, application)`: one node of a libp2p-qmdb network
 * running `application` (see `application.ts`), wired end to end:
 *
 * libp2p (TCP and WebSockets, Noise, Yamux, identify, ping, gossipsub; peer discovery:
 * the configured bootstrap list, announcements over gossip (`announce.ts`), optionally mDNS;
 * light-client proofs of `current` databases) → block gossip and the
 * block store (marshal) with its backfill protocol → the probe (floor
 * discovery and serving) → the startup decision (`SyncPlan`: marshal sync,
 * or one-time state sync through the standard/compact resolvers) → the
 * stateful manager driving the application → the consensus engine
 * (validators vote; other nodes observe certificates).
 *
 * Everything lives in one LevelDB under `dataDir` (namespaced keys) next to
 * the node's identity key; a restart resumes from it. A fatal error of the
 * stateful manager (the application threw, a database failed) stops the
 * node's processing and is reported through `events.onFatal` and `failed`;
 * the node must then be stopped and restarted (it never continues on state
 * it cannot trust).
 */

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { noise } from '@libp2p/noise'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { MemoryDatastore, NamespaceDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { createLibp2p } from 'libp2p'
import { Counter, Histogram, Registry } from 'prom-client'
import { hex } from '../codec/index.ts'
import { ConsensusNetwork, SimplexEngine, ValidatorSet, consensusNames, finalizationScheme } from '../consensus/index.ts'
import { lightServer } from '../light/server.ts'
import { marshalService } from '../marshal/index.ts'
import { topicResult } from '../net/admission.ts'
import { sleep } from '../net/signals.ts'
import { compactResolver, standardResolver } from '../p2p/index.ts'
import { probeService } from '../probe/index.ts'
import { DatabaseSet } from '../qmdb/managed.ts'
import { Stateful, SyncPlan, marshalSync, stateSync } from '../stateful/index.ts'
import { ANNOUNCE_INTERVAL_MS, ANNOUNCE_MAX_AGE_MS, admitAnnouncement, encodeAnnouncement } from './announce.ts'
import { gossipScoring } from './gossip.ts'
import { loadOrCreateKey } from './identity.ts'
import { nodeLightBackend } from './light.ts'
import { startMetricsServer } from './metrics-server.ts'
import { PeerKeeper } from './peer-keeper.ts'
import { databaseStatus } from './status.ts'
import type { DatabaseStorage, NodeApplication } from './application.ts'
import type { NodeConfig } from './config.ts'
import type { MetricsServer } from './metrics-server.ts'
import type { DatabaseStatus } from './status.ts'
import type { Finalization } from '../consensus/index.ts'
import type { LightServer } from '../light/server.ts'
import type { LightDatabase } from '../light/verify.ts'
import type { MarshalService } from '../marshal/index.ts'
import type { QmdbResolver } from '../p2p/index.ts'
import type { Probe } from '../probe/index.ts'
import type { CompactReader, DatabaseRecord, LogReader, SyncTargetsOf } from '../qmdb/index.ts'
import type { Anchor, Block, StatefulFatalError } from '../stateful/index.ts'
import type { MemberRecord, Source, SyncProgress } from '../sync/index.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PeerInfo, PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Datastore } from 'interface-datastore'
import type { Libp2pOptions } from 'libp2p'

export type NodeServices<B extends Block = Block> = {
  identify: Identify
  ping: Ping
  pubsub: GossipSub
  standard: QmdbResolver
  compact: QmdbResolver
  marshal: MarshalService<B, Finalization>
  probe: Probe<Finalization>
  light: LightServer
}

export interface NodeStatus {
  peerId: string
  validator: boolean
  phase: 'starting' | 'probing' | 'state-sync' | 'processing' | 'stopped' | 'failed'
  /** Processed (applied and durable) height. */
  height: number | undefined
  /** Height a completed state sync started processing from. */
  syncHeight: number | undefined
  view: number
  finalizedView: number
  /**
   * Roots of the applied state by database and the height they belong to,
   * read in one step so the pair is consistent (undefined until processing).
   */
  roots: Record<string, string> | undefined
  appliedHeight: number | undefined
  /** Digest (hex) of the finalized block at `appliedHeight`. */
  digest: string | undefined
  /**
   * Per database, what a state-sync client needs to start without decoding
   * blocks: the protocol id serving it, the sync target at `appliedHeight`,
   * and the oldest size this node can still serve.
   */
  databases: Record<string, DatabaseStatus> | undefined
  /** The fatal error that stopped processing, if any. */
  failure: string | undefined
  /** Peers blocked for protocol violations or data that failed verification (state sync, marshal, backfill), and why. */
  blockedPeers: Record<string, string>
  peers: number
  addresses: string[]
  /** Memory of this process in bytes (resident set, V8 heap in use, buffers outside the heap). */
  memory: { rss: number, heapTotal: number, heapUsed: number, external: number, arrayBuffers: number, leveldb: number }
}

export interface NodeEvents {
  /** libp2p listens on these addresses (called once, early in `createNode`). */
  onListening?(addresses: string[]): void
  /** State-sync progress of one database. */
  onProgress?(p: SyncProgress): void
  /** A state-sync anchor was dispatched. */
  onAnchor?(anchor: Anchor): void
  /** Startup phase changes. */
  onPhase?(phase: NodeStatus['phase']): void
  /**
   * The node stopped processing on a fatal error (the application threw, a
   * database failed, an invariant broke). Stop the node and exit: it must
   * not go on.
   */
  onFatal?(err: StatefulFatalError): void
  /**
   * Wrap what the node serves to syncing peers (metrics, rate limits, fault
   * injection in tests); the identity by default.
   */
  serving?(db: string, source: Source): Source
  /** This node (as leader) proposed a block in `view`. */
  onProposed?(view: number): void
  /** Consensus finalized `view` (reported once per view, in order). */
  onFinalized?(view: number): void
}

export interface QmdbNode<B extends Block = Block> {
  readonly config: NodeConfig
  readonly peerId: string
  readonly libp2p: Libp2p<NodeServices<B>>
  readonly registry: Registry
  /** Resolves once the node processes blocks (after a state sync, if any); rejects on a startup failure. */
  readonly ready: Promise<void>
  /** Rejects with the fatal error that stops processing (never resolves otherwise). */
  readonly failed: Promise<never>
  status(): Promise<NodeStatus>
  /** Stop voting and proposing (the node keeps following and serving). */
  pauseConsensus(): Promise<void>
  /**
   * Refuse connections to and from these peers and close the open ones
   * (operator ban, partition tests); `unblockPeers` lifts it and the node
   * reconnects to its configured peers.
   */
  blockPeers(peerIds: string[]): Promise<void>
  unblockPeers(peerIds?: string[]): void
  /** Keep connected to these peers too (multiaddrs with `/p2p/<id>`; a new address replaces a peer's old one). */
  addPeers(addrs: string[]): Promise<void>
  stop(): Promise<void>
}

/**
 * The process's memory, and LevelDB's block cache and memtables
 * (`leveldb.approximate-memory-usage`: native memory outside V8; classic-level
 * has `getProperty`, the browser `level` has not, hence -1 there and while
 * the database is closed).
 */
function memoryOf (m: NodeJS.MemoryUsage, db: unknown): NodeStatus['memory'] {
  const level = db as { getProperty?(name: string): string }
  let leveldb = -1
  try {
    if (typeof level.getProperty === 'function') { leveldb = Number(level.getProperty('leveldb.approximate-memory-usage')) }
  } catch {
    // closed (status asked during shutdown): unknown, as in the browser
  }
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, leveldb }
}

/** The initial targets of `application`'s databases (opened empty, in memory). */
async function initialTargets<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>): Promise<SyncTargetsOf<Dbs>> {
  const set = await openDatabases(application, new MemoryDatastore())
  const targets = set.initialSyncTargets()
  await set.close()
  return targets
}

/** Database `name`'s key prefix: `/<application>/<name>`. */
function storageOf<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>, datastore: Datastore, name: string): DatabaseStorage {
  return { datastore, prefix: `/${application.name}/${name}` }
}

async function openDatabases<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>, datastore: Datastore): Promise<DatabaseSet<Dbs>> {
  const dbs: Partial<Dbs> = {}
  for (const name of Object.keys(application.databases) as Array<keyof Dbs & string>) {
    dbs[name] = await application.databases[name].open(storageOf(application, datastore, name))
  }
  return new DatabaseSet(dbs as Dbs)
}

/** The bootstrap list, and mDNS if configured (announcements on the chain's peers topic: `announce.ts`). */
function peerDiscovery (config: NodeConfig): NonNullable<Libp2pOptions['peerDiscovery']> {
  const out: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if ((config.bootstrap ?? []).length > 0) { out.push(bootstrap({ list: config.bootstrap ?? [], timeout: 0 })) }
  if (config.mdns === true) { out.push(mdns()) }
  return out
}

/** Light-client proofs: the `current` databases, when the application says which root a block commits to. */
function lightDatabases<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>): Record<string, LightDatabase> {
  const out: Record<string, LightDatabase> = {}
  if (application.lightRoot === undefined) { return out }
  for (const [name, spec] of Object.entries(application.databases) as Array<[string, { light?: LightDatabase }]>) {
    if (spec.light !== undefined) { out[name] = spec.light }
  }
  return out
}

/** Create and start a node running `application`. */
export async function createNode<B extends Block, Dbs extends DatabaseRecord> (config: NodeConfig, application: NodeApplication<B, Dbs>, events: NodeEvents = {}): Promise<QmdbNode<B>> {
  await mkdir(config.dataDir, { recursive: true })
  const key: PrivateKey = await loadOrCreateKey(join(config.dataDir, 'peer.key'))
  const datastore = new LevelDatastore(join(config.dataDir, 'db'))
  await datastore.open()
  const registry = new Registry()
  const set = new ValidatorSet(config.chainId, config.validators)
  const scheme = finalizationScheme(set)
  const participants = config.validators.map(v => peerIdFromString(v))
  const names = Object.keys(application.databases) as Array<keyof Dbs & string>
  const served = (protocol: 'standard' | 'compact'): string[] => names.filter(n => application.databases[n].protocol === protocol)
  const blocked = new Set<string>()
  const isBlocked = (p: { toString(): string }): boolean => blocked.has(p.toString())
  const lightDbs = lightDatabases(application)
  const blocksTopic = `/qmdb/${config.chainId}/blocks/1`
  const peersTopic = `/qmdb/${config.chainId}/peers/1`
  const consensusTopics = consensusNames(config.chainId)
  const libp2p = await createLibp2p({
    privateKey: key,
    addresses: { listen: config.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    // WebSockets for browsers (light clients); it only listens on `/ws` addresses
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    datastore: new NamespaceDatastore(datastore, new Key('/libp2p')),
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }),
    connectionManager: { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 100 },
    peerDiscovery: peerDiscovery(config),
    connectionGater: {
      denyDialPeer: isBlocked,
      denyInboundEncryptedConnection: isBlocked,
      denyOutboundEncryptedConnection: isBlocked
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: StrictNoSign,
        allowPublishToZeroTopicPeers: true,
        heartbeatInterval: 300,
        ...gossipScoring([blocksTopic, consensusTopics.votesTopic, consensusTopics.certsTopic, peersTopic])
      }),
      // a node's state sync waits for its peers however long it takes (logging why it stalls): no stall deadline
      standard: standardResolver({ chain: config.chainId, databases: served('standard'), stallTimeout: Infinity }),
      compact: compactResolver({ chain: config.chainId, databases: served('compact'), stallTimeout: Infinity }),
      marshal: marshalService<B, Finalization>({
        chain: config.chainId,
        codec: application.blockCodec,
        scheme,
        datastore,
        storePrefix: '/marshal',
        maxPendingAcks: 8
      }),
      // the reference rule: the highest of f + 1 verified answers (each is a
      // quorum certificate, so any of them is a safe floor)
      probe: probeService<Finalization>({ chain: config.chainId, scheme, participants, policy: 'highest', retryTimeout: 2000 }),
      light: lightServer({ chain: config.chainId, databases: Object.keys(lightDbs) })
    }
  })
  events.onListening?.(libp2p.getMultiaddrs().map(String))
  const log = libp2p.logger.forComponent('libp2p:qmdb:node')
  const peerId = libp2p.peerId.toString()
  const index = set.indexOf(peerId)
  let phase: NodeStatus['phase'] = 'starting'
  const setPhase = (p: NodeStatus['phase']): void => {
    phase = p
    events.onPhase?.(p)
  }
  const resolverOf = (name: keyof Dbs & string): QmdbResolver => application.databases[name].protocol === 'standard' ? libp2p.services.standard : libp2p.services.compact

  // blocks: gossip for dissemination (validated before relaying), the marshal protocol for fetching
  const pubsub = libp2p.services.pubsub
  const marshalSvc = libp2p.services.marshal
  const marshal = marshalSvc.marshal
  marshalSvc.setBroadcast(bytes => { void pubsub.publish(blocksTopic, bytes).catch(() => {}) })
  const onBlock = (evt: CustomEvent<Message>): void => {
    if (evt.detail.topic === blocksTopic) { void marshalSvc.onBlock(evt.detail.data).catch(() => {}) }
  }
  pubsub.topicValidators.set(blocksTopic, async (_peer, msg) => topicResult(await marshalSvc.admitBlock(msg.data)))
  pubsub.addEventListener('message', onBlock)
  pubsub.subscribe(blocksTopic)

  const probe = libp2p.services.probe

  // configured peers: dialled now, redialled whenever disconnected
  const keeper = new PeerKeeper(libp2p, config.bootstrap ?? [], { blocked: id => blocked.has(id), log })
  await keeper.start()
  // one known address is enough: every node announces its addresses on the chain's peers topic, and
  // validators found (announced, or by mDNS) are kept connected too (the probe and consensus need them)
  const learn = (info: PeerInfo): void => {
    const id = info.id.toString()
    if (id === peerId || info.multiaddrs.length === 0) { return }
    const addrs = info.multiaddrs.map(a => a.getComponents().some(c => c.name === 'p2p') ? a : a.encapsulate(`/p2p/${id}`))
    void libp2p.peerStore.merge(info.id, { multiaddrs: info.multiaddrs }).catch(() => {})
    if (set.indexOf(id) !== undefined) { void keeper.add(addrs.map(String)).catch(() => {}) }
  }
  const onDiscovery = (evt: CustomEvent<PeerInfo>): void => { learn(evt.detail) }
  libp2p.addEventListener('peer:discovery', onDiscovery)
  pubsub.topicValidators.set(peersTopic, (_peer, msg) => topicResult(admitAnnouncement(msg.data, Date.now(), ANNOUNCE_MAX_AGE_MS).admission))
  const onAnnouncement = (evt: CustomEvent<Message>): void => {
    if (evt.detail.topic !== peersTopic) { return }
    const a = admitAnnouncement(evt.detail.data, Date.now(), ANNOUNCE_MAX_AGE_MS).announcement
    if (a !== undefined) { learn({ id: a.peerId, multiaddrs: a.addrs }) }
  }
  pubsub.addEventListener('message', onAnnouncement)
  pubsub.subscribe(peersTopic)
  const announce = (): void => {
    void pubsub.publish(peersTopic, encodeAnnouncement(Date.now(), libp2p.peerId, libp2p.getMultiaddrs())).catch(() => {})
  }
  const announcer = setInterval(announce, ANNOUNCE_INTERVAL_MS)
  announcer.unref?.()
  announce()

  // the application (its genesis block commits to the targets of empty databases)
  const app = application.create(await initialTargets(application))
  const genesis = await app.genesis()

  // the one-time startup decision, shared by marshal and the manager
  const plan = await SyncPlan.init<Finalization>(datastore, '/stateful', scheme)
  const shouldSync = plan.shouldStateSync(config.stateSync === true)
  const stopController = new AbortController()
  if (shouldSync) {
    // also when resuming: after a long downtime the persisted floor may be
    // pruned on every peer; the plan only ever moves to a newer floor
    setPhase('probing')
    plan.withFloor(await probe.subscribe({ signal: stopController.signal }))
  }
  // serving finalizations ends the probe's discovery: only once the floor is known
  probe.attach(marshal)
  const marshalFloor = await marshal.start(plan.marshalStart(genesis))

  let databases: DatabaseSet<Dbs> | undefined
  let startup
  if (shouldSync) {
    setPhase('state-sync')
    const members: Record<string, unknown> = {}
    for (const name of names) {
      const spec = application.databases[name]
      members[name] = await spec.syncMember(storageOf(application, datastore, name), resolverOf(name).source(name))
    }
    startup = stateSync<B, Dbs, Finalization, MemberRecord>({
      plan,
      scheme,
      marshalFloor,
      members: members as MemberRecord,
      fetchBatchSize: config.sync?.fetchBatchSize ?? 512,
      maxOutstandingRequests: config.sync?.maxOutstandingRequests ?? 8,
      onProgress: events.onProgress,
      onAnchor: events.onAnchor
    })
  } else {
    databases = await openDatabases(application, datastore)
    startup = marshalSync<B, Dbs>()
  }
  let failure: StatefulFatalError | undefined
  const failed = Promise.withResolvers<never>()
  failed.promise.catch(() => {})
  const stateful = new Stateful<B, Dbs>({
    application: app,
    databases,
    marshal,
    startup,
    metadata: plan.metadata,
    prune: config.prune,
    logger: libp2p.logger,
    registry,
    attachDatabases: async set => {
      const serving = events.serving ?? ((_db, source) => source)
      for (const name of names) {
        await resolverOf(name).attach(name, serving(name, application.databases[name].serve(set.dbs[name])))
      }
    },
    onFatal: err => {
      failure = err
      setPhase('failed')
      log.error('processing stopped on a fatal error: %s', err.message)
      failed.reject(err)
      events.onFatal?.(err)
    }
  })
  libp2p.services.light.attach(nodeLightBackend<B, Dbs, Finalization>({
    databases: lightDbs,
    readApplied: async fn => stateful.readApplied(fn),
    finalized: async height => ({ block: await marshal.getFinalizedBlock(height), finalization: await marshal.getFinalization(height) }),
    blockCodec: application.blockCodec,
    scheme,
    processing: () => phase === 'processing'
  }))
  const ready = stateful.start().then(() => { setPhase('processing') })
  ready.catch(err => { log.error('startup failed: %e', err) })
  marshal.attach(stateful)

  // consensus: validators vote, everyone else follows the certificates
  const proposedAt = new Map<number, number>()
  const finalizationLatency = new Histogram({
    name: 'qmdb_consensus_finalization_latency_seconds',
    help: 'time from this node proposing a block (as leader) to its finalization',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const finalizedViews = new Counter({ name: 'qmdb_consensus_finalized_views_total', help: 'views finalized', registers: [registry] })
  const consensusNet = new ConsensusNetwork({
    libp2p,
    pubsub,
    chainId: config.chainId,
    log,
    // backfill violations block the peer for marshal too: one list of misbehaving peers
    blocker: { block: (peer, reason) => { marshalSvc.block(peer, reason) }, isBlocked: peer => marshalSvc.isBlocked(peer) }
  })
  const engine = new SimplexEngine({
    validators: set,
    automaton: {
      genesis: async () => genesis.digest,
      propose: async (ctx, o) => {
        const interval = config.consensus?.blockIntervalMs ?? 0
        if (interval > 0) {
          await sleep(interval, o.signal)
          o.signal.throwIfAborted()
        }
        const digest = await stateful.propose(ctx, o)
        if (digest !== undefined) {
          proposedAt.set(ctx.round.view, performance.now())
          events.onProposed?.(ctx.round.view)
        }
        return digest
      },
      verify: async (ctx, payload, o) => stateful.verify(ctx, payload, o)
    },
    reporter: {
      finalized: f => {
        const view = f.subject.proposal.view
        const at = proposedAt.get(view)
        if (at !== undefined) { finalizationLatency.observe((performance.now() - at) / 1000) }
        for (const v of proposedAt.keys()) { if (v <= view) { proposedAt.delete(v) } }
        finalizedViews.inc()
        events.onFinalized?.(view)
        void marshal.finalized(f).catch(err => { log.error('finalization not stored: %e', err) })
      }
    },
    transport: consensusNet,
    signer: index === undefined ? undefined : { index, sign: async m => key.sign(m) },
    datastore,
    leaderTimeoutMs: config.consensus?.leaderTimeoutMs,
    notarizationTimeoutMs: config.consensus?.notarizationTimeoutMs,
    log
  })
  await consensusNet.start(engine)
  await engine.start()

  let metrics: MetricsServer | undefined
  const status = async (): Promise<NodeStatus> => {
    let roots: NodeStatus['roots']
    let appliedHeight: number | undefined
    let digest: string | undefined
    let dbs: NodeStatus['databases']
    if (phase === 'processing') {
      const read = await stateful.readApplied((set, height) => {
        const targets = set.committedTargets()
        return { height, readers: set.readers(), roots: Object.fromEntries(names.map(n => [n, hex((targets[n] as { root: Uint8Array }).root)])) }
      }).catch(() => undefined)
      if (read !== undefined) {
        roots = read.roots
        appliedHeight = read.height
        dbs = {}
        for (const n of names) { dbs[n] = await databaseStatus(read.readers[n] as LogReader | CompactReader<unknown>, resolverOf(n).protocol(n)) }
        const block = await marshal.getFinalizedBlock(read.height).catch(() => undefined)
        digest = block === undefined ? undefined : hex(block.digest)
      }
    }
    return {
      peerId,
      validator: index !== undefined,
      phase,
      height: await marshal.getProcessedHeight(),
      syncHeight: plan.syncHeight(),
      view: engine.currentView,
      finalizedView: engine.finalizedView,
      roots,
      appliedHeight,
      digest,
      databases: dbs,
      failure: failure?.message,
      blockedPeers: Object.fromEntries([...libp2p.services.standard.blockedPeers(), ...libp2p.services.compact.blockedPeers(), ...marshalSvc.blockedPeers()]),
      peers: libp2p.getPeers().length,
      addresses: libp2p.getMultiaddrs().map(String),
      memory: memoryOf(process.memoryUsage(), datastore.db)
    }
  }
  if (config.metricsPort !== undefined) { metrics = await startMetricsServer(registry, config.metricsPort, status) }

  return {
    config,
    peerId,
    libp2p,
    registry,
    ready,
    failed: failed.promise,
    status,
    pauseConsensus: async () => {
      engine.pause()
    },
    blockPeers: async (ids) => {
      for (const id of ids) { blocked.add(id) }
      await Promise.all(libp2p.getConnections()
        .filter(c => blocked.has(c.remotePeer.toString()))
        .map(async c => c.close().catch(() => { c.abort(new Error('peer blocked')) })))
    },
    unblockPeers: (ids) => {
      if (ids === undefined) { blocked.clear() } else { for (const id of ids) { blocked.delete(id) } }
    },
    addPeers: async (addrs) => {
      await keeper.add(addrs)
    },
    stop: async () => {
      stopController.abort()
      keeper.stop()
      setPhase('stopped')
      await engine.stop().catch(() => {})
      await consensusNet.stop().catch(() => {})
      await stateful.stop().catch(() => {})
      marshal.stop()
      await marshal.flush().catch(() => {})
      await metrics?.close()
      pubsub.removeEventListener('message', onBlock)
      libp2p.removeEventListener('peer:discovery', onDiscovery)
      pubsub.removeEventListener('message', onAnnouncement)
      clearInterval(announcer)
      await libp2p.stop()
      await datastore.close()
    }
  }
}
