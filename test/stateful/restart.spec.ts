/**
 * Startup and restart on LevelDB (commonware `glue/src/stateful/actor/syncer`): recovery of pending
 * states by replay after a restart, reconciliation when the databases are
 * durable ahead of marshal, the skip window after a recorded sync height, and
 * requests that arrive while startup is still running.
 */

import { expect } from 'aegir/chai'
import { digestKey } from '../../src/stateful/index.ts'
import { COUNTER, ChainBuilder, TestApp, decodeCounter, h } from '../util/stateful-app.ts'
import { LevelDbs } from '../util/stateful-dbs.ts'
import { Gate, eventually, harness, metricValue, stillPending, verifyCall } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import type { AnyDb, DatabaseSet } from '../../src/qmdb/index.ts'
import type { SyncMetadata } from '../../src/stateful/index.ts'
import type { TestBlock, TestDbs } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

function accountsOf (set: DatabaseSet<TestDbs>): AnyDb {
  return set.dbs.accounts as unknown as AnyDb
}

/** A marshal as it would be after a restart: blocks through `processed` finalized, others only stored. */
function restartedMarshal (builder: ChainBuilder, finalized: TestBlock[], others: TestBlock[], processed: number, maxPendingAcks = 1): MockMarshal<TestBlock> {
  const marshal = new MockMarshal<TestBlock>({ genesis: builder.genesis, processed, maxPendingAcks })
  marshal.store(...finalized)
  marshal.put(...others)
  return marshal
}

async function verifyInOrder (t: Harness, blocks: TestBlock[]): Promise<void> {
  for (const b of blocks) { expect(await verifyCall(t.stateful, b).promise).to.be.true() }
}

describe('stateful: restart on LevelDB', function () {
  this.timeout(30_000)
  let level: LevelDbs
  let t: Harness | undefined

  beforeEach(async () => {
    level = await LevelDbs.create()
  })

  afterEach(async () => {
    await t?.stop()
    if (t !== undefined) { await level.close(t.set) }
    t = undefined
    await level.remove()
  })

  it('stops with 10 pending blocks; after a restart a child of the newest is recovered by replay and verified', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 13)
    const finalized = chain.slice(0, 3)
    const pending = chain.slice(3)
    let opened = await level.open()
    t = await harness({ set: opened.set, builder })
    t.marshal.put(...chain)
    t.marshal.finalize(...finalized)
    expect(await t.marshal.ackOutcome(3)).to.equal('acked')
    await verifyInOrder(t, pending)
    expect(t.stateful.pendingBlocks).to.equal(10)
    await t.stop()
    await level.close(t.set)
    t = undefined

    opened = await level.open()
    expect(decodeCounter(await opened.accounts.get(COUNTER))).to.equal(3) // durable state survived
    const app = new TestApp(builder.genesis)
    t = await harness({ set: opened.set, builder, app, marshal: restartedMarshal(builder, finalized, pending, 3) })
    expect(t.stateful.lastProcessed?.height).to.equal(3)
    expect(t.stateful.pendingBlocks).to.equal(0)
    const child = await builder.child(pending[9], { view: 100 })
    t.marshal.put(child)
    expect(await verifyCall(t.stateful, child).promise).to.be.true()
    expect(app.applied).to.deep.equal(pending.map(b => digestKey(b.digest))) // oldest first, once each
    expect(app.calls.verify).to.equal(1)
    expect(t.stateful.pendingBlocks).to.equal(11)
    expect(await metricValue(t.registry, 'libp2p_qmdb_stateful_rebuild_pending_depth')).to.equal(10)
    // and the recovered chain finalizes from the replayed states
    t.marshal.finalize(...pending, child)
    await eventually(() => t?.stateful.lastProcessed?.height === 14, 'finalization after restart')
    expect(app.calls.apply).to.equal(10)
    expect(t.set.targetsEqual(t.set.committedTargets(), child.targets)).to.be.true()
  })

  it('rewinds databases that are durable ahead of marshal, then re-applies the redelivered blocks', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 5)
    let opened = await level.open()
    t = await harness({ set: opened.set, builder })
    t.marshal.finalize(...chain)
    expect(await t.marshal.ackOutcome(5)).to.equal('acked')
    await t.stop()
    await level.close(t.set)
    t = undefined

    // marshal persisted progress only through height 3
    opened = await level.open()
    expect(decodeCounter(await opened.accounts.get(COUNTER))).to.equal(5)
    const app = new TestApp(builder.genesis)
    const marshal = restartedMarshal(builder, chain.slice(0, 3), [], 3)
    t = await harness({ set: opened.set, builder, app, marshal })
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[2].targets)).to.be.true()
    expect(decodeCounter(await accountsOf(t.set).get(COUNTER))).to.equal(3)
    marshal.finalize(chain[3], chain[4])
    expect(await marshal.ackOutcome(5)).to.equal('acked')
    expect(app.finalizedHeights).to.deep.equal([4, 5])
    expect(app.calls.apply).to.equal(2)
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[4].targets)).to.be.true()
  })

  it('after a recorded sync height, redelivered blocks through it are reported, acknowledged and not re-applied', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 6)
    let opened = await level.open()
    t = await harness({ set: opened.set, builder })
    t.marshal.finalize(...chain.slice(0, 5))
    expect(await t.marshal.ackOutcome(5)).to.equal('acked')
    await t.stop()
    await level.close(t.set)
    t = undefined

    opened = await level.open()
    let completed: number | undefined = 5
    const metadata: SyncMetadata = { syncHeight: () => completed, inProgress: () => false, setComplete: async height => { completed = height } }
    const app = new TestApp(builder.genesis)
    const marshal = restartedMarshal(builder, chain.slice(0, 5), [], 3)
    t = await harness({ set: opened.set, builder, app, marshal, init: { metadata } })
    expect(t.stateful.lastProcessed?.height).to.equal(5)
    expect(completed).to.equal(5)
    marshal.finalize(chain[3], chain[4], chain[5])
    expect(await marshal.ackOutcome(6)).to.equal('acked')
    expect(app.finalizedHeights).to.deep.equal([4, 5, 6])
    expect(app.calls.apply).to.equal(1) // only block 6
    expect(t.set.targetsEqual(t.set.committedTargets(), chain[5].targets)).to.be.true()
    expect(await accountsOf(t.set).get(h('k6'))).to.deep.equal(h('v6'))
  })
})

describe('stateful: startup from a marshal floor', () => {
  let t: Harness | undefined

  afterEach(async () => {
    await t?.stop()
    t = undefined
  })

  it('uses the block after the processed height when marshal pruned the processed block itself', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 3)
    t = await harness({ builder })
    const set = t.set
    t.marshal.finalize(chain[0], chain[1])
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    await t.stop()

    // marshal installed a floor at block 2: it records processed = 1 and no longer has block 1
    const marshal = new MockMarshal<TestBlock>({ processed: 1 })
    marshal.store(chain[1])
    const app = new TestApp(builder.genesis)
    t = await harness({ builder, set, marshal, app })
    expect(t.stateful.lastProcessed?.height).to.equal(2)
    marshal.finalize(chain[1], chain[2]) // marshal re-dispatches the floor block itself
    expect(await marshal.ackOutcome(3)).to.equal('acked')
    expect(app.finalizedHeights).to.deep.equal([2, 3])
    expect(app.calls.apply).to.equal(1) // block 2 was skipped, block 3 applied
    expect(set.targetsEqual(set.committedTargets(), chain[2].targets)).to.be.true()
  })
})

describe('stateful: requests during startup', () => {
  let t: Harness | undefined

  afterEach(async () => {
    await t?.stop()
    t = undefined
  })

  it('queues requests until processing; cancelled ones are released, the rest complete', async () => {
    const gate = new Gate()
    const attached: Array<DatabaseSet<TestDbs>> = []
    t = await harness({
      noStart: true,
      init: {
        attachDatabases: async set => {
          attached.push(set)
          await gate.pass()
        }
      }
    })
    const h1 = t
    const chain = await h1.builder.chain(h1.genesis, 2)
    h1.marshal.put(...chain)
    const starting = h1.stateful.start()
    await gate.waitEntered(1)
    const cancelled = [verifyCall(h1.stateful, chain[0]), verifyCall(h1.stateful, chain[1])]
    const kept = verifyCall(h1.stateful, chain[0])
    const subscribed = h1.stateful.subscribeDatabases()
    h1.marshal.attach(h1.stateful)
    h1.marshal.finalize(chain[0])
    for (const c of cancelled) { c.abort() }
    for (const c of cancelled) { await expect(c.promise).to.eventually.be.rejected() }
    expect(await stillPending(kept.promise)).to.be.true()
    expect(h1.stateful.isStarted()).to.be.false()
    gate.open()
    await starting
    expect(attached).to.deep.equal([h1.set])
    expect(await kept.promise).to.be.true()
    expect(await subscribed).to.equal(h1.set)
    expect(await h1.marshal.ackOutcome(1)).to.equal('acked')
    // cancelled requests never reached the application (the kept one may be answered by the processed check)
    expect(h1.app.calls.verify).to.be.at.most(1)
  })
})
