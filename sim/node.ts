/**
 * One node of the simulation: the same layers `createNode` wires
 * (`src/node/node.ts`) — block store and marshal, the stateful manager on
 * the application's databases, the consensus engine (a validator votes, a
 * joiner observes) — over a `PowerLossDatastore`, talking to the other nodes
 * only through the `SimNetwork`: votes and certificates are broadcast on it
 * in the consensus network's gossip envelope, blocks are disseminated on
 * it, each message judged on arrival by the topic validator's own checks
 * (`admitGossip`, `Marshal.admitBlock`) and delivered only if accepted; marshal's fetcher, the engine's
 * certificate backfill and the state-sync sources ask one reachable peer at
 * a time, their requests and answers as bytes through the protocols' own
 * handlers (`sim/wire.ts`). A state-sync joiner probes the validators for
 * its floor as `createNode`'s probe does (probe requests and answers as
 * bytes, the highest of `f + 1` verified finalizations) and syncs every
 * database from its peers' served sources (`stateSync`).
 *
 * `crash` stops the node where it is (no flush; pending work hangs on the
 * dead store) and keeps what the crash kind leaves on disk; `start` opens
 * everything again from that store, as a restarted process would.
 *
 * Recorded for the run's invariants: the highest acknowledged height (an
 * acknowledgement means the block's state is durable), the blocks delivered
 * per height, fatal errors, the byzantine peers whose bad data reached this
 * node, the stalling and `NoData` servers it asked in vain on requests
 * other peers answered, and the peers its marshal, its state sync and the
 * strike rule blocked (in per-incarnation peer books, as the marshal service
 * and the resolvers keep them, whose stallers are asked again as the kit's
 * client asks them, `src/net/recheck.ts`). A byzantine validator may also
 * equivocate: sign a second vote for another payload in every view it votes
 * a proposal in, and tell each peer one of the two, or both.
 */
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { hex } from '../src/codec/index.ts'
import { admitGossip, deliverGossip, sealGossip } from '../src/consensus/gossip.ts'
import { MAX_BACKFILL_VIEWS, SimplexEngine, decodeVote, encodeVote, signedMessage } from '../src/consensus/index.ts'
import { BackfillHandler, MAX_BACKFILL_RESPONSE_BYTES, decodeBackfillResponse, encodeBackfillRequest } from '../src/consensus/network.ts'
import { BlockStore, Marshal, MarshalServer } from '../src/marshal/index.ts'
import { encodeMarshalRequest, parseBlockResponse, parseFinalizedResponse } from '../src/marshal/protocol.ts'
import { DEFAULT_STRIKES, PeerBook, StrikeTally } from '../src/net/peers.ts'
import { DEFAULT_MAX_RESPONSE_BYTES } from '../src/net/protocol.ts'
import { Rechecks } from '../src/net/recheck.ts'
import { answerAgrees } from '../src/p2p/client.ts'
import { parseResponseFrame } from '../src/p2p/index.ts'
import { resolverHandler } from '../src/p2p/server.ts'
import { PROBE_NONE, PROBE_REQUEST, Sample, maxFaults, parseProbeResponse, probeHandler, probeResponse } from '../src/probe/index.ts'
import { DatabaseSet } from '../src/qmdb/managed.ts'
import { Stateful, SyncPlan, marshalSync, stateSync } from '../src/stateful/index.ts'
import { Kv } from '../src/storage/kv.ts'
import { ServeError, encodeRequest } from '../src/sync/index.ts'
import { PowerLossDatastore } from './storage.ts'
import { WireServer } from './wire.ts'
import type { SimNetwork } from './network.ts'
import type { CrashKind } from './storage.ts'
import type { Trace } from './trace.ts'
import type { GossipKind } from '../src/consensus/gossip.ts'
import type { Finalization, ValidatorSet } from '../src/consensus/index.ts'
import type { BlockFetcher, FinalizationScheme } from '../src/marshal/index.ts'
import type { Admission } from '../src/net/admission.ts'
import type { StrikeRule } from '../src/net/peers.ts'
import type { RecheckOutcome } from '../src/net/recheck.ts'
import type { RequestHandler } from '../src/net/server.ts'
import type { NodeApplication } from '../src/node/application.ts'
import type { DatabaseRecord } from '../src/qmdb/managed.ts'
import type { Application, Block, StatefulFatalError } from '../src/stateful/index.ts'
import type { MemberRecord, Request, Response, Source } from '../src/sync/index.ts'
import type { Rng } from '../test/util/rng.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export interface SimContext<B extends Block, Dbs extends DatabaseRecord> {
  net: SimNetwork
  rng: Rng
  trace: Trace
  now(): number
  nodes: Array<SimNode<B, Dbs>>
  application: NodeApplication<B, Dbs>
  set: ValidatorSet
  scheme: FinalizationScheme<Finalization>
  timing: { leaderTimeoutMs: number, notarizationTimeoutMs: number, retryMs: number, blockIntervalMs: number }
  /** False: stores ignore fsync (to check that the durability invariant can fail). */
  honourSync: boolean
  /** The simulator itself broke (not a node, not the network): the run fails with `what`. */
  fault(what: string): void
}

/** Open every database of `application` in `datastore` (the layout `createNode` uses). */
export async function openDatabases<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>, datastore: PowerLossDatastore): Promise<DatabaseSet<Dbs>> {
  const dbs: Partial<Dbs> = {}
  for (const name of Object.keys(application.databases) as Array<keyof Dbs & string>) {
    dbs[name] = await application.databases[name].open({ datastore, prefix: `/${application.name}/${name}` })
  }
  return new DatabaseSet(dbs as Dbs)
}

interface Running<B extends Block, Dbs extends DatabaseRecord> {
  store: PowerLossDatastore
  app: Application<B, Dbs>
  marshal: Marshal<B, Finalization>
  stateful: Stateful<B, Dbs>
  engine: SimplexEngine
}

export class SimNode<B extends Block, Dbs extends DatabaseRecord> {
  readonly index: number
  readonly key: PrivateKey
  readonly validator: boolean
  /** Joins by state sync from a floor (else by replaying blocks from genesis). */
  readonly stateSync: boolean
  readonly peerId: string
  readonly id: PeerId
  /** Highest height whose acknowledgement the manager released. */
  acked = -1
  /** Finalized digests this node's marshal delivered, by height (hex). */
  readonly delivered = new Map<number, string>()
  readonly fatal: StatefulFatalError[] = []
  /** Peers whose data this node's marshal found invalid (any incarnation). */
  readonly blamed = new Set<number>()
  /** Byzantine peers whose garbage reached this incarnation's marshal. */
  readonly lied = new Set<number>()
  /** Gossip messages this node judged (any incarnation), by admission. */
  readonly gossip = { accept: 0, ignore: 0, reject: 0 }
  /** Senders of gossip this node rejected (any incarnation). */
  readonly gossipRejected = new Set<number>()
  /** Heights delivered twice with different blocks (must stay empty). */
  readonly conflicts: string[] = []
  /** Peers whose state-sync responses failed verification here (any incarnation). */
  readonly syncBlamed = new Set<number>()
  /** Byzantine sync servers whose lies reached this incarnation's sync engine. */
  readonly syncLied = new Set<number>()
  /**
   * Stalling and `NoData` servers this incarnation asked in vain, by peer
   * book: on how many occasions (requests asked after the last one counted)
   * it had nothing (a timeout; for state sync also a `NoData`) for a request
   * another peer then answered — what the strike rule counts — and when the
   * last one counted.
   */
  readonly vain = { sync: new Map<number, { times: number, at: number }>(), marshal: new Map<number, { times: number, at: number }>() }
  /** Peers this node's strike rule blocked for a while (any incarnation, either book). */
  readonly struckOut = new Set<number>()
  /**
   * This incarnation's peer books (`src/net/peers.ts`, what the marshal
   * service and the resolvers keep): scores order the peers asked, and a
   * peer blocked here is never asked again until the node restarts.
   */
  marshalPeers: PeerBook
  syncPeers: PeerBook
  /** Stallers each book's client asks again (`src/net/recheck.ts`), stopped with the incarnation. */
  private marshalRechecks: Rechecks<string>
  private syncRechecks: Rechecks<string>
  /** Serve garbage instead of blocks (a byzantine block server). */
  lieAboutBlocks = false
  /** Sign a second, conflicting vote for every notarize and finalize vote (a byzantine validator). */
  equivocate = false
  /** Conflicting votes this node signed. */
  equivocations = 0
  /**
   * A byzantine server: altered state-sync responses, or no answer at all /
   * no data to every state-sync and marshal request.
   */
  syncFault: 'lie' | 'stall' | 'no-data' | undefined
  /**
   * A stalling state-sync server that answers a request it sat on, when
   * asked it again, with altered data: a re-ask (`src/net/recheck.ts`) must
   * judge that answer, not just parse it, or the staller escapes.
   */
  lieWhenAskedAgain = false
  /** State-sync requests this node sat on (a staller that lies when asked again). */
  private readonly satOn = new Set<string>()
  /** Height the node's state sync handed off at (state-sync joiners, once done). */
  syncHeight: number | undefined
  /** What this node serves to syncing peers, by database (set once its databases are open). */
  private served: Record<string, Source> = {}
  /** Where its peers' state-sync, marshal and certificate backfill requests are served, as bytes on streams. */
  private readonly wire = new WireServer(log, err => { this.ctx.fault(`node ${this.index}'s wire could not open a stream pair: ${err.message}`) })
  /** The consensus network's backfill handler, answering from this node's engine (simulated nodes never send a malformed request). */
  private readonly backfill = new BackfillHandler(() => this.engine, (peer, reason) => { this.ctx.fault(`node ${this.index}: backfill request from ${peer.toString()} broke the protocol: ${reason}`) })
  /** The probe's handler, answering with this node's latest finalization (as a probe in its service phase). */
  private readonly probe = probeHandler(async () => {
    const latest = await this.marshal?.latestFinalization()
    return latest === undefined || latest.height === 0 ? PROBE_NONE : probeResponse(this.ctx.scheme, latest.finalization)
  })

  private readonly syncHandlers = new Map<string, RequestHandler<Request>>()
  private blockServer: MarshalServer<B, Finalization> | undefined
  private readonly ctx: SimContext<B, Dbs>
  private disk = new Map<string, Uint8Array>()
  private running: Running<B, Dbs> | undefined
  /** Bumped at every crash: callbacks of an older incarnation are ignored. */
  private incarnation = 0

  constructor (ctx: SimContext<B, Dbs>, index: number, key: PrivateKey, role: 'validator' | 'marshal-sync' | 'state-sync') {
    this.ctx = ctx
    this.index = index
    this.key = key
    this.validator = role === 'validator'
    this.stateSync = role === 'state-sync'
    this.marshalPeers = this.newBook('marshal')
    this.syncPeers = this.newBook('sync')
    this.marshalRechecks = this.rechecksOf(this.marshalPeers, 'marshal')
    this.syncRechecks = this.rechecksOf(this.syncPeers, 'sync')
    this.id = peerIdFromPrivateKey(key)
    this.peerId = this.id.toString()
  }

  /** An unmeasured peer's score: below the request timeout a failure costs, as in the services' defaults (`src/net/service.ts`). */
  get initialLatency (): number {
    return this.ctx.net.requestTimeoutMs / 4
  }

  /**
   * The strike rule of a peer book as the resolvers (`sync`) or marshal keep
   * it: marshal's strikes count only timeouts (`src/marshal/service.ts`);
   * stallers are asked again once per request timeout (the services' 10 s,
   * scaled to the simulated links).
   */
  private strikeRule (kind: 'sync' | 'marshal'): StrikeRule {
    return { ...DEFAULT_STRIKES, noData: kind === 'sync', recheckMs: Math.max(100, this.ctx.net.requestTimeoutMs) }
  }

  /** A peer book with the services' strike rule, on the run's virtual clock. */
  private newBook (kind: 'sync' | 'marshal'): PeerBook {
    return new PeerBook({ initialLatency: this.initialLatency, now: () => this.ctx.now(), strikes: this.strikeRule(kind) })
  }

  /** Where `book`'s stallers are asked again; a strike-out there is recorded as the client's are. */
  private rechecksOf (book: PeerBook, kind: 'sync' | 'marshal'): Rechecks<string> {
    return new Rechecks<string>(book, this.strikeRule(kind), (peerId, _reason, ms) => { this.recordStrikeOut(peerId, `${kind}-recheck`, ms) })
  }

  /** Suspected stallers not yet answered nor blocked, in this incarnation's books. */
  get rechecking (): number {
    return this.marshalRechecks.pending + this.syncRechecks.pending
  }

  get up (): boolean {
    return this.running !== undefined
  }

  get marshal (): Marshal<B, Finalization> | undefined {
    return this.running?.marshal
  }

  get engine (): SimplexEngine | undefined {
    return this.running?.engine
  }

  get stateful (): Stateful<B, Dbs> | undefined {
    return this.running?.stateful
  }

  get app (): Application<B, Dbs> | undefined {
    return this.running?.app
  }

  /** Start (or restart) from what is on disk. */
  async start (): Promise<void> {
    const ctx = this.ctx
    const me = this.index
    const incarnation = this.incarnation
    const store = new PowerLossDatastore(this.disk, { honourSync: ctx.honourSync })
    // the gossip sequence numbers of this incarnation's broadcasts, from 0 as a restarted `ConsensusNetwork`'s
    let seq = 0
    const app = ctx.application.create(await initialTargets(ctx.application))
    const genesis = await app.genesis()
    const codec = ctx.application.blockCodec
    const marshal = new Marshal<B, Finalization>({
      store: new BlockStore<B, Finalization>(new Kv(store), '/marshal', codec, ctx.scheme),
      codec,
      scheme: ctx.scheme,
      fetcher: this.fetcher(),
      maxPendingAcks: 8,
      rangeTimeoutMs: 1000,
      broadcast: bytes => {
        // a byzantine block server also floods garbage of the block's size, which the topic validator must reject
        const garbage = this.lieAboutBlocks ? this.serveBlock(bytes) : undefined
        for (const peer of ctx.nodes) {
          if (peer.index === me) { continue }
          ctx.net.send(me, peer.index, 'block', () => { peer.receiveGossip(me, 'block', bytes) })
          if (garbage !== undefined) { ctx.net.send(me, peer.index, 'block', () => { peer.receiveGossip(me, 'block', garbage) }) }
        }
      }
    })
    const plan = await SyncPlan.init<Finalization>(store, '/stateful', ctx.scheme)
    const shouldSync = plan.shouldStateSync(this.stateSync)
    if (shouldSync) { plan.withFloor(await this.discoverFloor(incarnation)) }
    const marshalFloor = await marshal.start(plan.marshalStart(genesis))
    const names = Object.keys(ctx.application.databases) as Array<keyof Dbs & string>
    let startup
    if (shouldSync) {
      const members: Record<string, unknown> = {}
      for (const name of names) {
        members[name] = await ctx.application.databases[name].syncMember({ datastore: store, prefix: `/${ctx.application.name}/${name}` }, this.syncSource(name))
      }
      startup = stateSync<B, Dbs, Finalization, MemberRecord>({ plan, scheme: ctx.scheme, marshalFloor, members: members as MemberRecord, fetchBatchSize: 64, maxOutstandingRequests: 4 })
    }
    const stateful = new Stateful<B, Dbs>({
      application: app,
      databases: shouldSync ? undefined : await openDatabases(ctx.application, store),
      marshal,
      startup: startup ?? marshalSync(),
      metadata: plan.metadata,
      attachDatabases: async set => {
        if (incarnation !== this.incarnation) { return }
        const served: Record<string, Source> = {}
        for (const name of names) { served[name] = ctx.application.databases[name].serve(set.dbs[name]) }
        this.served = served
      },
      onFatal: err => {
        if (incarnation === this.incarnation) { this.fatal.push(err) }
      }
    })
    const ready = stateful.start()
    marshal.attach({
      finalized: (block, ack) => {
        if (incarnation !== this.incarnation) { return }
        const digest = hex(block.digest)
        ctx.trace.record(ctx.now(), `deliver ${me} h${block.height} ${digest.slice(0, 16)}`)
        const before = this.delivered.get(block.height)
        if (before !== undefined && before !== digest) { this.conflicts.push(`h${block.height}: ${before} then ${digest}`) }
        this.delivered.set(block.height, digest)
        stateful.finalized(block, {
          acknowledge: () => {
            if (incarnation === this.incarnation) { this.acked = Math.max(this.acked, block.height) }
            ack.acknowledge()
          },
          cancel: () => { ack.cancel() }
        })
      }
    })
    const engine = new SimplexEngine({
      validators: ctx.set,
      automaton: {
        genesis: async () => genesis.digest,
        propose: async (c, o) => {
          await new Promise(resolve => setTimeout(resolve, ctx.timing.blockIntervalMs))
          o.signal.throwIfAborted()
          return stateful.propose(c, o)
        },
        verify: async (c, payload, o) => stateful.verify(c, payload, o)
      },
      reporter: {
        finalized: f => {
          if (incarnation !== this.incarnation) { return }
          void marshal.finalized(f).catch(() => {})
        }
      },
      transport: {
        // as the consensus network publishes (`src/consensus/network.ts`): each broadcast one gossip message with the sender's next sequence number
        broadcastVote: async bytes => {
          const vote = sealGossip(seq++, bytes)
          const twinVote = this.equivocate ? await this.twinVote(bytes) : undefined
          const twin = twinVote === undefined ? undefined : sealGossip(seq++, twinVote)
          for (const peer of ctx.nodes) {
            if (peer.index === me) { continue }
            // an equivocator tells each peer one of its two votes, or both
            const messages = twin === undefined ? [vote] : [[vote], [twin], [vote, twin]][ctx.rng.int(3)]
            for (const message of messages) {
              ctx.net.send(me, peer.index, 'vote', () => { peer.receiveGossip(me, 'vote', message) })
            }
          }
        },
        broadcastCertificate: async bytes => {
          const message = sealGossip(seq++, bytes)
          for (const peer of ctx.nodes) {
            if (peer.index !== me) { ctx.net.send(me, peer.index, 'cert', () => { peer.receiveGossip(me, 'cert', message) }) }
          }
        },
        // as the consensus network asks (`src/consensus/network.ts`): the request and the answer as bytes, the answer served
        // by the peer's backfill handler over a stream; the engine's signal is a wall-clock `AbortSignal.timeout`: ignored,
        // the exchange is bounded in virtual time instead
        fetchCertificates: async (lo, hi) => {
          const peer = this.pickPeer()
          if (peer === undefined) { return [] }
          const request = encodeBackfillRequest(lo, Math.min(hi, lo + MAX_BACKFILL_VIEWS - 1))
          const body = await ctx.net.request(me, peer.index, 'certs', async () => {
            return peer.engine === undefined ? undefined : peer.wire.ask(peer.backfill, this.id, request, MAX_BACKFILL_RESPONSE_BYTES)
          })
          if (body === undefined) { return [] }
          try {
            return decodeBackfillResponse(body)
          } catch (err) {
            ctx.fault(`node ${me}: the backfill answer of ${peer.index} does not parse: ${(err as Error).message}`)
            return []
          }
        }
      },
      signer: this.validator ? { index: ctx.set.indexOf(this.peerId) as number, sign: async m => this.key.sign(m) } : undefined,
      datastore: store,
      leaderTimeoutMs: ctx.timing.leaderTimeoutMs,
      notarizationTimeoutMs: ctx.timing.notarizationTimeoutMs,
      retryMs: ctx.timing.retryMs
    })
    this.running = { store, app, marshal, stateful, engine }
    await engine.start()
    await ready
    if (incarnation === this.incarnation) { this.syncHeight = plan.syncHeight() }
  }

  /**
   * The state-sync floor as `createNode`'s probe selects it (`src/probe/probe.ts`, policy `highest`): each round asks
   * every validator at once, the probe request and answers as bytes through the probe's own handler (`sim/wire.ts`),
   * and once `f + 1` of them replied with a verified finalization the highest is the floor; otherwise another round.
   */
  private async discoverFloor (incarnation: number): Promise<Finalization> {
    const ctx = this.ctx
    const validators = ctx.nodes.filter(p => p.validator && p.index !== this.index)
    const threshold = maxFaults(ctx.nodes.filter(p => p.validator).length) + 1
    for (;;) {
      if (incarnation !== this.incarnation) { return never() }
      const sample = new Sample<Finalization>(ctx.scheme, 'highest')
      await Promise.all(validators.map(async peer => {
        const body = await ctx.net.request(this.index, peer.index, 'floor', async () => {
          return peer.up ? peer.wire.ask(peer.probe, this.id, PROBE_REQUEST, ctx.scheme.maxBytes + 1) : undefined
        })
        if (body === undefined) { return }
        let f: Finalization | undefined
        try {
          f = parseProbeResponse(body, ctx.scheme)
        } catch (err) {
          ctx.fault(`node ${this.index}: the probe answer of ${peer.index} does not parse: ${(err as Error).message}`)
          return
        }
        if (f !== undefined && ctx.scheme.verify(f)) { sample.record(peer.peerId, f) }
      }))
      const floor = sample.select(threshold)
      if (floor !== undefined) {
        ctx.trace.record(ctx.now(), `floor ${this.index} view ${floor.subject.proposal.view}`)
        return floor
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  /** What this node's source for `name` answers a state-sync request with (byzantine servers misbehave here). */
  private async serveSync (name: string, request: Request): Promise<Response> {
    const source = this.served[name]
    if (source === undefined || this.running === undefined) { throw new ServeError('MissingSource') }
    const asked = `${name}:${hex(encodeRequest(request))}`
    if (this.syncFault === 'stall' && !(this.lieWhenAskedAgain && this.satOn.has(asked))) {
      this.satOn.add(asked)
      return never()
    }
    if (this.syncFault === 'no-data') { throw new ServeError('NoData') }
    const { response } = await source.serve(request, {})
    return this.syncFault === 'lie' || this.syncFault === 'stall' ? corrupt(response) : response
  }

  /** The resolver's handler serving `name` here (`src/p2p/server.ts`), built once per database. */
  private syncHandler (name: keyof Dbs & string): RequestHandler<Request> {
    const known = this.syncHandlers.get(name)
    if (known !== undefined) { return known }
    const source: Source = { serve: async request => ({ response: await this.serveSync(name, request) }) }
    const h = resolverHandler(name, { kind: this.ctx.application.databases[name].protocol, maxServeOps: 1024, maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES },
      () => this.served[name] === undefined ? undefined : source, log)
    this.syncHandlers.set(name, h)
    return h
  }

  /**
   * The node's `Source` for `name`, as the resolver's client asks
   * (`src/net/client.ts`, `src/p2p/client.ts`): the request encoded with
   * the protocol's codec, served by the peer's resolver handler over a
   * stream (`sim/wire.ts`), the answer parsed as the client parses it; a
   * response that breaks the protocol or fails verification blocks its
   * peer for good, and stalling and `NoData` peers are blocked for a while
   * by the strike rule (`askPeers`, `src/net/peers.ts`).
   */
  private syncSource (name: keyof Dbs & string): Source {
    const ctx = this.ctx
    const codec = ctx.application.databases[name].codec
    return {
      serve: async (request, { signal }) => {
        const bytes = encodeRequest(request)
        // the response the sync engine verified: a suspect's answer when asked again is judged by it, as the resolver's client does
        let accepted: Response | undefined
        const { peer, value: response } = await this.askPeers(() => this.syncPeers, `sync-${name}`, async peer => peer.wire.ask(peer.syncHandler(name), this.id, bytes, DEFAULT_MAX_RESPONSE_BYTES), {
          check: () => { if (signal?.aborted === true) { throw new ServeError('Aborted') } },
          filter: p => p.served[name] !== undefined,
          parse: body => {
            const frame = parseResponseFrame(body, request, codec)
            return frame.type === 'no-data' ? undefined : frame.response
          },
          judge: answer => accepted === undefined ? undefined : answerAgrees(request, accepted, answer),
          invalid: peer => { this.blameSync(peer) }
        })
        if (peer.syncFault === 'lie' || peer.lieWhenAskedAgain) { this.syncLied.add(peer.index) }
        const book = this.syncPeers
        return {
          response,
          feedback: valid => {
            if (valid) { accepted = response }
            if (!valid) {
              book.block(peer.peerId, `its ${request.type} response for ${name} failed verification`)
              this.blameSync(peer)
            }
          }
        }
      }
    }
  }

  private blameSync (peer: SimNode<B, Dbs>): void {
    if (peer.syncFault === 'lie' || peer.lieWhenAskedAgain) { this.syncLied.add(peer.index) }
    this.syncBlamed.add(peer.index)
    this.ctx.trace.record(this.ctx.now(), `sync-blame ${this.index} ${peer.index}`)
  }

  /**
   * One exchange of kind `kind`, retried until a peer answers, as the kit's
   * client does (`src/net/client.ts`): a fresh request goes to the best-scored
   * peer of `book()` matching `filter`, a retry to a shuffled other one; the
   * peer's answer bytes (`serve`, run at the peer) are parsed by `parse`
   * (undefined: no data); an answer that breaks the protocol (`parse`
   * throws) blocks its peer for good, as the client's `invalid` does, and
   * is told to `invalid`; an attempt that brings nothing costs its peer the
   * request timeout in the book; 100 ms of virtual time pass before the next
   * attempt. `check` runs before every attempt and throws to give up. The
   * strike rule is the kit's (`StrikeTally`, as the client loop uses it): a
   * peer that timed out or had no data (where its book counts that) earns a
   * strike when another peer answers; a lost exchange or a reset stream
   * earns none.
   */
  private async askPeers<T> (book: () => PeerBook, kind: string, serve: (peer: SimNode<B, Dbs>) => Promise<Uint8Array | undefined>, opts: {
    check(): void
    filter?(p: SimNode<B, Dbs>): boolean
    parse(body: Uint8Array): T | undefined
    /** Where the caller verifies after `parse`: judge a suspect's data when asked again (`Ask.judge`, `src/net/client.ts`). */
    judge?(value: T): boolean | undefined
    invalid(peer: SimNode<B, Dbs>): void
  }): Promise<{ peer: SimNode<B, Dbs>, value: T }> {
    const ctx = this.ctx
    let last: string | undefined
    let tally: { book: PeerBook, strikes: StrikeTally, vain: Map<number, number> } | undefined
    for (;;) {
      opts.check()
      const peers = book()
      // a crash replaces the books: strikes are counted in the current one
      if (tally?.book !== peers) { tally = { book: peers, strikes: new StrikeTally(peers, kind), vain: new Map() } }
      const peer = this.pickFrom(peers, last, opts.filter)
      if (peer !== undefined) {
        const asked = ctx.now()
        const r = await ctx.net.exchange(this.index, peer.index, kind, async () => serve(peer))
        let outcome: 'data' | 'no-data' | 'invalid' | 'reset' | 'timeout' | 'lost' = r.type === 'answer' ? 'reset' : r.type
        let value: T | undefined
        if (r.type === 'answer') {
          try {
            value = r.value === undefined ? undefined : opts.parse(r.value)
            outcome = r.value === undefined ? 'reset' : value === undefined ? 'no-data' : 'data'
          } catch (err) {
            outcome = 'invalid'
            peers.block(peer.peerId, `${kind}: ${(err as Error).message}`)
            ctx.trace.record(ctx.now(), `invalid ${this.index} ${peer.index} ${kind}`)
            opts.invalid(peer)
          }
        }
        if (outcome === 'data' && value !== undefined) {
          peers.record(peer.peerId, ctx.now() - asked)
          const rechecks = peers === this.syncPeers ? this.syncRechecks : this.marshalRechecks
          this.answered(peers, peer, tally, kind, id => {
            const p = ctx.nodes.find(n => n.peerId === id) as SimNode<B, Dbs>
            rechecks.stalled(id, async signal => this.reask(peers, p, kind, serve, opts, signal))
          })
          return { peer, value }
        }
        peers.record(peer.peerId, ctx.net.requestTimeoutMs)
        // lost (dropped, cut, peer down) or reset: the network's doing or a refusal, no strike
        if (outcome === 'timeout' || outcome === 'no-data') {
          tally.strikes.miss(peer.peerId, outcome)
          if ((peer.syncFault === 'stall' || peer.syncFault === 'no-data') && (outcome === 'timeout' || peers.strikesNoData)) { tally.vain.set(peer.index, ctx.now()) }
        }
        last = peer.peerId
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  /**
   * Ask `peer`, a suspected staller, again for what another peer served
   * (`src/net/recheck.ts`), as the kit's client does: a timeout is the
   * outcome that strikes; a true answer, even no data, ends the suspicion
   * (data is judged by `judge` where the caller verifies after parsing:
   * false blocks the peer for good, undefined says nothing); a lost exchange
   * or a reset says nothing.
   */
  private async reask<T> (book: PeerBook, peer: SimNode<B, Dbs>, kind: string, serve: (peer: SimNode<B, Dbs>) => Promise<Uint8Array | undefined>, opts: {
    parse(body: Uint8Array): T | undefined
    judge?(value: T): boolean | undefined
    invalid(peer: SimNode<B, Dbs>): void
  }, signal: AbortSignal): Promise<RecheckOutcome> {
    const ctx = this.ctx
    if (signal.aborted || !peer.up || !ctx.net.reachable(this.index, peer.index)) { return 'other' }
    ctx.trace.record(ctx.now(), `recheck ${this.index} ${peer.index} ${kind}`)
    const r = await ctx.net.exchange(this.index, peer.index, kind, async () => serve(peer))
    if (signal.aborted) { return 'other' }
    if (r.type !== 'answer') {
      book.record(peer.peerId, ctx.net.requestTimeoutMs)
      return r.type === 'timeout' ? 'timeout' : 'other'
    }
    if (r.value === undefined) { return 'other' }
    let value: T | undefined
    try {
      value = opts.parse(r.value)
    } catch (err) {
      book.block(peer.peerId, `${kind}: ${(err as Error).message}`)
      opts.invalid(peer)
      return 'other'
    }
    if (value === undefined) { return 'no-data' }
    const verdict = opts.judge === undefined ? true : opts.judge(value)
    if (verdict === undefined) { return 'other' }
    if (!verdict) {
      book.block(peer.peerId, `${kind}: its answer, asked again, contradicts the data another peer served`)
      ctx.trace.record(ctx.now(), `recheck-invalid ${this.index} ${peer.index} ${kind}`)
      opts.invalid(peer)
      return 'invalid'
    }
    return 'data'
  }

  /** The strike rule blocked `peerId` for `ms` (asking `kind`). */
  private recordStrikeOut (peerId: string, kind: string, ms: number): void {
    const struck = this.ctx.nodes.find(p => p.peerId === peerId) as SimNode<B, Dbs>
    this.struckOut.add(struck.index)
    this.ctx.trace.record(this.ctx.now(), `strike-out ${this.index} ${struck.index} ${kind} ${ms}`)
  }

  /**
   * `peer` answered a request of `kind` that `tally` followed: strikes go to
   * those that had nothing (the kit's rule), and the run's own count;
   * `stalled` is told those that timed out (asked again).
   */
  private answered (book: PeerBook, peer: SimNode<B, Dbs>, tally: { strikes: StrikeTally, vain: Map<number, number> }, kind: string, stalled: (peerId: string) => void): void {
    const ctx = this.ctx
    // the run's own count of what the rule should have counted, for its invariant
    const vain = book === this.syncPeers ? this.vain.sync : this.vain.marshal
    for (const [p, at] of tally.vain) {
      const before = vain.get(p)
      if (before === undefined || at >= before.at) { vain.set(p, { times: (before?.times ?? 0) + 1, at: ctx.now() }) }
    }
    for (const out of tally.strikes.answered(peer.peerId, stalled)) { this.recordStrikeOut(out.peer, kind, out.ms) }
  }

  /** The peer `book` orders first among the reachable, running peers matching `filter` (a retry after `last` shuffles by the seed). */
  private pickFrom (book: PeerBook, last: string | undefined, filter?: (p: SimNode<B, Dbs>) => boolean): SimNode<B, Dbs> | undefined {
    const candidates = this.reachablePeers(filter)
    const first = book.order(candidates.map(p => p.id), last === undefined, last, () => this.ctx.rng.u32() / 0x100000000)[0]
    return first === undefined ? undefined : candidates.find(p => p.id === first)
  }

  /** A reachable, running peer (matching `filter`), chosen by the seed. */
  private pickPeer (filter?: (p: SimNode<B, Dbs>) => boolean): SimNode<B, Dbs> | undefined {
    const candidates = this.reachablePeers(filter)
    return candidates.length === 0 ? undefined : this.ctx.rng.pick(candidates)
  }

  /** The running peers this node can reach now (matching `filter`). */
  private reachablePeers (filter?: (p: SimNode<B, Dbs>) => boolean): Array<SimNode<B, Dbs>> {
    return this.ctx.nodes.filter(p => p.up && p.index !== this.index && this.ctx.net.reachable(this.index, p.index) && (filter?.(p) ?? true))
  }

  /**
   * What this node's marshal server answers from (`src/marshal/server.ts`):
   * its marshal while it runs; a stalling server never answers, a `NoData`
   * server has nothing, a byzantine block server encodes garbage.
   */
  private marshalServer (): MarshalServer<B, Finalization> {
    if (this.blockServer === undefined) {
      const ctx = this.ctx
      const codec = ctx.application.blockCodec
      const serving = { maxBytes: codec.maxBytes, decode: (b: Uint8Array) => codec.decode(b), encode: (b: B) => this.serveBlock(codec.encode(b)) }
      this.blockServer = new MarshalServer<B, Finalization>({ codec: serving, scheme: ctx.scheme, maxServeBlocks: MAX_RANGE, maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES }, log)
      const read = async <R>(f: (m: Marshal<B, Finalization>) => Promise<R | undefined>): Promise<R | undefined> => {
        if (this.syncFault === 'stall') { return never() }
        const m = this.running?.marshal
        return m === undefined || this.syncFault === 'no-data' ? undefined : f(m)
      }
      this.blockServer.attach({
        getBlock: async digest => read(async m => m.getBlock(digest)),
        getFinalizedBlock: async height => read(async m => m.getFinalizedBlock(height)),
        getFinalization: async height => read(async m => m.getFinalization(height)),
        latestFinalization: async () => read(async m => m.latestFinalization())
      })
    }
    return this.blockServer
  }

  /**
   * Marshal's view of the network, as its client asks (`src/marshal/client.ts`):
   * requests encoded with marshal's codec, served by the peer's marshal server
   * over a stream, answers parsed (digest, heights, links and certificates
   * checked) as the client parses them; peers picked and blocked as the sync
   * source does (`syncSource`).
   */
  private fetcher (): BlockFetcher {
    const ctx = this.ctx
    const me = this.index
    const codec = ctx.application.blockCodec
    const invalid = (peer: SimNode<B, Dbs>): void => {
      if (peer.lieAboutBlocks) { this.lied.add(peer.index) }
      this.blamed.add(peer.index)
      ctx.trace.record(ctx.now(), `blame ${me} ${peer.index}`)
    }
    const answered = (peer: SimNode<B, Dbs>): (valid: boolean) => void => {
      if (peer.lieAboutBlocks) { this.lied.add(peer.index) }
      const book = this.marshalPeers
      return valid => {
        if (!valid) {
          book.block(peer.peerId, 'served a block that failed verification')
          invalid(peer)
        }
      }
    }
    const ask = (bytes: Uint8Array) => async (peer: SimNode<B, Dbs>) => peer.wire.ask(peer.marshalServer(), this.id, bytes, DEFAULT_MAX_RESPONSE_BYTES)
    return {
      fetchBlock: async (digest, { signal }) => {
        const { peer, value: bytes } = await this.askPeers(() => this.marshalPeers, 'block', ask(encodeMarshalRequest({ type: 'block', digest })), {
          check: () => { signal.throwIfAborted() },
          parse: body => {
            const p = parseBlockResponse(body, digest, codec)
            return p.type === 'no-data' ? undefined : p.value
          },
          invalid
        })
        return { bytes, feedback: answered(peer) }
      },
      fetchFinalized: async (from, to, { signal }) => {
        // as marshal's client: at most MAX_RANGE blocks ending at `to`
        const low = Math.max(from, to - MAX_RANGE + 1)
        const { peer, value: blocks } = await this.askPeers(() => this.marshalPeers, 'range', ask(encodeMarshalRequest({ type: 'finalized', from: low, to })), {
          check: () => { signal.throwIfAborted() },
          parse: body => {
            const p = parseFinalizedResponse(body, low, to, codec, ctx.scheme)
            return p.type === 'no-data' ? undefined : p.value
          },
          invalid
        })
        return { blocks, feedback: answered(peer) }
      }
    }
  }

  /** The bytes this node serves for an encoded block (honest: unchanged; a byzantine node overrides it). */
  serveBlock (bytes: Uint8Array): Uint8Array {
    return this.lieAboutBlocks ? this.ctx.rng.bytes(bytes.length) : bytes
  }

  /** Call `then` right after the `n`-th next synced write of this incarnation (false if the node is down). */
  afterSyncs (n: number, then: () => void): boolean {
    const store = this.running?.store
    if (store === undefined) { return false }
    let left = n
    store.onSync = () => {
      if (--left === 0) {
        store.onSync = undefined
        then()
      }
    }
    return true
  }

  /**
   * A gossip message from node `from` arrives, and is judged as the topic
   * validators judge it before gossipsub relays or delivers it (votes and
   * certificates by `admitGossip`, blocks by `Marshal.admitBlock`); only an
   * accepted one reaches the engine or the block store. Counted for the
   * run's invariant (nothing an honest node sends is rejected).
   */
  receiveGossip (from: number, kind: GossipKind | 'block', data: Uint8Array): void {
    const r = this.running
    if (r === undefined) { return }
    const judged = (admission: Admission): void => {
      this.gossip[admission]++
      if (admission === 'reject') {
        this.gossipRejected.add(from)
        this.ctx.trace.record(this.ctx.now(), `gossip-reject ${this.index} ${from} ${kind}`)
      }
    }
    if (kind === 'block') {
      void r.marshal.admitBlock(data).then(async a => {
        judged(a.admission)
        if (a.admission === 'accept') { await r.marshal.storeBlock(a.block) }
      }).catch(() => {})
      return
    }
    const admitted = admitGossip(r.engine, kind, data)
    judged(admitted.admission)
    if (admitted.admission === 'accept') { void deliverGossip(r.engine, admitted).catch(() => {}) }
  }

  /**
   * A second vote for the same view as `bytes`, validly signed, for another
   * payload (a notarize or finalize vote; a nullify has no payload to vary):
   * with the leader's notarize vote this is a second proposal for its view.
   */
  private async twinVote (bytes: Uint8Array): Promise<Uint8Array | undefined> {
    const vote = decodeVote(bytes)
    if (vote.subject.kind === 'nullify') { return undefined }
    const subject = { kind: vote.subject.kind, proposal: { ...vote.subject.proposal, payload: this.ctx.rng.bytes(32) } }
    this.equivocations++
    this.ctx.trace.record(this.ctx.now(), `equivocate ${this.index} ${subject.kind} view ${subject.proposal.view}`)
    return encodeVote({ subject, signer: vote.signer, signature: await this.key.sign(signedMessage(this.ctx.set.chainId, subject)) })
  }

  /** Stop voting and proposing (a silent validator); it keeps following. */
  silence (): void {
    this.running?.engine.pause()
  }

  /** Crash: everything stops where it is; the disk keeps what `kind` leaves. */
  crash (kind: CrashKind): void {
    const r = this.running
    if (r === undefined) { return }
    this.incarnation++
    this.running = undefined
    this.lied.clear()
    this.syncLied.clear()
    this.vain.sync.clear()
    this.vain.marshal.clear()
    this.marshalRechecks.stop()
    this.syncRechecks.stop()
    this.marshalPeers = this.newBook('marshal')
    this.syncPeers = this.newBook('sync')
    this.marshalRechecks = this.rechecksOf(this.marshalPeers, 'marshal')
    this.syncRechecks = this.rechecksOf(this.syncPeers, 'sync')
    this.served = {}
    this.disk = r.store.crash(kind)
    // timers and loops of the dead incarnation stop; their pending storage calls hang forever
    void r.engine.stop().catch(() => {})
    r.marshal.stop()
    void r.stateful.stop().catch(() => {})
  }

  /** A clean stop at the end of a run (flushes what marshal holds). */
  async stop (): Promise<void> {
    const r = this.running
    if (r === undefined) { return }
    this.running = undefined
    this.marshalRechecks.stop()
    this.syncRechecks.stop()
    await r.engine.stop().catch(() => {})
    await r.stateful.stop().catch(() => {})
    r.marshal.stop()
    await r.marshal.flush().catch(() => {})
    this.disk = r.store.crash('process')
  }
}

/** Most blocks a range request asks for or a server sends (marshal's defaults, `src/marshal/service.ts`). */
const MAX_RANGE = 128

/** The simulation's libp2p-style log (silent unless DEBUG names it). */
const log = defaultLogger().forComponent('qmdb:sim')

async function never<T> (): Promise<T> {
  return new Promise<T>(() => {})
}

/** A response altered so it cannot verify: one operation byte flipped (in a copy). */
function corrupt (r: Response): Response {
  const flip = (b: Uint8Array): Uint8Array => {
    const c = b.slice()
    if (c.length > 0) { c[c.length - 1] ^= 0x01 }
    return c
  }
  if (r.type === 'boundary') { return { ...r, op: flip(r.op) } }
  return { ...r, ops: r.ops.map((op, i) => i === 0 ? flip(op) : op) }
}

const initialCache = new WeakMap<object, Promise<unknown>>()

/** The initial targets of `application`'s databases (opened empty, in memory), computed once per application. */
async function initialTargets<B extends Block, Dbs extends DatabaseRecord> (application: NodeApplication<B, Dbs>): Promise<ReturnType<DatabaseSet<Dbs>['initialSyncTargets']>> {
  let p = initialCache.get(application)
  if (p === undefined) {
    p = (async () => {
      const set = await openDatabases(application, new PowerLossDatastore())
      const targets = set.initialSyncTargets()
      await set.close()
      return targets
    })()
    initialCache.set(application, p)
  }
  return p as Promise<ReturnType<DatabaseSet<Dbs>['initialSyncTargets']>>
}
