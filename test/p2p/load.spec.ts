import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { LocalSource } from '../../src/sync/local-source.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { connectAll, createTestNode, stopAll } from '../util/p2p-nodes.ts'
import { fetchVerified } from '../util/p2p-verify.ts'
import { Rng } from '../util/rng.ts'
import type { Request } from '../../src/sync/messages.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

const CLIENTS = 50
const REQUESTS_PER_CLIENT = 20

/** One client: `REQUESTS_PER_CLIENT` requests, 4 at a time, each verified. */
async function clientRun (client: TestNode, server: TestNode, fixture: Fixture, seed: number): Promise<number> {
  const rng = new Rng(seed)
  const sizes = [...fixture.roots.keys()]
  const source = client.services.standard.source('keyless', { codec: fixture.codec, peers: [server.peerId] })
  let ops = 0
  const worker = async (): Promise<void> => {
    for (let i = 0; i < REQUESTS_PER_CLIENT / 4; i++) {
      const size = sizes[rng.int(sizes.length)]
      const start = rng.int(size)
      const req: Request = rng.int(4) === 0 ? { type: 'boundary', size, start } : { type: 'operations', size, start, maxOps: 64 }
      const { response, rejected } = await fetchVerified(source, req, fixture.roots.get(size)!, AbortSignal.timeout(30_000))
      expect(rejected).to.equal(0)
      ops += response.type === 'operations' ? response.ops.length : 1
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])
  source.close()
  return ops
}

describe('p2p: one server, 50 concurrent clients', function () {
  this.timeout(90_000)
  let server: TestNode
  let clients: TestNode[] = []
  let fixture: Fixture

  before(async () => {
    server = await createTestNode({ standard: { databases: ['keyless'], maxInboundStreams: 256 }, manyInbound: true })
    fixture = await makeFixture('keyless', 23, 60)
    await server.services.standard.attach('keyless', new LocalSource(fixture.db))
    clients = await Promise.all(Array.from({ length: CLIENTS }, async () => createTestNode({ standard: { timeout: 15_000, retryDelay: 50 } })))
    await Promise.all(clients.map(async c => { await connectAll(c, [server]) }))
  })

  after(async () => {
    await stopAll([server, ...clients])
  })

  it('every client completes with verified responses; peak RSS is reported', async () => {
    const rssBefore = process.memoryUsage().rss
    const started = Date.now()
    const ops = await Promise.all(clients.map(async (c, i) => clientRun(c, server, fixture, 100 + i)))
    const elapsed = Date.now() - started
    const peak = process.resourceUsage().maxRSS * 1024
    const mib = (n: number): string => (n / 1024 / 1024).toFixed(1)
    // eslint-disable-next-line no-console
    console.log(`      load: ${CLIENTS} clients × ${REQUESTS_PER_CLIENT} requests (${ops.reduce((a, b) => a + b, 0)} ops) in ${elapsed} ms; ` +
      `RSS before ${mib(rssBefore)} MiB, now ${mib(process.memoryUsage().rss)} MiB, peak ${mib(peak)} MiB`)
    expect(ops).to.have.lengthOf(CLIENTS)
    expect(ops.every(n => n >= REQUESTS_PER_CLIENT)).to.equal(true)
  })
})
