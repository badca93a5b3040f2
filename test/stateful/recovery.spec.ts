/**
 * Lazy recovery (commonware `glue/src/stateful/actor/processor/mod.rs`): walking back to a known state, replaying
 * oldest first with `Application.apply`, caching each replayed block at
 * once, and sharing replays between concurrent verifications.
 */

import { expect } from 'aegir/chai'
import { digestKey } from '../../src/stateful/index.ts'
import { Gate, eventually, harness, metricValue, stillPending, verifyCall } from '../util/stateful-harness.ts'
import type { TestBlock } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function duplicates (list: string[]): string[] {
  return list.filter((x, i) => list.indexOf(x) !== i)
}

/** Gate `apply` of the listed blocks only. */
function gateApplyOf (t: Harness, blocks: TestBlock[], gate: Gate): void {
  const keys = new Set(blocks.map(b => digestKey(b.digest)))
  t.app.applyHook = async (block, signal) => {
    if (keys.has(digestKey(block.digest))) { await gate.pass(signal) }
  }
}

describe('stateful: lazy recovery', () => {
  let t: Harness

  afterEach(async () => {
    await t?.stop()
  })

  it('out-of-order certifications of a 6-block chain all complete through shared replays', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 6)
    t.marshal.put(...chain)
    const order = [6, 2, 5, 1, 4, 3]
    const verdicts = await Promise.all(order.map(async i => verifyCall(t.stateful, chain[i - 1]).promise))
    expect(verdicts).to.deep.equal([true, true, true, true, true, true])
    // every ancestor replayed at most once, whichever jobs needed it
    expect(duplicates(t.app.applied)).to.deep.equal([])
    expect(t.app.calls.apply).to.be.at.most(5)
    expect(t.stateful.pendingBlocks).to.equal(6)
    // the finalized chain is applied from the cached states: no reconstruction
    const applied = t.app.calls.apply
    t.marshal.finalize(...chain)
    await eventually(() => t.stateful.lastProcessed?.height === 6, 'finalization of the chain')
    expect(t.app.calls.apply).to.equal(applied)
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[5].targets)).to.be.true()
  })

  it('recovers a missing parent chain by replay, oldest first, caching each block', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 5)
    t.marshal.put(...chain)
    expect(await verifyCall(t.stateful, chain[4]).promise).to.be.true()
    expect(t.app.applied).to.deep.equal(chain.slice(0, 4).map(b => digestKey(b.digest)))
    expect(t.app.calls.verify).to.equal(1)
    expect(t.stateful.pendingBlocks).to.equal(5)
    expect(await metricValue(t.registry, 'libp2p_qmdb_stateful_rebuild_pending_depth')).to.equal(4)
  })

  it('two verifications needing the same ancestor share one replay', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    const b3 = await t.builder.child(a2, { view: 3 })
    const c3 = await t.builder.child(a2, { view: 4 })
    t.marshal.put(a1, a2, b3, c3)
    const gate = new Gate()
    gateApplyOf(t, [a2], gate)
    const vb = verifyCall(t.stateful, b3)
    const vc = verifyCall(t.stateful, c3)
    await gate.waitEntered(1)
    expect(await stillPending(vc.promise)).to.be.true()
    gate.open()
    expect(await vb.promise).to.be.true()
    expect(await vc.promise).to.be.true()
    expect(t.app.applied.filter(d => d === digestKey(a2.digest))).to.have.length(1)
    expect(t.app.applied.filter(d => d === digestKey(a1.digest))).to.have.length(1)
    expect(gate.entered).to.equal(1)
  })

  it('when the replay owner is cancelled, a waiter takes the replay over', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    const b2 = await t.builder.child(a1, { view: 2 })
    const c2 = await t.builder.child(a1, { view: 3 })
    t.marshal.put(a1, b2, c2)
    const gate = new Gate()
    gateApplyOf(t, [a1], gate)
    const owner = verifyCall(t.stateful, b2)
    await gate.waitEntered(1)
    const waiter = verifyCall(t.stateful, c2)
    expect(await stillPending(waiter.promise)).to.be.true()
    expect(gate.entered).to.equal(1) // the waiter does not replay on its own
    owner.abort()
    await expect(owner.promise).to.eventually.be.rejected()
    await gate.waitEntered(2) // the waiter became the owner
    gate.open()
    expect(await waiter.promise).to.be.true()
    expect(t.app.calls.apply).to.equal(2)
  })

  it('a cancelled recovery keeps the ancestors it already replayed', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 5)
    t.marshal.put(...chain)
    const gate = new Gate()
    gateApplyOf(t, [chain[2]], gate) // hold the replay of block 3
    const first = verifyCall(t.stateful, chain[4])
    await gate.waitEntered(1)
    first.abort()
    await expect(first.promise).to.eventually.be.rejected()
    expect(t.stateful.hasPending(digestKey(chain[0].digest))).to.be.true()
    expect(t.stateful.hasPending(digestKey(chain[1].digest))).to.be.true()
    expect(t.stateful.hasPending(digestKey(chain[2].digest))).to.be.false()
    gate.open()
    expect(await verifyCall(t.stateful, chain[4]).promise).to.be.true()
    // blocks 1 and 2 were not replayed again
    expect(t.app.applied.filter(d => d === digestKey(chain[0].digest))).to.have.length(1)
    expect(t.app.applied.filter(d => d === digestKey(chain[1].digest))).to.have.length(1)
  })

  it('an ancestor whose replay mismatches its commitments makes the verification false and caches nothing', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(...chain)
    t.app.corruptApply.add(digestKey(chain[1].digest))
    expect(await verifyCall(t.stateful, chain[2]).promise).to.be.false()
    expect(t.stateful.hasPending(digestKey(chain[1].digest))).to.be.false()
    expect(t.stateful.hasPending(digestKey(chain[2].digest))).to.be.false()
    expect(t.app.calls.verify).to.equal(0)
  })

  it('abstains while an ancestor cannot be obtained (incomplete ancestry), without retrying forever', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(chain[1], chain[2]) // block 1 is missing
    t.marshal.unavailable.add(digestKey(chain[0].digest))
    const call = verifyCall(t.stateful, chain[2])
    expect(await stillPending(call.promise)).to.be.true()
    expect(t.marshal.fetches.get(digestKey(chain[0].digest))).to.equal(1)
    call.abort()
    await expect(call.promise).to.eventually.be.rejected()
  })

  it('waits for an ancestor the block store is still fetching', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(chain[1], chain[2])
    const call = verifyCall(t.stateful, chain[2])
    await eventually(() => t.marshal.waiting(chain[0].digest) === 1, 'ancestor subscription')
    t.marshal.put(chain[0])
    expect(await call.promise).to.be.true()
  })

  it('proposals recover their parent state too (without shared replays)', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(...chain)
    const digest = await t.stateful.propose({ round: { epoch: 0, view: 9 }, leader: 'v0', parent: { view: chain[2].context.round.view, digest: chain[2].digest } })
    expect(digest).to.be.instanceOf(Uint8Array)
    expect(t.app.calls.apply).to.equal(3)
    expect(t.stateful.pendingBlocks).to.equal(4)
  })
})
