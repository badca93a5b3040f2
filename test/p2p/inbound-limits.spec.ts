/**
 * Inbound sync streams are bounded across peers, not only per peer: many
 * peer ids holding idle streams cannot pin more than the resolver's total
 * (default 64) between them. And a fresh client that opens a burst of
 * requests right after dialling keeps its connection (yamux's early-stream
 * limit is not hit by the resolver's own fan-out).
 */
import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { LocalSource } from '../../src/sync/local-source.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import type { TestNode } from '../util/p2p-nodes.ts'
import type { Stream } from '@libp2p/interface'

describe('p2p: inbound stream limits across peers', function () {
  this.timeout(120_000)
  const nodes: TestNode[] = []

  afterEach(async () => {
    await stopAll(nodes.splice(0))
  })

  it('8 peers x 16 idle streams: the server holds at most its total (64); the rest are reset at once', async () => {
    const server = await createTestNode({ standard: { databases: ['any'], readTimeout: 20_000 }, manyInbound: true })
    nodes.push(server)
    const protocol = server.services.standard.protocol('any')
    const peers = await Promise.all(Array.from({ length: 8 }, async () => createTestNode()))
    nodes.push(...peers)
    const streams: Stream[] = []
    for (const p of peers) {
      const conn = await p.dial(server.getMultiaddrs()[0])
      // open 16 streams and never send a request (idle until the read timeout)
      // (those the server sheds may be reset while the protocol is still being negotiated)
      const opened = await Promise.allSettled(Array.from({ length: 16 }, async () => conn.newStream(protocol)))
      for (const o of opened) { if (o.status === 'fulfilled') { streams.push(o.value) } }
    }
    const held = (): number => server.getConnections().flatMap(c => c.streams).filter(s => s.protocol === protocol && s.status === 'open').length
    // the excess is shed as soon as each stream is handled; the admitted ones stay until the read timeout
    await waitUntil(() => held() <= 64, 20_000, 'the server to shed streams beyond its total')
    expect(held()).to.equal(64)
    for (const s of streams) { s.abort(new Error('done')) }
  })

  it('a fresh client opening 24 requests right after dialling keeps its connection and gets every answer', async () => {
    const fixture = await makeFixture('any', 7, 40)
    const server = await createTestNode({ standard: { databases: ['any'] } })
    nodes.push(server)
    await server.services.standard.attach('any', new LocalSource(fixture.db))
    const client = await createTestNode({ standard: { outbound: { maxConcurrent: 24 } } })
    nodes.push(client)
    let opened = 0
    let closed = 0
    client.addEventListener('connection:open', () => { opened++ })
    client.addEventListener('connection:close', () => { closed++ })
    const source = client.services.standard.source('any', { codec: fixture.db.codec, peers: [server.peerId] })
    await client.peerStore.merge(server.peerId, { multiaddrs: server.getMultiaddrs() })
    const size = fixture.db.size
    const answers = await Promise.all(Array.from({ length: 24 }, async (_, i) =>
      source.serve({ type: 'operations', size, start: i % (size - 1), maxOps: 1 + i }, { signal: AbortSignal.timeout(60_000) })))
    expect(answers).to.have.length(24)
    for (const a of answers) { expect(a.response.type).to.equal('operations') }
    expect(opened, 'one connection, never re-dialled').to.equal(1)
    expect(closed).to.equal(0)
  })
})
