/**
 * Kill-and-resume: a child process (test/util/sync-resume-child.ts) syncs
 * 200,000 operations of a `keyless` database (floor > 0, so pinned nodes are
 * needed) into LevelDB, fetching through IPC from this process, which serves
 * them from its real database and SIGKILLs the child at random points: right
 * after it opened its journal, after a random number of answered requests
 * (plus a random delay), and while it builds the database after reaching
 * the target. After 12 kills, the restarted child completes.
 *
 * Checked: the final database (reopened here) has the target root, size,
 * floor and values; every restart resumes from its persisted journal (never
 * below the previous resume point) and never requests an operation below
 * it — only the pinned nodes (one boundary request) are fetched again; the
 * operations fetched over all runs exceed the total only by what was in
 * flight or not yet flushed at each kill.
 */
import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { LevelDatastore } from 'datastore-level'
import { KeylessDb } from '../../src/qmdb/index.ts'
import { LocalSource, encodeResponse } from '../../src/sync/index.ts'
import { Rng } from '../util/rng.ts'
import type { Request } from '../../src/sync/index.ts'

const here = dirname(fileURLToPath(import.meta.url))

const TOTAL = 200_000
const FLOOR = 1_500
const BATCH = 1_000
const OUTSTANDING = 2
const MID_SYNC_KILLS = 10

type Plan = { kill: 'start', delay: number } | { kill: 'requests', after: number, delay: number } | { kill: 'reached', delay: number } | { kill: 'none' }

interface Run {
  plan: Plan
  resumeAt: number
  served: Array<{ type: Request['type'], start: number, count: number }>
  killed: boolean
  reached: boolean
  done?: { root: string, size: number }
}

/** The server: a keyless database holding `TOTAL` operations above a floor of `FLOOR`. */
async function buildServer (): Promise<KeylessDb> {
  const db = await KeylessDb.open()
  let i = 0
  while (db.size < FLOOR + TOTAL) {
    const b = db.newBatch().withInactivityFloor(Math.min(FLOOR, db.size)).withMetadata(new Uint8Array(32).fill(db.size & 0xff))
    for (let j = 0; j < 997; j++) {
      const v = new Uint8Array(32)
      new DataView(v.buffer).setUint32(0, i++)
      b.append(v)
    }
    await db.apply(await b.merkleize())
  }
  return db
}

describe('sync engine: SIGKILL and resume', function () {
  this.timeout(120_000)
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sync-resume-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it(`syncs ${TOTAL} operations through ${MID_SYNC_KILLS + 2} random SIGKILLs without re-downloading persisted operations`, async () => {
    const server = await buildServer()
    const start = server.inactivityFloor
    const end = server.size
    expect(start).to.equal(FLOOR)
    expect(end - start).to.be.at.least(TOTAL)
    const source = new LocalSource(server)
    const cfg = JSON.stringify({ start, end, root: Buffer.from(server.opsRoot).toString('hex'), batch: BATCH, outstanding: OUTSTANDING })
    const rng = new Rng(4242)
    const perRun = Math.floor((end - start) / BATCH / (MID_SYNC_KILLS + 1)) // never enough to finish early

    const plans: Plan[] = [{ kill: 'start', delay: rng.int(5) }]
    for (let k = 0; k < MID_SYNC_KILLS; k++) { plans.push({ kill: 'requests', after: 1 + rng.int(perRun), delay: rng.int(20) }) }
    plans.push({ kill: 'reached', delay: rng.int(100) })

    const runChild = async (plan: Plan): Promise<Run> => {
      const run: Run = { plan, resumeAt: -1, served: [], killed: false, reached: false }
      const child = fork(join(here, '..', 'util', 'sync-resume-child.js'), [dir, cfg], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
        env: { ...process.env, NODE_OPTIONS: '' }
      })
      let killing = false
      const kill = (delay: number): void => {
        if (killing) { return }
        killing = true
        setTimeout(() => { child.kill('SIGKILL') }, delay)
      }
      let chain = Promise.resolve()
      let failure: Error | undefined
      const exited = new Promise<string | null>(resolve => { child.once('exit', (_code, signal) => { resolve(signal) }) })
      child.on('message', (m: { type: string, id: number, request: Request, resumeAt: number, root: string, size: number }) => {
        if (m.type === 'start') {
          run.resumeAt = m.resumeAt
          if (plan.kill === 'start') { kill(plan.delay) }
        } else if (m.type === 'reached') {
          run.reached = true
          if (plan.kill === 'reached') { kill(plan.delay) }
        } else if (m.type === 'done') {
          run.done = { root: m.root, size: m.size }
        } else if (m.type === 'request') {
          // answered one at a time, in order; nothing more once the kill is decided
          chain = chain.then(async () => {
            if (killing) { return }
            const { response } = await source.serve(m.request, {})
            run.served.push({ type: m.request.type, start: m.request.start, count: response.type === 'operations' ? response.ops.length : 1 })
            child.send({ id: m.id, bytes: encodeResponse(response) }, () => {})
            if (plan.kill === 'requests' && run.served.length >= plan.after) { kill(plan.delay) }
          }).catch(err => {
            // the child would wait for this answer forever: end it, and fail the test with the cause
            failure ??= err instanceof Error ? err : new Error(String(err))
            kill(0)
          })
        }
      })
      run.killed = (await exited) === 'SIGKILL'
      await chain
      if (failure !== undefined) { throw failure }
      return run
    }

    const runs: Run[] = []
    for (let i = 0; ; i++) {
      const run = await runChild(plans[i] ?? { kill: 'none' })
      runs.push(run)
      if (run.done !== undefined) { break }
      expect(run.killed, `run ${i} ended without being killed or completing`).to.equal(true)
      expect(i).to.be.below(plans.length + 2)
    }

    // every planned kill happened before the sync could complete
    const kills = runs.filter(r => r.killed).length
    expect(runs.slice(0, MID_SYNC_KILLS + 1).every(r => r.killed)).to.equal(true)
    expect(kills).to.be.at.least(MID_SYNC_KILLS + 1)
    const buildRun = runs[MID_SYNC_KILLS + 1]
    expect(buildRun.reached).to.equal(true)

    // the final database, reopened here: the target root, size, floor and values
    const last = runs[runs.length - 1]
    expect(last.done).to.deep.equal({ root: Buffer.from(server.opsRoot).toString('hex'), size: end })
    const ds = new LevelDatastore(dir)
    await ds.open()
    try {
      const db = await KeylessDb.open({ datastore: ds, prefix: '/synced' })
      expect([db.opsRoot, db.size, db.inactivityFloor, db.pruningBoundary, db.metadata]).to.deep.equal([server.opsRoot, end, start, start, server.metadata])
      for (let loc = start; loc < end; loc += 997) { expect(await db.get(loc)).to.deep.equal(await server.get(loc)) }
      await db.close()
    } finally {
      await ds.close()
    }

    // resume points never move back; no run asks for operations below its resume point
    let fetched = 0
    let boundaries = 0
    for (const [i, run] of runs.entries()) {
      expect(run.resumeAt, `run ${i} reported its resume point`).to.be.at.least(start)
      if (i > 0) { expect(run.resumeAt, `run ${i} resume point`).to.be.at.least(runs[i - 1].resumeAt) }
      for (const s of run.served) {
        if (s.type === 'boundary') {
          boundaries++
          expect(s.start).to.equal(start)
        } else {
          expect(s.start, `run ${i} re-requested persisted operations`).to.be.at.least(run.resumeAt)
          fetched += s.count
        }
      }
      expect(run.served.filter(s => s.type === 'boundary').length).to.be.at.most(1)
      // what a kill loses: the answers in flight and the verified batches whose flush had not landed
      if (i + 1 < runs.length && run.served.length > 0) {
        const reachedTo = Math.max(...run.served.map(s => s.start + s.count))
        expect(reachedTo - runs[i + 1].resumeAt, `operations lost by kill ${i}`).to.be.at.most((OUTSTANDING + 8) * BATCH)
      }
    }
    // the resume points really advanced across the kills
    expect(new Set(runs.map(r => r.resumeAt)).size).to.be.at.least(MID_SYNC_KILLS / 2)
    if (buildRun.killed) {
      // killed while building: the restart found the whole journal and only fetched the pins again
      expect(runs[runs.length - 1].resumeAt).to.equal(end)
      expect(runs[runs.length - 1].served.map(s => s.type)).to.deep.equal(['boundary'])
    }
    const total = end - start - 1 // the boundary carries the first operation
    expect(fetched).to.be.at.least(total)
    expect(fetched - total, `re-fetched operations over ${kills} kills`).to.be.at.most(kills * (OUTSTANDING + 3) * BATCH)
    expect(boundaries).to.be.at.most(runs.length)
    // eslint-disable-next-line no-console
    console.log(`      ${runs.length} runs, ${kills} kills, ${fetched} operations fetched for ${total} (${fetched - total} again), ${boundaries} boundary requests`)
  })
})
