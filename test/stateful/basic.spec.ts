/**
 * Basic flows of the stateful manager on real QMDB databases: genesis start,
 * proposals, verification verdicts, finalization with durability-gated
 * acknowledgements, metrics.
 */

import { expect } from 'aegir/chai'
import { digestKey } from '../../src/stateful/index.ts'
import { COUNTER, contextFor, decodeCounter, h } from '../util/stateful-app.ts'
import { eventually, harness, metricValue, proposeCall, stillPending, verifyCall } from '../util/stateful-harness.ts'
import type { AnyDb, DatabaseSet } from '../../src/qmdb/index.ts'
import type { TestDbs } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function accountsOf (set: DatabaseSet<TestDbs>): AnyDb {
  return set.dbs.accounts as unknown as AnyDb
}

describe('stateful: basic flows', () => {
  let t: Harness

  afterEach(async () => {
    await t?.stop()
  })

  it('starts at genesis and acknowledges the redelivered genesis block as a duplicate', async () => {
    t = await harness()
    expect(t.stateful.isStarted()).to.be.true()
    expect(t.stateful.lastProcessed?.height).to.equal(0)
    expect(t.stateful.lastProcessed?.key).to.equal(digestKey(t.genesis.digest))
    t.marshal.finalize(t.genesis)
    expect(await t.marshal.ackOutcome(0)).to.equal('acked')
    expect(t.app.finalizedHeights).to.deep.equal([])
    expect(await metricValue(t.registry, 'libp2p_qmdb_stateful_sync_done')).to.equal(1)
  })

  it('proposes on genesis, disseminates the block and caches its state', async () => {
    t = await harness()
    const digest = await t.stateful.propose(contextFor(t.genesis, 1))
    expect(digest).to.be.instanceOf(Uint8Array)
    const block = t.marshal.disseminated[0]
    expect(block.digest).to.deep.equal(digest)
    expect(block.height).to.equal(1)
    expect(t.stateful.hasPending(digestKey(block.digest))).to.be.true()
    // verifying our own proposal is a pending hit: the application is not called again
    expect(await t.stateful.verify(block.context, block.digest)).to.be.true()
    expect(t.app.calls.verify).to.equal(0)
    expect(await metricValue(t.registry, 'libp2p_qmdb_stateful_pending_blocks')).to.equal(1)
  })

  it('verifies a chain, finalizes it and acknowledges each block only once durable', async () => {
    t = await harness()
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(...chain)
    for (const b of chain) {
      expect(await verifyCall(t.stateful, b).promise).to.be.true()
    }
    expect(t.stateful.pendingBlocks).to.equal(3)
    t.marshal.finalize(...chain)
    expect(await t.marshal.ackOutcome(3)).to.equal('acked')
    expect(t.marshal.acks.get(1)).to.equal('acked')
    expect(t.marshal.acks.get(2)).to.equal('acked')
    expect(t.stateful.pendingBlocks).to.equal(0)
    expect(t.stateful.lastProcessed?.height).to.equal(3)
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[2].targets)).to.be.true()
    expect(t.app.finalizedHeights).to.deep.equal([1, 2, 3])
    expect([...t.app.finalizedCounters.values()]).to.deep.equal([1, 2, 3])
    expect(decodeCounter(await accountsOf(t.set).get(COUNTER))).to.equal(3)
    expect(t.app.calls.apply).to.equal(0) // every winner was cached
  })

  it('readApplied sees the databases and the applied height together, and rejects once stopped', async () => {
    t = await harness()
    expect(await t.stateful.readApplied((_dbs, height) => height)).to.equal(0)
    const chain = await t.builder.chain(t.genesis, 2)
    t.marshal.put(...chain)
    t.marshal.finalize(...chain)
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    const read = await t.stateful.readApplied((dbs, height) => ({ height, same: dbs.targetsEqual(dbs.committedTargets(), chain[1].targets) }))
    expect(read).to.deep.equal({ height: 2, same: true })
    // an exception inside the reader reaches the caller, the manager keeps going
    await expect(t.stateful.readApplied(() => { throw new Error('reader failed') })).to.eventually.be.rejectedWith('reader failed')
    expect(await t.stateful.readApplied((_dbs, height) => height)).to.equal(2)
    await t.stateful.stop()
    await expect(t.stateful.readApplied(() => 0)).to.eventually.be.rejected()
  })

  it('answers false when the application rejects the block', async () => {
    t = await harness()
    const [b1] = await t.builder.chain(t.genesis, 1)
    t.marshal.put(b1)
    t.app.rejectVerify.add(digestKey(b1.digest))
    expect(await verifyCall(t.stateful, b1).promise).to.be.false()
    expect(t.stateful.pendingBlocks).to.equal(0)
  })

  it('answers false when the block does not carry the consensus context', async () => {
    t = await harness()
    const [b1] = await t.builder.chain(t.genesis, 1)
    t.marshal.put(b1)
    const ctx = { ...b1.context, round: { epoch: 0, view: b1.context.round.view + 7 } }
    expect(await t.stateful.verify(ctx, b1.digest)).to.be.false()
    expect(t.app.calls.verify).to.equal(0)
  })

  it('answers false when the executed state does not match the block commitments', async () => {
    t = await harness()
    const [b1] = await t.builder.chain(t.genesis, 1)
    // same block content but commitments of another state
    const forged = { ...b1, targets: { ...b1.targets, accounts: { ...b1.targets.accounts, root: h('forged') } } }
    t.marshal.put(forged)
    expect(await t.stateful.verify(forged.context, forged.digest)).to.be.false()
    expect(t.stateful.pendingBlocks).to.equal(0)
  })

  it('abstains (stays pending) while the candidate is unavailable, and rejects with the abort reason when cancelled', async () => {
    t = await harness()
    const [b1] = await t.builder.chain(t.genesis, 1)
    const call = verifyCall(t.stateful, b1) // b1 never put into marshal
    expect(await stillPending(call.promise)).to.be.true()
    call.abort()
    await expect(call.promise).to.eventually.be.rejected()
    // later work is not blocked
    const [c1] = await t.builder.chain(t.genesis, 1, { firstView: 2 })
    t.marshal.put(c1)
    expect(await verifyCall(t.stateful, c1).promise).to.be.true()
  })

  it('rejects a block conflicting with the processed block and accepts the processed block itself', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const [b1] = await t.builder.chain(t.genesis, 1, { tag: 'b', firstView: 2 })
    t.marshal.put(a1, b1)
    t.marshal.finalize(a1)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(await verifyCall(t.stateful, b1).promise).to.be.false()
    expect(await verifyCall(t.stateful, a1).promise).to.be.true()
    expect(t.app.calls.apply).to.equal(1) // a1 was not cached: reconstructed at finalization
  })

  it('answers a proposal on an unknown or stale parent with undefined', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2, { tag: 'a' })
    const [b1] = await t.builder.chain(t.genesis, 1, { tag: 'b', firstView: 3 })
    t.marshal.put(a1, a2, b1)
    t.marshal.finalize(a1, a2)
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    // b1 is a fork below the finalized tip
    expect(await proposeCall(t.stateful, b1, 5).promise).to.be.undefined()
    // a2 is the processed block: proposals build on committed state
    const d = await proposeCall(t.stateful, a2, 6).promise
    expect(d).to.be.instanceOf(Uint8Array)
    await eventually(() => t.marshal.disseminated.length === 1, 'dissemination')
  })
})
