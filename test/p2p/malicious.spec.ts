import '../util/polyfill.ts'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { LocalSource } from '../../src/sync/local-source.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { startMaliciousServer } from '../util/p2p-malicious.ts'
import { connectAll, createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import { fetchVerified, verifies } from '../util/p2p-verify.ts'
import type { Request } from '../../src/sync/messages.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'
import type { Behaviour, MaliciousServer } from '../util/p2p-malicious.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

interface Case {
  behaviour: Behaviour
  request: 'operations' | 'boundary'
  /** Expected: blocked (bad data) or not (only slow or unhelpful). */
  blocked: boolean
  /** Responses the engine sees and rejects before a valid one. */
  rejected: number
}

const CASES: Case[] = [
  { behaviour: 'tamper-op', request: 'operations', blocked: true, rejected: 1 },
  { behaviour: 'tamper-proof', request: 'operations', blocked: true, rejected: 1 },
  { behaviour: 'tamper-pins', request: 'boundary', blocked: true, rejected: 1 },
  { behaviour: 'tamper-op', request: 'boundary', blocked: true, rejected: 1 },
  { behaviour: 'wrong-size', request: 'operations', blocked: true, rejected: 0 },
  { behaviour: 'wrong-variant', request: 'boundary', blocked: true, rejected: 0 },
  { behaviour: 'garbage', request: 'operations', blocked: true, rejected: 0 },
  { behaviour: 'bad-status', request: 'boundary', blocked: true, rejected: 0 },
  { behaviour: 'oversized', request: 'operations', blocked: true, rejected: 0 },
  { behaviour: 'endless', request: 'operations', blocked: false, rejected: 0 },
  { behaviour: 'silent', request: 'boundary', blocked: false, rejected: 0 },
  { behaviour: 'reset', request: 'operations', blocked: false, rejected: 0 },
  { behaviour: 'no-data', request: 'boundary', blocked: false, rejected: 0 }
]

interface Env {
  client: TestNode
  honest: TestNode[]
  fixture: Fixture
  registry: Registry
  others: TestNode[]
}

/**
 * Start a malicious node, make it the only peer the source knows until it has
 * seen the request, then add the honest servers; the fetch must complete
 * with a verified response.
 */
async function runCase (env: Env, c: Case, kind: 'standard' | 'compact' = 'standard'): Promise<{ bad: TestNode, mal: MaliciousServer }> {
  const f = env.fixture
  const bad = await createTestNode()
  env.others.push(bad)
  const badFixture = await makeFixture('any', 5, 8)
  const mal = await startMaliciousServer(bad, { db: 'any', kind, source: new LocalSource(badFixture.db), codec: badFixture.codec, behaviour: c.behaviour })
  await connectAll(env.client, [bad])
  const resolver = kind === 'standard' ? env.client.services.standard : env.client.services.compact
  const source = resolver.source('any', { codec: f.codec, peers: [bad.peerId] })
  const size = f.db.size
  let req: Request
  if (kind === 'compact') {
    req = { type: 'boundary', size, start: size - 1 }
  } else {
    req = c.request === 'boundary' ? { type: 'boundary', size, start: 5 } : { type: 'operations', size, start: 3, maxOps: 6 }
  }
  const fetching = fetchVerified(source, req, f.roots.get(size)!, AbortSignal.timeout(20_000))
  await waitUntil(() => mal.requests >= 1, 10_000, 'the malicious server to be asked')
  source.setPeers([bad.peerId, ...env.honest.map(h => h.peerId)])
  const result = await fetching
  expect(verifies(req, result.response, f.roots.get(size)!)).to.equal(true)
  expect(result.rejected).to.equal(c.rejected, `${c.behaviour}: responses rejected by the engine`)
  expect(resolver.isBlocked(bad.peerId)).to.equal(c.blocked, `${c.behaviour}: blocked`)
  source.close()
  return { bad, mal }
}

async function metricValue (registry: Registry, name: string, label?: string): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) { return 0 }
  const { values } = await metric.get()
  return values.filter(v => label === undefined || Object.values(v.labels).includes(label)).reduce((s, v) => s + v.value, 0)
}

describe('p2p: misbehaving servers', function () {
  this.timeout(60_000)
  const env = { others: [] as TestNode[] } as unknown as Env

  before(async () => {
    env.fixture = await makeFixture('any', 5, 8)
    env.honest = await Promise.all([1, 2].map(async () => {
      const node = await createTestNode({ standard: { databases: ['any'] }, compact: { databases: ['any'] } })
      const fx = await makeFixture('any', 5, 8)
      await node.services.standard.attach('any', new LocalSource(fx.db))
      await node.services.compact.attach('any', new LocalSource(fx.db))
      return node
    }))
    env.registry = new Registry()
    const registry = env.registry
    env.client = await createTestNode({
      standard: { timeout: 600, retryDelay: 20, maxRetryDelay: 100 },
      compact: { timeout: 600, retryDelay: 20, maxRetryDelay: 100 },
      metrics: prometheusMetrics({ registry, collectDefaultMetrics: false })
    })
    await connectAll(env.client, env.honest)
  })

  after(async () => {
    await stopAll([env.client, ...env.honest, ...env.others])
  })

  for (const c of CASES) {
    it(`${c.behaviour} (${c.request}): ${c.blocked ? 'blocked' : 'not blocked'}, and the fetch completes from honest servers`, async () => {
      await runCase(env, c)
    })
  }

  it('compact resolver: a tampered tip gets its server blocked', async () => {
    await runCase(env, { behaviour: 'tamper-pins', request: 'boundary', blocked: true, rejected: 1 }, 'compact')
  })

  it('blocked peers are tagged in the peer store, never asked again, and counted in metrics', async () => {
    const blocked = env.client.services.standard.blockedPeers()
    const expected = CASES.filter(c => c.blocked).length
    expect(blocked.size).to.equal(expected)
    const first = env.others[0]
    expect((await env.client.peerStore.get(first.peerId)).tags.has('qmdb-blocked')).to.equal(true)
    // a source that only knows blocked peers waits instead of asking them
    const source = env.client.services.standard.source('any', { codec: env.fixture.codec, peers: env.others.filter(o => env.client.services.standard.isBlocked(o.peerId)).map(o => o.peerId) })
    await expect(source.serve({ type: 'boundary', size: env.fixture.db.size, start: 2 }, { signal: AbortSignal.timeout(300) }))
      .to.eventually.be.rejected.with.property('code', 'Aborted')
    source.close()
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_blocked_peers')).to.equal(expected)
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_verdicts_total', 'invalid')).to.equal(4)
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_fetch_total', 'invalid')).to.equal(5)
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_fetch_total', 'timeout')).to.be.greaterThanOrEqual(2)
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_fetch_total', 'response')).to.be.greaterThanOrEqual(CASES.length)
    expect(await metricValue(env.registry, 'libp2p_qmdb_standard_bytes_total', 'in')).to.be.greaterThan(0)
    expect(await metricValue(env.registry, 'libp2p_qmdb_compact_blocked_peers')).to.equal(1)
  })
})
