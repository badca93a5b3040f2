/**
 * SyncPlan and the durable state-sync metadata (commonware `glue/src/stateful/actor/syncer/plan.rs`,
 * the reference's `plan.rs` tests).
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { SyncPlan, StateSyncMetadata, SyncPlanError } from '../../src/stateful/index.ts'
import { testScheme } from '../util/stateful-scheme.ts'
import type { TestFinalization } from '../util/stateful-scheme.ts'

const fin = (view: number, payload = view): TestFinalization => ({ round: { epoch: 0, view }, payload: new Uint8Array(32).fill(payload) })

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    expect(err).to.be.instanceOf(SyncPlanError)
    return (err as SyncPlanError).code
  }
  return 'ok'
}

describe('stateful: SyncPlan', () => {
  it('a stored sync height disables state sync', async () => {
    const ds = new MemoryDatastore()
    let plan = await SyncPlan.init(ds, '/n', testScheme)
    expect(plan.mayStateSync()).to.equal(true)
    expect(plan.shouldStateSync(true)).to.equal(true)
    expect(plan.shouldStateSync(false)).to.equal(false)
    expect(plan.syncHeight()).to.equal(undefined)
    await plan.metadata.setComplete(7)
    plan = await SyncPlan.init(ds, '/n', testScheme)
    expect(plan.mayStateSync()).to.equal(false)
    expect(plan.shouldStateSync(true)).to.equal(false)
    expect(plan.syncHeight()).to.equal(7)
    expect(plan.floor()).to.equal(undefined)
    expect(plan.withFloor(fin(9)).floor()).to.equal(undefined)
  })

  it('a completed sync cannot be marked in progress, nor move backward', async () => {
    const m = await StateSyncMetadata.open(new MemoryDatastore(), '/n', testScheme)
    await m.setComplete(7)
    expect(await code(m.beginSync(fin(8)))).to.equal('CompletedSyncCannotRestart')
    expect(await code(m.setComplete(6))).to.equal('HeightMovedBackward')
    await m.setComplete(9)
    expect(m.syncHeight()).to.equal(9)
  })

  it('an interrupted sync resumes from its persisted floor; a lagging floor cannot move it back; a newer one replaces it', async () => {
    const ds = new MemoryDatastore()
    const m = await StateSyncMetadata.open(ds, '/n', testScheme)
    await m.beginSync(fin(7))
    const plan = await SyncPlan.init<TestFinalization>(ds, '/n', testScheme)
    expect(plan.requiresStateSyncFloor()).to.equal(true)
    expect(plan.shouldStateSync(false)).to.equal(true)
    expect(plan.floor()?.round.view).to.equal(7)
    expect(plan.marshalStart('genesis')).to.deep.equal({ floor: fin(7) })
    expect(plan.withFloor(fin(6)).floor()?.round.view).to.equal(7)
    expect(plan.withFloor(fin(9)).floor()?.round.view).to.equal(9)
    // re-beginning at the same floor is fine, a newer floor replaces it durably
    await plan.metadata.beginSync(fin(7))
    await plan.metadata.beginSync(fin(9))
    expect((await StateSyncMetadata.open(ds, '/n', testScheme)).inProgressFloor()?.round.view).to.equal(9)
  })

  it('withFloor does not replace a newer selection', async () => {
    const plan = await SyncPlan.init<TestFinalization>(new MemoryDatastore(), '/n', testScheme)
    expect(plan.withFloor(fin(9)).withFloor(fin(8)).floor()?.round.view).to.equal(9)
    expect(plan.marshalStart('genesis')).to.deep.equal({ floor: fin(9) })
    const fresh = await SyncPlan.init<TestFinalization>(new MemoryDatastore(), '/m', testScheme)
    expect(fresh.marshalStart('genesis')).to.deep.equal({ genesis: 'genesis' })
  })

  it('an in-progress floor cannot move backward nor conflict at the same round', async () => {
    const m = await StateSyncMetadata.open(new MemoryDatastore(), '/n', testScheme)
    await m.beginSync(fin(7))
    expect(await code(m.beginSync(fin(6)))).to.equal('FloorMovedBackward')
    expect(await code(m.beginSync(fin(7, 8)))).to.equal('ConflictingFloor')
  })

  it('corrupted metadata is a typed error', async () => {
    const ds = new MemoryDatastore()
    const { Key } = await import('interface-datastore')
    await ds.put(new Key('/n/state_sync_metadata'), new Uint8Array([7, 1, 2]))
    expect(await code(StateSyncMetadata.open(ds, '/n', testScheme))).to.equal('DataCorrupted')
  })
})
