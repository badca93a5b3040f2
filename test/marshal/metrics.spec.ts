/**
 * The marshal's byte metrics count what crosses the wire: every frame's
 * body and its uvarint length prefix, which is two bytes from a 128-byte body
 * on (docs/PROTOCOLS.md "Metrics"). Compared against the raw bytes a bare
 * peer sends and receives, on the serving side and on the fetching side.
 */
import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { encodeMarshalRequest, marshalProtocolId } from '../../src/marshal/index.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import { CHAIN, connectAll, createBareNode, createMarshalNode, frame, metricValue, seedChain, sendRaw, stopAll } from '../util/marshal-nodes.ts'
import type { Libp2p } from '@libp2p/interface'

const TIP = 40

describe('marshal metrics: bytes on the wire', function () {
  this.timeout(60_000)
  const nodes: Array<Libp2p<any>> = []

  after(async () => {
    await stopAll(nodes)
  })

  it('bytes_total counts the length prefix of frames of 128 bytes and more, serving and fetching', async () => {
    const validators = await Validators.create(4)
    const chain = buildChain(TIP + 1)
    const serverRegistry = new Registry()
    const server = await createMarshalNode(validators, blockCodec, {}, serverRegistry)
    nodes.push(server)
    await seedChain(server.services.marshal.store as any, chain, validators, TIP)
    await server.services.marshal.marshal.start({ genesis: chain[0] })

    // what the wire carries for one range request, seen by a bare peer
    const request = encodeMarshalRequest({ type: 'finalized', from: 1, to: TIP })
    const bare = await createBareNode()
    nodes.push(bare)
    await connectAll(bare, [server])
    const raw = await sendRaw(bare, server, marshalProtocolId('qmdb', CHAIN), frame(request))
    expect(raw.length).to.be.greaterThan(128 + 2) // a length prefix of two bytes or more
    expect(await metricValue(serverRegistry, 'libp2p_qmdb_marshal_bytes_total', 'in')).to.equal(frame(request).length)
    expect(await metricValue(serverRegistry, 'libp2p_qmdb_marshal_bytes_total', 'out')).to.equal(raw.length)

    // the same exchange from a fetching marshal
    const clientRegistry = new Registry()
    const client = await createMarshalNode(validators, blockCodec, { peers: [server.peerId] }, clientRegistry)
    nodes.push(client)
    await connectAll(client, [server])
    const got = await client.services.marshal.fetcher.fetchFinalized(1, TIP, { signal: AbortSignal.timeout(20_000) })
    expect(got.blocks.length).to.equal(TIP)
    expect(await metricValue(clientRegistry, 'libp2p_qmdb_marshal_bytes_total', 'out')).to.equal(frame(request).length)
    expect(await metricValue(clientRegistry, 'libp2p_qmdb_marshal_bytes_total', 'in')).to.equal(raw.length)
  })
})
