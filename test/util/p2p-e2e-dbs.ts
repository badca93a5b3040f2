/**
 * Database sets for end-to-end sync tests: one database of every kind that
 * state sync supports (`any`, `current`, both also ordered, `immutable`, `keyless`, and the
 * compact `immutable` and `keyless`), all fed one seeded workload, so that
 * several serving nodes created from the same seed hold identical databases.
 *
 * The shape of every batch (which keys, how many items, floors) comes from
 * `seed`; the values come from `valueSeed` (default: `seed`). Two sets with the
 * same seed and different value seeds therefore have the same sizes and
 * commit boundaries but different roots: a "fork" a malicious node can serve
 * with internally valid proofs.
 *
 * The compact databases get exactly the items of their full counterparts, so
 * their roots equal the full databases' ops roots (checked by the tests).
 */
import { AnyDb, CompactImmutableDb, CompactKeylessDb, CurrentDb, ImmutableDb, KeylessDb, OrderedAnyDb, OrderedCurrentDb } from '../../src/qmdb/index.ts'
import { Rng } from './rng.ts'
import { CountingSource } from './sync-sources.ts'
import type { CompactTarget, OpCodec, Target } from '../../src/qmdb/index.ts'

export { CountingSource }

export type FullKind = 'any' | 'current' | 'anyOrdered' | 'currentOrdered' | 'immutable' | 'keyless'
export type CompactKind = 'immutable' | 'keyless'
export const FULL_KINDS: FullKind[] = ['any', 'current', 'anyOrdered', 'currentOrdered', 'immutable', 'keyless']
export const COMPACT_KINDS: CompactKind[] = ['immutable', 'keyless']

/** Keys of the `any`/`current` workload: a small space, so keys are overwritten and the floor moves. */
export const KEY_SPACE = 300

export function keyOf (i: number): Uint8Array {
  const k = new Uint8Array(32)
  k[0] = 0x5a
  new DataView(k.buffer).setUint32(28, i)
  return k
}

export interface FullDbs {
  any: AnyDb
  current: CurrentDb
  anyOrdered: OrderedAnyDb
  currentOrdered: OrderedCurrentDb
  immutable: ImmutableDb
  keyless: KeylessDb
}

export interface CompactDbs {
  immutable: CompactImmutableDb
  keyless: CompactKeylessDb
}

export class DbSet {
  readonly full: FullDbs
  readonly compact: CompactDbs
  private readonly shape: Rng
  private readonly values: Rng
  private nextImmutableKey = 0
  /** Batches applied so far. */
  steps = 0

  private constructor (full: FullDbs, compact: CompactDbs, seed: number, valueSeed: number) {
    this.full = full
    this.compact = compact
    this.shape = new Rng(seed)
    this.values = new Rng(valueSeed + 0x10000)
  }

  static async create (seed: number, batches: number, valueSeed = seed): Promise<DbSet> {
    const set = new DbSet(
      {
        any: await AnyDb.open(),
        current: await CurrentDb.open(),
        anyOrdered: await OrderedAnyDb.open(),
        currentOrdered: await OrderedCurrentDb.open(),
        immutable: await ImmutableDb.open(),
        keyless: await KeylessDb.open()
      },
      { immutable: await CompactImmutableDb.open(), keyless: await CompactKeylessDb.open() },
      seed, valueSeed)
    for (let i = 0; i < batches; i++) { await set.step() }
    return set
  }

  /** Apply and commit one more batch to every database. */
  async step (): Promise<void> {
    const { shape, values } = this
    // any / current, unordered and ordered: the same updates and deletes
    const writes: Array<[Uint8Array, Uint8Array | null]> = []
    const n = 4 + shape.int(16)
    for (let i = 0; i < n; i++) {
      const k = keyOf(shape.int(KEY_SPACE))
      writes.push([k, shape.int(6) === 0 ? null : values.bytes(32)])
    }
    for (const db of [this.full.any, this.full.current, this.full.anyOrdered, this.full.currentOrdered]) {
      const b = db.newBatch()
      for (const [k, v] of writes) { b.write(k, v) }
      await db.apply(await b.merkleize())
      await db.commit()
    }
    // immutable: fresh keys; the floor follows half the size
    const sets: Array<[Uint8Array, Uint8Array]> = []
    const m = 1 + shape.int(12)
    for (let i = 0; i < m; i++) { sets.push([keyOf(1_000_000 + this.nextImmutableKey++), values.bytes(32)]) }
    const iFloor = Math.max(this.full.immutable.inactivityFloor, Math.floor(this.full.immutable.size / 2))
    const ib = this.full.immutable.newBatch().withInactivityFloor(iFloor)
    const cib = this.compact.immutable.newBatch().withInactivityFloor(iFloor)
    for (const [k, v] of sets) {
      ib.set(k, v)
      cib.set(k, v)
    }
    await this.full.immutable.apply(await ib.merkleize())
    await this.full.immutable.commit()
    await this.compact.immutable.apply(await cib.merkleize())
    await this.compact.immutable.commit()
    // keyless: appends; the floor follows half the size
    const appends: Uint8Array[] = []
    const a = 1 + shape.int(12)
    for (let i = 0; i < a; i++) { appends.push(values.bytes(32)) }
    const kFloor = Math.max(this.full.keyless.inactivityFloor, Math.floor(this.full.keyless.size / 2))
    const kb = this.full.keyless.newBatch().withInactivityFloor(kFloor)
    const ckb = this.compact.keyless.newBatch().withInactivityFloor(kFloor)
    for (const v of appends) {
      kb.append(v)
      ckb.append(v)
    }
    await this.full.keyless.apply(await kb.merkleize())
    await this.full.keyless.commit()
    await this.compact.keyless.apply(await ckb.merkleize())
    await this.compact.keyless.commit()
    this.steps++
  }

  /** The standard sync target of a full database now. */
  target (kind: FullKind): Target {
    return this.full[kind].syncTarget()
  }

  /** The compact sync target of a compact database now. */
  compactTarget (kind: CompactKind): CompactTarget {
    return this.compact[kind].syncTarget()
  }

  codec (kind: FullKind): OpCodec<unknown> {
    return this.full[kind].codec as OpCodec<unknown>
  }

  async close (): Promise<void> {
    for (const db of [...Object.values(this.full), ...Object.values(this.compact)]) { await db.close() }
  }
}

/** Every encoded operation of `db` in `[from, to)`. */
export async function opsOf (db: { readOpBytes(loc: number): Promise<Uint8Array> }, from: number, to: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for (let loc = from; loc < to; loc++) { out.push(await db.readOpBytes(loc)) }
  return out
}
