/**
 * Finalization (commonware `glue/src/stateful/actor/processor/verifier.rs`, `glue/src/stateful/actor/durability.rs`): which running verifications survive
 * a finalization, reuse of in-flight replays, the FIFO barrier behind a
 * proposal, and bounded durability with acknowledgements released only
 * once durable (one flush in flight, later blocks coalesced).
 */

import { expect } from 'aegir/chai'
import { digestKey } from '../../src/stateful/index.ts'
import { FlushControl, openGatedDbs } from '../util/stateful-dbs.ts'
import { Gate, eventually, harness, proposeCall, stillPending, verifyCall } from '../util/stateful-harness.ts'
import type { TestBlock } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function gateVerifyOf (t: Harness, blocks: TestBlock[], gate: Gate): void {
  const keys = new Set(blocks.map(b => digestKey(b.digest)))
  t.app.verifyHook = async (block, signal) => {
    if (keys.has(digestKey(block.digest))) { await gate.pass(signal) }
  }
}

function gateApplyOf (t: Harness, blocks: TestBlock[], gate: Gate): void {
  const keys = new Set(blocks.map(b => digestKey(b.digest)))
  t.app.applyHook = async (block, signal) => {
    if (keys.has(digestKey(block.digest))) { await gate.pass(signal) }
  }
}

/** Release held flushes one round at a time until `done`. */
async function releaseFlushesUntil (control: FlushControl, done: () => boolean): Promise<void> {
  while (!done()) {
    await eventually(() => control.holding > 0 || done(), 'a flush to release')
    control.release()
    await new Promise(resolve => setImmediate(resolve))
  }
}

async function verifyInOrder (t: Harness, blocks: TestBlock[]): Promise<void> {
  for (const b of blocks) { expect(await verifyCall(t.stateful, b).promise).to.be.true() }
}

describe('stateful: finalization and verification dispositions', () => {
  let t: Harness

  afterEach(async () => {
    await t?.stop()
  })

  it('keeps a verification of the winner\'s child running through the finalization', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    t.marshal.put(a1, a2)
    await verifyInOrder(t, [a1])
    const gate = new Gate()
    gateVerifyOf(t, [a2], gate)
    const child = verifyCall(t.stateful, a2)
    await gate.waitEntered(1)
    t.marshal.finalize(a1)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(gate.holding).to.equal(1) // not cancelled
    gate.open()
    expect(await child.promise).to.be.true()
    expect(gate.entered).to.equal(1) // not retried
  })

  it('cancels and rejects a verification on a losing fork', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const [b1, b2] = await t.builder.chain(t.genesis, 2, { tag: 'b', firstView: 2 })
    t.marshal.put(a1, b1, b2)
    await verifyInOrder(t, [a1, b1])
    const gate = new Gate()
    gateVerifyOf(t, [b2], gate)
    const losing = verifyCall(t.stateful, b2)
    await gate.waitEntered(1)
    t.marshal.finalize(a1)
    expect(await losing.promise).to.be.false()
    expect(gate.holding).to.equal(0) // its application call was aborted
  })

  it('rejects a deep verification on a losing fork while it is replaying', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const [b1, b2, b3] = await t.builder.chain(t.genesis, 3, { tag: 'b', firstView: 2 })
    t.marshal.put(a1, b1, b2, b3)
    await verifyInOrder(t, [a1, b1])
    const gate = new Gate()
    gateApplyOf(t, [b2], gate)
    const deep = verifyCall(t.stateful, b3) // replays b2 on b1
    await gate.waitEntered(1)
    t.marshal.finalize(a1)
    expect(await deep.promise).to.be.false()
    expect(t.app.calls.verify).to.equal(2)
  })

  it('retries a verification of the winner itself, which then resolves true from the processed block', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.marshal.put(a1)
    const gate = new Gate()
    gateVerifyOf(t, [a1], gate)
    const call = verifyCall(t.stateful, a1)
    await gate.waitEntered(1)
    t.marshal.finalize(a1) // not cached: reconstructed
    expect(await call.promise).to.be.true()
    expect(t.app.calls.verify).to.equal(1)
    expect(t.app.calls.apply).to.equal(1)
  })

  it('reuses a replay of the winner that verifications started', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    const b2 = await t.builder.child(a1, { view: 2 })
    const c2 = await t.builder.child(a1, { view: 3 })
    t.marshal.put(a1, b2, c2)
    const gate = new Gate()
    gateApplyOf(t, [a1], gate)
    const vb = verifyCall(t.stateful, b2)
    const vc = verifyCall(t.stateful, c2)
    await gate.waitEntered(1)
    t.marshal.finalize(a1)
    expect(await stillPending(vb.promise)).to.be.true()
    gate.open()
    expect(await vb.promise).to.be.true()
    expect(await vc.promise).to.be.true()
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(t.app.calls.apply).to.equal(1)
    expect(t.app.calls.verify).to.equal(2)
  })

  it('independent verifications do not block each other; an abandoned one cancels its application call', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const [b1] = await t.builder.chain(t.genesis, 1, { tag: 'b', firstView: 2 })
    t.marshal.put(a1, b1)
    const gate = new Gate()
    gateVerifyOf(t, [a1], gate)
    const parked = verifyCall(t.stateful, a1)
    await gate.waitEntered(1)
    expect(await verifyCall(t.stateful, b1).promise).to.be.true()
    parked.abort()
    await expect(parked.promise).to.eventually.be.rejected()
    expect(gate.holding).to.equal(0)
    expect(t.stateful.hasPending(digestKey(a1.digest))).to.be.false()
  })

  it('finalization does not bypass an active replay of the winner, even when the winner is cached', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    t.marshal.put(a1, a2)
    const gate = new Gate()
    gateApplyOf(t, [a1], gate)
    const child = verifyCall(t.stateful, a2) // replays a1 (held)
    await gate.waitEntered(1)
    expect(await verifyCall(t.stateful, a1).promise).to.be.true() // caches a1 independently
    t.marshal.finalize(a1)
    expect(await stillPending(t.marshal.ackOutcome(1))).to.be.true()
    expect(t.app.finalizedHeights).to.deep.equal([])
    gate.open()
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(await child.promise).to.be.true()
    expect(t.app.calls.apply).to.equal(1)
  })

  it('a descendant replay survives two consecutive finalizations', async () => {
    t = await harness({ maxPendingAcks: 2 })
    const chain = await t.builder.chain(t.genesis, 4)
    t.marshal.put(...chain)
    await verifyInOrder(t, chain.slice(0, 2))
    const gate = new Gate()
    gateApplyOf(t, [chain[2]], gate)
    const deep = verifyCall(t.stateful, chain[3]) // replays block 3 on block 2
    await gate.waitEntered(1)
    t.marshal.finalize(chain[0], chain[1])
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    expect(gate.holding).to.equal(1)
    gate.open()
    expect(await deep.promise).to.be.true()
    expect(gate.entered).to.equal(1)
    expect(t.app.calls.verify).to.equal(3)
  })

  it('overlapping finalizations keep compatible certifications alive', async () => {
    t = await harness({ maxPendingAcks: 3 })
    const chain = await t.builder.chain(t.genesis, 6)
    t.marshal.put(...chain)
    await verifyInOrder(t, chain.slice(0, 3))
    const verifyGate = new Gate()
    gateVerifyOf(t, chain.slice(3), verifyGate)
    const certs = [6, 4, 5].map(i => verifyCall(t.stateful, chain[i - 1]))
    await verifyGate.waitEntered(3)
    const hookGate = new Gate()
    t.app.finalizedHook = async block => { if (block.height === 1) { await hookGate.pass() } }
    t.marshal.finalize(chain[0], chain[1], chain[2])
    await hookGate.waitEntered(1)
    expect(verifyGate.holding).to.equal(3)
    hookGate.open()
    expect(await t.marshal.ackOutcome(3)).to.equal('acked')
    expect(verifyGate.holding).to.equal(3) // queued finalizations 2 and 3 did not quiesce them
    verifyGate.open()
    expect(await Promise.all(certs.map(async c => c.promise))).to.deep.equal([true, true, true])
    expect(verifyGate.entered).to.equal(3)
    t.marshal.finalize(...chain.slice(3))
    expect(await t.marshal.ackOutcome(6)).to.equal('acked')
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[5].targets)).to.be.true()
    expect(t.app.finalizedHeights).to.deep.equal([1, 2, 3, 4, 5, 6])
  })

  it('a proposal is a FIFO barrier: verifications still run, a finalization waits behind it', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    const [b1] = await t.builder.chain(t.genesis, 1, { tag: 'b', firstView: 5 })
    t.marshal.put(a1, a2, b1)
    await verifyInOrder(t, [a1])
    const gate = new Gate()
    t.app.proposeHook = async (_parent, signal) => { await gate.pass(signal) }
    const proposal = proposeCall(t.stateful, a1, 3)
    await gate.waitEntered(1)
    // a verification admitted while the proposal is parked completes
    expect(await verifyCall(t.stateful, b1).promise).to.be.true()
    t.marshal.finalize(a1)
    const subscribed = t.stateful.subscribeDatabases()
    const behind = verifyCall(t.stateful, a2) // queued behind the finalization
    expect(await stillPending(subscribed)).to.be.true()
    expect(t.marshal.acks.get(1)).to.equal('pending')
    expect(t.stateful.lastProcessed?.height).to.equal(0)
    expect(await stillPending(behind.promise)).to.be.true()
    gate.open()
    expect(await proposal.promise).to.be.instanceOf(Uint8Array)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    expect(await subscribed).to.equal(t.set)
    expect(await behind.promise).to.be.true()
  })

  it('a cancelled proposal answers nothing and caches nothing', async () => {
    t = await harness()
    const gate = new Gate()
    t.app.proposeHook = async (_parent, signal) => { await gate.pass(signal) }
    const proposal = proposeCall(t.stateful, t.genesis, 1)
    await gate.waitEntered(1)
    proposal.abort()
    await expect(proposal.promise).to.eventually.be.rejected()
    expect(t.stateful.pendingBlocks).to.equal(0)
    t.app.proposeHook = undefined
    expect(await proposeCall(t.stateful, t.genesis, 2).promise).to.be.instanceOf(Uint8Array)
  })
})

describe('stateful: durability and acknowledgements', () => {
  let t: Harness
  let control: FlushControl

  beforeEach(async () => {
    control = new FlushControl()
  })

  afterEach(async () => {
    control.release(true)
    await t?.stop()
  })

  it('acknowledges a block only once its flush is durable; later blocks coalesce into one successor flush', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, maxPendingAcks: 3 })
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(...chain)
    await verifyInOrder(t, chain)
    control.gated = true
    t.marshal.finalize(chain[0])
    await eventually(() => t.stateful.lastProcessed?.height === 1, 'block 1 applied')
    expect(control.started).to.equal(2) // one flush (two members)
    t.marshal.finalize(chain[1], chain[2])
    await eventually(() => t.stateful.lastProcessed?.height === 3, 'blocks 2 and 3 applied')
    expect(control.started).to.equal(2) // still one flush in flight
    expect([t.marshal.acks.get(1), t.marshal.acks.get(2), t.marshal.acks.get(3)]).to.deep.equal(['pending', 'pending', 'pending'])
    control.release()
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    await control.waitStarted(4) // the successor flush covers 2 and 3
    expect(t.marshal.acks.get(2)).to.equal('pending')
    control.release()
    expect(await t.marshal.ackOutcome(3)).to.equal('acked')
    expect(t.marshal.acks.get(2)).to.equal('acked')
    expect(control.started).to.equal(4)
  })

  it('finalizations that outpace slow durability are coalesced and all acknowledged', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, maxPendingAcks: 32 })
    const chain = await t.builder.chain(t.genesis, 32)
    t.marshal.put(...chain)
    control.gated = true
    t.marshal.finalize(...chain)
    await releaseFlushesUntil(control, () => t.marshal.processed === 32)
    const flushes = control.started / 2
    expect(flushes).to.be.greaterThan(0)
    expect(flushes).to.be.lessThan(32)
    for (let i = 1; i <= 32; i++) { expect(t.marshal.acks.get(i)).to.equal('acked') }
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[31].targets)).to.be.true()
    expect(t.app.calls.apply).to.equal(32) // nothing was cached: each block reconstructed once
  })

  it('stopping with a flush in flight cancels the unreleased acknowledgements', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, maxPendingAcks: 2 })
    const chain = await t.builder.chain(t.genesis, 2)
    t.marshal.put(...chain)
    control.gated = true
    t.marshal.finalize(...chain)
    await eventually(() => t.stateful.lastProcessed?.height === 2, 'blocks applied')
    await t.stateful.stop()
    expect(t.marshal.acks.get(1)).to.equal('cancelled')
    expect(t.marshal.acks.get(2)).to.equal('cancelled')
    await t.stateful.whenStopped()
    control.release(true)
  })
})
