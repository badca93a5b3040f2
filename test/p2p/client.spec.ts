import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { LocalSource } from '../../src/sync/local-source.ts'
import { requestKey } from '../../src/sync/messages.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { connectAll, createTestNode, stopAll } from '../util/p2p-nodes.ts'
import { fetchVerified } from '../util/p2p-verify.ts'
import type { Request } from '../../src/sync/messages.ts'
import type { Served, ServeOptions, Source } from '../../src/sync/source.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

/** A source that answers after `delayMs` and records its peak concurrency. */
class SlowSource implements Source {
  readonly inner: Source
  delayMs: number
  active = 0
  peak = 0
  served = 0
  readonly keys = new Set<string>()

  constructor (inner: Source, delayMs: number) {
    this.inner = inner
    this.delayMs = delayMs
  }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    this.active++
    this.peak = Math.max(this.peak, this.active)
    try {
      await new Promise(resolve => setTimeout(resolve, this.delayMs))
      this.served++
      this.keys.add(requestKey(request))
      return await this.inner.serve(request, options)
    } finally {
      this.active--
    }
  }

  reset (): void {
    this.peak = 0
    this.served = 0
    this.keys.clear()
  }
}

interface Env {
  fixture: Fixture
  servers: TestNode[]
  slow: SlowSource[]
  others: TestNode[]
}

function distinctRequests (f: Fixture, n: number): Request[] {
  const size = f.db.size
  return Array.from({ length: n }, (_, i) => ({ type: 'operations', size, start: i % (size - 1), maxOps: 1 + Math.floor(i / (size - 1)) }))
}

describe('p2p: client peer handling', function () {
  this.timeout(60_000)
  const env = { others: [] as TestNode[] } as unknown as Env

  before(async () => {
    env.fixture = await makeFixture('any', 31, 10)
    env.slow = []
    env.servers = await Promise.all([0, 1].map(async () => {
      const node = await createTestNode({ standard: { databases: ['any'], inbound: { maxConcurrent: 2 } } })
      const fx = await makeFixture('any', 31, 10)
      const slow = new SlowSource(new LocalSource(fx.db), 30)
      env.slow.push(slow)
      await node.services.standard.attach('any', slow)
      return node
    }))
  })

  afterEach(() => {
    for (const s of env.slow) {
      s.reset()
      s.delayMs = 30
    }
  })

  after(async () => {
    await stopAll([...env.servers, ...env.others])
  })

  async function client (outbound: { maxConcurrent?: number, rate?: { perSecond: number, burst: number } }): Promise<TestNode> {
    const node = await createTestNode({ standard: { outbound, timeout: 5000, retryDelay: 20, maxRetryDelay: 100 } })
    env.others.push(node)
    await connectAll(node, env.servers)
    return node
  }

  it('never has more requests outstanding to one peer than its outbound limit; work spills over to other peers', async () => {
    const c = await client({ maxConcurrent: 1 })
    const f = env.fixture
    const source = c.services.standard.source('any', { codec: f.codec, peers: env.servers.map(s => s.peerId) })
    const reqs = distinctRequests(f, 12)
    const results = await Promise.all(reqs.map(async r => fetchVerified(source, r, f.roots.get(r.size)!)))
    expect(results.every(r => r.rejected === 0)).to.equal(true)
    expect(env.slow.map(s => s.peak)).to.deep.equal([1, 1])
    expect(env.slow.every(s => s.served > 0)).to.equal(true)
    source.close()
  })

  it('outbound rate limit: a burst of requests to one peer is spread out, and all complete', async () => {
    const c = await client({ maxConcurrent: 8, rate: { perSecond: 20, burst: 2 } })
    const f = env.fixture
    const source = c.services.standard.source('any', { codec: f.codec, peers: [env.servers[0].peerId] })
    env.slow[0].delayMs = 0
    const reqs = distinctRequests(f, 6)
    const results = await Promise.all(reqs.map(async r => fetchVerified(source, r, f.roots.get(r.size)!)))
    expect(results).to.have.lengthOf(6)
    // only the burst could overlap
    expect(env.slow[0].peak).to.be.at.most(2)
    expect(env.slow[0].keys.size).to.equal(6)
    source.close()
  })

  it('a server over its inbound concurrency limit resets the extra streams; the client retries and is not blocked', async () => {
    const c = await client({ maxConcurrent: 8 })
    const f = env.fixture
    const server = env.servers[1]
    env.slow[1].delayMs = 100
    const source = c.services.standard.source('any', { codec: f.codec, peers: [server.peerId] })
    const reqs = distinctRequests(f, 6)
    const results = await Promise.all(reqs.map(async r => fetchVerified(source, r, f.roots.get(r.size)!)))
    expect(results.every(r => r.rejected === 0)).to.equal(true)
    expect(env.slow[1].peak).to.be.at.most(2)
    // 6 concurrent streams against a limit of 2: the extra ones were reset, retried, and blamed on no one
    expect(c.services.standard.isBlocked(server.peerId)).to.equal(false)
    expect(env.slow[1].keys.size).to.equal(6)
    source.close()
  })

  it('verdicts: an unanswered feedback blames no one, one false among callers blocks the peer, scores improve on true', async () => {
    const c = await client({ maxConcurrent: 8 })
    const f = env.fixture
    const [s0, s1] = env.servers
    const resolver = c.services.standard
    const source = resolver.source('any', { codec: f.codec, peers: [s0.peerId] })
    const size = f.db.size
    // no verdict at all
    const first = await source.serve({ type: 'boundary', size, start: 2 }, {})
    expect(first.response.type).to.equal('boundary')
    expect(resolver.isBlocked(s0.peerId)).to.equal(false)
    // a true verdict records the measured latency
    const before = resolver.score(s0.peerId)
    const second = await source.serve({ type: 'boundary', size, start: 3 }, {})
    second.feedback?.(true)
    second.feedback?.(false) // later calls are ignored
    expect(resolver.score(s0.peerId)).to.be.lessThan(before)
    expect(resolver.isBlocked(s0.peerId)).to.equal(false)
    // two callers share a response: true AND false → blocked
    const req: Request = { type: 'operations', size, start: 1, maxOps: 2 }
    const [a, b] = await Promise.all([source.serve(req, {}), source.serve(req, {})])
    a.feedback?.(true)
    b.feedback?.(false)
    expect(resolver.isBlocked(s0.peerId)).to.equal(true)
    expect(resolver.isBlocked(s1.peerId)).to.equal(false)
    source.close()
  })
})
