/**
 * The state sync engine (src/sync/engine.ts with kinds, gaps, requests,
 * local and compact sources), against real databases served in process:
 *
 * 1. every full kind (`any`, `current`, `immutable`, `keyless`) syncs to the
 * target root from floor 0 and from a floor > 0 on a pruned server, and
 * compact databases sync from full and compact servers;
 * 2. several target updates while syncing, one moving the floor past
 * requests still in flight, end at the last target's root;
 * 5. ports of the reference's sync test scenarios (commonware `storage/src/qmdb/{any,current,immutable,keyless}/sync/tests.rs`, named after
 * the Rust tests), including the engine, request, gap, target, journal
 * and local-pins unit tests of commonware `storage/src/qmdb/sync`.
 *
 * Expected values never come from the engine: a synced database is compared
 * with the server it was synced from (roots, floor, metadata, the exact
 * operation bytes, reads), and reopened from its datastore.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { Reader, Writer } from '../../src/codec/index.ts'
import { MAX_LEAVES, Mmr, inactivePeaks, verifyProofAndPinnedNodes, verifyRangeProof } from '../../src/merkle/index.ts'
import {
  AnyDb, CompactImmutableBatch, CompactImmutableDb, CompactKeylessBatch, CompactKeylessDb, CurrentDb, FullSyncJournal, ImmutableDb, KeylessDb, varField
} from '../../src/qmdb/index.ts'
import {
  Channel, CompactSource, LocalSource, MemoryJournal, OutstandingRequests, ServeError, SyncError, compactSync, compactToTarget,
  decodeCompactTarget, decodeTarget, encodeCompactTarget, encodeTarget, findNextGap, immutableSync, keylessSync, syncDatabase,
  targetAdvances, InvalidTargetError, currentSync, anySync, syncDatabaseSet, targetsEqual
} from '../../src/sync/index.ts'
import { u64be } from '../util/bytes.ts'
import { codeOf } from '../util/common.ts'
import {
  FULL_KINDS, isCurrent, expectSynced, keyOf, makeServer, openFull, rejection, serverWith, settle, syncFull, syncKindOf, targetOf, until
} from '../util/sync-fixtures.ts'
import { CountingSource, FailSource, HeldSource, LyingSource } from '../util/sync-sources.ts'
import { sha } from '../util/workloads.ts'
import type { Digest } from '../../src/merkle/index.ts'
import type { CompactDb, DbOptions, SyncJournal, Target } from '../../src/qmdb/index.ts'
import type { Request, Response, Served, Source, SyncKind, SyncProgress, TipUpdate } from '../../src/sync/index.ts'
import type { FullDb, FullKind, Server } from '../util/sync-fixtures.ts'

const client = (): DbOptions => ({ datastore: new MemoryDatastore(), prefix: '/client' })
const fill = (b: number): Uint8Array => new Uint8Array(32).fill(b)
/** How many requests the engine issues at once for a fresh `target`. */
function initialRequests (target: Target, batch: number, slots: number): number {
  const { start, end } = target.range
  const boundary = start > 0 ? 1 : 0
  return Math.min(slots, boundary + Math.ceil((end - start - boundary) / batch))
}
const byStart = (a: { request: Request }, b: { request: Request }): number => a.request.start - b.request.start

async function syncError (p: Promise<unknown>): Promise<SyncError> {
  const err = await rejection(p)
  expect(err).to.be.instanceOf(SyncError)
  return err as SyncError
}

/** A server whose latest target starts above 0 (its floor), pruned to that start. */
async function prunedServer (kind: FullKind, ops: number, seed = 3): Promise<Server> {
  const server = await serverWith(kind, ops, { seed })
  await server.db.prune(server.db.syncBoundary)
  expect(server.db.syncBoundary).to.be.greaterThan(0)
  expect(server.db.pruningBoundary).to.equal(server.db.syncBoundary)
  return server
}

/** Ops needed for a `current` server's sync boundary (chunk-aligned floor) to pass 0. */
const enough = (kind: FullKind, ops: number): number => isCurrent(kind) ? Math.max(ops, 420) : ops

/** A replica of `makeServer(kind, { seed })` grown to `size`, stored in `db` and closed. */
async function replica (kind: FullKind, seed: number, size: number, db: DbOptions, prune = false): Promise<void> {
  const r = await makeServer(kind, { seed, db })
  await r.growTo(size)
  if (prune) { await r.db.prune(r.db.syncBoundary) }
  await r.db.commit()
  await r.db.close()
}

// ---------------------------------------------------------------------------
// 1. full and compact syncs end with the target root

describe('sync engine: every kind reaches the target root', function () {
  this.timeout(60_000)

  for (const kind of FULL_KINDS) {
    it(`${kind}: floor 0 (target from location 0 of an unpruned server), durable on reopen`, async () => {
      const server = await serverWith(kind, 300, { seed: 11, floor: 'zero' })
      const target = targetOf(server.db, 0)
      const source = new CountingSource(new LocalSource(server.db))
      const opts = client()
      const db = await syncFull(kind, target, source, { db: opts, fetchBatchSize: 7, maxOutstandingRequests: 3 })
      await expectSynced(db, server, target)
      // every operation was downloaded exactly once, and no boundary was needed
      expect(source.opsServed).to.equal(target.range.end)
      expect(source.requests.every(r => r.type === 'operations' && r.size === target.range.end)).to.equal(true)
      await db.close()
      await expectSynced(await openFull(kind, opts), server, target)
    })

    it(`${kind}: floor > 0 from a server pruned to its sync boundary, durable on reopen`, async () => {
      const server = await prunedServer(kind, enough(kind, 300), 12)
      const target = server.target()
      const source = new CountingSource(new LocalSource(server.db))
      const opts = client()
      const db = await syncFull(kind, target, source, { db: opts, fetchBatchSize: 9, maxOutstandingRequests: 4 })
      await expectSynced(db, server, target)
      expect(db.pruningBoundary).to.equal(target.range.start)
      // the boundary carries the op at the start: each operation is downloaded once
      expect(source.opsServed).to.equal(target.range.end - target.range.start)
      expect(source.requests.filter(r => r.type === 'boundary')).to.deep.equal([{ type: 'boundary', size: target.range.end, start: target.range.start }])
      await db.close()
      const reopened = await openFull(kind, opts)
      await expectSynced(reopened, server, target)
      expect(reopened.syncBoundary).to.equal(server.db.syncBoundary)
    })
  }

  type CompactOpen = (o: DbOptions) => Promise<CompactDb<any>>
  const compacts: Array<[string, 'immutable' | 'keyless', CompactOpen]> = [
    ['immutable', 'immutable', async o => CompactImmutableDb.open(o)],
    ['keyless', 'keyless', async o => CompactKeylessDb.open(o)]
  ]
  for (const [name, full, open] of compacts) {
    for (const floor of ['zero', 'half'] as const) {
      it(`compact ${name}: syncs the tip of a full server (floor ${floor === 'zero' ? '0' : '> 0'}, ${floor === 'zero' ? 'unpruned' : 'pruned'}), durable on reopen`, async () => {
        const server = await serverWith(full, 150, { seed: 13, floor })
        if (floor === 'half') { await server.db.prune(server.db.syncBoundary) }
        const opts = client()
        const db = await open(opts)
        const ct = { root: server.db.opsRoot, size: server.db.size }
        const source = new CountingSource(new LocalSource(server.db))
        const synced = await syncDatabase({ kind: compactSync(db), target: compactToTarget(ct), source })
        expect(synced).to.equal(db)
        expect(db.root).to.deep.equal(ct.root)
        expect(db.size).to.equal(ct.size)
        expect(db.inactivityFloor).to.equal(server.db.inactivityFloor)
        expect(db.metadata).to.deep.equal(server.db.metadata)
        // one boundary request for the last commit and its pins
        expect(source.requests).to.deep.equal([{ type: 'boundary', size: ct.size, start: ct.size - 1 }])
        const reopened = await open(opts)
        expect(reopened.root).to.deep.equal(ct.root)
        expect(reopened.inactivityFloor).to.equal(server.db.inactivityFloor)
        expect(reopened.metadata).to.deep.equal(server.db.metadata)
      })
    }

    it(`compact ${name}: syncs from a compact server (CompactSource) and keeps building on the synced tip`, async () => {
      const serverDb = await open({})
      const fullTwin = await openFull(full) as ImmutableDb | KeylessDb
      for (let i = 0; i < 5; i++) {
        for (const d of [serverDb, fullTwin]) { await oneBatch(d, full, i + 1, Math.max(d.inactivityFloor, d.size - 2), 3 + i) }
      }
      // the compact server has the root of the full database with the same history
      expect(serverDb.root).to.deep.equal(fullTwin.opsRoot)
      const opts = client()
      const db = await open(opts)
      const ct = serverDb.syncTarget()
      await syncDatabase({ kind: compactSync(db), target: compactToTarget(ct), source: new CompactSource(serverDb) })
      expect(db.syncTarget()).to.deep.equal(ct)
      expect(db.inactivityFloor).to.equal(serverDb.inactivityFloor)
      expect(db.metadata).to.deep.equal(serverDb.metadata)
      // the same next batch on both gives the same root
      const next = async (d: CompactDb<any>): Promise<Digest> => {
        const b = d.newBatch().withInactivityFloor(d.inactivityFloor)
        if (b instanceof CompactImmutableBatch) { b.set(keyOf(999), fill(9)) } else if (b instanceof CompactKeylessBatch) { b.append(fill(9)) }
        await d.apply(await b.merkleize())
        return d.root
      }
      expect(await next(db)).to.deep.equal(await next(serverDb))
    })
  }
})

// ---------------------------------------------------------------------------
// 2. target updates while syncing

describe('sync engine: target updates while syncing', function () {
  this.timeout(60_000)

  for (const kind of FULL_KINDS) {
    it(`${kind}: three updates mid-sync, the last moving the floor past in-flight requests, end at the last target`, async () => {
      const big = isCurrent(kind)
      const server = await serverWith(kind, big ? 700 : 160, { seed: 21 })
      const targets: Target[] = [server.target()]
      for (const grow of big ? [40, 120, 300] : [6, 20, 45]) {
        await server.growTo(server.db.size + grow)
        targets.push(server.target())
      }
      const held = new HeldSource(new LocalSource(server.db))
      const updates = new Channel<Target>()
      const progress: SyncProgress[] = []
      const batch = big ? 48 : 4
      const run = syncFull(kind, targets[0], held, { updates, fetchBatchSize: batch, maxOutstandingRequests: 8, onProgress: p => progress.push(p), db: client() })
      const synced = (): number => progress[progress.length - 1]?.synced ?? 0
      const requestedFor = (t: Target) => () => held.requests.some(r => r.size === t.range.end)

      // the first requests complete: some operations are journaled
      await held.waitHeld(initialRequests(targets[0], batch, 8))
      held.release(h => held.live.sort(byStart).slice(0, 3).includes(h))
      await until(() => synced() > batch, 'progress on the first target')

      // update 1; then answers for the old size arrive (verified against the retained root)
      await updates.send(targets[1])
      await until(requestedFor(targets[1]), 'requests for target 1')
      const late = held.release(h => h.request.size === targets[0].range.end)
      expect(late.filter(h => h.signal?.aborted !== true).length).to.be.greaterThan(0)

      // update 2 while a few fresh requests complete
      await updates.send(targets[2])
      await until(requestedFor(targets[2]), 'requests for target 2')
      held.release(h => h.request.size === targets[1].range.end)

      // update 3 moves the floor past requests that are still in flight
      const inFlight = held.live.filter(h => h.request.start <= targets[3].range.start)
      expect(inFlight.length, 'requests in flight below the last floor').to.be.greaterThan(0)
      await updates.send(targets[3])
      await until(requestedFor(targets[3]), 'requests for target 3')
      expect(inFlight.every(h => h.signal?.aborted === true), 'superseded requests aborted').to.equal(true)

      held.open()
      const db = await run
      await expectSynced(db, server, targets[3])
      // the boundary of every adopted target was fetched for its own size (pins re-fetched after each update)
      for (const t of targets) {
        expect(held.requests.some(r => r.type === 'boundary' && r.size === t.range.end && r.start === t.range.start)).to.equal(t.range.start > 0)
      }
    })
  }

  it('answers for a superseded size are verified against the retained root and reused (not re-requested)', async () => {
    const server = await serverWith('keyless', 120, { seed: 22, floor: 'zero' })
    const old = targetOf(server.db, 0)
    await server.growTo(server.db.size + 30)
    const next = targetOf(server.db, 0)
    const held = new HeldSource(new LocalSource(server.db))
    const updates = new Channel<Target>()
    const run = syncFull('keyless', old, held, { updates, fetchBatchSize: 10, maxOutstandingRequests: 5 })
    await held.waitHeld(5)
    // requests above the new start survive the update (the one at the start is re-issued)
    const oldRanges = held.live.filter(h => h.request.start > next.range.start)
      .map(h => [h.request.start, h.request.start + (h.request.type === 'operations' ? h.request.maxOps : 1)])
    expect(oldRanges.length).to.equal(4)
    await updates.send(next)
    await until(() => held.requests.some(r => r.size === next.range.end), 'requests for the new target')
    held.open()
    const db = await run
    await expectSynced(db, server, next)
    // nothing the old requests covered was asked again for the new size
    const again = held.requests.filter(r => r.size === next.range.end && oldRanges.some(([s, e]) => r.start >= s && r.start < e))
    expect(again).to.deep.equal([])
    expect(held.requests.filter(r => r.size === next.range.end).every(r => r.start === 0 || r.start >= 50)).to.equal(true)
  })

  it('without retained roots, late answers for a superseded size are dropped and re-requested', async () => {
    const server = await serverWith('keyless', 120, { seed: 22, floor: 'zero' })
    const old = targetOf(server.db, 0)
    await server.growTo(server.db.size + 30)
    const next = targetOf(server.db, 0)
    const held = new HeldSource(new LocalSource(server.db))
    const updates = new Channel<Target>()
    const run = syncFull('keyless', old, held, { updates, fetchBatchSize: 10, maxOutstandingRequests: 5, maxRetainedRoots: 0 })
    await held.waitHeld(5)
    await updates.send(next)
    await until(() => held.requests.some(r => r.size === next.range.end), 'requests for the new target')
    held.open()
    const db = await run
    await expectSynced(db, server, next)
    // every location of the new target was requested for the new size
    const covered = new Set<number>()
    for (const r of held.requests.filter(r => r.size === next.range.end)) {
      for (let l = r.start; l < r.start + (r.type === 'operations' ? r.maxOps : 1); l++) { covered.add(l) }
    }
    for (let l = 0; l < next.range.end; l++) { expect(covered.has(l), `location ${l}`).to.equal(true) }
  })
})

// ---------------------------------------------------------------------------
// 5. the reference's scenarios (commonware `storage/src/qmdb/{any,current,immutable,keyless}/sync/tests.rs`), shared ones run for every kind

const SYNC_CASES: Array<[number, number]> = [[10, 1], [10, 20], [1000, 1], [1000, 3], [1000, 999], [1000, 100], [1000, 1000], [1000, 1001]]
const UPDATE_CASES: Array<[number, number]> = [[1, 1], [1, 2], [1, 100], [2, 1], [2, 2], [2, 100], [20, 10], [100, 1], [100, 2], [100, 100], [100, 1000]]

describe('sync engine: reference scenarios shared by any / current / immutable / keyless (commonware `storage/src/qmdb/{any,current,immutable,keyless}/sync/tests.rs`)', function () {
  this.timeout(60_000)

  for (const kind of FULL_KINDS) {
    describe(kind, () => {
      it('test_sync_source_fails', async () => {
        const err = await syncError(syncFull(kind, { root: fill(0), range: { start: 0, end: 5 } }, new FailSource(), { fetchBatchSize: 2, maxOutstandingRequests: 2 }))
        expect(err.code).to.equal('Source')
        expect((err.cause as ServeError).code).to.equal('Unavailable')
      })

      it('test_sync (8 cases of target ops and fetch batch size)', async () => {
        for (const [ops, fetch] of SYNC_CASES) {
          const server = await makeServer(kind, { seed: ops + fetch })
          await server.step()
          await server.growTo(ops)
          await server.db.prune(server.db.syncBoundary)
          const target = server.target()
          const opts = client()
          const db = await syncFull(kind, target, new LocalSource(server.db), { db: opts, fetchBatchSize: fetch, maxOutstandingRequests: 1 })
          await expectSynced(db, server, target)
          await db.close()
          const reopened = await openFull(kind, opts)
          expect([reopened.size, reopened.inactivityFloor, reopened.opsRoot, reopened.root]).to.deep.equal([target.range.end, server.db.inactivityFloor, target.root, server.db.root])
        }
      })

      it('test_sync_subset_of_target_database', async () => {
        const server = await serverWith(kind, 400, { seed: 31 })
        const older = server.target()
        // one more batch writing a fresh key (or value) after the synced range
        const fresh = keyOf(1_000_000)
        const d = server.db
        if (d instanceof AnyDb) {
          await d.apply(await d.newBatch().update(fresh, fill(1)).merkleize())
        } else if (d instanceof ImmutableDb) {
          await d.apply(await d.newBatch().set(fresh, fill(1)).withInactivityFloor(d.inactivityFloor).merkleize())
        } else {
          await d.apply(await d.newBatch().append(fill(1)).withInactivityFloor(d.inactivityFloor).merkleize())
        }
        server.record()
        const db = await syncFull(kind, older, new LocalSource(server.db), { fetchBatchSize: 10, maxOutstandingRequests: 1 })
        await expectSynced(db, server, older)
        expect(db.syncBoundary).to.equal(older.range.start)
        if (db instanceof AnyDb || db instanceof ImmutableDb) {
          expect(await db.get(fresh)).to.equal(undefined)
        } else {
          expect((await codeOf(db.get(older.range.end)))).to.equal('LocationOutOfBounds')
        }
      })

      it('test_sync_use_existing_db_partial_match', async () => {
        const opts = client()
        await replica(kind, 32, 300, opts)
        const server = await serverWith(kind, 300, { seed: 32 })
        const partial = server.db.size
        await server.growTo(partial + 40)
        const target = server.target()
        const source = new CountingSource(new LocalSource(server.db))
        const db = await syncFull(kind, target, source, { db: opts, fetchBatchSize: 10, maxOutstandingRequests: 1 })
        await expectSynced(db, server, target)
        // only the boundary (if the range starts above 0) and the missing suffix were downloaded
        expect(source.opsServed).to.equal((target.range.start > 0 ? 1 : 0) + target.range.end - partial)
      })

      it('test_sync_use_existing_db_exact_match (an always-failing source is never asked)', async () => {
        const opts = client()
        await replica(kind, 33, enough(kind, 300), opts, true)
        const server = await serverWith(kind, enough(kind, 300), { seed: 33 })
        await server.db.prune(server.db.syncBoundary)
        const target = server.target()
        expect(target.range.start).to.be.greaterThan(0)
        const fail = new FailSource()
        const db = await syncFull(kind, target, fail, { db: opts, fetchBatchSize: 10, maxOutstandingRequests: 1 })
        expect(fail.calls).to.equal(0)
        await expectSynced(db, server, target)
        expect(db.syncBoundary).to.equal(target.range.start)
      })

      it('test_target_update_lower_bound_decrease (ignored)', async () => {
        const server = await serverWith(kind, 100, { seed: 34 })
        const t = { root: server.db.opsRoot, range: { start: server.db.inactivityFloor, end: server.db.size } }
        expect(t.range.start).to.be.greaterThan(0)
        const updates = new Channel<Target>()
        await updates.send({ root: t.root, range: { start: t.range.start - 1, end: t.range.end + 1 } })
        const db = await syncFull(kind, t, new LocalSource(server.db), { updates, fetchBatchSize: 5, maxOutstandingRequests: 10, maxRetainedRoots: 1 })
        expect(db.opsRoot).to.deep.equal(server.db.opsRoot)
        expect(db.root).to.deep.equal(server.db.root)
        expect(updates.length).to.equal(0) // it was read, and dropped
      })

      it('test_target_update_upper_bound_decrease (ignored)', async () => {
        const server = await serverWith(kind, 100, { seed: 35 })
        const t = server.target()
        const updates = new Channel<Target>()
        await updates.send({ root: t.root, range: { start: t.range.start, end: t.range.end - 1 } })
        const db = await syncFull(kind, t, new LocalSource(server.db), { updates, fetchBatchSize: 5, maxOutstandingRequests: 10, maxRetainedRoots: 1 })
        await expectSynced(db, server, t)
        expect(updates.length).to.equal(0)
      })

      it('test_target_update_bounds_increase', async () => {
        const server = await serverWith(kind, 100, { seed: 36 })
        const initial = server.target()
        await server.step()
        const newer = server.target()
        const updates = new Channel<Target>()
        await updates.send(newer)
        const db = await syncFull(kind, initial, new LocalSource(server.db), { updates, fetchBatchSize: 1, maxOutstandingRequests: 1, maxRetainedRoots: 1 })
        await expectSynced(db, server, newer)
        expect(db.syncBoundary).to.equal(newer.range.start)
      })

      it('test_target_update_on_done_client', async () => {
        const server = await serverWith(kind, 10, { seed: 37 })
        const t = server.target()
        const updates = new Channel<Target>()
        const db = await syncFull(kind, t, new LocalSource(server.db), { updates, fetchBatchSize: 20, maxOutstandingRequests: 10 })
        await updates.send({ root: fill(2), range: { start: t.range.start + 1, end: t.range.end + 1 } }).catch(() => {})
        await expectSynced(db, server, t)
        expect(db.syncBoundary).to.equal(t.range.start)
      })

      it('test_target_update_prune_only_ignored', async () => {
        const server = await serverWith(kind, 100, { seed: 38 })
        const t = { root: server.db.opsRoot, range: { start: server.db.inactivityFloor, end: server.db.size } }
        expect(t.range.start).to.be.greaterThan(1)
        const updates = new Channel<Target>()
        await updates.send({ root: t.root, range: { start: t.range.start + 1, end: t.range.end } })
        await updates.send({ root: t.root, range: { start: t.range.start + 2, end: t.range.end } })
        // adopting either would fail with SyncTargetRootUnchanged (same root)
        const db = await syncFull(kind, t, new LocalSource(server.db), { updates, fetchBatchSize: 5, maxOutstandingRequests: 10, maxRetainedRoots: 1 })
        expect(db.opsRoot).to.deep.equal(t.root)
        expect(db.pruningBoundary).to.be.at.most(t.range.start)
      })

      it('test_sync_waits_for_explicit_finish', async () => {
        const server = await serverWith(kind, 10, { seed: 39 })
        const initial = server.target()
        await server.growTo(server.db.size + 5)
        const updated = server.target()
        const updates = new Channel<Target>({ capacity: 1 })
        const finish = new Channel<void>({ capacity: 1 })
        const reached = new Channel<Target>({ capacity: 1 })
        let settled = false
        const run = syncFull(kind, initial, new LocalSource(server.db), { updates, finish, reached, fetchBatchSize: 10, maxOutstandingRequests: 1, maxRetainedRoots: 0 })
        run.then(() => { settled = true }, () => { settled = true })
        expect(await reached.recv()).to.deep.equal(initial)
        await settle(200) // let the engine run on
        expect(settled, 'completed before the finish signal').to.equal(false)
        await updates.send(updated)
        expect(await reached.recv()).to.deep.equal(updated)
        await settle(200)
        expect(settled, 'completed before the finish signal (updated target)').to.equal(false)
        await finish.send()
        const db = await run
        await expectSynced(db, server, updated)
        expect(db.syncBoundary).to.equal(updated.range.start)
      })

      it('test_sync_reports_progress_for_reached_targets_before_explicit_finish', async () => {
        const server = await serverWith(kind, 40, { seed: 40 })
        const targets = [server.target()]
        for (let i = 0; i < 2; i++) {
          await server.growTo(server.db.size + 8)
          targets.push(server.target())
        }
        const updates = new Channel<Target>()
        const finish = new Channel<void>({ capacity: 1 })
        const reached = new Channel<Target>()
        const progress: SyncProgress[] = []
        const run = syncFull(kind, targets[0], new LocalSource(server.db), { updates, finish, reached, fetchBatchSize: 3, maxOutstandingRequests: 2, onProgress: p => progress.push(p) })
        for (let i = 0; i < targets.length; i++) {
          expect(await reached.recv()).to.deep.equal(targets[i])
          // the last progress report before the notice shows the reached target complete
          const last = progress[progress.length - 1]
          expect([last.target, last.synced, last.total]).to.deep.equal([targets[i], targets[i].range.end - targets[i].range.start, targets[i].range.end - targets[i].range.start])
          if (i + 1 < targets.length) { await updates.send(targets[i + 1]) }
        }
        await finish.send()
        await expectSynced(await run, server, targets[2])
      })

      it('test_sync_handles_early_finish_signal', async () => {
        const server = await serverWith(kind, 30, { seed: 41 })
        const t = server.target()
        const finish = new Channel<void>({ capacity: 1 })
        const reached = new Channel<Target>({ capacity: 1 })
        await finish.send()
        const db = await syncFull(kind, t, new LocalSource(server.db), { finish, reached, fetchBatchSize: 4, maxOutstandingRequests: 2 })
        await expectSynced(db, server, t)
        expect(reached.tryRecv()).to.deep.equal({ value: t })
      })

      it('test_sync_fails_when_finish_sender_dropped', async () => {
        const server = await serverWith(kind, 30, { seed: 42 })
        const finish = new Channel<void>()
        finish.close()
        const err = await syncError(syncFull(kind, server.target(), new LocalSource(server.db), { finish }))
        expect(err.code).to.equal('FinishChannelClosed')
      })

      it('test_sync_allows_dropped_reached_target_receiver', async () => {
        const server = await serverWith(kind, 30, { seed: 43 })
        const reached = new Channel<Target>({ capacity: 1 })
        reached.close()
        const db = await syncFull(kind, server.target(), new LocalSource(server.db), { reached })
        await expectSynced(db, server, server.target())
      })

      it('test_target_update_during_sync (11 cases of initial and additional ops)', async () => {
        for (const [initial, additional] of UPDATE_CASES) {
          const server = await makeServer(kind, { seed: 50 + initial * 7 + additional })
          await server.step()
          await server.growTo(initial)
          const first = server.target()
          const held = new HeldSource(new LocalSource(server.db))
          const updates = new Channel<Target>()
          const finish = new Channel<void>({ capacity: 1 })
          const progress: SyncProgress[] = []
          const run = syncFull(kind, first, held, { updates, finish, fetchBatchSize: 1, maxOutstandingRequests: 10, maxRetainedRoots: 1, onProgress: p => progress.push(p) })
          // step until some operations are journaled
          await held.waitHeld(1)
          held.release(h => h.request.start === first.range.start)
          await until(() => (progress[progress.length - 1]?.synced ?? 0) > 0, 'first operations')
          await server.growTo(server.db.size + additional)
          const second = server.target()
          await updates.send(second)
          await finish.send()
          held.open()
          const db = await run
          await expectSynced(db, server, second)
        }
      })

      it('test_sync_database_persistence (newer target, then an older one into the same storage)', async () => {
        const older = await serverWith(kind, 60, { seed: 44 })
        const newer = await serverWith(kind, 60, { seed: 44 })
        await newer.growTo(newer.db.size + 25)
        const olderTarget = older.target()
        const newerTarget = newer.target()
        const opts = client()
        const a = await syncFull(kind, newerTarget, new LocalSource(newer.db), { db: opts, fetchBatchSize: 5, maxOutstandingRequests: 1 })
        await expectSynced(a, newer, newerTarget)
        await a.close()
        const b = await syncFull(kind, olderTarget, new LocalSource(older.db), { db: opts, fetchBatchSize: 5, maxOutstandingRequests: 1 })
        await expectSynced(b, older, olderTarget)
        expect(b.syncBoundary).to.equal(olderTarget.range.start)
        await b.close()
        const reopened = await openFull(kind, opts)
        await expectSynced(reopened, older, olderTarget)
        expect(reopened.syncBoundary).to.equal(olderTarget.range.start)
      })

      it('test_sync_post_sync_usability (the same batch on server and synced database gives the same root)', async () => {
        const server = await serverWith(kind, 50, { seed: 45 })
        const t = server.target()
        const opts = client()
        const db = await syncFull(kind, t, new LocalSource(server.db), { db: opts, fetchBatchSize: 100, maxOutstandingRequests: 1 })
        const apply = async (d: FullDb): Promise<void> => {
          if (d instanceof AnyDb) {
            await d.apply(await d.newBatch().update(keyOf(7), fill(7)).update(keyOf(5000), fill(8)).delete(server.keys[0]).merkleize())
          } else if (d instanceof ImmutableDb) {
            await d.apply(await d.newBatch().set(keyOf(5000), fill(8)).withInactivityFloor(d.inactivityFloor).merkleize())
          } else {
            await d.apply(await d.newBatch().append(fill(8)).withInactivityFloor(d.inactivityFloor).merkleize())
          }
          await d.commit()
        }
        await apply(db)
        await apply(server.db)
        expect(db.size).to.be.greaterThan(t.range.end)
        expect(db.opsRoot).to.not.deep.equal(t.root)
        expect(db.opsRoot).to.deep.equal(server.db.opsRoot)
        expect(db.root).to.deep.equal(server.db.root)
        await db.close()
        expect((await openFull(kind, opts)).root).to.deep.equal(server.db.root)
      })

      it('test_sync_retries_bad_pinned_nodes', async () => {
        const server = await prunedServer(kind, enough(kind, 60), 46)
        const t = server.target()
        let corrupted = false
        const source = new LyingSource(new LocalSource(server.db), (_req, honest) => {
          if (corrupted || honest.type !== 'boundary' || honest.pinnedNodes.length === 0) { return undefined }
          corrupted = true
          return { ...honest, pinnedNodes: [new Uint8Array(32).fill(0xff), ...honest.pinnedNodes.slice(1)] }
        }, { lieOn: () => true })
        const db = await syncFull(kind, t, source, { fetchBatchSize: 100, maxOutstandingRequests: 1 })
        await expectSynced(db, server, t)
        expect(source.lies.map(v => v.calls)).to.deep.equal([[false]])
        expect(source.truths.filter(v => v.request.type === 'boundary').map(v => v.calls)).to.deep.equal([[true]])
      })

      it('test_sync_waits_for_boundary_retry_after_target_update', async () => {
        const server = await serverWith(kind, enough(kind, 100), { seed: 47 })
        await server.db.prune(server.db.syncBoundary)
        const oldTarget = { root: server.db.opsRoot, range: { start: server.db.inactivityFloor, end: server.db.size } }
        expect(oldTarget.range.start).to.be.greaterThan(0)
        await server.growTo(server.db.size + 3)
        const newTarget = { root: server.db.opsRoot, range: { start: server.db.inactivityFloor, end: server.db.size } }
        const inner = new LocalSource(server.db)
        let releaseGap!: () => void
        const gapReleased = new Promise<void>(resolve => { releaseGap = resolve })
        let releaseRetry!: () => void
        const retryReleased = new Promise<void>(resolve => { releaseRetry = resolve })
        let boundaryAttempts = 0
        let retryHeld = false
        let servedWhileHeld = 0
        const verdicts: boolean[] = []
        const source: Source = {
          async serve (request, options): Promise<Served> {
            if (request.size === oldTarget.range.end) {
              if (request.type === 'boundary') {
                // never answered: the update cancels it
                await new Promise<void>(resolve => options.signal?.addEventListener('abort', () => { resolve() }))
                throw new ServeError('Aborted')
              }
              await gapReleased
            }
            if (request.type === 'boundary' && request.start === newTarget.range.start) {
              if (boundaryAttempts++ === 0) {
                // an operations answer proven for the old size
                const { response } = await inner.serve({ type: 'operations', size: oldTarget.range.end, start: request.start, maxOps: 1 }, {})
                return { response, feedback: v => { verdicts.push(v) } }
              }
              retryHeld = true
              await retryReleased
            } else if (retryHeld) {
              servedWhileHeld++
            }
            return inner.serve(request, {})
          }
        }
        const updates = new Channel<Target>({ capacity: 1 })
        const finish = new Channel<void>({ capacity: 1 })
        const reached = new Channel<Target>({ capacity: 1 })
        const progress: SyncProgress[] = []
        await updates.send(newTarget)
        await finish.send()
        const run = syncFull(kind, oldTarget, source, { updates, finish, reached, fetchBatchSize: 1, maxOutstandingRequests: 2, maxRetainedRoots: 1, onProgress: p => progress.push(p) })
        releaseGap()
        await until(() => retryHeld && servedWhileHeld >= 4, 'other results while the boundary retry is held')
        // the journal cannot advance past the missing boundary, and nothing was reported reached
        expect(progress.filter(p => p.target === newTarget).every(p => p.synced === 0)).to.equal(true)
        expect(reached.tryRecv()).to.equal('empty')
        expect(verdicts).to.deep.equal([false])
        releaseRetry()
        const db = await run
        expect(reached.tryRecv()).to.deep.equal({ value: newTarget })
        await expectSynced(db, server, newTarget)
      })
    })
  }
})

describe('sync engine: reference scenarios specific to any / current / immutable / keyless', function () {
  this.timeout(60_000)

  it('test_sync_empty_operations_no_panic (empty appends are no-ops; an empty answer is rejected, never stored)', async () => {
    const mem = new MemoryJournal(0)
    mem.append([])
    expect([mem.start, mem.size]).to.deep.equal([0, 0])
    const full = await FullSyncJournal.open(client(), { start: 5, end: 10 })
    full.append([])
    expect([full.start, full.size]).to.deep.equal([5, 5])
    const server = await serverWith('any', 40, { seed: 60 })
    const t = server.target()
    const source = new LyingSource(new LocalSource(server.db), (_req, honest) => honest.type === 'operations' ? { ...honest, ops: [] } : undefined)
    const db = await syncFull('any', t, source, { fetchBatchSize: 10 })
    await expectSynced(db, server, t)
    expect(source.lies.length).to.be.greaterThan(0)
    expect(source.lies.every(v => v.calls.join() === 'false')).to.equal(true)
  })

  for (const [name, build] of [['empty_to_empty', 0], ['empty_to_nonempty', 1], ['nonempty_to_nonempty_partial_match', 2], ['nonempty_to_nonempty_exact_match', 3]] as const) {
    it(`test_from_sync_result_${name}`, async () => {
      const opts = client()
      let server: Server
      if (build === 0) {
        server = await makeServer('any', { seed: 61 })
      } else {
        if (build >= 2) { await replica('any', 61, 200, opts, true) }
        server = await serverWith('any', 200, { seed: 61 })
        if (build === 2) { await server.growTo(server.db.size + 20) }
        await server.db.prune(server.db.syncBoundary)
      }
      const range = { start: server.db.syncBoundary, end: server.db.size }
      const journal = await FullSyncJournal.open(opts, range)
      if (build === 3) { expect(journal.size).to.equal(range.end) }
      const missing = []
      for (let l = journal.size; l < range.end; l++) { missing.push(await server.db.readOpBytes(l)) }
      journal.append(missing)
      const pins = range.start > 0 ? await server.db.pinnedNodesAt(range.start) : undefined
      const db = await AnyDb.fromSyncResult(opts, journal, pins, range, server.db.opsRoot, 16)
      await db.commitSyncResult()
      await expectSynced(db, server, server.target())
      expect(db.syncBoundary).to.equal(range.start)
      // usable: the same batch on both gives the same root
      for (const d of [db, server.db as AnyDb]) {
        await d.apply(await d.newBatch().update(keyOf(1), fill(1)).update(keyOf(9999), fill(2)).merkleize())
      }
      expect(db.opsRoot).to.deep.equal(server.db.opsRoot)
    })
  }

  it('test_current_mmb_sync_with_pruned_full_chunk_reopens', async () => {
    const src = await CurrentDb.open()
    const key = fill(7)
    for (let round = 0; round < 100; round++) {
      await src.apply(await src.newBatch().update(key, fill(round)).merkleize())
    }
    expect(src.inactivityFloor).to.be.at.least(256)
    await src.prune(src.syncBoundary)
    const target = targetOf(src)
    expect(target.range.start).to.be.at.least(256)
    const opts = client()
    const db = await syncDatabase({ kind: currentSync(opts), target, source: new LocalSource(src), fetchBatchSize: 64, maxOutstandingRequests: 4 })
    expect([db.opsRoot, db.root, db.syncBoundary]).to.deep.equal([target.root, src.root, target.range.start])
    expect(await db.get(key)).to.deep.equal(fill(99))
    await db.close()
    const reopened = await CurrentDb.open(opts)
    expect([reopened.opsRoot, reopened.root, reopened.syncBoundary]).to.deep.equal([target.root, src.root, target.range.start])
    expect(await reopened.get(key)).to.deep.equal(fill(99))
  })

  const localPins: Array<[FullKind, (opts: DbOptions) => Promise<FullDb>]> = [
    ['current', async opts => {
      const db = await CurrentDb.open(opts)
      for (let round = 0; round < 300; round++) { await db.apply(await db.newBatch().update(fill(9), fill(round & 0xff)).merkleize()) }
      await db.commit()
      return db
    }],
    ['immutable', async opts => (await serverWith('immutable', 300, { seed: 62, db: opts })).db],
    ['keyless', async opts => (await serverWith('keyless', 300, { seed: 63, db: opts })).db]
  ]
  for (const [kind, build] of localPins) {
    it(`test_${kind}_local_pinned_nodes_rejects_target_before_local_lower_bound`, async () => {
      const opts = client()
      const db = await build(opts)
      const prune = isCurrent(kind) ? 256 : 128
      expect(db.syncBoundary).to.be.at.least(prune)
      await db.prune(prune)
      const end = db.size
      const syncKind = syncKindOf(kind, opts)
      const journal = await syncKind.openJournal({ start: prune, end })
      expect([journal.start, journal.size]).to.deep.equal([prune, end])
      const stale = { root: db.opsRoot, range: { start: prune - 1, end } }
      expect(await syncKind.localPinnedNodes(journal, stale)).to.equal(undefined)
      const matching = { root: db.opsRoot, range: { start: prune, end } }
      expect(await syncKind.localPinnedNodes(journal, matching)).to.deep.equal(await db.pinnedNodesAt(prune))
      // a wrong root is not matched either
      expect(await syncKind.localPinnedNodes(journal, { root: fill(1), range: matching.range })).to.equal(undefined)
    })
  }

  for (const kind of ['immutable', 'keyless'] as const) {
    it(`test_sync_empty_to_nonempty (${kind}: a server with one empty batch and metadata)`, async () => {
      const server = await makeServer(kind)
      const d = server.db as any
      await d.apply(await d.newBatch().withMetadata(fill(5)).merkleize())
      server.record()
      const t = server.target()
      expect(t.range.end).to.equal(2)
      const db = await syncFull(kind, t, new LocalSource(server.db))
      await expectSynced(db, server, t)
      expect(db.metadata).to.deep.equal(fill(5))
    })
  }

  it('test_sync_nonzero_floor (immutable: keys below the floor are not in the synced snapshot)', async () => {
    const src = await ImmutableDb.open()
    const early = Array.from({ length: 50 }, (_, i) => keyOf(i))
    const late = Array.from({ length: 50 }, (_, i) => keyOf(100 + i))
    const b1 = src.newBatch()
    for (const k of early) { b1.set(k, sha(k)) }
    await src.apply(await b1.merkleize())
    const firstEnd = src.size
    const b2 = src.newBatch().withMetadata(fill(3)).withInactivityFloor(firstEnd)
    for (const k of late) { b2.set(k, sha(k)) }
    await src.apply(await b2.merkleize())
    expect(src.inactivityFloor).to.equal(firstEnd)
    const target = { root: src.opsRoot, range: { start: src.pruningBoundary, end: src.size } }
    const db = await syncDatabase({ kind: immutableSync(), target, source: new LocalSource(src), fetchBatchSize: 100, maxOutstandingRequests: 1 })
    expect([db.opsRoot, db.inactivityFloor]).to.deep.equal([target.root, firstEnd])
    for (const k of late) { expect(await db.get(k)).to.deep.equal(sha(k)) }
    for (const k of early) { expect(await db.get(k)).to.equal(undefined) }
  })

  it('test_replay_sync_single_op_range (keyless: only the last commit, whose floor is itself, remains)', async () => {
    const src = await KeylessDb.open()
    await src.apply(await src.newBatch().append(fill(1)).append(fill(2)).merkleize())
    await src.apply(await src.newBatch().withMetadata(fill(4)).withInactivityFloor(src.size).merkleize())
    await src.prune(src.inactivityFloor)
    expect([src.pruningBoundary, src.size]).to.deep.equal([src.inactivityFloor, src.inactivityFloor + 1])
    const target = targetOf(src)
    const db = await syncDatabase({ kind: keylessSync(), target, source: new LocalSource(src), fetchBatchSize: 2, maxOutstandingRequests: 2 })
    expect([db.opsRoot, db.pruningBoundary, db.size, db.inactivityFloor, db.metadata]).to.deep.equal([target.root, target.range.start, target.range.end, src.inactivityFloor, fill(4)])
  })

  it('test_engine_rejects_invalid_responses (keyless: every reject arm)', async () => {
    const server = await serverWith('keyless', 40, { seed: 64, floor: 'zero' })
    const t = targetOf(server.db, 0)
    const inner = new LocalSource(server.db)
    const badProof = (_r: Request, h: Response): Response => ({ ...h, proof: { ...h.proof, digests: h.proof.digests.map((d, i) => i === 0 ? fill(0xee) : d) } })
    // a bad proof from a source without feedback is terminal
    expect((await syncError(syncFull('keyless', t, new LyingSource(inner, badProof, { feedback: false, lieOn: () => true })))).code).to.equal('InvalidResponse')
    // with feedback it is reported and retried
    let once = false
    const retrying = new LyingSource(inner, (r, h) => {
      if (once) { return undefined }
      once = true
      return badProof(r, h)
    }, { lieOn: () => true })
    await expectSynced(await syncFull('keyless', t, retrying, { maxOutstandingRequests: 1 }), server, t)
    expect(retrying.verdicts.slice(0, 2).map(v => v.calls)).to.deep.equal([[false], [true]])
    // an empty answer, too many operations, a boundary-shaped answer: terminal without feedback
    const arms: Array<(r: Request, h: Response) => Response> = [
      (_r, h) => ({ ...h, ops: [] }) as Response,
      (r, h) => h.type === 'operations' ? { ...h, ops: [...h.ops, h.ops[0]] } : h,
      (_r, h) => h.type === 'operations' ? { type: 'boundary', proof: h.proof, op: h.ops[0], pinnedNodes: [] } : h
    ]
    for (const arm of arms) {
      expect((await syncError(syncFull('keyless', t, new LyingSource(inner, arm, { feedback: false, lieOn: () => true })))).code).to.equal('InvalidResponse')
    }
  })
})

// ---------------------------------------------------------------------------
// compact sync scenarios (commonware `storage/src/qmdb/{any,current,immutable,keyless}/sync/tests.rs`)

type CompactKind = 'immutable' | 'keyless'
const openCompact = async (kind: CompactKind, o: DbOptions = {}): Promise<CompactDb<any>> => kind === 'immutable' ? CompactImmutableDb.open(o) : CompactKeylessDb.open(o)

/** One batch on a full or compact database of `kind`: one item, metadata, floor. */
async function oneBatch (db: ImmutableDb | KeylessDb | CompactDb<any>, kind: CompactKind, tag: number, floor: number, items = 1): Promise<void> {
  const b = (db as any).newBatch().withMetadata(fill(tag)).withInactivityFloor(floor)
  for (let i = 0; i < items; i++) {
    if (kind === 'immutable') { b.set(keyOf(tag * 1000 + i), sha(u64be(tag), u64be(i))) } else { b.append(sha(u64be(tag), u64be(i))) }
  }
  await db.apply(await b.merkleize())
  await db.commit()
}

async function compactSyncTo (db: CompactDb<any>, root: Digest, size: number, source: Source): Promise<CompactDb<any>> {
  return syncDatabase({ kind: compactSync(db), target: compactToTarget({ root, size }), source })
}

describe('sync engine: reference compact sync scenarios', function () {
  this.timeout(30_000)

  for (const kind of ['immutable', 'keyless'] as const) {
    describe(`compact ${kind}`, () => {
      it('test_compact_full_source_missing_reports_missing_source', async () => {
        const err = await syncError(compactSyncTo(await openCompact(kind), fill(1), 3, new LocalSource()))
        expect(err.code).to.equal('Source')
        expect((err.cause as ServeError).code).to.equal('MissingSource')
      })

      it('test_compact_sync_roundtrip', async () => {
        const full = await openFull(kind) as ImmutableDb | KeylessDb
        await oneBatch(full, kind, 1, 1, 3)
        const opts = client()
        const db = await compactSyncTo(await openCompact(kind, opts), full.opsRoot, full.size, new LocalSource(full))
        expect([db.root, db.metadata, db.inactivityFloor]).to.deep.equal([full.opsRoot, fill(1), 1])
        const reopened = await openCompact(kind, opts)
        expect([reopened.root, reopened.metadata, reopened.inactivityFloor, reopened.size]).to.deep.equal([full.opsRoot, fill(1), 1, full.size])
      })

      const recoveries: Array<[string, (r: Request, h: Response, codec: any) => Response]> = [
        ['test_compact_sync_recovers_after_invalid_proof', (_r, h) => ({ ...h, proof: { ...h.proof, digests: [...h.proof.digests, fill(3)] } })],
        ['test_compact_sync_recovers_after_tampered_commit_floor', (_r, h, codec) => {
          if (h.type !== 'boundary') { throw new Error('expected a boundary answer') }
          const op = codec.decode(h.op)
          return { ...h, op: codec.encode({ ...op, floor: op.floor + 1 }) }
        }],
        ['test_compact_sync_recovers_after_tampered_pinned_nodes', (_r, h) => h.type === 'boundary' ? { ...h, pinnedNodes: [fill(0xab), ...h.pinnedNodes.slice(1)] } : h],
        ['test_compact_sync_recovers_after_size_mismatch', (_r, h) => ({ ...h, proof: { ...h.proof, leaves: h.proof.leaves + 1 } })]
      ]
      for (const [name, tamper] of recoveries) {
        it(name, async () => {
          const full = await openFull(kind) as ImmutableDb | KeylessDb
          await oneBatch(full, kind, 1, 0, 2)
          await oneBatch(full, kind, 2, 2, 3)
          const opts = client()
          const source = new LyingSource(new LocalSource(full), (r, h) => tamper(r, h, full.codec), { lieOn: i => i === 0 })
          const db = await compactSyncTo(await openCompact(kind, opts), full.opsRoot, full.size, source)
          expect(source.verdicts.map(v => [v.lie, v.calls])).to.deep.equal([[true, [false]], [false, [true]]])
          expect([db.root, db.inactivityFloor, db.metadata]).to.deep.equal([full.opsRoot, 2, fill(2)])
          const reopened = await openCompact(kind, opts)
          expect(reopened.root).to.deep.equal(full.opsRoot)
        })
      }

      it('test_compact_full_source_serves_historical_target', async () => {
        const full = await openFull(kind) as ImmutableDb | KeylessDb
        await oneBatch(full, kind, 1, 1)
        const stale = { root: full.opsRoot, size: full.size }
        await oneBatch(full, kind, 2, 2)
        expect(full.opsRoot).to.not.deep.equal(stale.root)
        const db = await compactSyncTo(await openCompact(kind), stale.root, stale.size, new LocalSource(full))
        expect(db.root).to.deep.equal(stale.root)
        expect(db.root).to.not.deep.equal(full.opsRoot)
      })

      it('test_compact_source_reopen_rewind_regrow_and_stale_target', async () => {
        const sourceOpts = client()
        let src = await openCompact(kind, sourceOpts)
        await oneBatch(src, kind, 1, 1)
        const target1 = src.syncTarget()
        src = await openCompact(kind, sourceOpts)
        expect(src.syncTarget()).to.deep.equal(target1)
        const served1 = await compactSyncTo(await openCompact(kind), target1.root, target1.size, new CompactSource(src))
        expect([served1.root, served1.metadata, served1.inactivityFloor]).to.deep.equal([target1.root, fill(1), 1])

        src = await openCompact(kind, sourceOpts)
        await oneBatch(src, kind, 2, 2)
        const target2 = src.syncTarget()
        expect(target2).to.not.deep.equal(target1)
        await src.rewind(target1.size)
        expect(src.syncTarget()).to.deep.equal(target1)
        const served2 = await compactSyncTo(await openCompact(kind), target1.root, target1.size, new CompactSource(src))
        expect([served2.root, served2.metadata, served2.inactivityFloor]).to.deep.equal([target1.root, fill(1), 1])

        src = await openCompact(kind, sourceOpts)
        expect(src.syncTarget()).to.deep.equal(target1)
        await oneBatch(src, kind, 3, 2)
        const target3 = src.syncTarget()
        expect(target3.size).to.equal(target2.size)
        expect(target3.root).to.not.deep.equal(target2.root)
        const served3 = await compactSyncTo(await openCompact(kind), target3.root, target3.size, new CompactSource(src))
        expect([served3.root, served3.metadata, served3.inactivityFloor]).to.deep.equal([target3.root, fill(3), 2])

        src = await openCompact(kind, sourceOpts)
        // a divergent history of the same size cannot be verified; without feedback that is terminal
        const divergent = await syncError(compactSyncTo(await openCompact(kind), target2.root, target2.size, new CompactSource(src)))
        expect(divergent.code).to.equal('InvalidResponse')
        // a target below the tip is refused by the source
        const below = await syncError(compactSyncTo(await openCompact(kind), target1.root, target1.size, new CompactSource(src)))
        expect(below.code).to.equal('Source')
        expect((below.cause as ServeError).code).to.equal('ItemPruned')
      })

      it('test_compact_sync_reuses_pruned_partition', async () => {
        const opts = client()
        const seeded = await openCompact(kind, opts)
        let firstSize = 0
        for (let i = 1; i <= 3; i++) {
          await oneBatch(seeded, kind, i, seeded.inactivityFloor)
          if (firstSize === 0) { firstSize = seeded.size }
        }
        await seeded.prune(seeded.size)
        expect(await codeOf(seeded.rewind(firstSize))).to.equal('RewindBeyondHistory')
        const full = await openFull(kind) as ImmutableDb | KeylessDb
        await oneBatch(full, kind, 9, 0, 4)
        expect(full.size).to.not.equal(firstSize)
        const db = await compactSyncTo(await openCompact(kind, opts), full.opsRoot, full.size, new LocalSource(full))
        expect(db.root).to.deep.equal(full.opsRoot)
        const reopened = await openCompact(kind, opts)
        expect(reopened.root).to.deep.equal(full.opsRoot)
        // the imported state is the only checkpoint: older sizes are gone
        expect(await codeOf(reopened.rewind(firstSize))).to.equal('RewindBeyondHistory')
      })

      it('test_compact_sync_dropped_import_preserves_existing_state (prune rejected while pending; reopen keeps the old state)', async () => {
        const opts = client()
        const seeded = await openCompact(kind, opts)
        await oneBatch(seeded, kind, 1, 0)
        const targetA = seeded.syncTarget()
        const full = await openFull(kind) as ImmutableDb | KeylessDb
        await oneBatch(full, kind, 9, 0, 4)
        const { response } = await new LocalSource(full).serve({ type: 'boundary', size: full.size, start: full.size - 1 }, {})
        if (response.type !== 'boundary') { throw new Error('expected a boundary answer') }
        seeded.importWitness({ opBytes: response.op, size: full.size, pinnedNodes: response.pinnedNodes })
        expect(seeded.syncTarget()).to.deep.equal({ root: full.opsRoot, size: full.size })
        expect(await codeOf(seeded.prune(full.size))).to.not.equal('ok')
        expect(await codeOf(seeded.rewind(targetA.size))).to.not.equal('ok')
        const reopened = await openCompact(kind, opts)
        expect(reopened.syncTarget()).to.deep.equal(targetA)
      })

      it('test_compact_sync_dropped_import_preserves_existing_state: rewind to the imported size is rejected while the import is pending', async () => {
        const seeded = await openCompact(kind, client())
        await oneBatch(seeded, kind, 1, 0)
        const full = await openFull(kind) as ImmutableDb | KeylessDb
        await oneBatch(full, kind, 9, 0, 4)
        const { response } = await new LocalSource(full).serve({ type: 'boundary', size: full.size, start: full.size - 1 }, {})
        if (response.type !== 'boundary') { throw new Error('expected a boundary answer') }
        seeded.importWitness({ opBytes: response.op, size: full.size, pinnedNodes: response.pinnedNodes })
        expect(await codeOf(seeded.rewind(full.size))).to.not.equal('ok')
      })
    })
  }

  it('test_compact_sync_root_mismatch_preserves_existing_state (keyless: a proof for a non-canonical inactive-peak count)', async () => {
    const full = await KeylessDb.open()
    await oneBatch(full, 'keyless', 1, 0, 5)
    await oneBatch(full, 'keyless', 2, 7, 3) // size 12: peaks of 8 and 4 leaves (and the commit): several peaks
    const size = full.size
    const canonicalK = inactivePeaks(size, full.inactivityFloor)
    const { response } = await new LocalSource(full).serve({ type: 'boundary', size, start: size - 1 }, {})
    if (response.type !== 'boundary') { throw new Error('expected a boundary answer') }
    const mmr = Mmr.fromPeaks(size - 1, response.pinnedNodes)
    mmr.append([response.op])
    const otherK = canonicalK === 0 ? 1 : canonicalK - 1
    const forged = mmr.root(otherK)
    const forgedProof = await mmr.proof(size - 1, size, otherK)
    // the forged target is consistent with its proof, but not the canonical root
    expect(verifyProofAndPinnedNodes(forgedProof, size - 1, [response.op], response.pinnedNodes, forged)).to.equal(true)
    expect(forged).to.not.deep.equal(full.opsRoot)
    const opts = client()
    const dest = await CompactKeylessDb.open(opts)
    await oneBatch(dest, 'keyless', 5, 0)
    const before = dest.syncTarget()
    const source: Source = { serve: async () => ({ response: { ...response, proof: forgedProof } }) }
    const err = await syncError(compactSyncTo(dest, forged, size, source))
    expect(err.code).to.equal('RootMismatch')
    expect(dest.syncTarget()).to.deep.equal(before)
    expect((await CompactKeylessDb.open(opts)).syncTarget()).to.deep.equal(before)
  })
})

// ---------------------------------------------------------------------------
// unit tests: engine, requests, gaps, target, source, database, journal

/** A kind that counts its local-pins probes. */
function probing<DB> (kind: SyncKind<DB>): { kind: SyncKind<DB>, probes(): number } {
  let probes = 0
  return {
    kind: { ...kind, localPinnedNodes: async (j, t) => { probes++; return kind.localPinnedNodes(j, t) } },
    probes: () => probes
  }
}

describe('sync engine: reference unit tests (commonware `storage/src/qmdb/sync`)', function () {
  this.timeout(30_000)

  it('engine new_probes_local_pinned_nodes_when_journal_reaches_target', async () => {
    const opts = client()
    await replica('keyless', 70, 100, opts, true)
    const server = await prunedServer('keyless', 100, 70)
    const { kind, probes } = probing(keylessSync(opts))
    const db = await syncDatabase({ kind, target: server.target(), source: new FailSource() })
    expect(probes()).to.equal(1)
    await expectSynced(db, server, server.target())
  })

  it('engine new_skips_local_pinned_nodes_when_journal_is_partial', async () => {
    const opts = client()
    await replica('keyless', 71, 100, opts)
    const server = await serverWith('keyless', 100, { seed: 71 })
    await server.growTo(server.db.size + 10)
    const { kind, probes } = probing(keylessSync(opts))
    await syncDatabase({ kind, target: server.target(), source: new LocalSource(server.db) })
    expect(probes()).to.equal(0)
  })

  it('engine new_schedules_operations_after_boundary_request (target [5, 10), 2 slots, batch 5)', async () => {
    const src = await KeylessDb.open()
    await src.apply(await src.newBatch().append(fill(1)).append(fill(2)).append(fill(3)).merkleize())
    await src.apply(await src.newBatch().append(fill(4)).append(fill(5)).append(fill(6)).append(fill(7)).withInactivityFloor(5).merkleize())
    expect([src.size, src.inactivityFloor]).to.deep.equal([10, 5])
    const held = new HeldSource(new LocalSource(src))
    const run = syncDatabase({ kind: keylessSync(), target: targetOf(src), source: held, maxOutstandingRequests: 2, fetchBatchSize: 5 })
    await held.waitHeld(2)
    expect(held.requests).to.deep.equal([{ type: 'boundary', size: 10, start: 5 }, { type: 'operations', size: 10, start: 6, maxOps: 4 }])
    held.open()
    expect((await run).opsRoot).to.deep.equal(src.opsRoot)
  })

  it('engine step_takes_queued_update_before_completing', async () => {
    const opts = client()
    await replica('keyless', 72, 100, opts, true)
    const server = await prunedServer('keyless', 100, 72)
    const first = server.target()
    await server.growTo(server.db.size + 5)
    const advancing = server.target()
    const updates = new Channel<Target>({ capacity: 2 })
    await updates.send({ root: fill(2), range: first.range }) // stale: same end
    await updates.send(advancing)
    const reached = new Channel<Target>()
    const db = await syncFull('keyless', first, new LocalSource(server.db), { db: opts, updates, reached })
    await expectSynced(db, server, advancing)
    // the first target was never reported: the engine retargeted instead of completing
    expect(reached.tryRecv()).to.deep.equal({ value: advancing })
    expect(reached.tryRecv()).to.equal('empty')
  })

  it('engine step_completes_at_current_target_after_finish (a pending finish wins over a queued update)', async () => {
    const opts = client()
    await replica('keyless', 73, 100, opts, true)
    const server = await prunedServer('keyless', 100, 73)
    const first = server.target()
    const updates = new Channel<Target>({ capacity: 1 })
    const finish = new Channel<void>({ capacity: 1 })
    await updates.send({ root: fill(3), range: { start: first.range.start, end: first.range.end + 2 } })
    await finish.send()
    const db = await syncFull('keyless', first, new FailSource(), { db: opts, updates, finish })
    await expectSynced(db, server, first)
    expect(updates.length).to.equal(1)
  })

  describe('requests', () => {
    const op = (loc: number): Request => ({ type: 'operations', size: loc + 1, start: loc, maxOps: 1 })
    const starts = (r: OutstandingRequests): number[] => r.ranges().map(x => x.start)

    it('test_add_and_remove', () => {
      const r = new OutstandingRequests()
      expect(r.size).to.equal(0)
      const o = r.add(op(10))
      expect([r.size, r.hasStart(10)]).to.deep.equal([1, true])
      expect(r.remove(o.id)).to.equal(o)
      expect(r.hasStart(10)).to.equal(false)
      expect(r.remove(o.id)).to.equal(undefined)
    })

    it('test_remove_before (removeAtOrBefore(9) = the reference remove_before(10))', () => {
      const r = new OutstandingRequests()
      for (const l of [5, 10, 15, 20]) { r.add(op(l)) }
      r.removeAtOrBefore(9)
      expect(starts(r)).to.deep.equal([10, 15, 20])
      r.removeAtOrBefore(10)
      expect(starts(r)).to.deep.equal([15, 20])
    })

    it('test_remove_before_all / test_remove_before_empty / test_remove_before_none', () => {
      const r = new OutstandingRequests()
      r.removeAtOrBefore(10)
      expect(r.size).to.equal(0)
      r.add(op(5))
      r.add(op(10))
      r.removeAtOrBefore(99)
      expect(r.size).to.equal(0)
      r.add(op(10))
      r.add(op(20))
      r.removeAtOrBefore(4)
      expect(starts(r)).to.deep.equal([10, 20])
    })

    it('test_superseded_request (same start replaces and aborts the old id)', () => {
      const r = new OutstandingRequests()
      const old = r.add(op(10))
      const next = r.add(op(10))
      expect(r.size).to.equal(1)
      expect(old.controller.signal.aborted).to.equal(true)
      expect(r.remove(old.id)).to.equal(undefined)
      expect(r.hasStart(10)).to.equal(true)
      expect(r.remove(next.id)).to.equal(next)
      expect(r.hasStart(10)).to.equal(false)
    })

    it('test_stale_id_after_remove_before / test_remove_before_aborts_future', () => {
      const r = new OutstandingRequests()
      const old = r.add(op(5))
      r.add(op(15))
      r.removeAtOrBefore(9)
      expect(old.controller.signal.aborted).to.equal(true)
      expect(r.remove(old.id)).to.equal(undefined)
      const again = r.add(op(5))
      expect(again.id).to.not.equal(old.id)
      expect(r.remove(again.id)).to.equal(again)
      // a boundary counts as one location
      r.add({ type: 'boundary', size: 40, start: 30 })
      expect(r.ranges()).to.deep.equal([{ start: 15, count: 1 }, { start: 30, count: 1 }])
    })
  })

  it('gaps test_find_next (the reference table)', () => {
    const table: Array<[string, number, number, Array<[number, number]>, number[], number, [number, number] | undefined]> = [
      ['empty_state_full_range', 0, 11, [], [], 5, [0, 11]],
      ['invalid_bounds', 10, 6, [], [], 5, undefined],
      ['zero_length_range', 5, 6, [], [], 5, [5, 6]],
      ['overlapping_outstanding_requests', 0, 11, [], [0, 3, 8], 5, undefined],
      ['outstanding_request_beyond_upper_bound', 0, 11, [], [8], 5, [0, 8]],
      ['outstanding_requests_only', 0, 11, [], [0, 7], 4, [4, 7]],
      ['single_ops_with_gaps', 0, 11, [[0, 1], [2, 1], [4, 1]], [], 5, [1, 2]],
      ['multi_op_batch_gap_after', 0, 11, [[0, 3]], [], 5, [3, 11]],
      ['adjacent_single_ops', 0, 11, [[0, 1], [1, 1]], [], 5, [2, 11]],
      ['no_gaps_all_covered_by_fetched_ops', 0, 11, Array.from({ length: 11 }, (_, i) => [i, 1]), [], 5, undefined],
      ['fetch_batch_size_one', 0, 11, [], [2, 5, 8], 1, [0, 2]],
      ['fetched_ops_starts_before_lower_bound', 5, 11, [[0, 8]], [], 5, [8, 11]],
      ['fetched_ops_extends_beyond_upper_bound', 0, 7, [[4, 5]], [], 5, [0, 4]],
      ['fetch_batch_size_larger_than_range', 0, 6, [], [2], 100, [0, 2]],
      ['coverage_exactly_reaches_upper_bound', 0, 11, [[0, 5], [8, 3]], [], 5, [5, 8]],
      ['mixed_coverage_gap_at_start', 0, 16, [[2, 3], [10, 2]], [6, 13], 3, [0, 2]],
      ['mixed_coverage_gap_in_middle', 0, 16, [[0, 2], [8, 2]], [3, 12], 4, [2, 3]],
      ['mixed_coverage_interleaved_ranges', 0, 11, [[1, 2], [6, 2]], [3, 8], 2, [0, 1]]
    ]
    for (const [name, lo, hi, fetched, requested, batch, expected] of table) {
      const gap = findNextGap(lo, hi, fetched.map(([start, count]) => ({ start, count })), requested.map(start => ({ start, count: batch })))
      expect(gap, name).to.deep.equal(expected === undefined ? undefined : { start: expected[0], end: expected[1] })
    }
  })

  describe('target', () => {
    const root = fill(7)
    const encode = (t: Target): Uint8Array => encodeTarget(t, new Writer(64)).finish()

    it('test_sync_target_serialization / test_sync_target_read_invalid_bounds', () => {
      const t = { root, range: { start: 100, end: 500 } }
      const bytes = encode(t)
      expect(bytes.length).to.equal(32 + 1 + 2)
      expect(decodeTarget(new Reader(bytes))).to.deep.equal(t)
      for (const [start, end] of [[500, 100], [5, 5]]) {
        const bad = new Writer(64).raw(root).varint(start).varint(end).finish()
        expect(() => decodeTarget(new Reader(bad))).to.throw(/start must be < end/)
      }
    })

    it('test_compact_target_serialization / decode rejects size 0 and sizes beyond the domain', () => {
      const ct = { root, size: 42 }
      expect(decodeCompactTarget(new Reader(encodeCompactTarget(ct, new Writer(64)).finish()))).to.deep.equal(ct)
      for (const size of [0, MAX_LEAVES + 1]) {
        expect(() => decodeCompactTarget(new Reader(new Writer(64).raw(root).varint(size).finish()))).to.throw()
      }
    })

    it('test_advances', () => {
      const from = { root, range: { start: 10, end: 20 } }
      const t = (start: number, end: number): Target => ({ root: fill(1), range: { start, end } })
      expect(targetAdvances(t(10, 21), from)).to.equal(true)
      expect(targetAdvances(t(15, 30), from)).to.equal(true)
      expect(targetAdvances(t(10, 20), from)).to.equal(false)
      expect(targetAdvances(t(15, 20), from)).to.equal(false)
      expect(targetAdvances(t(10, 19), from)).to.equal(false)
      expect(targetAdvances(t(9, 30), from)).to.equal(false)
      expect(targetAdvances(t(10, MAX_LEAVES + 1), from)).to.equal(false)
    })

    it('test_compact_target_to_ranged', () => {
      expect(compactToTarget({ root, size: 100 })).to.deep.equal({ root, range: { start: 99, end: 100 } })
      expect(compactToTarget({ root, size: 1 })).to.deep.equal({ root, range: { start: 0, end: 1 } })
      for (const size of [0, MAX_LEAVES + 1]) { expect(() => compactToTarget({ root, size })).to.throw(InvalidTargetError) }
    })

    it('an engine target beyond MAX_LEAVES or empty is InvalidTarget', async () => {
      for (const range of [{ start: 0, end: MAX_LEAVES + 1 }, { start: 5, end: 5 }]) {
        expect((await syncError(syncDatabase({ kind: keylessSync(), target: { root, range }, source: new FailSource() }))).code).to.equal('InvalidTarget')
      }
    })
  })

  it('source test_all_qmdb_variants_implement_source / test_locked_source_reaches_source', async () => {
    for (const kind of FULL_KINDS) {
      const server = await serverWith(kind, 30, { seed: 74 })
      const size = server.db.size
      const { response } = await new LocalSource(server.db).serve({ type: 'operations', size, start: 1, maxOps: 5 }, {})
      expect(response.type === 'operations' && verifyRangeProof(response.proof, 1, response.ops, server.db.opsRoot)).to.equal(true)
    }
    for (const kind of ['immutable', 'keyless'] as const) {
      const c = await openCompact(kind)
      await oneBatch(c, kind, 1, 0, 3)
      const { response } = await new CompactSource(c).serve({ type: 'boundary', size: c.size, start: c.size - 1 }, {})
      expect(response.type === 'boundary' && verifyProofAndPinnedNodes(response.proof, c.size - 1, [response.op], response.pinnedNodes, c.root)).to.equal(true)
    }
    const db = await KeylessDb.open()
    let locked = 0
    const source = new LocalSource(db, { lock: { read: async fn => { locked++; return fn() } } })
    await db.close()
    const err = await rejection(source.serve({ type: 'operations', size: 1, start: 0, maxOps: 1 }, {}))
    expect([locked, (err as ServeError).code]).to.deep.equal([1, 'Unavailable'])
  })

  it('database test_journal_covers_range (local pins only for a journal reaching back to the start and ending at the end)', async () => {
    const opts = client()
    await replica('keyless', 75, 200, opts, true)
    const server = await prunedServer('keyless', 200, 75)
    const t = server.target()
    const kind = keylessSync(opts)
    const real = await kind.openJournal(t.range)
    const pins = await server.db.pinnedNodesAt(t.range.start)
    const fake = (start: number, size: number): SyncJournal => ({
      start,
      size,
      append: () => {},
      resize: async () => {},
      flush: async () => {},
      read: async (loc: number) => real.read(loc)
    })
    const at = async (start: number, size: number): Promise<Digest[] | undefined> => kind.localPinnedNodes(fake(start, size), t)
    expect(await at(t.range.start, t.range.end)).to.deep.equal(pins)
    expect(await at(t.range.start - 1, t.range.end)).to.deep.equal(pins)
    expect(await at(t.range.start + 1, t.range.end)).to.equal(undefined)
    expect(await at(t.range.start, t.range.end - 1)).to.equal(undefined)
    expect(await at(t.range.start, t.range.end + 1)).to.equal(undefined)
  })

  it('database local_pinned_nodes_treats_interrupted_reset_as_unavailable', async () => {
    const opts = client()
    await replica('keyless', 76, 200, opts, true)
    const server = await prunedServer('keyless', 200, 76)
    const t = server.target()
    const kind = keylessSync(opts)
    const journal = await kind.openJournal(t.range)
    expect(await kind.localPinnedNodes(journal, t)).to.not.equal(undefined)
    // a crash that cleared the node store but not the rest
    const ds = opts.datastore as MemoryDatastore
    for await (const k of ds.queryKeys({ prefix: '/client/mmr' })) { await ds.delete(k) }
    expect(await kind.localPinnedNodes(journal, t)).to.equal(undefined)
    // and the engine then fetches the pins instead of failing
    const source = new CountingSource(new LocalSource(server.db))
    const db = await syncFull('keyless', t, source, { db: opts })
    expect(source.requests).to.deep.equal([{ type: 'boundary', size: t.range.end, start: t.range.start }])
    await expectSynced(db, server, t)
  })

  describe('journal', () => {
    it('test_memory_journal', async () => {
      const j = new MemoryJournal(10)
      expect(j.size).to.equal(10)
      j.append([fill(1), fill(2), fill(3)])
      expect(j.size).to.equal(13)
      await j.resize(12)
      expect([j.start, j.size, await j.read(12)]).to.deep.equal([12, 13, fill(3)])
      const k = new MemoryJournal(10)
      k.append([fill(1), fill(2)])
      await k.resize(15)
      expect([k.start, k.size]).to.deep.equal([15, 15])
      const m = new MemoryJournal(10)
      m.append([fill(1)])
      await m.resize(5)
      expect([m.start, m.size]).to.deep.equal([5, 5])
      expect(await codeOf(m.read(5))).to.equal('LocationOutOfBounds')
    })

    it('test_sync_journal_new_recovers_from_stale_clear_to_size / test_sync_journal_new_stale_empty_position_beyond_range_end', async () => {
      for (const stale of [9, 30]) {
        const opts = client()
        const j = await FullSyncJournal.open(opts, { start: stale, end: stale + 10 })
        await j.flush()
        const again = await FullSyncJournal.open(opts, { start: 7, end: 20 })
        expect([again.start, again.size]).to.deep.equal([7, 7])
      }
    })

    for (const encoding of ['fixed', 'variable'] as const) {
      it(`test_${encoding}_sync_journal_new_rewinds_ahead_and_discards_pruned_progress`, async () => {
        const dbOpts = { ...client(), encoding, value: encoding === 'fixed' ? undefined : varField(64) }
        const db = await KeylessDb.open(dbOpts)
        for (let i = 0; db.size < 30; i++) { await db.apply(await db.newBatch().append(encoding === 'fixed' ? fill(i) : new Uint8Array([i])).merkleize()) }
        await db.commit()
        const j = await FullSyncJournal.open(dbOpts, { start: 7, end: 20 })
        expect([j.start, j.size]).to.deep.equal([7, 20])
        for (let l = 7; l < 20; l++) { expect(await j.read(l)).to.deep.equal(await db.readOpBytes(l)) }

        const prunedOpts = { ...dbOpts, datastore: new MemoryDatastore() }
        const pruned = await KeylessDb.open(prunedOpts)
        while (pruned.size < 50) { await pruned.apply(await pruned.newBatch().append(fill(pruned.size)).withInactivityFloor(Math.min(40, pruned.size)).merkleize()) }
        await pruned.prune(40)
        await pruned.commit()
        const p = await FullSyncJournal.open(prunedOpts, { start: 7, end: 60 })
        expect([p.start, p.size]).to.deep.equal([7, 7])
      })
    }
  })
})

// ---------------------------------------------------------------------------
// the multi-database coordinator on top of the engine

describe('sync coordinator: several databases converge on one anchor', function () {
  this.timeout(30_000)

  it('an any and a keyless database follow a newer tip and finish on the same anchor', async () => {
    const any = await prunedServer('any', 120, 90)
    const keyless = await prunedServer('keyless', 120, 91)
    const first = { a: any.target(), k: keyless.target() }
    await any.growTo(any.db.size + 30)
    await keyless.growTo(keyless.db.size + 30)
    const second = { a: any.target(), k: keyless.target() }
    const heldA = new HeldSource(new LocalSource(any.db))
    const tips = new Channel<TipUpdate<typeof first>>({ capacity: 1, ring: true })
    const anchors: number[] = []
    const run = syncDatabaseSet({
      members: {
        a: { kind: anySync(client()), source: heldA, toTarget: (t: Target) => t, equal: targetsEqual },
        k: { kind: keylessSync(client()), source: new LocalSource(keyless.db), toTarget: (t: Target) => t, equal: targetsEqual }
      },
      anchor: { height: 1 },
      targets: first,
      tips,
      fetchBatchSize: 8,
      onAnchor: a => anchors.push(a.height)
    })
    // `a` is held mid-sync while the newer tip arrives
    await heldA.waitHeld(1)
    let observed = false
    await tips.send({ anchor: { height: 2 }, targets: second, observed: () => { observed = true } })
    await until(() => observed, 'the tip to be observed')
    heldA.open()
    const result = await run
    expect(result.anchor).to.deep.equal({ height: 2 })
    expect(result.targets).to.deep.equal(second)
    await expectSynced(result.dbs.a, any, second.a)
    await expectSynced(result.dbs.k, keyless, second.k)
    expect(anchors).to.include(2)
  })

  it('a failing member fails the set with a SyncError naming it', async () => {
    const keyless = await prunedServer('keyless', 60, 92)
    const err = await syncError(syncDatabaseSet({
      members: {
        good: { kind: keylessSync(client()), source: new LocalSource(keyless.db), toTarget: (t: Target) => t, equal: targetsEqual },
        bad: { kind: keylessSync(client()), source: new FailSource(), toTarget: (t: Target) => t, equal: targetsEqual }
      },
      anchor: { height: 1 },
      targets: { good: keyless.target(), bad: keyless.target() }
    }))
    expect(err.code).to.equal('Database')
    expect(err.message).to.match(/bad/)
    expect((err.cause as SyncError).code).to.equal('Source')
  })
})
