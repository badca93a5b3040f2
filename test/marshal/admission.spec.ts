/**
 * The blocks topic's validator (`MarshalService.admitBlock`, issue 18):
 * past the first few heights above the finalized tip, a gossiped block must
 * link to something this node knows (its parent is stored here, or a
 * verified proposal or certificate made this node wait for it); a decodable
 * block with a random parent at a plausible height is ignored (not relayed,
 * not stored). Near the tip a child that arrives before its parent is still
 * accepted.
 */
import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { Validators, blockCodec, buildChain, makeBlock } from '../util/marshal-fixtures.ts'
import { createMarshalNode, seedChain, stopAll, waitUntil } from '../util/marshal-nodes.ts'
import type { TestBlock } from '../util/marshal-fixtures.ts'
import type { MarshalNode, TestMarshalService } from '../util/marshal-nodes.ts'

const TIP = 20
const payload = (s: string): Uint8Array => new TextEncoder().encode(s)
const unknown = (tag: number): Uint8Array => new Uint8Array(32).fill(tag)

/** Gossip delivery as a node wires it: the validator first, then `onBlock` for what it accepted. */
async function gossip (svc: TestMarshalService, b: TestBlock): Promise<string> {
  const bytes = blockCodec.encode(b)
  const verdict = await svc.admitBlock(bytes)
  if (verdict === 'accept') { await svc.onBlock(bytes) }
  return verdict
}

describe('marshal: blocks-topic admission links a block to something known', function () {
  this.timeout(30_000)
  let node: MarshalNode
  let svc: TestMarshalService
  let chain: TestBlock[]

  before(async () => {
    const validators = await Validators.create(4)
    chain = buildChain(TIP + 1)
    node = await createMarshalNode(validators, blockCodec, { peers: [] })
    svc = node.services.marshal
    await seedChain(svc.store as any, chain, validators, TIP)
    await svc.marshal.start({ genesis: chain[0] })
    expect(svc.marshal.finalizedTip).to.equal(TIP)
  })

  after(async () => {
    await stopAll([node])
  })

  it('ignores a decodable block with a random parent at a plausible height, and does not store it', async () => {
    const orphan = makeBlock(TIP + 10, unknown(7), payload('orphan'))
    expect(await gossip(svc, orphan)).to.equal('ignore')
    expect(await svc.marshal.hasBlock(orphan.digest)).to.equal(false)
  })

  it('accepts a chain of proposals above the tip, each extending a stored block', async () => {
    let parent = chain[TIP].digest
    for (let h = TIP + 1; h <= TIP + 10; h++) {
      const b = makeBlock(h, parent, payload(`ext:${h}`))
      expect(await gossip(svc, b), `height ${h}`).to.equal('accept')
      expect(await svc.marshal.hasBlock(b.digest)).to.equal(true)
      parent = b.digest
    }
  })

  it('accepts a child before its parent near the finalized tip', async () => {
    const early = makeBlock(TIP + 2, unknown(8), payload('child first'))
    expect(await gossip(svc, early)).to.equal('accept')
  })

  it('accepts an unlinked block this node waits for (a verified proposal or certificate named it)', async () => {
    const named = makeBlock(TIP + 12, unknown(9), payload('named'))
    const controller = new AbortController()
    const waiting = svc.marshal.subscribeBlock(named.digest, { height: named.height, signal: controller.signal })
    await waitUntil(() => svc.marshal.awaits(named.digest), 10_000, 'the subscription waits')
    expect(await gossip(svc, named)).to.equal('accept')
    expect((await waiting)?.digest).to.deep.equal(named.digest)
    controller.abort()
  })

  it('rejects undecodable bytes; ignores heights at or below the tip and far ahead', async () => {
    expect(await svc.admitBlock(new Uint8Array([1, 2, 3]))).to.equal('reject')
    expect(await svc.admitBlock(blockCodec.encode(makeBlock(TIP, chain[TIP - 1].digest, payload('stale'))))).to.equal('ignore')
    expect(await svc.admitBlock(blockCodec.encode(makeBlock(TIP + 65, chain[TIP].digest, payload('far'))))).to.equal('ignore')
  })

  it('the marshal judges the same way on its own (as the simulator calls it): an accepted block comes back decoded, not yet stored; the window is the caller\'s', async () => {
    const b = makeBlock(TIP + 1, chain[TIP].digest, payload('direct'))
    const judged = await svc.marshal.admitBlock(blockCodec.encode(b))
    expect(judged.admission).to.equal('accept')
    expect(judged.admission === 'accept' ? judged.block.digest : undefined).to.deep.equal(b.digest)
    expect(await svc.marshal.hasBlock(b.digest)).to.equal(false)
    expect((await svc.marshal.admitBlock(new Uint8Array(0))).admission).to.equal('reject')
    // 3 heights above the tip: inside the default window, outside a window of 2
    const ahead = blockCodec.encode(makeBlock(TIP + 3, chain[TIP].digest, payload('ahead')))
    expect((await svc.marshal.admitBlock(ahead)).admission).to.equal('accept')
    expect((await svc.marshal.admitBlock(ahead, { maxBlocksAhead: 2, maxUnlinkedAhead: 1 })).admission).to.equal('ignore')
  })
})
