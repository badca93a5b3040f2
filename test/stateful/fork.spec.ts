/**
 * Competing forks above the finalized tip (commonware `glue/src/stateful/actor/processor/mod.rs`): isolation
 * of sibling states, pruning of losing forks by ancestry from the winner,
 * and verdicts on blocks built on pruned branches.
 */

import { expect } from 'aegir/chai'
import { digestKey } from '../../src/stateful/index.ts'
import { COUNTER, decodeCounter, h } from '../util/stateful-app.ts'
import { harness, metricValue, proposeCall, verifyCall } from '../util/stateful-harness.ts'
import type { AnyDb, DatabaseSet } from '../../src/qmdb/index.ts'
import type { Stateful } from '../../src/stateful/index.ts'
import type { TestBlock, TestDbs } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function accountsOf (set: DatabaseSet<TestDbs>): AnyDb {
  return set.dbs.accounts as unknown as AnyDb
}

/** Verify one after the other (each parent is cached before its child is verified). */
async function verifyAll (stateful: Stateful<TestBlock, TestDbs>, blocks: TestBlock[]): Promise<boolean[]> {
  const out: boolean[] = []
  for (const b of blocks) { out.push(await verifyCall(stateful, b).promise) }
  return out
}

describe('stateful: forks', () => {
  let t: Harness

  afterEach(async () => {
    await t?.stop()
  })

  it('finalizing one of two depth-5 chains leaves the database at the winner and drops the loser', async () => {
    t = await harness({ maxPendingAcks: 5 })
    // winner views 2,4,..,10; loser views 1,3,..,9; both on genesis
    const winner = await t.builder.chain(t.genesis, 5, { firstView: 2, step: 2, tag: 'w' })
    const loser = await t.builder.chain(t.genesis, 5, { firstView: 1, step: 2, tag: 'l' })
    t.marshal.put(...winner, ...loser)
    expect(await verifyAll(t.stateful, [...winner, ...loser])).to.deep.equal(new Array(10).fill(true))
    expect(t.stateful.pendingBlocks).to.equal(10)

    t.marshal.finalize(winner[0])
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    // only the winner's descendants survive
    expect(t.stateful.pendingBlocks).to.equal(4)
    for (const b of loser) { expect(t.stateful.hasPending(digestKey(b.digest))).to.be.false() }
    for (const b of winner.slice(1)) { expect(t.stateful.hasPending(digestKey(b.digest))).to.be.true() }
    expect(await metricValue(t.registry, 'libp2p_qmdb_stateful_pruned_forks')).to.equal(5)

    t.marshal.finalize(...winner.slice(1))
    expect(await t.marshal.ackOutcome(5)).to.equal('acked')
    expect(t.stateful.pendingBlocks).to.equal(0)
    expect(t.set.targetsEqual(t.set.committedTargets(), winner[4].targets)).to.be.true()
    const accounts = accountsOf(t.set)
    for (let i = 1; i <= 5; i++) {
      expect(await accounts.get(h(`k${i}`))).to.deep.equal(h(`w${i}`))
    }
    expect(decodeCounter(await accounts.get(COUNTER))).to.equal(5)
    expect(t.app.calls.apply).to.equal(0)

    // a new block on the loser's tip: its ancestry is at/below the finalized tip → false, without fetching
    const onLoser = await t.builder.child(loser[4], { view: 20 })
    t.marshal.put(onLoser)
    const fetchesBefore = t.marshal.fetches.get(digestKey(loser[3].digest)) ?? 0
    expect(await verifyCall(t.stateful, onLoser).promise).to.be.false()
    expect(t.marshal.fetches.get(digestKey(loser[3].digest)) ?? 0).to.equal(fetchesBefore)
    expect(t.app.calls.verify).to.equal(10)
    // a new block on the winner's tip verifies
    const onWinner = await t.builder.child(winner[4], { view: 21 })
    t.marshal.put(onWinner)
    expect(await verifyCall(t.stateful, onWinner).promise).to.be.true()
  })

  it('a block on the loser branch above the finalized height is rejected by the walk-back (stale ancestor)', async () => {
    t = await harness()
    const winner = await t.builder.chain(t.genesis, 1, { firstView: 2, tag: 'w' })
    const loser = await t.builder.chain(t.genesis, 4, { firstView: 1, step: 2, tag: 'l' })
    t.marshal.put(...winner, ...loser)
    t.marshal.finalize(winner[0])
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    // loser[3] (h4) needs l3, l2, l1; l1 is at the processed height and is not the processed block
    const child = await t.builder.child(loser[3], { view: 30 })
    t.marshal.put(child)
    const applied = t.app.calls.apply // 1: winner[0] was reconstructed at finalization
    expect(await verifyCall(t.stateful, child).promise).to.be.false()
    expect(t.app.calls.apply).to.equal(applied) // rejected during the walk-back, before any replay
    expect(t.marshal.fetches.get(digestKey(t.genesis.digest)) ?? 0).to.equal(0) // never walked below l1
  })

  it('a proposal never sees a sibling fork\'s writes', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { firstView: 1, tag: 'a' })
    const b1 = await t.builder.child(t.genesis, { view: 2, writes: [{ key: 'k1', value: 'b1' }, { key: 'only-b', value: 'b' }] })
    t.marshal.put(a1, b1)
    expect(await verifyAll(t.stateful, [a1, b1])).to.deep.equal([true, true])
    const seen: Array<Array<Uint8Array | undefined>> = []
    t.app.observePropose = async batches => {
      seen.push([await batches.accounts.get(h('k1')), await batches.accounts.get(h('only-b'))])
    }
    const digest = await proposeCall(t.stateful, a1, 3).promise
    expect(digest).to.be.instanceOf(Uint8Array)
    expect(seen).to.deep.equal([[h('a1'), undefined]])
    // the proposal's state equals an independent computation on a1 (counter 2, a1's writes)
    const proposed = t.marshal.disseminated[0]
    const expected = await t.builder.child(a1, { view: 3, writes: [...proposed.writes] })
    expect(expected.targets).to.deep.equal(proposed.targets)
    // and a proposal on b1 sees b1's writes only
    const d2 = await proposeCall(t.stateful, b1, 4).promise
    expect(d2).to.be.instanceOf(Uint8Array)
    expect(seen[1]).to.deep.equal([h('b1'), h('b')])
  })

  it('a competing block for the same height in a later view wins and prunes the earlier one with its descendants', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const b2 = await t.builder.child(a1, { view: 2, writes: [{ key: 'k2', value: 'b2' }] })
    const c2 = await t.builder.child(a1, { view: 3, writes: [{ key: 'k2', value: 'c2' }] })
    const b3 = await t.builder.child(b2, { view: 4 })
    t.marshal.put(a1, b2, c2, b3)
    expect(await verifyAll(t.stateful, [a1, b2, c2, b3])).to.deep.equal([true, true, true, true])
    t.marshal.finalize(a1)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(t.stateful.pendingBlocks).to.equal(3)
    t.marshal.finalize(c2)
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    expect(t.stateful.pendingBlocks).to.equal(0) // b2 (view 2 <= 3, not a descendant) and b3 dropped
    expect(await accountsOf(t.set).get(h('k2'))).to.deep.equal(h('c2'))
    // a late verification of a child of b2: parent unknown and at the processed height → false
    const d3 = await t.builder.child(b2, { view: 9 })
    t.marshal.put(d3)
    expect(await verifyCall(t.stateful, d3).promise).to.be.false()
  })

  it('rejects a candidate whose parent is not contiguous', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    const forgedParent = { ...a1, height: 5 } // same digest, wrong height
    t.marshal.put(forgedParent, a2)
    expect(await verifyCall(t.stateful, a2).promise).to.be.false()
    expect(t.app.calls.apply).to.equal(0)
  })
})
