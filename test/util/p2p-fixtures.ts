/**
 * Databases with history for sync / resolver tests: an `any`, `immutable`
 * or `keyless` database fed seeded random batches, remembering the ops root
 * at every commit size so served proofs can be checked against it.
 */
import { AnyDb, ImmutableDb, KeylessDb } from '../../src/qmdb/index.ts'
import { Rng } from './rng.ts'
import type { Digest } from '../../src/merkle/index.ts'
import type { OpCodec } from '../../src/qmdb/index.ts'

export type DbKind = 'any' | 'immutable' | 'keyless'
export const DB_KINDS: DbKind[] = ['any', 'immutable', 'keyless']

export interface Fixture {
  kind: DbKind
  db: AnyDb | ImmutableDb | KeylessDb
  codec: OpCodec<unknown>
  /** Ops root at every commit size (sizes after each applied batch). */
  roots: Map<number, Digest>
  /** Apply (and commit) one more random batch. */
  step(): Promise<void>
}

function key (i: number): Uint8Array {
  const k = new Uint8Array(32)
  new DataView(k.buffer).setUint32(28, i)
  k[0] = 0xaa
  return k
}

async function openDb (kind: DbKind): Promise<AnyDb | ImmutableDb | KeylessDb> {
  if (kind === 'any') { return AnyDb.open() }
  if (kind === 'immutable') { return ImmutableDb.open() }
  return KeylessDb.open()
}

export async function makeFixture (kind: DbKind, seed: number, batches: number): Promise<Fixture> {
  const rng = new Rng(seed)
  let next = 0
  const db = await openDb(kind)
  const roots = new Map<number, Digest>([[db.size, db.opsRoot]])
  const stepAny = async (d: AnyDb): Promise<void> => {
    const b = d.newBatch()
    const n = 1 + rng.int(12)
    for (let i = 0; i < n; i++) {
      const k = key(rng.int(40))
      if (rng.int(5) === 0) { b.delete(k) } else { b.update(k, rng.bytes(32)) }
    }
    await d.apply(await b.merkleize())
  }
  const stepImmutable = async (d: ImmutableDb): Promise<void> => {
    const b = d.newBatch().withInactivityFloor(Math.max(d.inactivityFloor, Math.floor(d.size / 2)))
    const n = 1 + rng.int(12)
    for (let i = 0; i < n; i++) { b.set(key(next++), rng.bytes(32)) }
    await d.apply(await b.merkleize())
  }
  const stepKeyless = async (d: KeylessDb): Promise<void> => {
    const b = d.newBatch().withInactivityFloor(Math.max(d.inactivityFloor, Math.floor(d.size / 2)))
    const n = 1 + rng.int(12)
    for (let i = 0; i < n; i++) { b.append(rng.bytes(32)) }
    await d.apply(await b.merkleize())
  }
  const fixture: Fixture = {
    kind,
    db,
    codec: db.codec as OpCodec<unknown>,
    roots,
    async step () {
      if (db instanceof AnyDb) {
        await stepAny(db)
      } else if (db instanceof ImmutableDb) {
        await stepImmutable(db)
      } else {
        await stepKeyless(db)
      }
      await db.commit()
      roots.set(db.size, db.opsRoot)
    }
  }
  for (let i = 0; i < batches; i++) { await fixture.step() }
  return fixture
}
