/**
 * The probe over real libp2p nodes (commonware `glue/src/stateful/probe` ported to
 * request/response): node "d" discovers, the others serve what the test
 * tells them to.
 */
import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { PROBE_REQUEST, ProbeError, parseProbeResponse, probeProtocolId } from '../../src/probe/index.ts'
import { EpochScheme, Validators, buildChain, sameFinalization } from '../util/marshal-fixtures.ts'
import { CHAIN, concat, connectAll, createBareNode, createProbeNode, delay, frame, metricValue, rawResponder, sendRaw, stopAll, unframe, uvarint, waitUntil } from '../util/marshal-nodes.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'
import type { ProbeNode, ProbeNodeInit } from '../util/marshal-nodes.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

const SERVERS = 6

interface Env {
  v: Validators[]
  scheme: EpochScheme
  chain: TestBlock[]
  servers: ProbeNode[]
  answers: Array<TestFinalization | undefined>
  nodes: Array<Libp2p<any>>
}

function fin (env: Env, view: number, epoch = 0): TestFinalization {
  return env.v[epoch].finalize({ epoch, view }, env.chain[view].digest)
}

async function server (env: Env, i: number): Promise<ProbeNode> {
  const node = await createProbeNode(env.scheme, { faults: 0 })
  env.nodes.push(node)
  node.services.probe.attach({
    latestFinalization: async () => {
      const f = env.answers[i]
      return f === undefined ? undefined : { height: f.round.view, finalization: f }
    }
  })
  return node
}

/** A discovering node whose committee is itself plus `members`. */
async function discoverer (env: Env, members: Array<Libp2p<any>>, init: Partial<ProbeNodeInit> = {}): Promise<ProbeNode> {
  const holder: { self?: PeerId } = {}
  const node = await createProbeNode(env.scheme, {
    participants: () => [holder.self as PeerId, ...members.map(m => m.peerId)],
    judgeable: f => env.scheme.judgeable(f),
    ...init
  })
  holder.self = node.peerId
  env.nodes.push(node)
  await connectAll(node, members)
  return node
}

/** Subscribe and remember the outcome without awaiting it. */
function track (node: ProbeNode, signal?: AbortSignal): { floor?: TestFinalization, error?: Error, done: Promise<void> } {
  const t: { floor?: TestFinalization, error?: Error, done: Promise<void> } = { done: Promise.resolve() }
  t.done = node.services.probe.subscribe({ signal }).then(f => { t.floor = f }, err => { t.error = err })
  return t
}

async function roundsPass (node: ProbeNode, n: number): Promise<void> {
  const target = node.services.probe.stats.rounds + n
  await waitUntil(() => node.services.probe.stats.rounds >= target, 10_000, `${n} more rounds`)
}

async function malicious (env: Env, respond: () => Uint8Array | undefined, delayMs = 0): Promise<{ node: Libp2p<any>, requests(): number }> {
  const node = await createBareNode()
  env.nodes.push(node)
  const r = await rawResponder(node, probeProtocolId('qmdb', CHAIN), respond, delayMs)
  return { node, requests: r.requests }
}

describe('probe: floor discovery', function () {
  this.timeout(60_000)
  const env: Env = { v: [], scheme: undefined as any, chain: [], servers: [], answers: [], nodes: [] }

  before(async () => {
    env.v = [await Validators.create(4, 1), await Validators.create(4, 2)]
    env.scheme = new EpochScheme(new Map([[0, env.v[0]], [1, env.v[1]]]))
    env.chain = buildChain(12)
    for (let i = 0; i < SERVERS; i++) { env.servers.push(await server(env, i)) }
  })

  beforeEach(() => {
    env.answers = new Array(SERVERS).fill(undefined)
  })

  after(async () => {
    await stopAll(env.nodes)
  })

  it('resolves a floor two of four committee members vouch for', async () => {
    env.answers[0] = fin(env, 5)
    env.answers[1] = fin(env, 5)
    const d = await discoverer(env, env.servers.slice(0, 3))
    const floor = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(sameFinalization(floor, fin(env, 5))).to.equal(true)
    expect(d.services.probe.blockedPeers().size).to.equal(0)
  })

  it('agreement: waits for f + 1 matching replies; the highest agreed round wins', async () => {
    // seven members, f + 1 = 3: replies at 1, 2, 3 do not agree
    env.answers = [fin(env, 1), fin(env, 2), fin(env, 3), undefined, undefined, undefined]
    const d = await discoverer(env, env.servers)
    const t = track(d, AbortSignal.timeout(20_000))
    await roundsPass(d, 3)
    expect(t.floor).to.equal(undefined)
    // only view 3 reaches three vouchers (a floor is selected as soon as one does)
    env.answers = [fin(env, 2), fin(env, 2), fin(env, 3), fin(env, 3), fin(env, 3), undefined]
    await t.done
    expect(t.floor?.round.view).to.equal(3)
  })

  it('highest (reference rule): the highest of f + 1 distinct verified replies', async () => {
    env.answers = [fin(env, 1), fin(env, 2), fin(env, 3), undefined, undefined, undefined]
    const d = await discoverer(env, env.servers, { policy: 'highest' })
    const floor = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(floor.round.view).to.equal(3)
  })

  it('highest: a newer reply wins over stale agreement; agreement keeps the agreed floor', async () => {
    // seven members: the first three replies are the only ones, so all of them are in the sample
    env.answers = [fin(env, 2), fin(env, 2), fin(env, 7)]
    const h = await discoverer(env, env.servers, { policy: 'highest' })
    expect((await h.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })).round.view).to.equal(7)
    // four members: only view 2 ever has two vouchers
    const a = await discoverer(env, env.servers.slice(0, 3))
    expect((await a.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })).round.view).to.equal(2)
  })

  it('retries until enough peers answer', async () => {
    env.answers[0] = fin(env, 4)
    const d = await discoverer(env, env.servers.slice(0, 3))
    const t = track(d, AbortSignal.timeout(20_000))
    await roundsPass(d, 2)
    expect(t.floor).to.equal(undefined)
    env.answers[2] = fin(env, 4)
    await t.done
    expect(t.floor?.round.view).to.equal(4)
    expect(d.services.probe.stats.rounds).to.be.at.least(3)
  })

  it('two identical replies are not enough for a committee of seven', async () => {
    env.answers[0] = fin(env, 6)
    env.answers[1] = fin(env, 6)
    const controller = new AbortController()
    const d = await discoverer(env, env.servers)
    const t = track(d, controller.signal)
    await roundsPass(d, 3)
    expect(t.floor).to.equal(undefined)
    controller.abort()
    await t.done
    expect(t.error).to.be.instanceOf(Error)
  })

  it('sends no request before someone subscribes', async () => {
    env.answers[0] = fin(env, 3)
    env.answers[1] = fin(env, 3)
    const served = env.servers.slice(0, 3).map(s => s.services.probe.stats.served)
    const d = await discoverer(env, env.servers.slice(0, 3))
    await delay(600)
    expect(d.services.probe.stats).to.deep.include({ rounds: 0, requests: 0 })
    expect(env.servers.slice(0, 3).map(s => s.services.probe.stats.served)).to.deep.equal(served)
    await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(d.services.probe.stats.requests).to.be.at.least(3)
  })

  it('blocks peers sending malformed, forged or unknown-tag answers; they never count', async () => {
    const foreign = await Validators.create(4, 77)
    const forged = foreign.finalize({ epoch: 0, view: 9 }, env.chain[9].digest)
    const junk = await malicious(env, () => concat(new Uint8Array([0x01]), new Uint8Array([1, 2, 3, 4, 5])))
    const fake = await malicious(env, () => concat(new Uint8Array([0x01]), env.scheme.encode(forged)))
    const tag = await malicious(env, () => new Uint8Array([0xff]))
    env.answers[0] = fin(env, 2)
    env.answers[1] = fin(env, 2)
    env.answers[2] = fin(env, 2)
    // seven members (f + 1 = 3): three liars and three honest peers
    const d = await discoverer(env, [junk.node, fake.node, tag.node, ...env.servers.slice(0, 3)])
    const floor = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(floor.round.view).to.equal(2)
    await waitUntil(() => d.services.probe.blockedPeers().size === 3, 10_000, 'three liars blocked')
    const reasons = d.services.probe.blockedPeers()
    expect(reasons.get(junk.node.peerId.toString())).to.match(/undecodable/)
    expect(reasons.get(fake.node.peerId.toString())).to.match(/invalid finalization/)
    expect(reasons.get(tag.node.peerId.toString())).to.match(/unknown tag/)
  })

  it('forged answers cannot make a floor: liars alone never resolve', async () => {
    const foreign = await Validators.create(4, 78)
    const forged = foreign.finalize({ epoch: 0, view: 11 }, env.chain[11].digest)
    const liars = [
      await malicious(env, () => concat(new Uint8Array([0x01]), env.scheme.encode(forged))),
      await malicious(env, () => concat(new Uint8Array([0x01]), env.scheme.encode(forged)))
    ]
    env.answers[0] = fin(env, 1)
    const d = await discoverer(env, [...liars.map(l => l.node), env.servers[0]])
    const controller = new AbortController()
    const t = track(d, controller.signal)
    await roundsPass(d, 2)
    expect(t.floor).to.equal(undefined)
    expect(d.services.probe.blockedPeers().size).to.equal(2)
    // blocked peers are not asked again
    const asked = liars.map(l => l.requests())
    await roundsPass(d, 2)
    expect(liars.map(l => l.requests())).to.deep.equal(asked)
    controller.abort()
    await t.done
  })

  it('blocks a peer that answers after it left the committee', async () => {
    const late = await malicious(env, () => concat(new Uint8Array([0x01]), env.scheme.encode(fin(env, 3))), 100)
    const members: Array<Libp2p<any>> = [env.servers[0], env.servers[1], late.node]
    const controller = new AbortController()
    const d = await discoverer(env, members)
    const t = track(d, controller.signal)
    await waitUntil(() => late.requests() >= 1, 10_000, 'the member to be asked')
    members.pop()
    await waitUntil(() => d.services.probe.isBlocked(late.node.peerId), 10_000, 'the former member to be blocked')
    expect(d.services.probe.blockedPeers().get(late.node.peerId.toString())).to.match(/non-participant/)
    expect(t.floor).to.equal(undefined)
    controller.abort()
    await t.done
  })

  it('asks only committee members (others are neither asked nor blocked)', async () => {
    env.answers = [fin(env, 3), fin(env, 3), fin(env, 3), fin(env, 8), fin(env, 8), fin(env, 8)]
    const served = env.servers.slice(3).map(s => s.services.probe.stats.served)
    const d = await discoverer(env, env.servers.slice(0, 3))
    await connectAll(d, env.servers.slice(3))
    const floor = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(floor.round.view).to.equal(3)
    expect(env.servers.slice(3).map(s => s.services.probe.stats.served)).to.deep.equal(served)
    expect(d.services.probe.blockedPeers().size).to.equal(0)
  })

  it('gives a late subscriber the cached floor', async () => {
    env.answers[0] = fin(env, 5)
    env.answers[1] = fin(env, 5)
    const d = await discoverer(env, env.servers.slice(0, 3))
    const first = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    const requests = d.services.probe.stats.requests
    env.answers[0] = fin(env, 9)
    const second = await d.services.probe.subscribe()
    expect(second).to.equal(first)
    expect(d.services.probe.stats.requests).to.equal(requests)
  })

  it('ignores answers that arrive after the floor is set (no verification, no blocking)', async () => {
    const slow = await malicious(env, () => new Uint8Array([0x01, 0xde, 0xad]), 300)
    env.answers[0] = fin(env, 4)
    env.answers[1] = fin(env, 4)
    const d = await discoverer(env, [slow.node, ...env.servers.slice(0, 2)])
    await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    await waitUntil(() => slow.requests() >= 1, 10_000, 'the slow peer to be asked')
    await delay(500)
    expect(d.services.probe.isBlocked(slow.node.peerId)).to.equal(false)
  })

  it('resolves at a non-zero epoch with that epoch\'s validators', async () => {
    env.answers[0] = fin(env, 3, 1)
    env.answers[1] = fin(env, 3, 1)
    const d = await discoverer(env, env.servers.slice(0, 3))
    const floor = await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(floor.round).to.deep.equal({ epoch: 1, view: 3 })
  })

  it('a rotated committee\'s certificate needs f + 1 of the solicited committee', async () => {
    // seven solicited members report an epoch-1 finalization: two are not enough, three are
    env.answers[0] = fin(env, 6, 1)
    env.answers[1] = fin(env, 6, 1)
    const d = await discoverer(env, env.servers)
    const t = track(d, AbortSignal.timeout(20_000))
    await roundsPass(d, 2)
    expect(t.floor).to.equal(undefined)
    env.answers[2] = fin(env, 6, 1)
    await t.done
    expect(t.floor?.round).to.deep.equal({ epoch: 1, view: 6 })
    expect(d.services.probe.blockedPeers().size).to.equal(0)
  })

  it('ignores finalizations below the minimum epoch without blocking, and resolves from the same peers later', async () => {
    env.answers[0] = fin(env, 7, 0)
    env.answers[1] = fin(env, 7, 0)
    const d = await discoverer(env, env.servers.slice(0, 3), { minimumEpoch: 1 })
    const t = track(d, AbortSignal.timeout(20_000))
    await roundsPass(d, 2)
    expect(t.floor).to.equal(undefined)
    env.answers[0] = fin(env, 2, 1)
    env.answers[1] = fin(env, 2, 1)
    await t.done
    expect(t.floor?.round).to.deep.equal({ epoch: 1, view: 2 })
    expect(d.services.probe.blockedPeers().size).to.equal(0)
  })

  it('ignores finalizations of an epoch it cannot judge, without blocking', async () => {
    const unknownEpoch = { ...fin(env, 5, 1), round: { epoch: 4, view: 5 } }
    env.answers[0] = unknownEpoch
    env.answers[1] = unknownEpoch
    const controller = new AbortController()
    const d = await discoverer(env, env.servers.slice(0, 3))
    const t = track(d, controller.signal)
    await roundsPass(d, 2)
    expect(t.floor).to.equal(undefined)
    expect(d.services.probe.blockedPeers().size).to.equal(0)
    controller.abort()
    await t.done
  })
})

describe('probe: phases', function () {
  this.timeout(60_000)
  const env: Env = { v: [], scheme: undefined as any, chain: [], servers: [], answers: [], nodes: [] }

  before(async () => {
    env.v = [await Validators.create(4, 1)]
    env.scheme = new EpochScheme(new Map([[0, env.v[0]]]))
    env.chain = buildChain(12)
    for (let i = 0; i < 3; i++) { env.servers.push(await server(env, i)) }
  })

  beforeEach(() => {
    env.answers = new Array(3).fill(undefined)
  })

  after(async () => {
    await stopAll(env.nodes)
  })

  it('serves the attached source only after the floor is consumed', async () => {
    env.answers[0] = fin(env, 5)
    env.answers[1] = fin(env, 5)
    const d = await discoverer(env, env.servers)
    const t = track(d, AbortSignal.timeout(10_000))
    const own = fin(env, 10)
    d.services.probe.attach({ latestFinalization: async () => ({ height: 10, finalization: own }) })
    // a subscriber still waits: discovery goes on, nothing is served
    expect(d.services.probe.phase).to.equal('discovery')
    await t.done
    expect(t.floor?.round.view).to.equal(5)
    expect(d.services.probe.phase).to.equal('service')
    // now it answers others: a newcomer counts it as one of f + 1
    env.answers[0] = fin(env, 10)
    const n = await discoverer(env, [d, env.servers[0], env.servers[2]])
    const floor = await n.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(floor.round.view).to.equal(10)
  })

  it('abandons discovery when every subscriber leaves; then serves without a floor', async () => {
    const d = await discoverer(env, env.servers)
    const controller = new AbortController()
    const t = track(d, controller.signal)
    await roundsPass(d, 1)
    controller.abort(new Error('left'))
    await t.done
    expect(t.error?.message).to.equal('left')
    const rounds = d.services.probe.stats.rounds
    await delay(600)
    expect(d.services.probe.stats.rounds).to.equal(rounds)
    d.services.probe.attach({ latestFinalization: async () => undefined })
    expect(d.services.probe.phase).to.equal('service')
    const err = await d.services.probe.subscribe().catch(e => e)
    expect(err).to.be.instanceOf(ProbeError)
    expect((err as ProbeError).code).to.equal('NoFloor')
  })

  it('resets malformed requests, answers the rest, and counts it all in its metrics', async () => {
    const registry = new Registry()
    const node = await createProbeNode(env.scheme, { faults: 0 }, registry)
    env.nodes.push(node)
    env.answers[0] = fin(env, 8)
    node.services.probe.attach({ latestFinalization: async () => ({ height: 8, finalization: fin(env, 8) }) })
    const raw = await createBareNode()
    env.nodes.push(raw)
    await connectAll(raw, [node])
    const protocol = node.services.probe.protocol
    for (const bytes of [new Uint8Array([]), frame(new Uint8Array([0x01])), frame(new Uint8Array([0x00, 0x00])), concat(uvarint(1000), new Uint8Array(20))]) {
      expect(await sendRaw(raw, node, protocol, bytes)).to.have.length(0)
    }
    const answer = await sendRaw(raw, node, protocol, frame(PROBE_REQUEST))
    expect(sameFinalization(parseProbeResponse(unframe(answer) as Uint8Array, env.scheme), fin(env, 8))).to.equal(true)
    expect(await metricValue(registry, 'libp2p_qmdb_probe_served_total', 'malformed')).to.equal(4)
    expect(await metricValue(registry, 'libp2p_qmdb_probe_served_total', 'response')).to.equal(1)
    // a discoverer's metrics: requests sent and replies recorded
    const dreg = new Registry()
    const d = await createProbeNode(env.scheme, { participants: [node.peerId, env.servers[0].peerId], faults: 1 }, dreg)
    env.nodes.push(d)
    await connectAll(d, [node, env.servers[0]])
    await d.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(await metricValue(dreg, 'libp2p_qmdb_probe_requests_total')).to.be.at.least(2)
    expect(await metricValue(dreg, 'libp2p_qmdb_probe_replies_total', 'recorded')).to.equal(2)
  })

  it('rejects waiting subscribers when the node stops', async () => {
    const d = await discoverer(env, env.servers)
    const t = track(d)
    await roundsPass(d, 1)
    await d.stop()
    await t.done
    expect((t.error as ProbeError).code).to.equal('Stopped')
    const err = await d.services.probe.subscribe().catch(e => e)
    expect((err as ProbeError).code).to.equal('Stopped')
  })
})
