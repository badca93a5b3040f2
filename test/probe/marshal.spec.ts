/**
 * The probe and the marshal service together, as a fresh node would use
 * them: discover a floor vouched for by f + 1 peers, record it in the sync
 * plan, start marshal from it (its block fetched from peers), then serve.
 */
import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { SyncPlan } from '../../src/stateful/sync-plan.ts'
import { Validators, blockCodec, buildChain, sameFinalization } from '../util/marshal-fixtures.ts'
import { RecordingReporter, connectAll, createFullNode, seedChain, stopAll, waitUntil } from '../util/marshal-nodes.ts'
import type { TestBlock } from '../util/marshal-fixtures.ts'
import type { FullNode } from '../util/marshal-nodes.ts'
import type { PeerId } from '@libp2p/interface'

const TIP = 40

async function source (validators: Validators, chain: TestBlock[], tip: number): Promise<FullNode> {
  const node = await createFullNode(validators, blockCodec, {}, { faults: 0 })
  await seedChain(node.services.marshal.store as any, chain, validators, tip)
  await node.services.marshal.marshal.start({ genesis: chain[0] })
  node.services.probe.attach(node.services.marshal.marshal)
  return node
}

async function fresh (validators: Validators, committee: () => PeerId[]): Promise<FullNode> {
  return createFullNode(validators, blockCodec, {}, { participants: committee })
}

describe('probe + marshal: a fresh node starts from a discovered floor', function () {
  this.timeout(60_000)
  const nodes: FullNode[] = []
  let validators: Validators
  let chain: TestBlock[]

  before(async () => {
    validators = await Validators.create(4)
    chain = buildChain(TIP + 1)
  })

  after(async () => {
    await stopAll(nodes)
  })

  it('discovers the floor, starts marshal there, follows the tip, then serves the floor to the next node', async () => {
    // three sources: two at the tip, one lagging (f + 1 = 2 of a committee of four)
    const sources = [await source(validators, chain, TIP), await source(validators, chain, TIP), await source(validators, chain, 30)]
    nodes.push(...sources)
    const members = sources.map(s => s.peerId)
    const holder: { self?: PeerId } = {}
    const node = await fresh(validators, () => [holder.self as PeerId, ...members])
    holder.self = node.peerId
    nodes.push(node)
    await connectAll(node, sources)

    const floor = await node.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(sameFinalization(floor, validators.finalize(TIP, chain[TIP].digest))).to.equal(true)

    const plan = await SyncPlan.init(new MemoryDatastore(), '/plan', validators.scheme)
    const start = plan.withFloor(floor).marshalStart(chain[0])
    expect('floor' in start).to.equal(true)
    const { marshal } = node.services.marshal
    expect((await marshal.start(start)).processedHeight).to.equal(TIP - 1)
    const reporter = new RecordingReporter()
    marshal.attach(reporter)
    await waitUntil(() => reporter.heights.length >= 1, 10_000, 'the floor block')
    expect(reporter.heights).to.deep.equal([TIP])

    // consensus moves on: the next block is finalized and arrives by gossip
    const child = buildChain(TIP + 2)[TIP + 1]
    expect(child.parent).to.deep.equal(chain[TIP].digest)
    expect(await node.services.marshal.onBlock(blockCodec.encode(child))).to.not.equal(undefined)
    expect(await node.services.marshal.onFinalization(validators.scheme.encode(validators.finalize(TIP + 1, child.digest)))).to.equal(true)
    await waitUntil(() => reporter.heights.length >= 2, 10_000, 'the next block')
    expect(reporter.heights).to.deep.equal([TIP, TIP + 1])
    // a forged certificate from gossip is refused
    const foreign = await Validators.create(4, 50)
    expect(await node.services.marshal.onFinalization(validators.scheme.encode(foreign.finalize(TIP + 2, child.digest)))).to.equal(false)

    // the node serves: attached after consuming the floor, it enters service
    node.services.probe.attach(marshal)
    expect(node.services.probe.phase).to.equal('service')
    // a source learns the same finalization; a newcomer finds f + 1 = 2 vouchers for it: `node` and that source
    await sources[1].services.marshal.marshal.receiveBlock(blockCodec.encode(child))
    await sources[1].services.marshal.marshal.finalized(validators.finalize(TIP + 1, child.digest))
    const holder2: { self?: PeerId } = {}
    const newcomer = await fresh(validators, () => [holder2.self as PeerId, node.peerId, sources[1].peerId, sources[2].peerId])
    holder2.self = newcomer.peerId
    nodes.push(newcomer)
    await connectAll(newcomer, [node, sources[1], sources[2]])
    const served = node.services.probe.stats.served
    const got = await newcomer.services.probe.subscribe({ signal: AbortSignal.timeout(10_000) })
    expect(got.round.view).to.equal(TIP + 1)
    expect(node.services.probe.stats.served).to.be.above(served)
  })
})
