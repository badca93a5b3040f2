/**
 * The state-sync crash-recovery matrix (commonware `glue/src/stateful/actor/syncer`) with real
 * processes: a node (test/util/statesync-crash-child.ts) on a LevelDB folder
 * with the real marshal, the sync plan and both test databases, syncing from
 * a simulated network that keeps finalizing. Each test stops the node at one
 * exact point of its startup, kills it with SIGKILL, restarts it on the same
 * folder and checks that the restart takes the path the matrix prescribes
 * and ends with the same roots as the network (the targets the network's
 * blocks commit to). Also covers a late joiner handing off and processing
 * past its sync height (`LateJoinerStateSyncHandoff`) and that a node
 * whose sync completed never syncs from peers again.
 *
 * Matrix rows → tests: before `beginSync` → "before the floor is chosen";
 * during sync → "during the sync"; window acks released before completion →
 * "after convergence" (the source is held until marshal acknowledged absorbed
 * blocks); after `setComplete` → "right after completion"; marshal path,
 * databases flushed before marshal persisted the ack → "durable ahead of
 * marshal". The two handoff rows have no separate crash point here: this
 * port records completion first (the synced databases are already durable)
 * and hands blocks above the anchor to normal processing, so a crash during
 * the hand-off is one of the last two rows.
 */
import '../util/polyfill.ts'
import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { ChainBuilder } from '../util/stateful-app.ts'
import { CHAIN_LENGTH } from '../util/statesync-fixtures.ts'
import type { TestBlock } from '../util/stateful-app.ts'
import type { ChildMessage, CrashChildConfig } from '../util/statesync-fixtures.ts'
import type { ChildProcess } from 'node:child_process'

const here = dirname(fileURLToPath(import.meta.url))
const CHILD = join(here, '..', 'util', 'statesync-crash-child.js')

/** The floor the probe offers on a first boot. */
const F = 30

type Boot = Extract<ChildMessage, { type: 'boot' }>
type Point = Extract<ChildMessage, { type: 'point' }>
type Done = Extract<ChildMessage, { type: 'done' }>

interface RunResult {
  boot: Boot
  point?: Point
  done?: Done
}

/** Children still running (killed after each test, whatever happened). */
const running = new Set<ChildProcess>()

/** One boot of the node: until `done`, or until it reached `config.kill` (then SIGKILL). */
async function run (config: CrashChildConfig): Promise<RunResult> {
  const child = fork(CHILD, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } })
  running.add(child)
  child.once('exit', () => { running.delete(child) })
  const result: Partial<RunResult> = { boot: { type: 'boot' } }
  let failure: string | undefined
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  child.on('message', (m: ChildMessage) => {
    if (m.type === 'boot') { Object.assign(result.boot as Boot, m) }
    if (m.type === 'done') { result.done = m }
    if (m.type === 'fatal') { failure = m.message }
    if (m.type === 'point') {
      result.point = m
      child.kill('SIGKILL')
    }
  })
  await exited
  if (failure !== undefined) { throw new Error(`the node stopped on a fatal error: ${failure}`) }
  if (result.boot?.bootState === undefined) { throw new Error('the node exited before booting') }
  if (config.kill !== undefined && result.point?.point !== config.kill) { throw new Error(`the node never reached ${config.kill}`) }
  if (config.kill === undefined && result.done === undefined) { throw new Error('the node exited without finishing') }
  return result as RunResult
}

function hex (d: Uint8Array): string {
  return Buffer.from(d).toString('hex')
}

describe('state sync: crash-recovery matrix (SIGKILL)', function () {
  this.timeout(120_000)
  let chain: TestBlock[]
  let dir: string

  /** The roots the network's block at `height` commits to. */
  function networkRoots (height: number): { accounts: string, receipts: string } {
    const t = chain[height].targets
    return { accounts: hex(t.accounts.root), receipts: hex(t.receipts.root) }
  }

  /** A finished boot processed through `height` and holds exactly the network's state there. */
  function expectNetworkState (done: Done | undefined, height: number): Done {
    expect(done).to.not.equal(undefined)
    const d = done as Done
    expect(d.processed).to.equal(height)
    expect(d.lastProcessed).to.equal(height)
    expect(d.roots).to.deep.equal(networkRoots(height))
    return d
  }

  before(async () => {
    const builder = await ChainBuilder.create()
    chain = [builder.genesis, ...await builder.chain(builder.genesis, CHAIN_LENGTH)]
  })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'statesync-crash-'))
  })

  afterEach(async () => {
    for (const child of running) { child.kill('SIGKILL') }
    await rm(dir, { recursive: true, force: true })
  })

  const config = (c: Omit<CrashChildConfig, 'dir'>): CrashChildConfig => ({ dir, ...c })

  it('killed before the floor is chosen: nothing is durable, the restart decides afresh and syncs from the new floor', async () => {
    const first = await run(config({ requestSync: true, probe: F, feedDuringSync: 45, feedAfterStart: 55, kill: 'probe' }))
    expect(first.boot).to.include({ bootState: 'fresh', path: 'state-sync' })

    // the network moved on: the probe now offers a newer floor
    const second = await run(config({ requestSync: true, probe: 34, feedDuringSync: 45, feedAfterStart: 55 }))
    expect(second.boot).to.include({ bootState: 'fresh', probed: true, path: 'state-sync' })
    expect(second.boot.resumedFloor).to.equal(undefined)
    const done = expectNetworkState(second.done, 55)
    expect(done.syncStart).to.equal(34)
    // a late joiner that synced while the chain kept finalizing, then processed past its sync height
    expect(done.syncHeight).to.be.at.least(34)
    expect(done.processed).to.be.greaterThan(done.syncHeight as number)
  })

  it('killed during the sync: the restart resumes from the persisted floor even unrequested, reusing the journaled operations', async () => {
    const first = await run(config({ requestSync: true, probe: F, feedDuringSync: 0, feedAfterStart: 55, kill: 'stall', stallAfter: 3 }))
    const stall = first.point as Point
    const floorTarget = chain[F].targets.accounts
    expect(stall.start).to.equal(floorTarget.range.start)
    expect(stall.synced).to.be.greaterThan(0)
    expect((stall.start as number) + (stall.synced as number)).to.be.lessThan(floorTarget.range.end) // really mid-sync

    // the node no longer asks for state sync, and its probe would offer an older floor: neither matters
    const second = await run(config({ requestSync: false, probe: 20, feedDuringSync: 45, feedAfterFirstRequest: true, feedAfterStart: 55 }))
    expect(second.boot).to.include({ bootState: 'in-progress', resumedFloor: F, probed: false, path: 'state-sync', marshalProcessed: F - 1 })
    const done = expectNetworkState(second.done, 55)
    expect(done.syncStart).to.equal(F)
    // operations journaled before the kill were not fetched again
    const forFloor = done.accountsOps.filter(r => r.size === floorTarget.range.end)
    expect(forFloor).to.not.have.length(0)
    expect(Math.min(...forFloor.map(r => r.start))).to.be.at.least((stall.start as number) + (stall.synced as number))
    expect(done.processed).to.be.greaterThan(done.syncHeight as number)
  })

  it('killed after convergence, before completion is durable: the restart syncs again, to the block at marshal\'s processed height', async () => {
    // the accounts source holds back until marshal acknowledged blocks absorbed by live retargets
    const first = await run(config({ requestSync: true, probe: F, feedDuringSync: 45, gate: F + 3, feedAfterStart: 55, kill: 'converged' }))
    const converged = first.point as Point
    expect(converged.processed).to.be.at.least(F + 3)
    expect(converged.height).to.be.at.least(converged.processed as number)

    const second = await run(config({ requestSync: false, probe: 20, feedDuringSync: 45, feedAfterStart: 55 }))
    expect(second.boot).to.include({ bootState: 'in-progress', resumedFloor: F, probed: false, path: 'state-sync' })
    const processed = second.boot.marshalProcessed as number
    expect(processed).to.be.at.least(converged.processed as number)
    const done = expectNetworkState(second.done, 55)
    // marshal never redelivers what it acknowledged: the target moved from the floor to that block
    expect(done.syncStart).to.equal(processed)
    expect(done.processed).to.be.greaterThan(done.syncHeight as number)
  })

  it('killed right after completion: every later boot takes the marshal-sync path and never syncs from peers again', async () => {
    const first = await run(config({ requestSync: true, probe: F, feedDuringSync: 0, feedAfterStart: 55, kill: 'completed' }))
    const completed = first.point as Point
    const A = completed.height as number
    expect(A).to.equal(F)
    expect(completed.processed).to.be.lessThan(A) // the held floor block was never acknowledged

    // it even asks for state sync again (and the probe offers a newer floor): completion is final
    const second = await run(config({ requestSync: true, probe: 40, feedDuringSync: 0, feedAfterStart: 55 }))
    expect(second.boot).to.include({ bootState: 'complete', probed: false, path: 'marshal-sync', dbHeight: A })
    const done = expectNetworkState(second.done, 55)
    expect(done.startedFrom).to.equal(A)
    expect(done.accountsRequests + done.receiptsRequests).to.equal(0)
    // redelivered blocks up to the sync height were only reported, the rest applied once each
    expect(done.applyCalls).to.equal(55 - A)
    expect(done.processed).to.be.greaterThan(A)
  })

  it('killed when the databases are durable ahead of marshal: the restart rewinds them to marshal\'s processed block and re-applies', async () => {
    // a node that completed its sync and runs on the marshal-sync path
    await run(config({ requestSync: true, probe: F, feedDuringSync: 0, feedAfterStart: 50 }))
    const ahead = await run(config({ requestSync: true, probe: F, feedDuringSync: 0, feedAfterStart: 60, kill: 'db-ahead', dbAheadAt: 56 }))
    const point = ahead.point as Point
    expect(point.height).to.be.at.least(56)

    const restart = await run(config({ requestSync: false, probe: F, feedDuringSync: 0, feedAfterStart: 60 }))
    const processed = restart.boot.marshalProcessed as number
    expect(restart.boot).to.include({ bootState: 'complete', path: 'marshal-sync' })
    expect(processed).to.be.lessThan(point.height as number)
    expect(restart.boot.dbHeight).to.be.at.least(point.height as number) // durable ahead of marshal
    const done = expectNetworkState(restart.done, 60)
    expect(done.rewound).to.equal(true)
    expect(done.startedFrom).to.equal(processed)
    expect(done.applyCalls).to.equal(60 - processed)
    expect(done.accountsRequests + done.receiptsRequests).to.equal(0)
  })
})
