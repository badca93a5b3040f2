/**
 * Pruning (commonware `glue/src/stateful/actor/core/processing.rs`): the schedule math and its configuration
 * invariants, the finalization-disposition table, the skip window
 *, and pruning real QMDB databases at a quiesced mutation boundary.
 */

import { expect } from 'aegir/chai'
import { Pruning, StatefulFatalError, disposition, skipFinalizedBlock } from '../../src/stateful/index.ts'
import { ChainBuilder } from '../util/stateful-app.ts'
import { FlushControl, openGatedDbs } from '../util/stateful-dbs.ts'
import { Gate, eventually, harness, verifyCall } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import type { AnyDb } from '../../src/qmdb/index.ts'
import type { FinalizationBoundary, PruneConfig, Progress } from '../../src/stateful/index.ts'
import type { TestBlock } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function observe (p: Pruning<string>, from: number, to: number): Array<[number, unknown]> {
  const out: Array<[number, unknown]> = []
  for (let h = from; h <= to; h++) {
    const task = p.observeFinalized(h, `t${h}`)
    if (task !== undefined) { out.push([h, task]) }
  }
  return out
}

function config (interval: number, marshal: number, qmdb: number, offset = 0): PruneConfig {
  return { maintenanceInterval: interval, retainedMarshalBlocks: marshal, retainedQmdbBlocks: qmdb, offset }
}

describe('stateful: pruning schedule', () => {
  it('waits for a full retention window', () => {
    const p = new Pruning<string>(config(1, 1, 1), 2)
    expect(observe(p, 1, 4)).to.deep.equal([[4, { marshalHeight: 1, barrierHeight: 1, qmdbTarget: 't1' }]])
  })

  it('uses the oldest retained target', () => {
    const p = new Pruning<string>(config(1, 1, 1), 1)
    expect(observe(p, 1, 4)).to.deep.equal([
      [3, { marshalHeight: 1, barrierHeight: 1, qmdbTarget: 't1' }],
      [4, { marshalHeight: 2, barrierHeight: 2, qmdbTarget: 't2' }]
    ])
  })

  it('can retain more marshal history than database history', () => {
    const p = new Pruning<string>(config(3, 3, 1), 1)
    expect(observe(p, 1, 6)).to.deep.equal([[6, { marshalHeight: 2, barrierHeight: 4, qmdbTarget: 't4' }]])
  })

  it('prunes at the maintenance phase only', () => {
    const p = new Pruning<string>(config(5, 1, 0, 2), 1)
    expect(observe(p, 1, 12)).to.deep.equal([
      [7, { marshalHeight: 5, barrierHeight: 6, qmdbTarget: 't6' }],
      [12, { marshalHeight: 10, barrierHeight: 11, qmdbTarget: 't11' }]
    ])
  })

  it('rejects less marshal retention than database retention, and offsets outside the interval', () => {
    const bad = [config(1, 0, 1), config(3, 1, 1, 3), config(0, 1, 1)]
    for (const c of bad) {
      expect(() => new Pruning<string>(c, 1)).to.throw(StatefulFatalError).with.property('code', 'PruneConfigInvalid')
    }
  })

  it('accepts zero retention and picks a random phase within the interval', () => {
    expect(() => new Pruning<string>(config(1, 0, 0), 0)).to.not.throw()
    const p = new Pruning<string>({ maintenanceInterval: 7, retainedMarshalBlocks: 0, retainedQmdbBlocks: 0 }, 1)
    expect(p.offset).to.be.within(0, 6)
  })
})

describe('stateful: finalization dispositions and skip window', () => {
  it('preserves winner and descendant work (table)', () => {
    const r = (view: number): { epoch: number, view: number } => ({ epoch: 0, view })
    const boundary: FinalizationBoundary = { digest: '10', round: r(10), processedDigest: '9', processedRound: r(9), compatible: new Set(['10', '11']) }
    const cases: Array<[Progress, string]> = [
      [{ phase: 'acquiring' }, 'retry'],
      [{ phase: 'replaying', digest: '9', parent: '8', round: r(9) }, 'retry'],
      [{ phase: 'replaying', digest: '10', parent: '1', round: r(10) }, 'retain'],
      [{ phase: 'replaying', digest: '12', parent: '11', round: r(11) }, 'retain'],
      [{ phase: 'replaying', digest: '20', parent: '19', round: r(11) }, 'reject'],
      [{ phase: 'verifying', digest: '9', parent: '8', round: r(9) }, 'retry'],
      [{ phase: 'verifying', digest: '10', parent: '1', round: r(10) }, 'retry'],
      [{ phase: 'verifying', digest: '12', parent: '11', round: r(11) }, 'retain'],
      [{ phase: 'verifying', digest: '20', parent: '19', round: r(11) }, 'reject']
    ]
    for (const [progress, expected] of cases) {
      expect(disposition(boundary, progress), JSON.stringify(progress)).to.equal(expected)
    }
  })

  it('skips redelivered blocks through the target height, then clears it', () => {
    expect(skipFinalizedBlock(3, 1)).to.deep.equal({ skip: true, until: 3 })
    expect(skipFinalizedBlock(3, 3)).to.deep.equal({ skip: true, until: undefined })
    expect(skipFinalizedBlock(undefined, 4)).to.deep.equal({ skip: false, until: undefined })
    expect(skipFinalizedBlock(3, 4)).to.deep.equal({ skip: false, until: undefined })
  })
})

async function verifyInOrder (t: Harness, blocks: TestBlock[]): Promise<void> {
  for (const b of blocks) { expect(await verifyCall(t.stateful, b).promise).to.be.true() }
}

describe('stateful: pruning real databases', () => {
  let t: Harness
  let control: FlushControl

  beforeEach(() => {
    control = new FlushControl()
  })

  afterEach(async () => {
    control.release(true)
    await t?.stop()
  })

  it('prunes the databases and marshal behind the retention window, never past the target', async () => {
    t = await harness({ prune: config(1, 0, 0) })
    const chain = await t.builder.chain(t.genesis, 8)
    t.marshal.put(...chain)
    t.marshal.finalize(...chain)
    expect(await t.marshal.ackOutcome(8)).to.equal('acked')
    await eventually(() => t.marshal.pruned.includes(7), 'the prune for height 8')
    const accounts = t.set.dbs.accounts as unknown as AnyDb
    const target = chain[6].targets.accounts
    expect(accounts.pruningBoundary).to.be.greaterThan(0)
    expect(accounts.pruningBoundary).to.be.at.most(target.range.start)
    // the tip is unchanged
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[7].targets)).to.be.true()
    expect(t.marshal.pruned).to.deep.equal([1, 2, 3, 4, 5, 6, 7])
  })

  it('quiesces running verifications for the prune and retries them afterwards', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, prune: config(1, 0, 0) })
    const chain = await t.builder.chain(t.genesis, 3)
    t.marshal.put(...chain)
    await verifyInOrder(t, chain.slice(0, 2))
    const gate = new Gate()
    t.app.verifyHook = async (block, signal) => { if (block.height === 3) { await gate.pass(signal) } }
    const holdingAtPrune: number[] = []
    dbs.gatedAccounts.onPrune = () => { holdingAtPrune.push(gate.holding) }
    const cert = verifyCall(t.stateful, chain[2])
    await gate.waitEntered(1)
    t.marshal.finalize(chain[0], chain[1]) // the prune becomes due at height 2
    await eventually(() => holdingAtPrune.length > 0, 'the prune')
    expect(holdingAtPrune).to.deep.equal([0]) // no verification ran during the prune
    await gate.waitEntered(2) // retried after the prune
    gate.open()
    expect(await cert.promise).to.be.true()
    expect(t.app.calls.verify).to.equal(4)
    expect(dbs.gatedAccounts.pruned).to.have.length(1)
  })

  it('quiesces an active replay before pruning; the retried verification replays again and succeeds', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, prune: config(1, 0, 0) })
    const chain = await t.builder.chain(t.genesis, 4)
    t.marshal.put(...chain)
    await verifyInOrder(t, chain.slice(0, 2))
    const gate = new Gate()
    t.app.applyHook = async (block, signal) => { if (block.height === 3) { await gate.pass(signal) } }
    const holdingAtPrune: number[] = []
    dbs.gatedAccounts.onPrune = () => { holdingAtPrune.push(gate.holding) }
    const cert = verifyCall(t.stateful, chain[3]) // replays block 3 (held)
    await gate.waitEntered(1)
    t.marshal.finalize(chain[0], chain[1])
    await eventually(() => holdingAtPrune.length > 0, 'the prune')
    expect(holdingAtPrune).to.deep.equal([0])
    await gate.waitEntered(2)
    gate.open()
    expect(await cert.promise).to.be.true()
    expect(t.app.calls.apply).to.equal(2) // the quiesced replay ran again
    expect(t.app.calls.verify).to.equal(3)
  })

  it('waits for the flush covering its target (not for newer state) before pruning', async () => {
    const dbs = await openGatedDbs(control)
    // the manager believes in a window of 0 unacknowledged blocks, marshal delivers 2:
    // so the prune target (block 1) is not yet durable when the prune becomes due
    const marshal = new MockMarshal<TestBlock>({ maxPendingAcks: 0, deliveryWindow: 2 })
    const builder = await ChainBuilder.create()
    marshal.store(builder.genesis)
    t = await harness({ set: dbs.set, builder, marshal, prune: config(1, 1, 1) })
    const chain = await t.builder.chain(t.genesis, 2)
    t.marshal.put(...chain)
    control.gated = true
    const startedAtPrune: number[] = []
    dbs.gatedAccounts.onPrune = () => { startedAtPrune.push(control.started) }
    t.marshal.finalize(chain[0], chain[1])
    await eventually(() => t.stateful.lastProcessed?.height === 2 && control.holding > 0, 'both applied, first flush held')
    expect(dbs.gatedAccounts.pruned).to.have.length(0)
    control.release() // the flush covering block 1 (the prune target)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    await eventually(() => dbs.gatedAccounts.pruned.length === 1, 'the prune')
    expect(startedAtPrune).to.deep.equal([2]) // pruned before block 2's own flush started
    expect(dbs.gatedAccounts.pruned[0]).to.deep.equal(chain[0].targets.accounts)
    await eventually(() => t.marshal.pruned.length === 1, 'marshal prune')
    expect(t.marshal.pruned).to.deep.equal([1])
    expect(t.marshal.acks.get(2)).to.equal('pending')
    await control.waitStarted(4) // block 2's flush starts after the prune
    control.release(true)
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
  })
})
