import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { responseBody } from '../../src/p2p/index.ts'
import { LocalSource } from '../../src/sync/local-source.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { startMaliciousServer, tamperOp } from '../util/p2p-malicious.ts'
import { connectAll, createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import { fetchVerified, verifies } from '../util/p2p-verify.ts'
import type { Request, Response } from '../../src/sync/messages.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

/**
 * A staller asked again (src/net/recheck.ts) must answer truly to end its suspicion: the sync
 * resolver verifies data only after parsing, so a re-ask's answer is judged against the response
 * the caller verified from another peer. False data blocks the staller; a true answer — the same
 * one, or fewer operations with their own proof — lets it go.
 */
describe('p2p: a staller asked again is judged by what another peer served', function () {
  this.timeout(60_000)
  let fixture: Fixture
  let honest: TestNode
  let client: TestNode
  const others: TestNode[] = []

  before(async () => {
    fixture = await makeFixture('any', 5, 8)
    honest = await createTestNode({ standard: { databases: ['any'] } })
    await honest.services.standard.attach('any', new LocalSource(fixture.db))
    client = await createTestNode({ standard: { timeout: 400, retryDelay: 20, maxRetryDelay: 100, strikes: { recheckMs: 50, maxRechecks: 1 } } })
    await connectAll(client, [honest])
  })

  after(async () => {
    await stopAll([client, honest, ...others])
  })

  /** A server that sits on its first request and answers every later one with `reanswer(request)`; the client's fetch completes from `honest`. */
  async function stallThenAnswer (req: Request, reanswer: (honest: Response) => Response): Promise<{ bad: TestNode, asked(): number }> {
    const bad = await createTestNode()
    others.push(bad)
    let n = 0
    const mal = await startMaliciousServer(bad, {
      db: 'any',
      source: new LocalSource(fixture.db),
      codec: fixture.codec,
      behaviour: (_r, res) => n++ === 0 || res === undefined ? undefined : responseBody(reanswer(res))
    })
    await connectAll(client, [bad])
    const source = client.services.standard.source('any', { codec: fixture.codec, peers: [bad.peerId] })
    const root = fixture.roots.get(req.size)
    if (root === undefined) { throw new Error('no root for the fixture size') }
    const fetching = fetchVerified(source, req, root, AbortSignal.timeout(20_000))
    await waitUntil(() => mal.requests >= 1, 10_000, 'the staller to be asked')
    source.setPeers([bad.peerId, honest.peerId])
    const got = await fetching
    expect(verifies(req, got.response, root)).to.equal(true)
    await waitUntil(() => mal.requests >= 2, 10_000, 'the staller to be asked again')
    source.close()
    return { bad, asked: () => mal.requests }
  }

  const operations = (maxOps = 6): Request => ({ type: 'operations', size: fixture.db.size, start: 3, maxOps })

  it('an altered operation in the answer to a re-ask blocks the staller', async () => {
    const { bad } = await stallThenAnswer(operations(), res => {
      if (res.type !== 'operations') { throw new Error('expected operations') }
      const ops = res.ops.slice()
      ops[1] = tamperOp(ops[1], fixture.codec) ?? ops[1]
      expect(ops[1]).to.not.deep.equal(res.ops[1])
      return { ...res, ops }
    })
    await waitUntil(() => client.services.standard.isBlocked(bad.peerId), 10_000, 'the staller blocked')
    expect(client.services.standard.blockedPeers().get(bad.peerId.toString())).to.match(/asked again, contradicts the data another peer served/)
  })

  it('altered pinned nodes in the answer to a boundary re-ask block the staller', async () => {
    const { bad } = await stallThenAnswer({ type: 'boundary', size: fixture.db.size, start: 5 }, res => {
      if (res.type !== 'boundary' || res.pinnedNodes.length === 0) { throw new Error('expected a boundary with pins') }
      const pins = res.pinnedNodes.map(p => p.slice())
      pins[0][3] ^= 1
      return { ...res, pinnedNodes: pins }
    })
    await waitUntil(() => client.services.standard.isBlocked(bad.peerId), 10_000, 'the staller blocked')
  })

  it('the same answer, or fewer operations with their own proof, ends the suspicion: not blocked, not asked again', async () => {
    const fewer = (await new LocalSource(fixture.db).serve(operations(2), {})).response
    expect(fewer.type === 'operations' && fewer.ops.length === 2).to.equal(true)
    for (const reanswer of [(res: Response) => res, () => fewer]) {
      const { bad, asked } = await stallThenAnswer(operations(), reanswer)
      // a let-go suspect is never asked again; a judged-false one would be blocked by now
      await new Promise(resolve => setTimeout(resolve, 300))
      expect(client.services.standard.isBlocked(bad.peerId)).to.equal(false)
      expect(asked()).to.equal(2)
    }
  })
})
