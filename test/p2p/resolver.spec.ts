import '../util/polyfill.ts'
import { lpStream } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { verifyProofAndPinnedNodes } from '../../src/merkle/index.ts'
import { parseResponseFrame } from '../../src/p2p/protocol.ts'
import { LocalSource } from '../../src/sync/local-source.ts'
import { encodeRequest, requestKey } from '../../src/sync/messages.ts'
import { ServeError } from '../../src/sync/source.ts'
import { DB_KINDS, makeFixture } from '../util/p2p-fixtures.ts'
import { connectAll, createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import { fetchVerified, verifies } from '../util/p2p-verify.ts'
import { Rng } from '../util/rng.ts'
import { CountingSource } from '../util/sync-sources.ts'
import type { Request } from '../../src/sync/messages.ts'
import type { DbKind, Fixture } from '../util/p2p-fixtures.ts'
import type { TestNode } from '../util/p2p-nodes.ts'
import type { PeerId } from '@libp2p/interface'

interface Server {
  node: TestNode
  fixtures: Record<DbKind, Fixture>
  counters: Record<DbKind, CountingSource>
}

const MAX_SERVE_OPS = 64

async function startServer (seed: number): Promise<Server> {
  const node = await createTestNode({
    standard: { databases: [...DB_KINDS, 'ghost'], maxServeOps: MAX_SERVE_OPS },
    compact: { databases: [...DB_KINDS] }
  })
  const fixtures = {} as Record<DbKind, Fixture>
  const counters = {} as Record<DbKind, CountingSource>
  for (const kind of DB_KINDS) {
    fixtures[kind] = await makeFixture(kind, seed, 10)
    counters[kind] = new CountingSource(new LocalSource(fixtures[kind].db))
    await node.services.standard.attach(kind, counters[kind])
    await node.services.compact.attach(kind, counters[kind])
  }
  return { node, fixtures, counters }
}

function randomRequest (rng: Rng, f: Fixture, maxOps = 40): Request {
  const sizes = [...f.roots.keys()]
  const size = sizes[rng.int(sizes.length)]
  const start = rng.int(size)
  return rng.int(3) === 0 ? { type: 'boundary', size, start } : { type: 'operations', size, start, maxOps: 1 + rng.int(maxOps) }
}

/** Send one raw request frame and read the raw answer (`undefined` if the stream was reset). */
async function rawExchange (client: TestNode, server: TestNode, protocol: string, frame: Uint8Array): Promise<Uint8Array | undefined> {
  const stream = await client.dialProtocol(server.peerId, protocol, { signal: AbortSignal.timeout(5000) })
  const lp = lpStream(stream)
  try {
    await lp.write(frame)
    await stream.close()
    const res = await lp.read({ signal: AbortSignal.timeout(5000) })
    return res.subarray()
  } catch {
    stream.abort(new Error('done'))
    return undefined
  }
}

interface Env {
  servers: Server[]
  client: TestNode
  serverIds: PeerId[]
}

/** Many random requests for one database kind, fetched concurrently from every server. */
async function fetchManyAndVerify (env: Env, kind: DbKind): Promise<void> {
  const { servers, client, serverIds } = env
  const rng = new Rng(kind.length)
  const f = servers[0].fixtures[kind]
  const source = client.services.standard.source(kind, { codec: f.codec, peers: serverIds })
  const before = servers.map(s => s.counters[kind].total)
  const reqs = Array.from({ length: 40 }, () => randomRequest(rng, f))
  const results = await Promise.all(reqs.map(async req => fetchVerified(source, req, f.roots.get(req.size)!)))
  for (const [i, r] of results.entries()) {
    expect(r.rejected).to.equal(0)
    const req = reqs[i]
    if (r.response.type === 'operations' && req.type === 'operations') {
      expect(r.response.ops.length).to.equal(Math.min(req.maxOps, req.size - req.start))
    }
  }
  const servedBy = servers.filter((s, i) => s.counters[kind].total > before[i]).length
  expect(servedBy).to.be.greaterThan(1, 'requests spread over several servers')
  source.close()
}

describe('p2p: standard and compact resolvers between real nodes', function () {
  this.timeout(60_000)
  const env = {} as Env
  let servers: Server[] = []
  let client: TestNode
  let serverIds: PeerId[]

  before(async () => {
    servers = await Promise.all([1, 2, 3].map(async () => startServer(42)))
    client = await createTestNode({ standard: { timeout: 2000, retryDelay: 20, maxRetryDelay: 200 }, compact: { timeout: 2000, retryDelay: 20 } })
    await connectAll(client, servers.map(s => s.node))
    serverIds = servers.map(s => s.node.peerId)
    Object.assign(env, { servers, client, serverIds })
  })

  after(async () => {
    await stopAll([client, ...servers.map(s => s.node)])
    for (const s of servers) {
      for (const kind of DB_KINDS) { await s.fixtures[kind].db.close() }
    }
  })

  it('the servers hold identical databases (same seed)', () => {
    for (const kind of DB_KINDS) {
      expect(servers[1].fixtures[kind].db.opsRoot).to.deep.equal(servers[0].fixtures[kind].db.opsRoot)
      expect(servers[2].fixtures[kind].db.opsRoot).to.deep.equal(servers[0].fixtures[kind].db.opsRoot)
    }
  })

  for (const kind of DB_KINDS) {
    it(`${kind}: ranges and boundaries fetched from three servers all verify against the root at their size`, async () => {
      await fetchManyAndVerify(env, kind)
    })
  }

  it('compact resolver: the tip of every commit size, and Operations{1, 0, 1} at genesis', async () => {
    for (const kind of DB_KINDS) {
      const f = servers[0].fixtures[kind]
      const source = client.services.compact.source(kind, { codec: f.codec, peers: serverIds })
      for (const [size, root] of f.roots) {
        const req: Request = size === 1 ? { type: 'operations', size: 1, start: 0, maxOps: 1 } : { type: 'boundary', size, start: size - 1 }
        const { response } = await fetchVerified(source, req, root)
        if (response.type === 'boundary') {
          expect(verifyProofAndPinnedNodes(response.proof, size - 1, [response.op], response.pinnedNodes, root)).to.equal(true)
          // the last op is the commit
          expect(f.codec.floorOf(f.codec.decode(response.op))).to.be.a('number')
        }
      }
      // anything else is refused by the compact client before it reaches the network
      await expect(source.serve({ type: 'boundary', size: 10, start: 3 }, {})).to.eventually.be.rejectedWith(ServeError).with.property('code', 'InvalidRequest')
      await expect(source.serve({ type: 'operations', size: 10, start: 9, maxOps: 1 }, {})).to.eventually.be.rejectedWith(ServeError)
      source.close()
    }
  })

  it('keeps serving historical sizes while the servers apply and commit new batches', async () => {
    const state = { running: true }
    const grow = async (s: Server): Promise<void> => {
      while (state.running) {
        for (const kind of DB_KINDS) { await s.fixtures[kind].step() }
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    }
    const growers = servers.map(grow)
    try {
      const rng = new Rng(99)
      for (const kind of DB_KINDS) {
        const f = servers[0].fixtures[kind]
        const source = client.services.standard.source(kind, { codec: f.codec, peers: serverIds })
        for (let round = 0; round < 4; round++) {
          // sizes known to server 0 right now; the others may lag (no-data) and catch up
          const reqs = Array.from({ length: 10 }, () => randomRequest(rng, f))
          const results = await Promise.all(reqs.map(async req => fetchVerified(source, req, f.roots.get(req.size)!)))
          expect(results.every(r => r.rejected === 0)).to.equal(true)
          await new Promise(resolve => setTimeout(resolve, 20))
        }
        source.close()
      }
    } finally {
      state.running = false
      await Promise.all(growers)
    }
    expect(servers[0].fixtures.any.db.size).to.be.greaterThan(60)
  })

  it('caps maxOps above the serve limit; answers no-data for an unattached database and data it does not have', async () => {
    const s = servers[0]
    const proto = s.node.services.standard.protocol('any')
    const size = s.fixtures.any.db.size
    expect(size).to.be.above(MAX_SERVE_OPS + 1)
    const noData = [0x02]
    // a request above the limit gets the limit's worth (commonware's sources cap max_ops), not a refusal
    const above: Request = { type: 'operations', size, start: 0, maxOps: MAX_SERVE_OPS + 1 }
    const capped = parseResponseFrame((await rawExchange(client, s.node, proto, encodeRequest(above)))!, above, s.fixtures.any.codec)
    expect(capped.type === 'response' && capped.response.type === 'operations' ? capped.response.ops.length : -1).to.equal(MAX_SERVE_OPS)
    const ok = await rawExchange(client, s.node, proto, encodeRequest({ type: 'operations', size, start: 0, maxOps: MAX_SERVE_OPS }))
    expect(ok?.[0]).to.equal(0x01)
    expect([...(await rawExchange(client, s.node, proto, encodeRequest({ type: 'operations', size: size + 1000, start: 0, maxOps: 1 })))!]).to.deep.equal(noData)
    const ghost = s.node.services.standard.protocol('ghost')
    expect([...(await rawExchange(client, s.node, ghost, encodeRequest({ type: 'boundary', size: 5, start: 1 })))!]).to.deep.equal(noData)
    // detach → no-data; attach again → served
    s.node.services.standard.detach('any')
    expect([...(await rawExchange(client, s.node, proto, encodeRequest({ type: 'boundary', size, start: 1 })))!]).to.deep.equal(noData)
    await s.node.services.standard.attach('any', s.counters.any)
    expect((await rawExchange(client, s.node, proto, encodeRequest({ type: 'boundary', size, start: 1 })))?.[0]).to.equal(0x01)
    // an undeclared database is not spoken at all
    await expect(client.dialProtocol(s.node.peerId, s.node.services.standard.protocol('nope'))).to.eventually.be.rejected()
  })

  it('malformed requests get a reset and no reply', async () => {
    const s = servers[0]
    const proto = s.node.services.standard.protocol('any')
    expect(await rawExchange(client, s.node, proto, Uint8Array.from([0x07]))).to.equal(undefined)
    expect(await rawExchange(client, s.node, proto, Uint8Array.from([0x01, 0x0a, 0x0a]))).to.equal(undefined)
    expect(await rawExchange(client, s.node, proto, new Uint8Array(65))).to.equal(undefined)
    // the compact protocol only takes tip requests
    const compact = s.node.services.compact.protocol('any')
    expect(await rawExchange(client, s.node, compact, encodeRequest({ type: 'boundary', size: 10, start: 3 }))).to.equal(undefined)
    expect(await rawExchange(client, s.node, compact, encodeRequest({ type: 'operations', size: 10, start: 9, maxOps: 1 }))).to.equal(undefined)
    expect((await rawExchange(client, s.node, compact, encodeRequest({ type: 'boundary', size: 10, start: 9 })))?.[0]).to.be.oneOf([0x01, 0x02])
  })

  it('de-duplicates identical in-flight requests: two callers, one network request', async () => {
    const f = servers[0].fixtures.keyless
    const source = client.services.standard.source('keyless', { codec: f.codec, peers: serverIds })
    const size = [...f.roots.keys()][3]
    const req: Request = { type: 'operations', size, start: 2, maxOps: 3 }
    const key = requestKey(req)
    const before = servers.reduce((n, s) => n + (s.counters.keyless.calls.get(key) ?? 0), 0)
    const [a, b] = await Promise.all([source.serve(req, {}), source.serve(req, {})])
    const after = servers.reduce((n, s) => n + (s.counters.keyless.calls.get(key) ?? 0), 0)
    expect(after - before).to.equal(1)
    expect(a.response).to.equal(b.response)
    expect(a.feedback).to.be.a('function')
    expect(b.feedback).to.not.equal(a.feedback)
    a.feedback?.(true)
    b.feedback?.(true)
    // a boundary at the same place is a different request
    const bnd = await source.serve({ type: 'boundary', size, start: 2 }, {})
    expect(bnd.response.type).to.equal('boundary')
    expect(verifies({ type: 'boundary', size, start: 2 }, bnd.response, f.roots.get(size)!)).to.equal(true)
    source.close()
  })

  it('cancellation: an aborted caller leaves; the last one leaving stops the fetch', async () => {
    const f = servers[0].fixtures.any
    const source = client.services.standard.source('any', { codec: f.codec, peers: serverIds })
    // nobody has this size: every server answers no-data, the fetch keeps retrying
    const req: Request = { type: 'boundary', size: 1_000_000, start: 7 }
    const key = requestKey(req)
    const asked = (): number => servers.reduce((n, s) => n + (s.counters.any.calls.get(key) ?? 0), 0)
    const a = new AbortController()
    const b = new AbortController()
    const pa = source.serve(req, { signal: a.signal })
    const pb = source.serve(req, { signal: b.signal })
    await waitUntil(() => asked() >= 2, 10_000, 'retries')
    a.abort()
    await expect(pa).to.eventually.be.rejectedWith(ServeError).with.property('code', 'Aborted')
    expect(source.inflight).to.equal(1)
    b.abort()
    await expect(pb).to.eventually.be.rejectedWith(ServeError).with.property('code', 'Aborted')
    expect(source.inflight).to.equal(0)
    const n = asked()
    await new Promise(resolve => setTimeout(resolve, 400))
    expect(asked()).to.equal(n)
    // an already-aborted signal never starts a fetch
    await expect(source.serve(req, { signal: AbortSignal.abort() })).to.eventually.be.rejectedWith(ServeError).with.property('code', 'Aborted')
    source.close()
  })

  it('discovers serving peers among its connections (identify) when no peer list is given', async () => {
    const f = servers[0].fixtures.immutable
    const source = client.services.standard.source('immutable', { codec: f.codec })
    const req: Request = { type: 'operations', size: f.db.size, start: 1, maxOps: 5 }
    const { rejected } = await fetchVerified(source, req, f.roots.get(f.db.size)!, AbortSignal.timeout(10_000))
    expect(rejected).to.equal(0)
    source.close()
  })

  it('waits for a peer when none is available, then completes', async () => {
    const f = servers[1].fixtures.keyless
    const source = client.services.standard.source('keyless', { codec: f.codec, peers: [] })
    const req: Request = { type: 'boundary', size: [...f.roots.keys()][3], start: 1 }
    let settled = false
    const p = source.serve(req, {}).finally(() => { settled = true })
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(settled).to.equal(false)
    source.setPeers([servers[1].node.peerId])
    const { response, feedback } = await p
    feedback?.(true)
    expect(response.type).to.equal('boundary')
    source.close()
    await expect(source.serve(req, {})).to.eventually.be.rejectedWith(ServeError).with.property('code', 'Unavailable')
  })

  it('a stopped resolver fails pending and new requests with Unavailable', async () => {
    const node = await createTestNode()
    try {
      const source = node.services.standard.source('any', { codec: servers[0].fixtures.any.codec, peers: [] })
      const pending = source.serve({ type: 'boundary', size: 8, start: 5 }, {})
      await node.stop()
      await expect(pending).to.eventually.be.rejectedWith(ServeError).with.property('code', 'Unavailable')
    } finally {
      await node.stop()
    }
  })
})
