/**
 * Unit tests of the manager's building blocks: the execution state
 * (pending-map compatibility rules), the replay registry,
 * the durability tracker and the metrics registration.
 */

import { expect } from 'aegir/chai'
import { Durability } from '../../src/stateful/durability.ts'
import { StatefulFatalError, digestKey } from '../../src/stateful/index.ts'
import { createMetrics } from '../../src/stateful/metrics.ts'
import { ExecutionState } from '../../src/stateful/pending.ts'
import { ReplayRegistry } from '../../src/stateful/replay.ts'
import { ChainBuilder, openMemoryDbs } from '../util/stateful-app.ts'
import type { MerkleizedOf } from '../../src/qmdb/index.ts'
import type { Acknowledgement, Anchor, Round } from '../../src/stateful/index.ts'
import type { TestDbs } from '../util/stateful-app.ts'
import type { Metrics } from '@libp2p/interface'

const r = (view: number): Round => ({ epoch: 0, view })

function anchor (key: string, height: number, view: number): Anchor {
  return { key, height, round: r(view), digest: new Uint8Array(32) }
}

describe('stateful: execution state', () => {
  let state: ExecutionState<TestDbs>
  let m: MerkleizedOf<TestDbs>

  beforeEach(async () => {
    const set = await openMemoryDbs()
    const builder = await ChainBuilder.create()
    const b1 = await builder.child(builder.genesis)
    m = builder.stateOf(b1) as MerkleizedOf<TestDbs>
    state = new ExecutionState(set, anchor('g', 0, 0))
  })

  it('caches only children of known states with a later round', () => {
    expect(state.cachePending('a', 'g', 1, r(1), m)).to.be.true()
    expect(state.cachePending('b', 'a', 2, r(2), m)).to.be.true()
    expect(state.cachePending('x', 'unknown', 2, r(3), m)).to.be.false()
    expect(state.cachePending('y', 'g', 1, r(0), m)).to.be.false() // round not above the processed round
    expect(state.cachePending('a', 'g', 1, r(1), m)).to.be.true() // duplicate: no-op
    expect([...state.pending.keys()]).to.deep.equal(['a', 'b'])
  })

  it('rejects a late losing-fork publication during and after finalization; a late winner publication is a no-op', () => {
    state.cachePending('w', 'g', 1, r(2), m)
    state.cachePending('c', 'w', 2, r(3), m)
    state.finalizing = anchor('w', 1, 2)
    state.finalizingCompatible = state.compatiblePending('w', r(2))
    expect([...state.finalizingCompatible]).to.have.members(['w', 'c'])
    // a sibling of the winner (on the old anchor) is refused
    expect(state.cachePending('l', 'g', 1, r(1), m)).to.be.false()
    // a new descendant of the winner is accepted and becomes compatible
    expect(state.cachePending('d', 'c', 3, r(4), m)).to.be.true()
    expect(state.finalizingCompatible.has('d')).to.be.true()
    // winner secured
    state.pending.delete('w')
    state.finalizingBatch = m
    expect(state.cachePending('w', 'g', 1, r(2), m)).to.be.true()
    expect(state.pending.has('w')).to.be.false()
    // finished
    state.finalizing = undefined
    state.finalizingBatch = undefined
    state.finalizingCompatible = new Set()
    state.lastProcessed = anchor('w', 1, 2)
    expect(state.cachePending('w', 'g', 1, r(2), m)).to.be.true()
    expect(state.pending.has('w')).to.be.false()
    expect(state.cachePending('l', 'g', 1, r(1), m)).to.be.false()
  })

  it('forks from pending entries, the finalizing winner or the processed state, and refuses unknown parents', () => {
    state.cachePending('a', 'g', 1, r(1), m)
    expect(state.forkBatches('a').ok).to.be.true()
    expect(state.forkBatches('g').ok).to.be.true()
    expect(state.forkBatches('nope').ok).to.be.false()
    state.finalizing = anchor('w', 1, 2)
    expect(state.forkBatches('w').ok).to.be.false() // winner not secured yet
    state.finalizingBatch = m
    expect(state.forkBatches('w').ok).to.be.true()
  })

  it('keeps exactly the winner and its later-round descendants', () => {
    state.cachePending('a', 'g', 1, r(1), m)
    state.cachePending('b', 'a', 2, r(2), m)
    state.cachePending('b2', 'a', 2, r(3), m)
    state.cachePending('c', 'b', 3, r(4), m)
    expect([...state.compatiblePending('a', r(1))]).to.have.members(['a', 'b', 'b2', 'c'])
    expect([...state.compatiblePending('b2', r(3))]).to.have.members(['b2'])
  })
})

describe('stateful: replay registry', () => {
  it('registers one owner per digest; waiters see its outcome; a stale owner cannot finish a newer flight', async () => {
    const replays = new ReplayRegistry()
    const ready = (): boolean => false
    const owner = replays.claim('x', ready)
    expect(owner.kind).to.equal('owner')
    const waiter = replays.claim('x', ready)
    expect(waiter.kind).to.equal('wait')
    if (owner.kind !== 'owner' || waiter.kind !== 'wait') { return }
    replays.finish(owner.flight, undefined) // cancelled owner
    expect(await waiter.flight.done).to.be.undefined()
    const next = replays.claim('x', ready)
    expect(next.kind).to.equal('owner')
    expect(() => { replays.finish(owner.flight, 'ok') }).to.throw()
    if (next.kind === 'owner') { replays.finish(next.flight, 'ok') }
    expect(replays.idle).to.be.true()
    expect(replays.claim('x', () => true).kind).to.equal('ready')
  })
})

function fakeAck (log: string[], name: string): Acknowledgement {
  return { acknowledge: () => { log.push(`ack ${name}`) }, cancel: () => { log.push(`cancel ${name}`) } }
}

describe('stateful: durability tracker', () => {
  it('releases acks in order once a covering flush completes and coalesces the rest', async () => {
    const log: string[] = []
    const d = new Durability(0)
    d.applied(1, fakeAck(log, '1'))
    expect(d.needsSync()).to.be.true()
    let release!: () => void
    const first = new Promise<void>(resolve => { release = resolve })
    d.started(1, { durable: async () => first }, () => { log.push('done') }, () => {})
    d.applied(2, fakeAck(log, '2'))
    d.applied(3, fakeAck(log, '3'))
    expect(d.needsSync()).to.be.false() // one flush in flight
    release()
    await d.syncActive?.promise
    expect(log).to.deep.equal(['ack 1', 'done'])
    expect(d.covers(1)).to.be.true()
    expect(d.needsSync()).to.be.true()
    d.started(d.latestApplied(), { durable: async () => {} }, () => {}, () => {})
    await d.syncActive?.promise
    expect(log).to.deep.equal(['ack 1', 'done', 'ack 2', 'ack 3'])
  })

  it('refuses non-increasing finalized heights (FinalizedHeightsNotIncreasing) and cancels held acks on close', () => {
    const log: string[] = []
    const d = new Durability(4)
    expect(() => { d.applied(4, fakeAck(log, '4')) }).to.throw(StatefulFatalError).with.property('code', 'FinalizedHeightsNotIncreasing')
    d.applied(5, fakeAck(log, '5'))
    d.close(new Error('stop'))
    d.applied(6, fakeAck(log, '6'))
    expect(log).to.deep.equal(['cancel 5', 'cancel 6'])
  })

  it('reports a failed flush as DatabaseSyncFailed naming the member', async () => {
    const d = new Durability(0)
    d.applied(1, fakeAck([], '1'))
    const errors: StatefulFatalError[] = []
    const failure = Object.assign(new Error('eio'), { database: 'receipts' })
    d.started(1, { durable: async () => { throw failure } }, () => {}, err => { errors.push(err) })
    await d.syncActive?.promise
    expect(errors[0].code).to.equal('DatabaseSyncFailed')
    expect(errors[0].database).to.equal('receipts')
  })
})

describe('stateful: metrics', () => {
  it('registers every metric through libp2p Metrics', () => {
    const names: string[] = []
    const values = new Map<string, number>()
    const metric = (name: string): any => ({
      update: (v: number) => { values.set(name, v) },
      increment: (v = 1) => { values.set(name, (values.get(name) ?? 0) + v) },
      observe: (v: number) => { values.set(name, v) }
    })
    const metrics = {
      registerMetric: (name: string) => { names.push(name); return metric(name) },
      registerCounter: (name: string) => { names.push(name); return metric(name) },
      registerHistogram: (name: string) => { names.push(name); return metric(name) }
    } as unknown as Metrics
    const m = createMetrics({ metrics, prefix: 'x' })
    m.pendingBlocks.set(3)
    m.prunedForks.inc(2)
    m.verifyDuration.observe(0.5)
    expect(names).to.have.members([
      'x_sync_done', 'x_pending_blocks', 'x_pruned_forks', 'x_propose_duration_seconds', 'x_verify_duration_seconds',
      'x_finalize_duration_seconds', 'x_rebuild_pending_duration_seconds', 'x_rebuild_pending_depth'
    ])
    expect(values.get('x_pending_blocks')).to.equal(3)
    expect(values.get('x_pruned_forks')).to.equal(2)
    expect(values.get('x_verify_duration_seconds')).to.equal(0.5)
  })

  it('digest keys are lowercase hex', () => {
    expect(digestKey(new Uint8Array([0, 255, 16]))).to.equal('00ff10')
  })
})
