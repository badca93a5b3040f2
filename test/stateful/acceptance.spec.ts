/**
 * Acceptance scenarios of the stateful manager not covered elsewhere:
 * - the processing-loop unit scenarios of commonware `glue/src/stateful/tests` (proposals as a
 * FIFO barrier around running verifications, deferred and skipped
 * finalizations, retained verifications answering before a competing
 * finalization, verifications retried after a prune behind the work queued
 * during it, parked verifications that never block later work);
 * - fatal conditions on the state-sync path, and that every fatal
 * error is logged with its code, the block and the database it concerns.
 */

import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { AnyDb, DatabaseSet, KeylessDb } from '../../src/qmdb/index.ts'
import { Stateful, StatefulFatalError, SyncPlan, digestKey, stateSync } from '../../src/stateful/index.ts'
import { LocalSource } from '../../src/sync/index.ts'
import { COUNTER, ChainBuilder, TestApp, decodeCounter, h } from '../util/stateful-app.ts'
import { FlushControl, GatedDb } from '../util/stateful-dbs.ts'
import { Gate, eventually, harness, proposeCall, stillPending, verifyCall } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import { testScheme } from '../util/stateful-scheme.ts'
import { finalizationOf, recordingLogger, testSyncMembers } from '../util/statesync-fixtures.ts'
import type { AnyBatch, ManagedDb, MerkleizedAnyBatch, Target } from '../../src/qmdb/index.ts'
import type { Acknowledgement, StatefulFatalCode } from '../../src/stateful/index.ts'
import type { TestBlock, TestDbs } from '../util/stateful-app.ts'
import type { Harness } from '../util/stateful-harness.ts'
import type { AckState } from '../util/stateful-marshal.ts'
import type { TestFinalization } from '../util/stateful-scheme.ts'
import type { LogLine } from '../util/statesync-fixtures.ts'

function gateVerifyOf (t: Harness, blocks: TestBlock[], gate: Gate): void {
  const keys = new Set(blocks.map(b => digestKey(b.digest)))
  t.app.verifyHook = async (block, signal) => {
    if (keys.has(digestKey(block.digest))) { await gate.pass(signal) }
  }
}

async function verifyInOrder (t: Harness, blocks: TestBlock[]): Promise<void> {
  for (const b of blocks) { expect(await verifyCall(t.stateful, b).promise).to.be.true() }
}

/** An acknowledgement handed to the manager directly (as marshal would), recording its outcome. */
function recordedAck (): { ack: Acknowledgement, state(): AckState } {
  let state: AckState = 'pending'
  return {
    ack: {
      acknowledge: () => { state = 'acked' },
      cancel: () => { if (state === 'pending') { state = 'cancelled' } }
    },
    state: () => state
  }
}

/** A database whose prunes wait at a gate (a slow prune the test can hold). */
class PruneGatedDb<U, M, T> extends GatedDb<U, M, T> {
  readonly pruneGate: Gate

  constructor (inner: ManagedDb<U, M, T>, control: FlushControl, pruneGate: Gate) {
    super(inner, control)
    this.pruneGate = pruneGate
  }

  async pruneTo (target: T): Promise<void> {
    await this.pruneGate.pass()
    await super.pruneTo(target)
  }
}

describe('stateful acceptance: processing scenarios', () => {
  let t: Harness | undefined

  afterEach(async () => {
    await t?.stop()
    t = undefined
  })

  it('a verification running before a proposal completes while the proposal is parked; later non-verify work waits behind it', async () => {
    const n = await harness()
    t = n
    const [a1] = await n.builder.chain(n.genesis, 1, { tag: 'a' })
    const [b1] = await n.builder.chain(n.genesis, 1, { tag: 'b', firstView: 2 })
    n.marshal.put(a1, b1)
    const verifyGate = new Gate()
    gateVerifyOf(n, [b1], verifyGate)
    const active = verifyCall(n.stateful, b1)
    await verifyGate.waitEntered(1)
    const proposeGate = new Gate()
    n.app.proposeHook = async (_parent, signal) => { await proposeGate.pass(signal) }
    const proposal = proposeCall(n.stateful, n.genesis, 3)
    await proposeGate.waitEntered(1)
    const subscribed = n.stateful.subscribeDatabases()
    verifyGate.open()
    expect(await active.promise).to.be.true()
    expect(proposeGate.holding).to.equal(1) // answered while the proposal is still parked
    expect(await stillPending(subscribed)).to.be.true()
    proposeGate.open()
    expect(await proposal.promise).to.be.instanceOf(Uint8Array)
    expect(await subscribed).to.equal(n.set)
  })

  it('a finalization deferred behind a proposal does not retract a losing-branch verdict completed meanwhile', async () => {
    const n = await harness()
    t = n
    const [a1] = await n.builder.chain(n.genesis, 1, { tag: 'a' })
    const [b1] = await n.builder.chain(n.genesis, 1, { tag: 'b', firstView: 2 })
    n.marshal.put(a1, b1)
    await verifyInOrder(n, [a1])
    const verifyGate = new Gate()
    gateVerifyOf(n, [b1], verifyGate)
    const losing = verifyCall(n.stateful, b1)
    await verifyGate.waitEntered(1)
    const proposeGate = new Gate()
    n.app.proposeHook = async (_parent, signal) => { await proposeGate.pass(signal) }
    const proposal = proposeCall(n.stateful, a1, 3)
    await proposeGate.waitEntered(1)
    n.marshal.finalize(a1) // waits behind the proposal
    expect(await stillPending(n.marshal.ackOutcome(1))).to.be.true()
    verifyGate.open()
    expect(await losing.promise).to.be.true() // the finalization that would reject it has not run yet
    expect(n.stateful.lastProcessed?.height).to.equal(0)
    proposeGate.open()
    expect(await proposal.promise).to.be.instanceOf(Uint8Array)
    expect(await n.marshal.ackOutcome(1)).to.equal('acked')
    expect(n.stateful.hasPending(digestKey(b1.digest))).to.be.false() // the losing fork is pruned afterwards
    expect(n.stateful.pendingBlocks).to.equal(1) // the proposal built on a1 survives
  })

  it('a skipped redelivered finalization keeps a running verification progressing while its hook runs', async () => {
    const builder = await ChainBuilder.create()
    const chain = await builder.chain(builder.genesis, 3)
    // databases durable through block 2, the sync metadata says 2, marshal only processed genesis
    const first = await harness({ builder })
    first.marshal.finalize(chain[0], chain[1])
    expect(await first.marshal.ackOutcome(2)).to.equal('acked')
    await first.stop()
    const marshal = new MockMarshal<TestBlock>({ genesis: builder.genesis, processed: 0 })
    marshal.store(chain[0], chain[1])
    marshal.put(chain[2])
    let completed = 2
    const n = await harness({ builder, set: first.set, marshal, init: { metadata: { syncHeight: () => completed, inProgress: () => false, setComplete: async height => { completed = height } } } })
    t = n
    expect(n.stateful.lastProcessed?.height).to.equal(2)
    const verifyGate = new Gate()
    gateVerifyOf(n, [chain[2]], verifyGate)
    const child = verifyCall(n.stateful, chain[2])
    await verifyGate.waitEntered(1)
    const hookGate = new Gate()
    n.app.finalizedHook = async block => { if (block.height === 1) { await hookGate.pass() } }
    marshal.finalize(chain[0], chain[1]) // redelivered, within the skip window
    await hookGate.waitEntered(1)
    verifyGate.open()
    expect(await child.promise).to.be.true()
    expect(hookGate.holding).to.equal(1) // answered while the skipped block's hook still runs
    hookGate.open()
    expect(await marshal.ackOutcome(2)).to.equal('acked')
    expect(n.app.finalizedHeights).to.deep.equal([1, 2])
    expect(n.app.calls.apply).to.equal(0) // skipped blocks are reported, never re-applied
    expect(decodeCounter(await (n.set.dbs.accounts as unknown as AnyDb).get(COUNTER))).to.equal(2)
  })

  it('a retained verification answers before a queued competing finalization is processed, and keeps its verdict', async () => {
    const n = await harness({ maxPendingAcks: 2 })
    t = n
    const [a1, a2] = await n.builder.chain(n.genesis, 2)
    const c2 = await n.builder.child(a1, { view: 5, writes: [{ key: 'k2', value: 'c2' }] })
    n.marshal.put(a1, a2, c2)
    await verifyInOrder(n, [a1])
    const verifyGate = new Gate()
    gateVerifyOf(n, [a2], verifyGate)
    const retained = verifyCall(n.stateful, a2)
    await verifyGate.waitEntered(1)
    const hookGate = new Gate()
    n.app.finalizedHook = async block => { if (block.height === 1) { await hookGate.pass() } }
    n.marshal.finalize(a1, c2) // a1 is being finalized (hook held); c2, which beats a2, is queued
    await hookGate.waitEntered(1)
    verifyGate.open()
    expect(await retained.promise).to.be.true()
    expect(n.stateful.lastProcessed?.height).to.equal(0)
    hookGate.open()
    expect(await n.marshal.ackOutcome(2)).to.equal('acked')
    expect(n.stateful.hasPending(digestKey(a2.digest))).to.be.false()
    expect(await (n.set.dbs.accounts as unknown as AnyDb).get(h('k2'))).to.deep.equal(h('c2'))
    expect(verifyGate.entered).to.equal(1) // never retried
  })

  it('verifications quiesced by a prune are retried after the work queued during it, and see the competing block that won', async () => {
    const control = new FlushControl()
    const pruneGate = new Gate()
    const accounts = new PruneGatedDb<AnyBatch, MerkleizedAnyBatch, Target>(await AnyDb.open(), control, pruneGate)
    const set = new DatabaseSet<TestDbs>({ accounts, receipts: new GatedDb(await KeylessDb.open(), control) })
    const n = await harness({ set, prune: { maintenanceInterval: 1, retainedMarshalBlocks: 0, retainedQmdbBlocks: 0, offset: 0 } })
    t = n
    const [a1, a2] = await n.builder.chain(n.genesis, 2)
    const b3 = await n.builder.child(a2, { view: 3 })
    const c3 = await n.builder.child(a2, { view: 4, writes: [{ key: 'k3', value: 'c3' }] })
    n.marshal.put(a1, a2, b3, c3)
    await verifyInOrder(n, [a1, a2])
    const verifyGate = new Gate()
    gateVerifyOf(n, [b3], verifyGate)
    const cert = verifyCall(n.stateful, b3)
    await verifyGate.waitEntered(1)
    n.marshal.finalize(a1, a2) // the prune becomes due at height 2
    await pruneGate.waitEntered(1)
    expect(verifyGate.holding).to.equal(0) // quiesced for the prune
    // queued while the prune runs: c3 is finalized, a proposal builds on it, a subscriber waits
    const c3Ack = recordedAck()
    n.stateful.finalized(c3, c3Ack.ack)
    const proposeGate = new Gate()
    n.app.proposeHook = async (_parent, signal) => { await proposeGate.pass(signal) }
    const proposal = proposeCall(n.stateful, c3, 5)
    const subscribed = n.stateful.subscribeDatabases()
    pruneGate.open()
    await proposeGate.waitEntered(1)
    expect(n.stateful.lastProcessed?.height).to.equal(3) // c3 went before the retried verification
    await eventually(() => c3Ack.state() === 'acked', 'c3 acknowledged')
    expect(await stillPending(cert.promise)).to.be.true() // the retry waits behind the proposal barrier
    expect(await stillPending(subscribed)).to.be.true()
    proposeGate.open()
    expect(await proposal.promise).to.be.instanceOf(Uint8Array)
    expect(await subscribed).to.equal(set)
    expect(await cert.promise).to.be.false() // a competing block won height 3
    expect(verifyGate.entered).to.equal(1) // the retry resolved without executing b3 again
    expect(accounts.pruned[0]).to.deep.equal(a1.targets.accounts) // the prune that quiesced it (c3 makes the next one due)
  })

  it('parked verifications (unknown candidate, unobtainable parent) never block a finalization or later verifications', async () => {
    const n = await harness()
    t = n
    const [a1, a2, a3] = await n.builder.chain(n.genesis, 3)
    const d2 = await n.builder.child(a1, { view: 9 })
    const d3 = await n.builder.child(d2, { view: 10 })
    n.marshal.put(a1, a2, d3) // a3 is never available; d3's parent cannot be obtained
    n.marshal.unavailable.add(digestKey(d2.digest))
    const unknown = verifyCall(n.stateful, a3)
    const parentless = verifyCall(n.stateful, d3)
    expect(await stillPending(unknown.promise)).to.be.true()
    expect(await stillPending(parentless.promise)).to.be.true()
    n.marshal.finalize(a1)
    expect(await n.marshal.ackOutcome(1)).to.equal('acked')
    expect(await stillPending(unknown.promise)).to.be.true() // retried, still abstaining
    unknown.abort()
    parentless.abort()
    await expect(unknown.promise).to.eventually.be.rejected()
    await expect(parentless.promise).to.eventually.be.rejected()
    await eventually(() => n.marshal.waiting(a3.digest) === 0, 'the abandoned subscription released')
    expect(await verifyCall(n.stateful, a2).promise).to.be.true()
    expect(n.app.calls.verify).to.equal(1)
  })
})

// ---- fatal conditions ---------------------------------------------------------------------

/** An error-level line names the fatal error's code, and its block and database when it has them. */
function expectLogged (lines: LogLine[], err: StatefulFatalError): void {
  const logged = lines.filter(l => l.level === 'error' && l.message.includes(err.code))
  expect(logged, `no error line for ${err.code}`).to.not.have.length(0)
  const line = logged[0].message
  if (err.height !== undefined) { expect(line).to.include(`height ${err.height}`) }
  if (err.digest !== undefined) { expect(line).to.include(`block ${err.digest.slice(0, 16)}`) }
  if (err.database !== undefined) { expect(line).to.include(`database ${err.database}`) }
}

function expectFatal (err: unknown, code: StatefulFatalCode): StatefulFatalError {
  expect(err).to.be.instanceOf(StatefulFatalError)
  expect((err as StatefulFatalError).code).to.equal(code)
  return err as StatefulFatalError
}

interface SyncNode {
  stateful: Stateful<TestBlock, TestDbs>
  marshal: MockMarshal<TestBlock>
  chain: TestBlock[]
  lines: LogLine[]
  fatal: StatefulFatalError[]
  started: Promise<void>
  datastore: MemoryDatastore
}

/**
 * A joiner on the state-sync path from the block at `floor`, serving peers
 * holding `network`'s chain (default: the same chain as the floor's).
 * `prepare` runs before the manager starts.
 */
interface SyncNodeOptions {
  floor: number
  maxPendingAcks: number
  deliveryWindow?: number
  /** The serving peers' chain (default: the joiner's own chain). */
  network?(): Promise<ChainBuilder>
  prepare?(n: Omit<SyncNode, 'started' | 'stateful'>): void
}

async function syncNode (opts: SyncNodeOptions): Promise<SyncNode> {
  const builder = await ChainBuilder.create()
  const chain = [builder.genesis, ...await builder.chain(builder.genesis, 20)]
  const network = opts.network === undefined ? builder : await opts.network()
  if (network === builder) { await builder.set.apply(builder.stateOf(chain[20]) as never) }
  const datastore = new MemoryDatastore()
  const plan = await SyncPlan.init<TestFinalization>(datastore, '/joiner', testScheme)
  plan.withFloor(finalizationOf(chain[opts.floor]))
  const marshal = new MockMarshal<TestBlock>({ maxPendingAcks: opts.maxPendingAcks, deliveryWindow: opts.deliveryWindow })
  marshal.store(chain[opts.floor])
  const { logger, lines } = recordingLogger()
  const fatal: StatefulFatalError[] = []
  const sources = { accounts: new LocalSource(network.set.dbs.accounts as never), receipts: new LocalSource(network.set.dbs.receipts as never) }
  opts.prepare?.({ marshal, chain, lines, fatal, datastore })
  const stateful = new Stateful<TestBlock, TestDbs>({
    application: new TestApp(builder.genesis),
    marshal,
    metadata: plan.metadata,
    logger,
    onFatal: err => { fatal.push(err) },
    startup: stateSync({ plan, scheme: testScheme, marshalFloor: { processedHeight: undefined, round: { epoch: 0, view: 0 } }, members: testSyncMembers(sources) })
  })
  const started = stateful.start()
  started.catch(() => {})
  marshal.attach(stateful)
  return { stateful, marshal, chain, lines, fatal, started, datastore }
}

/** The manager stopped on `code`: start() rejected with it, reported once, logged, later calls throw it. */
async function expectSyncStoppedOn (n: SyncNode, code: StatefulFatalCode): Promise<StatefulFatalError> {
  const err = expectFatal(await n.started.catch(e => e), code)
  expect(n.fatal).to.deep.equal([err])
  expect(n.stateful.failure).to.equal(err)
  await expect(n.stateful.whenStopped()).to.eventually.be.rejectedWith(StatefulFatalError)
  await expect(n.stateful.subscribeDatabases()).to.eventually.be.rejectedWith(StatefulFatalError)
  expectLogged(n.lines, err)
  return err
}

describe('stateful acceptance: fatal conditions are typed, logged and name the block and database', function () {
  this.timeout(30_000)

  it('fatal errors of the processing loop and of startup are logged with code, block and database', async () => {
    const control = new FlushControl()
    const { logger, lines } = recordingLogger()
    const accounts = new GatedDb(await AnyDb.open(), control)
    const set = new DatabaseSet<TestDbs>({ accounts, receipts: new GatedDb(await KeylessDb.open(), control) })
    const t = await harness({ set, init: { logger } })
    const [a1] = await t.builder.chain(t.genesis, 1)
    t.app.corruptApply.add(digestKey(a1.digest))
    t.marshal.finalize(a1)
    await eventually(() => t.fatal.length > 0, 'a fatal error')
    const err = expectFatal(t.fatal[0], 'FinalizeReconstructionMismatch')
    expect(err.digest).to.equal(digestKey(a1.digest))
    expect(err.database).to.equal('accounts')
    expectLogged(lines, err)
    await t.stop()

    // a failing flush
    const second = recordingLogger()
    const t2 = await harness({ set: new DatabaseSet<TestDbs>({ accounts: new GatedDb(await AnyDb.open(), control), receipts: new GatedDb(await KeylessDb.open(), control) }), init: { logger: second.logger } })
    const [b1] = await t2.builder.chain(t2.genesis, 1)
    control.failNext = new Error('disk full')
    t2.marshal.finalize(b1)
    await eventually(() => t2.fatal.length > 0, 'a fatal error')
    expectLogged(second.lines, expectFatal(t2.fatal[0], 'DatabaseSyncFailed'))
    await t2.stop()

    // a startup failure: the floor block is missing in marshal
    const third = recordingLogger()
    const t3 = await harness({ noStart: true, marshal: new MockMarshal<TestBlock>({ processed: 4 }), init: { logger: third.logger } })
    const startErr = expectFatal(await t3.stateful.start().catch(e => e), 'FloorAnchorMissing')
    expect(startErr.height).to.equal(4)
    expectLogged(third.lines, startErr)
    await t3.stop()
  })

  it('a finalized block at the sync anchor height with another digest (HandoffDigestMismatch)', async () => {
    const other = await ChainBuilder.create()
    const fork = (await other.chain(other.genesis, 10, { tag: 'fork' }))[9] // height 10 of another chain
    // delivered as soon as the manager starts: held until the hand-off
    const n = await syncNode({ floor: 10, maxPendingAcks: 3, prepare: ({ marshal }) => { marshal.finalize(fork) } })
    const err = await expectSyncStoppedOn(n, 'HandoffDigestMismatch')
    expect(err.digest).to.equal(digestKey(fork.digest))
    expect(err.height).to.equal(10)
  })

  it('a manager stopped while syncing cancels the acknowledgements it holds (on stop and on a fatal error)', async () => {
    // floor resolution waits (the floor block is not there yet): deliveries are held
    const n = await syncNode({
      floor: 10,
      maxPendingAcks: 3,
      prepare: ({ marshal, chain }) => {
        marshal.blocks.delete(digestKey(chain[10].digest))
        marshal.finalize(chain[11], chain[12])
      }
    })
    expect(await stillPending(n.started)).to.be.true()
    await n.stateful.stop()
    expect([n.marshal.acks.get(11), n.marshal.acks.get(12)]).to.deep.equal(['cancelled', 'cancelled'])

    const other = await ChainBuilder.create()
    const fork = (await other.chain(other.genesis, 10, { tag: 'fork' }))[9]
    const m = await syncNode({ floor: 10, maxPendingAcks: 3, prepare: ({ marshal }) => { marshal.finalize(fork) } })
    await expectSyncStoppedOn(m, 'HandoffDigestMismatch')
    expect(m.marshal.acks.get(10)).to.equal('cancelled')
  })

  it('finalized blocks above the sync anchor with a gap (HandoffNotConsecutive)', async () => {
    const n = await syncNode({ floor: 10, maxPendingAcks: 3, prepare: ({ marshal, chain }) => { marshal.finalize(chain[11], chain[13]) } })
    const err = await expectSyncStoppedOn(n, 'HandoffNotConsecutive')
    expect(err.digest).to.equal(digestKey(n.chain[13].digest))
    expect(err.height).to.equal(13)
  })

  it('peers serving state that does not verify end the sync (StateSyncFailed) naming the database', async () => {
    // the serving node holds another chain: its accounts state differs, its receipts (one per height) do not
    const n = await syncNode({
      floor: 10,
      maxPendingAcks: 2,
      network: async () => {
        const other = await ChainBuilder.create()
        const chain = await other.chain(other.genesis, 20, { tag: 'other' })
        await other.set.apply(other.stateOf(chain[19]) as never)
        return other
      }
    })
    const err = await expectSyncStoppedOn(n, 'StateSyncFailed')
    expect(err.message).to.include('accounts')
    expect(err.database).to.equal('accounts')
  })

  it('the floor block cannot be obtained (FloorAnchorMissing) naming it', async () => {
    let floorKey = ''
    const n = await syncNode({
      floor: 10,
      maxPendingAcks: 2,
      prepare: ({ marshal, chain }) => {
        floorKey = digestKey(chain[10].digest)
        marshal.blocks.delete(floorKey)
        marshal.unavailable.add(floorKey)
      }
    })
    const err = await expectSyncStoppedOn(n, 'FloorAnchorMissing')
    expect(err.digest).to.equal(floorKey)
  })

  it('marshal delivering more than its acknowledgement window while syncing (AckWindowExceeded) stops the manager', async () => {
    let floorKey = ''
    // the floor block is not there yet: floor resolution waits and deliveries pile up
    const n = await syncNode({
      floor: 10,
      maxPendingAcks: 2,
      deliveryWindow: 3,
      prepare: ({ marshal, chain }) => {
        floorKey = digestKey(chain[10].digest)
        marshal.blocks.delete(floorKey)
      }
    })
    let thrownToMarshal: unknown
    try {
      n.marshal.finalize(n.chain[11], n.chain[12], n.chain[13])
    } catch (err) {
      thrownToMarshal = err
    }
    expect(thrownToMarshal, 'the fatal error was thrown into marshal instead of stopping the manager').to.equal(undefined)
    const err = await expectSyncStoppedOn(n, 'AckWindowExceeded')
    expect(err.height).to.equal(13)
    expect([n.marshal.acks.get(11), n.marshal.acks.get(12), n.marshal.acks.get(13)]).to.deep.equal(['cancelled', 'cancelled', 'cancelled'])
  })

  it('the in-progress record cannot be written (SyncMetadataFailed)', async () => {
    const n = await syncNode({
      floor: 10,
      maxPendingAcks: 2,
      prepare: ({ datastore }) => {
        datastore.batch = () => { throw new Error('read-only datastore') }
      }
    })
    await expectSyncStoppedOn(n, 'SyncMetadataFailed')
  })
})
