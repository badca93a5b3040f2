/**
 * What a state sync holds in memory, and what it writes ahead of the
 * database meta (src/sync/engine.ts, src/qmdb/core.ts `buildFromSync`):
 *
 * 1. Requests start at most a window past the journal: an answer held at
 * the journal's tip stops fetching at the window (verified operations
 * waiting behind it stay bounded); released, the sync completes.
 * 2. The rebuilt MMR is written in bounded steps as it grows, ahead of the
 * database meta, so a crash can leave a partial MMR next to a complete
 * journal. A datastore that fails every write after its N-th MMR write
 * stands in for the crash. Checked, for a failure early in the build, late
 * in it, and on the final commit (the database meta write):
 * - the MMR reached storage in several writes before the failure (the build
 * does not hold the whole structure until the end);
 * - the database never opens half-built: `SyncInterrupted` until a sync
 * completes;
 * - the resumed sync (same storage, a healthy store) fetches no operations
 * again (at most the pinned nodes) and ends at the target root with the
 * server's operations, floor and reads; reopened, it has the same root;
 * - resuming toward a newer target after such a crash also ends at that
 * target's root.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { AnyDb } from '../../src/qmdb/index.ts'
import { LocalSource, SyncError } from '../../src/sync/index.ts'
import { codeOf } from '../util/common.ts'
import { expectSynced, rejection, serverWith, settle, syncFull, targetOf, until } from '../util/sync-fixtures.ts'
import { CountingSource } from '../util/sync-sources.ts'
import type { Request, Served, Source } from '../../src/sync/index.ts'
import type { Server } from '../util/sync-fixtures.ts'
import type { Batch, Key } from 'interface-datastore'

const PREFIX = '/client'
/** Operations hashed per build step: the rebuild of the sync range (~500 operations) takes dozens of steps. */
const STEP = 16

/**
 * A memory datastore whose write batches fail once `failAfterMmrWrites`
 * batches writing MMR records have committed, or (`failOnMeta`) when a batch
 * writes the database meta.
 */
class FailingDatastore extends MemoryDatastore {
  failAfterMmrWrites = Infinity
  failOnMeta = false
  mmrWrites = 0

  batch (): Batch {
    const inner = super.batch()
    let mmr = false
    let meta = false
    return {
      put: (key: Key, value: Uint8Array) => {
        const k = key.toString()
        if (k.startsWith(`${PREFIX}/mmr/`)) { mmr = true }
        if (k === `${PREFIX}/meta`) { meta = true }
        inner.put(key, value)
      },
      delete: (key: Key) => { inner.delete(key) },
      commit: async () => {
        if ((meta && this.failOnMeta) || (mmr && this.mmrWrites >= this.failAfterMmrWrites)) { throw new Error('injected write failure') }
        if (mmr) { this.mmrWrites++ }
        await inner.commit()
      }
    }
  }
}

/** An `any` server of ~3,000 operations whose floor is above 0 (pinned nodes needed). */
async function anyServer (): Promise<Server> {
  const server = await serverWith('any', 3_000, { seed: 7, keySpace: 400, maxBatch: 40 })
  expect(server.db.syncBoundary).to.be.above(0)
  return server
}

/** Sync `server`'s target into `ds`, failing after `failAfter` MMR writes or on the meta write; then heal `ds`. */
async function crashBuild (server: Server, ds: FailingDatastore, failAfter: number | 'meta'): Promise<void> {
  const target = targetOf(server.db)
  // enough build steps that every failure point lies inside the build
  expect(Math.ceil((target.range.end - target.range.start) / STEP)).to.be.above(20)
  if (failAfter === 'meta') { ds.failOnMeta = true } else { ds.failAfterMmrWrites = failAfter }
  const err = await rejection(syncFull('any', target, new LocalSource(server.db), { db: { datastore: ds, prefix: PREFIX }, applyBatchSize: STEP }))
  expect(err).to.be.instanceOf(SyncError)
  expect((err as SyncError).code).to.equal('Database')
  if (failAfter !== 'meta') { expect(ds.mmrWrites).to.equal(failAfter) }
  ds.failOnMeta = false
  ds.failAfterMmrWrites = Infinity
}

describe('sync engine: operations held ahead of the journal', function () {
  this.timeout(120_000)

  it('an answer held at the journal tip stops fetching at the window (65,536 operations); released, the sync completes', async () => {
    const window = 65_536 // the engine's minimum; 4 × 4 outstanding × 1,000 per request is below it
    const server = await serverWith('keyless', window + 8_000, { floor: 'zero', maxBatch: 2_000, seed: 5 })
    const target = targetOf(server.db)
    expect(target.range.start).to.equal(0)
    const inner = new LocalSource(server.db)
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    const requested: Request[] = []
    const source: Source = {
      async serve (request): Promise<Served> {
        requested.push(request)
        if (request.start === 0) { await released }
        return inner.serve(request, {})
      }
    }
    const run = syncFull('keyless', target, source, { fetchBatchSize: 1_000, maxOutstandingRequests: 4 })
    await until(() => requested.some(r => r.start + 1_000 >= window), 'requests up to the window')
    await settle(500)
    const furthest = Math.max(...requested.map(r => r.start))
    expect(furthest).to.be.below(window)
    expect(target.range.end).to.be.above(window + 1_000) // there was more to fetch
    release()
    const db = await run
    expect(db.opsRoot).to.deep.equal(target.root)
  })
})

describe('sync engine: a failure while rebuilding the database', function () {
  this.timeout(120_000)

  for (const failAfter of [3, 20, 'meta'] as const) {
    it(`fails ${failAfter === 'meta' ? 'on the database meta write (after every MMR step)' : `after ${failAfter} MMR writes`}: unopenable until resumed, then the target root`, async () => {
      const server = await anyServer()
      const target = targetOf(server.db)
      const ds = new FailingDatastore()
      await crashBuild(server, ds, failAfter)
      // the MMR went out in steps before the failure (with the meta: every step), not in one write at the end
      expect(ds.mmrWrites).to.be.at.least(failAfter === 'meta' ? 20 : 3)

      expect(await codeOf(AnyDb.open({ datastore: ds, prefix: PREFIX }))).to.equal('SyncInterrupted')

      const source = new CountingSource(new LocalSource(server.db))
      const synced = await syncFull('any', target, source, { db: { datastore: ds, prefix: PREFIX }, applyBatchSize: STEP })
      // the journal was complete: only the pinned nodes are fetched again, and not even they
      // when the whole MMR reached storage (it reproduces the target root, so it pins locally)
      expect(source.requests.map(r => r.type)).to.deep.equal(failAfter === 'meta' ? [] : ['boundary'])
      await expectSynced(synced, server, target)
      await synced.close()

      const reopened = await AnyDb.open({ datastore: ds, prefix: PREFIX })
      expect(reopened.opsRoot).to.deep.equal(target.root)
      expect(reopened.size).to.equal(target.range.end)
      await reopened.close()
    })
  }

  it('resumes toward a newer target after failing mid-build', async () => {
    const server = await anyServer()
    const ds = new FailingDatastore()
    await crashBuild(server, ds, 10)
    await server.growTo(server.db.size + 600)
    const newer = targetOf(server.db)
    const synced = await syncFull('any', newer, new LocalSource(server.db), { db: { datastore: ds, prefix: PREFIX }, applyBatchSize: STEP })
    await expectSynced(synced, server, newer)
    await synced.close()
    const reopened = await AnyDb.open({ datastore: ds, prefix: PREFIX })
    expect(reopened.opsRoot).to.deep.equal(newer.root)
    await reopened.close()
  })
})
