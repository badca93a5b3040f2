/**
 * Every fatal condition of commonware `glue/src/stateful/mod.rs` that applies to the
 * marshal-sync manager is a typed `StatefulFatalError` naming the block and
 * the database member where relevant; it stops the manager, rejects waiting
 * callers, cancels unreleased acknowledgements and is reported through
 * `onFatal` and `whenStopped()`.
 */

import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { Stateful, StatefulFatalError, StatefulStoppedError, SyncPlan, digestKey } from '../../src/stateful/index.ts'
import { ChainBuilder, TestApp, h, makeBlock, openMemoryDbs } from '../util/stateful-app.ts'
import { FlushControl, openGatedDbs } from '../util/stateful-dbs.ts'
import { eventually, harness, verifyCall } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import { testScheme } from '../util/stateful-scheme.ts'
import type { DatabaseSet } from '../../src/qmdb/index.ts'
import type { StatefulFatalCode, SyncMetadata } from '../../src/stateful/index.ts'
import type { TestBlock, TestDbs } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'

interface Expected { database?: string, height?: number, block?: TestBlock }

function expectFatal (err: unknown, code: StatefulFatalCode, expected: Expected = {}): void {
  expect(err).to.be.instanceOf(StatefulFatalError)
  const e = err as StatefulFatalError
  expect(e.code).to.equal(code)
  if (expected.database !== undefined) { expect(e.database).to.equal(expected.database) }
  if (expected.height !== undefined) { expect(e.height).to.equal(expected.height) }
  if (expected.block !== undefined) {
    expect(e.digest).to.equal(digestKey(expected.block.digest))
    expect(e.height).to.equal(expected.block.height)
  }
}

/** The manager stopped on `code`: reported once, `whenStopped` rejects, later calls throw it. */
async function expectStoppedOn (t: Harness, code: StatefulFatalCode, expected: Expected = {}): Promise<StatefulFatalError> {
  await eventually(() => t.fatal.length > 0, 'a fatal error')
  expect(t.fatal).to.have.length(1)
  expectFatal(t.fatal[0], code, expected)
  expect(t.stateful.failure).to.equal(t.fatal[0])
  await expect(t.stateful.whenStopped()).to.eventually.be.rejectedWith(StatefulFatalError)
  await expect(t.stateful.verify(t.genesis.context, t.genesis.digest)).to.eventually.be.rejectedWith(StatefulFatalError)
  return t.fatal[0]
}

function forgedGenesis (builder: ChainBuilder, patch: (targets: TestBlock['targets']) => TestBlock['targets']): TestBlock {
  const g = builder.genesis
  return makeBlock(0, g.context, [], patch(g.targets))
}

async function startWith (opts: { genesis?: TestBlock, set?: DatabaseSet<TestDbs>, marshal?: MockMarshal<TestBlock>, metadata?: SyncMetadata }): Promise<{ stateful: Stateful<TestBlock, TestDbs>, fatal: StatefulFatalError[], started: Promise<void> }> {
  const builder = await ChainBuilder.create()
  const genesis = opts.genesis ?? builder.genesis
  const marshal = opts.marshal ?? new MockMarshal<TestBlock>({ genesis })
  const fatal: StatefulFatalError[] = []
  const stateful = new Stateful<TestBlock, TestDbs>({
    application: new TestApp(genesis),
    databases: opts.set ?? await openMemoryDbs(),
    marshal,
    metadata: opts.metadata,
    onFatal: err => { fatal.push(err) }
  })
  const started = stateful.start()
  started.catch(() => {})
  return { stateful, fatal, started }
}

describe('stateful: fatal conditions', () => {
  let t: Harness
  let control: FlushControl

  beforeEach(() => {
    control = new FlushControl()
  })

  afterEach(async () => {
    control.release(true)
    await t?.stop()
  })

  it('a proposal whose state mismatches its block (ProposedStateMismatch)', async () => {
    t = await harness()
    t.app.corruptPropose = true
    const pending = verifyCall(t.stateful, (await t.builder.chain(t.genesis, 1))[0]) // never available: waits
    const err = await t.stateful.propose({ round: { epoch: 0, view: 1 }, leader: 'v0', parent: { view: 0, digest: t.genesis.digest } }).catch(e => e)
    expectFatal(err, 'ProposedStateMismatch', { database: 'receipts', height: 1 })
    expect((err as StatefulFatalError).digest).to.have.length(64)
    await expectStoppedOn(t, 'ProposedStateMismatch')
    await expect(pending.promise).to.eventually.be.rejectedWith(StatefulFatalError)
  })

  it('a proposal that does not extend the requested parent (ProposalInconsistent)', async () => {
    t = await harness()
    t.app.inconsistentPropose = true
    const err = await t.stateful.propose({ round: { epoch: 0, view: 1 }, leader: 'v0', parent: { view: 0, digest: t.genesis.digest } }).catch(e => e)
    expectFatal(err, 'ProposalInconsistent', { height: 2 })
    await expectStoppedOn(t, 'ProposalInconsistent')
  })

  it('a finalized block whose re-execution mismatches its commitments (FinalizeReconstructionMismatch)', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.app.corruptApply.add(digestKey(a1.digest))
    t.marshal.finalize(a1)
    await expectStoppedOn(t, 'FinalizeReconstructionMismatch', { database: 'accounts', block: a1 })
    expect(t.marshal.acks.get(1)).to.equal('cancelled')
    expect(t.stateful.lastProcessed?.height).to.equal(0)
  })

  it('re-executing a finalized block throws (ApplicationFailed in reconstruct)', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.app.applyHook = async () => { throw new Error('corrupted input') }
    t.marshal.finalize(a1)
    const err = await expectStoppedOn(t, 'ApplicationFailed', { block: a1 })
    expect(err.phase).to.equal('reconstruct')
    expect(err.message).to.include('corrupted input')
  })

  it('a replay that throws during verification is fatal (ApplicationFailed in replay), not an invalid verdict', async () => {
    t = await harness()
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    t.marshal.put(a1, a2)
    t.app.applyHook = async () => { throw new Error('cannot execute') }
    const verdict = verifyCall(t.stateful, a2).promise
    const err = await expectStoppedOn(t, 'ApplicationFailed', { block: a1 })
    expect(err.phase).to.equal('replay')
    await expect(verdict, 'consensus gets no verdict').to.eventually.be.rejectedWith(StatefulFatalError)
  })

  it('verify that throws is fatal (ApplicationFailed in verify): the verification does not resolve false', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.marshal.put(a1)
    t.app.verifyHook = async () => { throw new Error('verifier bug') }
    const verdict = verifyCall(t.stateful, a1).promise
    const err = await expectStoppedOn(t, 'ApplicationFailed', { block: a1 })
    expect(err.phase).to.equal('verify')
    await expect(verdict).to.eventually.be.rejectedWith(StatefulFatalError)
  })

  it('a returned "invalid" is still only a verdict (false), never fatal', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.marshal.put(a1)
    t.app.rejectVerify.add(digestKey(a1.digest))
    expect(await verifyCall(t.stateful, a1).promise).to.equal(false)
    expect(t.stateful.failure).to.equal(undefined)
  })

  it('propose that throws is fatal (ApplicationFailed in propose, naming the parent): no undefined answer', async () => {
    t = await harness()
    t.app.proposeHook = async () => { throw new Error('mempool exploded') }
    const err = await t.stateful.propose({ round: { epoch: 0, view: 1 }, leader: 'v0', parent: { view: 0, digest: t.genesis.digest } }).catch(e => e)
    expectFatal(err, 'ApplicationFailed', { block: t.genesis })
    expect((err as StatefulFatalError).phase).to.equal('propose')
    await expectStoppedOn(t, 'ApplicationFailed')
  })

  it('a finalized block conflicting with the processed block (ConflictingFinalizedBlock)', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1, { tag: 'a' })
    const [b1] = await t.builder.chain(t.genesis, 1, { tag: 'b', firstView: 2 })
    t.marshal.finalize(a1)
    expect(await t.marshal.ackOutcome(1)).to.equal('acked')
    let cancelled = false
    t.stateful.finalized(b1, { acknowledge: () => {}, cancel: () => { cancelled = true } })
    await expectStoppedOn(t, 'ConflictingFinalizedBlock', { block: b1 })
    expect(cancelled).to.be.true()
  })

  it('a finalized block below the processed height (FinalizedBelowProcessed)', async () => {
    t = await harness({ maxPendingAcks: 2 })
    const [a1, a2] = await t.builder.chain(t.genesis, 2)
    t.marshal.finalize(a1, a2)
    expect(await t.marshal.ackOutcome(2)).to.equal('acked')
    t.stateful.finalized(a1, { acknowledge: () => {}, cancel: () => {} })
    await expectStoppedOn(t, 'FinalizedBelowProcessed', { block: a1 })
  })

  it('a durability flush that fails (DatabaseSyncFailed) names the database and cancels the ack', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set })
    const [a1] = await t.builder.chain(t.genesis, 1)
    control.failNext = new Error('disk full')
    t.marshal.finalize(a1)
    await expectStoppedOn(t, 'DatabaseSyncFailed', { database: 'accounts', height: 1 })
    expect(t.marshal.acks.get(1)).to.equal('cancelled')
  })

  it('a database apply that fails (DatabaseApplyFailed) names the database', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set })
    const [a1] = await t.builder.chain(t.genesis, 1)
    dbs.gatedReceipts.applyError = new Error('io error')
    t.marshal.finalize(a1)
    await expectStoppedOn(t, 'DatabaseApplyFailed', { database: 'receipts', block: a1 })
  })

  it('a database prune that fails (DatabasePruneFailed) names the database', async () => {
    const dbs = await openGatedDbs(control)
    t = await harness({ set: dbs.set, prune: { maintenanceInterval: 1, retainedMarshalBlocks: 0, retainedQmdbBlocks: 0, offset: 0 } })
    const chain = await t.builder.chain(t.genesis, 2)
    dbs.gatedAccounts.pruneError = new Error('io error')
    t.marshal.finalize(...chain)
    await expectStoppedOn(t, 'DatabasePruneFailed', { database: 'accounts', height: 1 })
  })

  it('the finalized hook throws (ApplicationFailed in finalized)', async () => {
    t = await harness()
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.app.finalizedHook = async () => { throw new Error('observer failed') }
    t.marshal.finalize(a1)
    const err = await expectStoppedOn(t, 'ApplicationFailed', { block: a1 })
    expect(err.phase).to.equal('finalized')
    expect(t.marshal.acks.get(1)).to.equal('cancelled')
  })

  it('an invalid prune configuration is rejected at construction (PruneConfigInvalid)', async () => {
    const builder = await ChainBuilder.create()
    const make = async (): Promise<unknown> => new Stateful<TestBlock, TestDbs>({
      application: new TestApp(builder.genesis),
      databases: await openMemoryDbs(),
      marshal: new MockMarshal<TestBlock>({ genesis: builder.genesis }),
      prune: { maintenanceInterval: 5, retainedMarshalBlocks: 1, retainedQmdbBlocks: 2 }
    })
    const err = await make().catch(e => e)
    expectFatal(err, 'PruneConfigInvalid')
  })
})

describe('stateful: fatal startup conditions', () => {
  it('a genesis block whose targets the databases cannot be rewound to (DatabaseRewindFailed)', async () => {
    const builder = await ChainBuilder.create()
    const genesis = forgedGenesis(builder, t => ({ ...t, accounts: { ...t.accounts, range: { start: 0, end: 5 } } }))
    const { started, fatal, stateful } = await startWith({ genesis })
    const err = await started.catch(e => e)
    expectFatal(err, 'DatabaseRewindFailed', { database: 'accounts', block: genesis })
    expect(fatal).to.have.length(1)
    expect(stateful.isStarted()).to.be.false()
  })

  it('databases that do not reach the floor block after a rewind (RewindMismatch)', async () => {
    const builder = await ChainBuilder.create()
    const genesis = forgedGenesis(builder, t => ({ ...t, receipts: { ...t.receipts, root: h('elsewhere') } }))
    const control = new FlushControl()
    const dbs = await openGatedDbs(control)
    dbs.gatedReceipts.rewindNoop = true
    const { started } = await startWith({ genesis, set: dbs.set })
    expectFatal(await started.catch(e => e), 'RewindMismatch', { database: 'receipts', block: genesis })
  })

  it('marshal without the block at (or after) its processed height (FloorAnchorMissing)', async () => {
    const marshal = new MockMarshal<TestBlock>({ processed: 5 })
    const { started } = await startWith({ marshal })
    expectFatal(await started.catch(e => e), 'FloorAnchorMissing', { height: 5 })
  })

  it('a completed sync height whose block marshal lacks (SyncBlockMissing)', async () => {
    const builder = await ChainBuilder.create()
    const marshal = new MockMarshal<TestBlock>({ genesis: builder.genesis, processed: 0 })
    const metadata: SyncMetadata = { syncHeight: () => 7, inProgress: () => false, setComplete: async () => {} }
    const { started } = await startWith({ marshal, metadata, genesis: builder.genesis })
    expectFatal(await started.catch(e => e), 'SyncBlockMissing', { height: 7 })
  })

  it('a marshal-sync start over a plan with an interrupted state sync is refused (StateSyncInProgress); the record is kept', async () => {
    const ds = new MemoryDatastore()
    const plan = await SyncPlan.init(ds, '/n', testScheme)
    await plan.metadata.beginSync({ round: { epoch: 0, view: 3 }, payload: new Uint8Array(32).fill(3) })
    const { started } = await startWith({ metadata: plan.metadata })
    expectFatal(await started.catch(e => e), 'StateSyncInProgress')
    const reopened = await SyncPlan.init(ds, '/n', testScheme)
    expect(reopened.requiresStateSyncFloor(), 'the interrupted sync still resumes at the next start').to.equal(true)
    expect(reopened.syncHeight()).to.equal(undefined)
  })

  it('a metadata write that fails (SyncMetadataFailed)', async () => {
    const metadata: SyncMetadata = { syncHeight: () => undefined, inProgress: () => false, setComplete: async () => { throw new Error('read-only') } }
    const { started } = await startWith({ metadata })
    expectFatal(await started.catch(e => e), 'SyncMetadataFailed', { height: 0 })
  })

  it('calls on a manager that stopped cleanly fail with StatefulStoppedError', async () => {
    const { stateful, started } = await startWith({})
    await started
    await stateful.stop()
    await stateful.whenStopped()
    await expect(stateful.propose({ round: { epoch: 0, view: 1 }, leader: 'v0', parent: { view: 0, digest: new Uint8Array(32) } }))
      .to.eventually.be.rejectedWith(StatefulStoppedError)
  })
})
