/**
 * Fixtures for the sync engine tests: real "server" databases of every full
 * kind (`any`, `current`, their ordered variants, `immutable`, `keyless`) fed seeded random batches,
 * remembering every commit's target, roots and floor, plus helpers to sync
 * into a fresh or existing database and to compare a synced database with
 * its server (operation bytes, roots, floor, metadata, reads).
 */
import { expect } from 'aegir/chai'
import { AnyDb, CurrentDb, ImmutableDb, KeylessDb, OrderedAnyDb, OrderedCurrentDb } from '../../src/qmdb/index.ts'
import { anySync, currentSync, immutableSync, keylessSync, orderedAnySync, orderedCurrentSync, syncDatabase } from '../../src/sync/index.ts'
import { u64be } from './bytes.ts'
import { Rng } from './rng.ts'
import { sha } from './workloads.ts'
import type { Digest } from '../../src/merkle/index.ts'
import type { DbOptions, Target } from '../../src/qmdb/index.ts'
import type { Source, SyncEngineOptions, SyncKind } from '../../src/sync/index.ts'

export type FullKind = 'any' | 'current' | 'any-ordered' | 'current-ordered' | 'immutable' | 'keyless'
export const FULL_KINDS: FullKind[] = ['any', 'current', 'any-ordered', 'current-ordered', 'immutable', 'keyless']
/** `current` kinds sync from a chunk-aligned boundary (256 operations). */
export const isCurrent = (kind: FullKind): boolean => kind === 'current' || kind === 'current-ordered'
export type FullDb = AnyDb | CurrentDb | ImmutableDb | KeylessDb

/** How `immutable` / `keyless` servers move their floor: never, or to half their size. */
export type FloorPolicy = 'zero' | 'half'

export interface ServerOptions {
  seed?: number
  /** Keys of `any` / `current` workloads (a small space makes the floor rise). */
  keySpace?: number
  /** Largest number of writes per batch. */
  maxBatch?: number
  floor?: FloorPolicy
  /** Persist the server (otherwise in memory). */
  db?: DbOptions
}

/** Everything a server committed: for each commit size, its target and roots. */
export interface Server {
  kind: FullKind
  db: FullDb
  /** sync target after each commit, by size */
  targets: Map<number, Target>
  /** canonical root after each commit (= ops root except for `current`) */
  canonical: Map<number, Digest>
  floors: Map<number, number>
  metadata: Map<number, Uint8Array | undefined>
  /** keys written so far (`any`, `current`, `immutable`) */
  keys: Uint8Array[]
  /** One more random batch, applied and committed. */
  step(): Promise<void>
  /** Steps until the database holds at least `size` operations. */
  growTo(size: number): Promise<void>
  /** Record the database's state after a commit made outside `step`. */
  record(): void
  /** The latest target. */
  target(): Target
}

export function keyOf (i: number): Uint8Array {
  return sha(u64be(i), new Uint8Array([0x6b]))
}

export async function openFull (kind: FullKind, options: DbOptions = {}): Promise<FullDb> {
  switch (kind) {
    case 'any': return AnyDb.open(options)
    case 'current': return CurrentDb.open(options)
    case 'any-ordered': return OrderedAnyDb.open(options)
    case 'current-ordered': return OrderedCurrentDb.open(options)
    case 'immutable': return ImmutableDb.open(options)
    default: return KeylessDb.open(options)
  }
}

export function syncKindOf (kind: FullKind, options: DbOptions = {}): SyncKind<FullDb> {
  switch (kind) {
    case 'any': return anySync(options)
    case 'current': return currentSync(options)
    case 'any-ordered': return orderedAnySync(options)
    case 'current-ordered': return orderedCurrentSync(options)
    case 'immutable': return immutableSync(options)
    default: return keylessSync(options)
  }
}

/** The standard target of a database's current state. */
export function targetOf (db: FullDb, start = db.syncBoundary): Target {
  return { root: db.opsRoot, range: { start, end: db.size } }
}

export async function makeServer (kind: FullKind, options: ServerOptions = {}): Promise<Server> {
  const rng = new Rng(options.seed ?? 1)
  const keySpace = options.keySpace ?? 48
  const maxBatch = options.maxBatch ?? 12
  const floorPolicy = options.floor ?? 'half'
  const db = await openFull(kind, options.db)
  let commits = 0
  let nextKey = 0
  const keys: Uint8Array[] = []
  const server: Server = {
    kind,
    db,
    targets: new Map(),
    canonical: new Map(),
    floors: new Map(),
    metadata: new Map(),
    keys,
    target: () => targetOf(db),
    async step () {
      const metadata = sha(u64be(commits++), new Uint8Array([0x6d]))
      const n = 1 + rng.int(maxBatch)
      const floor = floorPolicy === 'zero' ? 0 : Math.max(db.inactivityFloor, Math.floor(db.size / 2))
      if (db instanceof AnyDb) {
        const b = db.newBatch().withMetadata(metadata)
        for (let i = 0; i < n; i++) {
          const id = rng.int(keySpace)
          if (id >= keys.length) { for (let j = keys.length; j <= id; j++) { keys.push(keyOf(j)) } }
          if (rng.int(6) === 0) { b.delete(keys[id]) } else { b.update(keys[id], rng.bytes(32)) }
        }
        await db.apply(await b.merkleize())
      } else if (db instanceof ImmutableDb) {
        const b = db.newBatch().withMetadata(metadata).withInactivityFloor(floor)
        for (let i = 0; i < n; i++) {
          const k = keyOf(nextKey++)
          keys.push(k)
          b.set(k, rng.bytes(32))
        }
        await db.apply(await b.merkleize())
      } else {
        const b = db.newBatch().withMetadata(metadata).withInactivityFloor(floor)
        for (let i = 0; i < n; i++) { b.append(rng.bytes(32)) }
        await db.apply(await b.merkleize())
      }
      await db.commit()
      server.record()
    },
    async growTo (size: number) {
      while (db.size < size) { await server.step() }
    },
    record () {
      server.targets.set(db.size, targetOf(db))
      server.canonical.set(db.size, db.root)
      server.floors.set(db.size, db.inactivityFloor)
      server.metadata.set(db.size, db.metadata)
    }
  }
  server.record()
  return server
}

/** Build a server of `kind` holding at least `ops` operations. */
export async function serverWith (kind: FullKind, ops: number, options: ServerOptions = {}): Promise<Server> {
  const s = await makeServer(kind, options)
  await s.growTo(ops)
  return s
}

export type SyncOptions = Omit<SyncEngineOptions<FullDb>, 'kind' | 'target' | 'source'>

/** Sync a `kind` database stored with `db` options to `target` from `source`. */
export async function syncFull (kind: FullKind, target: Target, source: Source, options: SyncOptions & { db?: DbOptions } = {}): Promise<FullDb> {
  const { db, ...rest } = options
  return syncDatabase({ kind: syncKindOf(kind, db ?? {}), target, source, maxOutstandingRequests: 4, fetchBatchSize: 16, ...rest })
}

/**
 * The synced database is the server's state at `target`: same size, ops root,
 * floor, metadata, the exact operation bytes over the target range, same
 * reads (keys for `any`/`current`, values for `keyless`), and the canonical
 * root for `current`.
 */
export async function expectSynced (synced: FullDb, server: Server, target: Target): Promise<void> {
  const { start, end } = target.range
  expect(synced.size).to.equal(end)
  expect(synced.opsRoot).to.deep.equal(target.root)
  expect(synced.opsRoot).to.deep.equal(server.targets.get(end)?.root)
  expect(synced.root).to.deep.equal(server.canonical.get(end))
  expect(synced.inactivityFloor).to.equal(server.floors.get(end))
  expect(synced.metadata).to.deep.equal(server.metadata.get(end))
  expect(synced.pruningBoundary).to.be.at.most(start)
  const from = Math.max(start, server.db.pruningBoundary)
  for (let loc = from; loc < end; loc++) {
    expect(await synced.readOpBytes(loc)).to.deep.equal(await server.db.readOpBytes(loc), `operation ${loc}`)
  }
  if (end !== server.db.size) { return } // reads below only make sense at the server's tip
  if (synced instanceof AnyDb && server.db instanceof AnyDb) {
    for (const k of server.keys) { expect(await synced.get(k)).to.deep.equal(await server.db.get(k)) }
    expect(synced.activeKeys).to.equal(server.db.activeKeys)
  } else if (synced instanceof KeylessDb && server.db instanceof KeylessDb) {
    for (let loc = from; loc < end; loc += 7) { expect(await synced.get(loc)).to.deep.equal(await server.db.get(loc)) }
  } else if (synced instanceof ImmutableDb && server.db instanceof ImmutableDb && server.db.pruningBoundary >= synced.inactivityFloor) {
    for (const k of server.keys) { expect(await synced.get(k)).to.deep.equal(await server.db.get(k)) }
  }
}

/** Resolve once `cond()` holds, yielding to the event loop in between (fails after `max` turns). */
export async function until (cond: () => boolean, what = 'condition', max = 200_000): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (cond()) { return }
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error(`gave up waiting for ${what}`)
}

/** Let the event loop run `turns` times (lets a running engine make progress). */
export async function settle (turns = 50): Promise<void> {
  for (let i = 0; i < turns; i++) { await new Promise(resolve => setImmediate(resolve)) }
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejection (p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}
