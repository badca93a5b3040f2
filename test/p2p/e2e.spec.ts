/**
 * End-to-end state sync over libp2p: real nodes on TCP 127.0.0.1 (Noise,
 * Yamux, identify) serving databases with the standard and compact
 * resolvers, and fresh nodes running the sync engine and the multi-database
 * coordinator against them through the resolvers' network sources.
 *
 * Covers (the request-level behaviour is in p2p-resolver, p2p-client,
 * p2p-malicious, p2p-fuzz and p2p-load):
 * - a fresh node syncs `any`, `current` (unordered and ordered), `immutable`, `keyless` and compact
 * `immutable`/`keyless` databases from three serving nodes (one serving
 * compact tips from full databases, two from compact databases) and ends
 * with exactly the target roots and operations;
 * - the same while the servers keep committing and the target moves: target
 * updates sent to the engine in the middle of a sync, and newer finalized
 * tips given to the coordinator;
 * - a malicious serving node (tampered operations, proofs or pinned nodes, a
 * valid fork of the database, wrong sizes, garbage, unknown status,
 * oversized, endless and never-sent responses, resets) is blocked or timed
 * out, the sync completes from the honest nodes with the target root, and
 * the synced operations are the honest ones;
 * - 50 fresh nodes state-sync concurrently from one server (peak RSS reported).
 *
 * Invariants checked are independent of the code under test: the synced
 * root and operations equal the serving databases' own, and the compact
 * databases' roots equal their full counterparts' roots.
 */
import '../util/polyfill.ts'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { popcount } from '../../src/merkle/index.ts'
import { CompactImmutableDb, CompactKeylessDb, verifyExclusionProof } from '../../src/qmdb/index.ts'
import {
  Channel, CompactSource, LocalSource, anySync, compactSync, compactTargetsEqual, compactToTarget, currentSync, immutableSync,
  keylessSync, orderedAnySync, orderedCurrentSync, syncDatabase, syncDatabaseSet, targetsEqual
} from '../../src/sync/index.ts'
import { COMPACT_KINDS, CountingSource, DbSet, FULL_KINDS, KEY_SPACE, keyOf, opsOf } from '../util/p2p-e2e-dbs.ts'
import { startMaliciousServer } from '../util/p2p-malicious.ts'
import { connectAll, createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import type { NetworkSource } from '../../src/p2p/index.ts'
import type {
  AnyDb, CompactDb, CompactTarget, CurrentDb, ImmutableDb, ImmutableOp, KeylessDb, KeylessOp, OrderedAnyDb, OrderedCurrentDb, Target
} from '../../src/qmdb/index.ts'
import type { MemberDbs, MemberSync, MemberTargets, SyncKind, SyncProgress, TipUpdate } from '../../src/sync/index.ts'
import type { CompactKind, FullKind } from '../util/p2p-e2e-dbs.ts'
import type { Behaviour } from '../util/p2p-malicious.ts'
import type { TestNode } from '../util/p2p-nodes.ts'
import type { PeerId } from '@libp2p/interface'

const SEED = 7
const BATCHES = 80
const CLIENT_OPTS = { timeout: 2000, retryDelay: 20, maxRetryDelay: 200 }

interface Server {
  node: TestNode
  dbs: DbSet
  counters: CountingSource[]
}

/**
 * A serving node: every full kind on the standard resolver; compact tips on
 * the compact resolver, from the full database (server 0) or from the
 * compact database (the others).
 */
async function startServer (index: number): Promise<Server> {
  const node = await createTestNode({ standard: { databases: FULL_KINDS }, compact: { databases: COMPACT_KINDS } })
  const dbs = await DbSet.create(SEED, BATCHES)
  const counters: CountingSource[] = []
  for (const kind of FULL_KINDS) {
    const c = new CountingSource(new LocalSource(dbs.full[kind]))
    counters.push(c)
    await node.services.standard.attach(kind, c)
  }
  for (const kind of COMPACT_KINDS) {
    const tip = kind === 'immutable' ? new CompactSource(dbs.compact.immutable) : new CompactSource(dbs.compact.keyless)
    const c = new CountingSource(index === 0 ? new LocalSource(dbs.full[kind]) : tip)
    counters.push(c)
    await node.services.compact.attach(kind, c)
  }
  return { node, dbs, counters }
}

/** Step every server's databases once, in lockstep (they stay identical). */
async function stepAll (servers: Server[]): Promise<void> {
  await Promise.all(servers.map(async s => { await s.dbs.step() }))
}

type SetMembers = {
  any: MemberSync<AnyDb, Target>
  current: MemberSync<CurrentDb, Target>
  anyOrdered: MemberSync<OrderedAnyDb, Target>
  currentOrdered: MemberSync<OrderedCurrentDb, Target>
  immutable: MemberSync<ImmutableDb, Target>
  keyless: MemberSync<KeylessDb, Target>
  immutableCompact: MemberSync<CompactDb<ImmutableOp>, CompactTarget>
  keylessCompact: MemberSync<CompactDb<KeylessOp>, CompactTarget>
}

type SetTargets = MemberTargets<SetMembers>

function targetsOf (dbs: DbSet): SetTargets {
  return {
    any: dbs.target('any'),
    current: dbs.target('current'),
    anyOrdered: dbs.target('anyOrdered'),
    currentOrdered: dbs.target('currentOrdered'),
    immutable: dbs.target('immutable'),
    keyless: dbs.target('keyless'),
    immutableCompact: dbs.compactTarget('immutable'),
    keylessCompact: dbs.compactTarget('keyless')
  }
}

function fullKindSync (kind: FullKind): SyncKind<any> {
  switch (kind) {
    case 'any': return anySync()
    case 'current': return currentSync()
    case 'anyOrdered': return orderedAnySync()
    case 'currentOrdered': return orderedCurrentSync()
    case 'immutable': return immutableSync()
    default: return keylessSync()
  }
}

const identity = (t: Target): Target => t

/** The eight members of a set sync, fetching through `client`'s resolvers from `peers` (compact tips from `compactPeers`). */
async function members (client: TestNode, peers: PeerId[], ref: DbSet, compactPeers = peers): Promise<{ members: SetMembers, sources: NetworkSource[] }> {
  const sources: NetworkSource[] = []
  const std = (kind: FullKind): NetworkSource => {
    const s = client.services.standard.source(kind, { codec: ref.codec(kind), peers })
    sources.push(s)
    return s
  }
  const cmp = (kind: CompactKind): NetworkSource => {
    const s = client.services.compact.source(kind, { codec: ref.codec(kind), peers: compactPeers })
    sources.push(s)
    return s
  }
  const m: SetMembers = {
    any: { kind: anySync(), source: std('any'), toTarget: identity, equal: targetsEqual },
    current: { kind: currentSync(), source: std('current'), toTarget: identity, equal: targetsEqual },
    anyOrdered: { kind: orderedAnySync(), source: std('anyOrdered'), toTarget: identity, equal: targetsEqual },
    currentOrdered: { kind: orderedCurrentSync(), source: std('currentOrdered'), toTarget: identity, equal: targetsEqual },
    immutable: { kind: immutableSync(), source: std('immutable'), toTarget: identity, equal: targetsEqual },
    keyless: { kind: keylessSync(), source: std('keyless'), toTarget: identity, equal: targetsEqual },
    immutableCompact: { kind: compactSync(await CompactImmutableDb.open()), source: cmp('immutable'), toTarget: compactToTarget, equal: compactTargetsEqual },
    keylessCompact: { kind: compactSync(await CompactKeylessDb.open()), source: cmp('keyless'), toTarget: compactToTarget, equal: compactTargetsEqual }
  }
  return { members: m, sources }
}

/** The synced set equals `ref` at `targets`: roots, ranges, operations, `any` values, `current` canonical root. */
async function expectSetSynced (dbs: MemberDbs<SetMembers>, targets: SetTargets, ref: DbSet): Promise<void> {
  for (const kind of FULL_KINDS) {
    const t = targets[kind]
    const db = dbs[kind]
    expect(db.opsRoot, `${kind} ops root`).to.deep.equal(t.root)
    expect(targetsEqual(db.syncTarget(), t), `${kind} target`).to.equal(true)
    // the operations the source database holds at those locations, byte for byte
    expect(await opsOf(db, t.range.start, t.range.end), `${kind} operations`).to.deep.equal(await opsOf(ref.full[kind], t.range.start, t.range.end))
  }
  for (const kind of COMPACT_KINDS) {
    const t = kind === 'immutable' ? targets.immutableCompact : targets.keylessCompact
    const db = kind === 'immutable' ? dbs.immutableCompact : dbs.keylessCompact
    expect(db.root, `compact ${kind} root`).to.deep.equal(t.root)
    expect(db.size, `compact ${kind} size`).to.equal(t.size)
  }
}

/** Honest servers never get blocked. */
function expectNoneBlocked (client: TestNode, ids: PeerId[]): void {
  for (const id of ids) {
    expect(client.services.standard.isBlocked(id), `standard resolver blocked ${id.toString()}`).to.equal(false)
    expect(client.services.compact.isBlocked(id), `compact resolver blocked ${id.toString()}`).to.equal(false)
  }
}

async function metricValue (registry: Registry, name: string, label?: string): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) { return 0 }
  const { values } = await metric.get()
  return values.filter(v => label === undefined || Object.values(v.labels).includes(label)).reduce((s, v) => s + v.value, 0)
}

interface MaliciousCase {
  behaviour: Behaviour | 'fork'
  /** blocked for good for bad data, or only timed out / unhelpful (then at most struck out for a while) */
  blocked: boolean
  /** the engine saw the data and rejected it (verification, not framing) */
  verdict?: boolean
  timeout?: boolean
}

const MALICIOUS_CASES: MaliciousCase[] = [
  { behaviour: 'tamper-op', blocked: true, verdict: true },
  { behaviour: 'tamper-proof', blocked: true, verdict: true },
  { behaviour: 'tamper-pins', blocked: true, verdict: true },
  { behaviour: 'fork', blocked: true, verdict: true },
  { behaviour: 'wrong-size', blocked: true },
  { behaviour: 'garbage', blocked: true },
  { behaviour: 'bad-status', blocked: true },
  { behaviour: 'oversized', blocked: true },
  { behaviour: 'endless', blocked: false, timeout: true },
  { behaviour: 'silent', blocked: false, timeout: true },
  { behaviour: 'reset', blocked: false }
]

function caseOutcome (c: MaliciousCase): string {
  if (c.blocked) { return 'blocked' }
  return c.timeout === true ? 'timed out, not blocked for good' : 'not blocked for good'
}

interface MaliciousEnv {
  servers: Server[]
  serverIds: PeerId[]
  client: TestNode
  registry: Registry
  /** the servers' databases (same seed and steps) */
  twin: DbSet
  /** same shape, other values: valid proofs against other roots */
  fork: DbSet
  others: TestNode[]
}

/**
 * A fresh `any` sync whose only peer is a malicious node until that node has
 * been asked (so it gets the boundary request and the first ranges), then the
 * honest servers join. The sync must end with the target and the honest
 * operations.
 */
async function runMaliciousCase (env: MaliciousEnv, c: MaliciousCase): Promise<void> {
  const { servers, serverIds, client, registry, twin, fork } = env
  const bad = await createTestNode()
  env.others.push(bad)
  const from = c.behaviour === 'fork' ? fork : twin
  const mal = await startMaliciousServer(bad, {
    db: 'any',
    source: new LocalSource(from.full.any),
    codec: from.codec('any'),
    behaviour: c.behaviour === 'fork' ? 'honest' : c.behaviour
  })
  await connectAll(client, [bad])
  const resolver = client.services.standard
  const invalidBefore = await metricValue(registry, 'libp2p_qmdb_standard_verdicts_total', 'invalid')
  const timeoutsBefore = await metricValue(registry, 'libp2p_qmdb_standard_fetch_total', 'timeout')
  const target = servers[0].dbs.target('any')
  const source = resolver.source('any', { codec: twin.codec('any'), peers: [bad.peerId] })
  const syncing = syncDatabase({
    kind: anySync(),
    target,
    source,
    fetchBatchSize: 16,
    maxOutstandingRequests: 4,
    signal: AbortSignal.timeout(20_000)
  })
  await waitUntil(() => mal.requests >= 1, 10_000, 'the malicious node to be asked')
  source.setPeers([bad.peerId, ...serverIds])
  const db = await syncing
  source.close()
  await mal.stop()
  expect(db.opsRoot).to.deep.equal(target.root)
  expect(targetsEqual(db.syncTarget(), target)).to.equal(true)
  // nothing the malicious node sent was applied: the operations are the honest ones
  expect(await opsOf(db, target.range.start, target.range.end)).to.deep.equal(await opsOf(servers[0].dbs.full.any, target.range.start, target.range.end))
  // a staller may be struck out for a while (the strike rule, docs/PROTOCOLS.md), never blocked for good
  const reason = resolver.blockedPeers().get(bad.peerId.toString())
  expect(reason !== undefined && !reason.includes('in a row that other peers answered'), `malicious node blocked for good (${reason ?? 'not blocked'})`).to.equal(c.blocked)
  for (const id of serverIds) { expect(resolver.isBlocked(id), 'honest node blocked').to.equal(false) }
  if (c.verdict === true) {
    expect(await metricValue(registry, 'libp2p_qmdb_standard_verdicts_total', 'invalid') - invalidBefore, 'responses the engine rejected').to.be.at.least(1)
  }
  if (c.timeout === true) {
    expect(await metricValue(registry, 'libp2p_qmdb_standard_fetch_total', 'timeout') - timeoutsBefore, 'timed out requests').to.be.at.least(1)
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('p2p e2e: state sync between real libp2p nodes', function () {
  this.timeout(60_000)
  let servers: Server[] = []
  let serverIds: PeerId[] = []
  const others: TestNode[] = []

  before(async () => {
    servers = await Promise.all([0, 1, 2].map(startServer))
    serverIds = servers.map(s => s.node.peerId)
  })

  after(async () => {
    await stopAll([...servers.map(s => s.node), ...others])
    for (const s of servers) { await s.dbs.close() }
  })

  async function freshClient (opts = CLIENT_OPTS): Promise<TestNode> {
    const c = await createTestNode({ standard: opts, compact: opts })
    others.push(c)
    await connectAll(c, servers.map(s => s.node))
    return c
  }

  it('the serving databases: identical across servers, compact roots equal full roots, floors above zero', () => {
    const ref = servers[0].dbs
    for (const s of servers.slice(1)) {
      for (const kind of FULL_KINDS) { expect(s.dbs.full[kind].opsRoot).to.deep.equal(ref.full[kind].opsRoot) }
    }
    for (const kind of COMPACT_KINDS) {
      expect(ref.compact[kind].root).to.deep.equal(ref.full[kind].opsRoot)
      expect(ref.compact[kind].size).to.equal(ref.full[kind].size)
    }
    // every standard sync below starts with a boundary request (pinned nodes), not at 0
    for (const kind of FULL_KINDS) {
      const { start } = ref.target(kind).range
      expect(start, `${kind} sync boundary`).to.be.greaterThan(0)
      expect(popcount(start), `${kind} pinned nodes at the boundary`).to.be.greaterThan(0)
    }
  })

  it('a fresh node syncs all eight databases from three serving nodes and ends with the target roots', async () => {
    const ref = servers[0].dbs
    const client = await freshClient()
    const targets = targetsOf(ref)
    const before = servers.map(s => s.counters.reduce((n, c) => n + c.total, 0))
    // compact tips from the two servers holding compact databases
    const set = await members(client, serverIds, ref, serverIds.slice(1))
    const res = await syncDatabaseSet({
      members: set.members,
      anchor: { height: 0 },
      targets,
      fetchBatchSize: 16,
      maxOutstandingRequests: 4,
      signal: AbortSignal.timeout(30_000)
    })
    expect(res.anchor.height).to.equal(0)
    await expectSetSynced(res.dbs, targets, ref)
    // the current database also rebuilt its activity bitmap: same canonical root
    expect(res.dbs.current.root).to.deep.equal(ref.full.current.root)
    expect(res.dbs.currentOrdered.root).to.deep.equal(ref.full.currentOrdered.root)
    // every key reads the same in the synced `any` databases; the ordered ones also agree on next keys
    for (let i = 0; i < KEY_SPACE; i++) {
      expect(await res.dbs.any.get(keyOf(i)), `key ${i}`).to.deep.equal(await ref.full.any.get(keyOf(i)))
      expect(await res.dbs.anyOrdered.getAll(keyOf(i)), `ordered key ${i}`).to.deep.equal(await ref.full.anyOrdered.getAll(keyOf(i)))
    }
    // and the synced ordered current database proves absence against the serving database's root
    const absent = keyOf(KEY_SPACE + 1)
    expect(verifyExclusionProof(ref.full.currentOrdered.codec, absent, await res.dbs.currentOrdered.exclusionProof(absent), ref.full.currentOrdered.root)).to.equal(true)
    const served = servers.map((s, i) => s.counters.reduce((n, c) => n + c.total, 0) - before[i])
    expect(served.filter(n => n > 0).length, `requests served per server: ${served.join(', ')}`).to.be.at.least(2)
    expectNoneBlocked(client, serverIds)
    for (const s of set.sources) { s.close() }
  })

  it('the engine follows target updates sent in the middle of a sync while the servers keep committing', async () => {
    const client = await freshClient()
    for (const kind of FULL_KINDS) {
      // two newer targets the servers already hold, sent while the first ones are half synced
      const queued: Target[] = [servers[0].dbs.target(kind)]
      for (let i = 0; i < 2; i++) {
        await stepAll(servers)
        queued.push(servers[0].dbs.target(kind))
      }
      const updates = new Channel<Target>()
      const finish = new Channel<void>({ capacity: 1 })
      const reached = new Channel<Target>()
      const reachedList: Target[] = []
      const draining = (async () => {
        for (;;) {
          const t = await reached.recv()
          if (t === undefined) { return }
          reachedList.push(t)
        }
      })()
      let sent = 1
      let midSync = 0
      const ends = new Set<number>()
      const onProgress = (p: SyncProgress): void => {
        ends.add(p.target.range.end)
        // the first update once some of the first target is synced; the next one as soon as the engine moved
        if (sent < queued.length && p.target.range.end === queued[sent - 1].range.end && p.synced < p.total && (sent > 1 || p.synced > 0)) {
          midSync++
          updates.trySend(queued[sent++])
        }
      }
      const source = client.services.standard.source(kind, { codec: servers[0].dbs.codec(kind), peers: serverIds })
      const syncing = syncDatabase({
        kind: fullKindSync(kind),
        name: kind,
        target: queued[0],
        source,
        updates,
        finish,
        reached,
        fetchBatchSize: 8,
        maxOutstandingRequests: 3,
        onProgress,
        signal: AbortSignal.timeout(30_000)
      })
      await waitUntil(() => sent === queued.length, 20_000, `${kind}: the queued updates to be sent`)
      // meanwhile the servers keep committing; each new state becomes the target
      let last = queued[queued.length - 1]
      for (let i = 0; i < 4; i++) {
        await stepAll(servers)
        await sleep(5)
        last = servers[0].dbs.target(kind)
        updates.trySend(last)
      }
      await waitUntil(() => reachedList.some(t => targetsEqual(t, last)), 20_000, `${kind} to reach the last target`)
      finish.trySend()
      const db = await syncing
      reached.close()
      await draining
      source.close()
      expect(midSync, `${kind}: updates sent mid-sync`).to.equal(2)
      expect(ends.size, `${kind}: targets synced toward`).to.be.at.least(3)
      expect(targetsEqual(db.syncTarget(), last), `${kind}: final target`).to.equal(true)
      expect(db.opsRoot).to.deep.equal(last.root)
      expect(await opsOf(db, last.range.start, last.range.end)).to.deep.equal(await opsOf(servers[1].dbs.full[kind], last.range.start, last.range.end))
    }
    expectNoneBlocked(client, serverIds)
  })

  it('the coordinator follows newer finalized tips while the servers keep committing, and converges on one of them', async () => {
    const ref = servers[0].dbs
    const client = await freshClient()
    const history = new Map<number, SetTargets>([[0, targetsOf(ref)]])
    const tips = new Channel<TipUpdate<SetTargets>>({ capacity: 4, ring: true })
    // one tip is already waiting when the sync starts: the first generation is always superseded
    await stepAll(servers)
    history.set(1, targetsOf(ref))
    tips.trySend({ anchor: { height: 1 }, targets: targetsOf(ref) })
    const anchors: number[] = []
    const set = await members(client, serverIds, ref)
    const state = { running: true }
    const grower = (async () => {
      for (let h = 2; h <= 12 && state.running; h++) {
        await stepAll(servers)
        history.set(h, targetsOf(ref))
        tips.trySend({ anchor: { height: h }, targets: targetsOf(ref) })
        await sleep(10)
      }
    })()
    let res
    try {
      res = await syncDatabaseSet({
        members: set.members,
        anchor: { height: 0 },
        targets: history.get(0) as SetTargets,
        tips,
        fetchBatchSize: 8,
        maxOutstandingRequests: 3,
        onAnchor: a => anchors.push(a.height),
        signal: AbortSignal.timeout(30_000)
      })
    } finally {
      state.running = false
      await grower
      tips.close()
    }
    expect(res.anchor.height).to.be.at.least(1)
    expect(anchors).to.include(1)
    const expected = history.get(res.anchor.height) as SetTargets
    expect(res.targets).to.deep.equal(expected)
    await expectSetSynced(res.dbs, expected, ref)
    expectNoneBlocked(client, serverIds)
    for (const s of set.sources) { s.close() }
  })

  describe('with a malicious serving node', () => {
    const env = { others } as unknown as MaliciousEnv

    before(async () => {
      env.servers = servers
      env.serverIds = serverIds
      env.registry = new Registry()
      const opts = { timeout: 500, retryDelay: 20, maxRetryDelay: 100 }
      env.client = await createTestNode({ standard: opts, compact: opts, metrics: prometheusMetrics({ registry: env.registry, collectDefaultMetrics: false }) })
      others.push(env.client)
      await connectAll(env.client, servers.map(s => s.node))
      // the honest servers' databases as they are now, and a fork of them (same shape, other values)
      env.twin = await DbSet.create(SEED, servers[0].dbs.steps)
      env.fork = await DbSet.create(SEED, servers[0].dbs.steps, SEED + 1000)
    })

    after(async () => {
      await env.twin?.close()
      await env.fork?.close()
    })

    it('the twin matches the servers and the fork has the same shape but other roots', () => {
      for (const kind of FULL_KINDS) {
        expect(env.twin.full[kind].opsRoot).to.deep.equal(servers[0].dbs.full[kind].opsRoot)
        expect(env.fork.full[kind].size).to.equal(servers[0].dbs.full[kind].size)
        expect(env.fork.target(kind).range).to.deep.equal(servers[0].dbs.target(kind).range)
        expect(env.fork.full[kind].opsRoot).to.not.deep.equal(servers[0].dbs.full[kind].opsRoot)
      }
    })

    for (const c of MALICIOUS_CASES) {
      it(`${c.behaviour}: ${caseOutcome(c)}; the any sync completes from the honest nodes with only honest operations`, async () => {
        await runMaliciousCase(env, c)
      })
    }

    it('compact sync: a node serving a tampered tip is blocked; the compact database gets the honest tip', async () => {
      const { client, twin, registry } = env
      const bad = await createTestNode()
      others.push(bad)
      const mal = await startMaliciousServer(bad, {
        db: 'immutable',
        kind: 'compact',
        source: new LocalSource(twin.full.immutable),
        codec: twin.codec('immutable'),
        behaviour: 'tamper-pins'
      })
      await connectAll(client, [bad])
      const ct = servers[0].dbs.compactTarget('immutable')
      expect(popcount(ct.size - 1)).to.be.greaterThan(0)
      const resolver = client.services.compact
      const source = resolver.source('immutable', { codec: twin.codec('immutable'), peers: [bad.peerId] })
      const compact = await CompactImmutableDb.open()
      const syncing = syncDatabase({ kind: compactSync(compact), target: compactToTarget(ct), source, signal: AbortSignal.timeout(20_000) })
      await waitUntil(() => mal.requests >= 1, 10_000, 'the malicious node to be asked')
      source.setPeers([bad.peerId, ...serverIds])
      const db = await syncing
      source.close()
      await mal.stop()
      expect(db.root).to.deep.equal(ct.root)
      expect(db.size).to.equal(ct.size)
      expect(resolver.isBlocked(bad.peerId)).to.equal(true)
      expect(await metricValue(registry, 'libp2p_qmdb_compact_verdicts_total', 'invalid')).to.be.at.least(1)
    })
  })

  it('50 fresh nodes state-sync concurrently from one server; peak RSS is reported', async () => {
    const CLIENTS = 50
    const server = await createTestNode({ standard: { databases: ['any'] }, manyInbound: true })
    others.push(server)
    const dbs = servers[0].dbs
    const counting = new CountingSource(new LocalSource(dbs.full.any))
    await server.services.standard.attach('any', counting)
    const target = dbs.target('any')
    const clients = await Promise.all(Array.from({ length: CLIENTS }, async () => createTestNode({ standard: { timeout: 15_000, retryDelay: 50 } })))
    others.push(...clients)
    await Promise.all(clients.map(async c => { await connectAll(c, [server]) }))
    const rssBefore = process.memoryUsage().rss
    const started = Date.now()
    const synced = await Promise.all(clients.map(async c => {
      const source = c.services.standard.source('any', { codec: dbs.codec('any'), peers: [server.peerId] })
      try {
        return await syncDatabase({ kind: anySync(), target, source, fetchBatchSize: 64, maxOutstandingRequests: 4, signal: AbortSignal.timeout(45_000) })
      } finally {
        source.close()
      }
    }))
    const elapsed = Date.now() - started
    const mib = (n: number): string => (n / 1024 / 1024).toFixed(1)
    // eslint-disable-next-line no-console
    console.log(`      e2e load: ${CLIENTS} nodes synced ${target.range.end - target.range.start} ops each (${counting.total} requests served) in ${elapsed} ms; ` +
      `RSS before ${mib(rssBefore)} MiB, after ${mib(process.memoryUsage().rss)} MiB, process peak ${mib(process.resourceUsage().maxRSS * 1024)} MiB`)
    expect(synced).to.have.lengthOf(CLIENTS)
    for (const db of synced) {
      expect(db.opsRoot).to.deep.equal(target.root)
      expect(targetsEqual(db.syncTarget(), target)).to.equal(true)
    }
    // every client fetched the whole range itself
    const perClient = Math.ceil((target.range.end - target.range.start - 1) / 64) + 1
    expect(counting.total).to.be.at.least(CLIENTS * perClient)
  })
})
