/**
 * The state-sync startup path (commonware `glue/src/stateful/actor/syncer`): a late joiner syncs
 * its databases from a floor while the chain keeps finalizing, hands off at
 * one anchor, and continues as a normal node.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { targetsEqual, AnyDb, DatabaseSet, OrderedAnyDb, OrderedCurrentDb } from '../../src/qmdb/index.ts'
import { Stateful, SyncPlan, stateSync, classifyHandoffs, StatefulFatalError, anchorOf } from '../../src/stateful/index.ts'
import { LocalSource, anySync, keylessSync, orderedAnySync, orderedCurrentSync } from '../../src/sync/index.ts'
import { ChainBuilder, TestApp, targetsOf } from '../util/stateful-app.ts'
import { eventually } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import { testScheme } from '../util/stateful-scheme.ts'
import type { SyncKind } from '../../src/sync/index.ts'
import type { TestBlock, TestDbs } from '../util/stateful-app.ts'
import type { TestFinalization } from '../util/stateful-scheme.ts'

/** A serving node: the builder's databases with `chain` applied. */
async function servingSet (builder: ChainBuilder, tip: TestBlock): Promise<DatabaseSet<TestDbs>> {
  await builder.set.apply(builder.stateOf(tip) as never)
  return builder.set
}

function members (source: DatabaseSet<TestDbs>, accountsKind: SyncKind<AnyDb> = anySync()): Parameters<typeof stateSync>[0]['members'] {
  return {
    accounts: { kind: accountsKind, source: new LocalSource(source.dbs.accounts as never), toTarget: (t: never) => t, equal: targetsEqual },
    receipts: { kind: keylessSync(), source: new LocalSource(source.dbs.receipts as never), toTarget: (t: never) => t, equal: targetsEqual }
  }
}

describe('stateful: state-sync path', function () {
  this.timeout(60_000)

  const accountKinds: Array<[string, () => Promise<AnyDb>, () => SyncKind<AnyDb>]> = [
    ['any', async () => AnyDb.open(), () => anySync()],
    ['ordered any', async () => OrderedAnyDb.open(), () => orderedAnySync()],
    ['ordered current', async () => OrderedCurrentDb.open(), () => orderedCurrentSync()]
  ]
  for (const [label, openAccounts, accountsKind] of accountKinds) {
    it(`a late joiner syncs from a floor while validators keep finalizing, hands off, then processes new blocks (accounts: ${label})`, async () => {
      const builder = await ChainBuilder.create(openAccounts)
      const chain = await builder.chain(builder.genesis, 40)
      const source = await servingSet(builder, chain[chain.length - 1])
      const floorBlock = chain[9] // height 10
      const ds = new MemoryDatastore()
      const plan = await SyncPlan.init<TestFinalization>(ds, '/joiner', testScheme)
      plan.withFloor({ round: floorBlock.context.round, payload: floorBlock.digest })
      expect(plan.shouldStateSync(true)).to.equal(true)
      const marshal = new MockMarshal<TestBlock>({ maxPendingAcks: 3 })
      marshal.store(floorBlock)
      const app = new TestApp(builder.genesis)
      const anchors: number[] = []
      const stateful = new Stateful<TestBlock, TestDbs>({
        application: app,
        marshal,
        metadata: plan.metadata,
        startup: stateSync({ plan, scheme: testScheme, marshalFloor: { processedHeight: undefined, round: { epoch: 0, view: 0 } }, members: members(source, accountsKind()), fetchBatchSize: 7, onAnchor: a => anchors.push(a.height) })
      })
      const started = stateful.start()
      marshal.attach(stateful)
      // the chain keeps finalizing while the joiner syncs: blocks above the floor are delivered
      marshal.finalize(...chain.slice(10, 25)) // heights 11..25
      await started
      const completed = plan.syncHeight() as number
      expect(completed).to.be.at.least(10)
      // then it processes new blocks like any node: processed height strictly above the sync height
      marshal.finalize(...chain.slice(25)) // heights 26..40
      await eventually(() => marshal.processed === 40, 'processed 40')
      expect(marshal.processed).to.be.greaterThan(completed)
      const dbs = await stateful.subscribeDatabases()
      expect(dbs.targetsEqual(dbs.committedTargets(), targetsOf(builder.stateOf(chain[39]) as never))).to.equal(true)
      // never absorbed blocks below the anchor were re-applied: apply calls only for blocks above it
      expect(app.calls.apply).to.equal(40 - completed)
      // a restart after completion never state-syncs again
      const again = await SyncPlan.init<TestFinalization>(ds, '/joiner', testScheme)
      expect(again.mayStateSync()).to.equal(false)
      expect(again.shouldStateSync(true)).to.equal(false)
      expect(again.syncHeight()).to.equal(completed)
      await stateful.stop()
    })
  }

  it('blocks delivered while the sync hands off are processed in order, not lost', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 30)
    const source = await servingSet(builder, chain[chain.length - 1])
    const floorBlock = chain[9] // height 10
    const plan = await SyncPlan.init<TestFinalization>(new MemoryDatastore(), '/handoff', testScheme)
    plan.withFloor({ round: floorBlock.context.round, payload: floorBlock.digest })
    const marshal = new MockMarshal<TestBlock>({ maxPendingAcks: 4 })
    marshal.store(floorBlock)
    let duringHandoff = false
    const stateful = new Stateful<TestBlock, TestDbs>({
      application: new TestApp(builder.genesis),
      marshal,
      metadata: plan.metadata,
      startup: stateSync({ plan, scheme: testScheme, marshalFloor: { processedHeight: undefined, round: { epoch: 0, view: 0 } }, members: members(source) }),
      // runs after the sync converged and before processing starts: the window a
      // delivery must not fall into a list nobody reads
      attachDatabases: async () => {
        duringHandoff = true
        marshal.finalize(...chain.slice(10, 14)) // heights 11..14
        await new Promise(resolve => setTimeout(resolve, 10))
      }
    })
    const started = stateful.start()
    marshal.attach(stateful)
    await started
    expect(duringHandoff).to.equal(true)
    marshal.finalize(...chain.slice(14)) // heights 15..30
    await eventually(() => marshal.processed === 30, 'processed 30')
    const dbs = await stateful.subscribeDatabases()
    expect(dbs.targetsEqual(dbs.committedTargets(), targetsOf(builder.stateOf(chain[29]) as never))).to.equal(true)
    await stateful.stop()
  })

  it('proposals are answered undefined while syncing', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 5)
    const source = await servingSet(builder, chain[4])
    const plan = await SyncPlan.init<TestFinalization>(new MemoryDatastore(), '/p', testScheme)
    plan.withFloor({ round: chain[4].context.round, payload: chain[4].digest })
    const marshal = new MockMarshal<TestBlock>({ maxPendingAcks: 2 })
    // the floor block is not available yet: floor resolution waits
    const stateful = new Stateful<TestBlock, TestDbs>({
      application: new TestApp(builder.genesis),
      marshal,
      metadata: plan.metadata,
      startup: stateSync({ plan, scheme: testScheme, marshalFloor: { processedHeight: undefined, round: { epoch: 0, view: 0 } }, members: members(source) })
    })
    const started = stateful.start()
    const ctx = { round: { epoch: 0, view: 9 }, leader: 'v0', parent: { view: chain[4].context.round.view, digest: chain[4].digest } }
    expect(await stateful.propose(ctx, { signal: AbortSignal.timeout(5000) })).to.equal(undefined)
    marshal.store(chain[4])
    marshal.attach(stateful)
    await started
    expect(plan.syncHeight()).to.equal(5)
    await stateful.stop()
  })

  it('handoff classification: covered below the anchor, reflected at it, applied consecutively above', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 6)
    const A = anchorOf(chain[3]) // height 4
    expect(classifyHandoffs(A, [chain[2], chain[3], chain[4], chain[5]])).to.deep.equal(['covered', 'reflected', 'apply', 'apply'])
    expect(classifyHandoffs(A, [])).to.deep.equal([])
    expect(() => classifyHandoffs(A, [chain[5]])).to.throw(StatefulFatalError).with.property('code', 'HandoffNotConsecutive')
    const fork = await builder.child(chain[2], { view: 99 })
    expect(() => classifyHandoffs(A, [fork])).to.throw(StatefulFatalError).with.property('code', 'HandoffDigestMismatch')
  })
})
