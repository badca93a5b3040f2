/**
 * `OrderedAnyDb`: `any` over an ordered key space (`storage/src/qmdb/any/ordered`).
 * Every update carries the next active key (cyclically), so the log itself
 * says which keys are absent: the active update whose span `[key, nextKey)`
 * covers a key proves that nothing lies between (see `OrderedCurrentDb` for
 * the proofs). Adds ordered reads: `getAll`, `getSpan`, `entries(from, to)`.
 *
 * Everything else (batches and chains, read-through, stale-batch detection,
 * persistence, prune, rewind, `ManagedDb`, state sync) is `AnyDb`'s; only the
 * user-operation phase of merkleize differs (`ordered-batch.ts`).
 */

import { AnyDb } from './any.ts'
import { SYNC_REBUILD_STEP } from './core.ts'
import { QmdbError, storedOpCorrupt } from './errors.ts'
import { compareBytes } from './ops.ts'
import { orderedAnyReader } from './readers.ts'
import type { AnyDbOptions } from './any.ts'
import type { OrderedAnyReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Digest } from '../merkle/index.ts'

/** An active ordered update: `key` has `value`, and no active key lies strictly between `key` and `nextKey`. */
export interface OrderedSpan {
  /** Location of the update operation. */
  loc: number
  key: Uint8Array
  value: Uint8Array
  nextKey: Uint8Array
}

/** Whether the cyclic span `[start, end)` contains `key` (`start >= end` wraps around). */
export function spanContains (start: Uint8Array, end: Uint8Array, key: Uint8Array): boolean {
  if (compareBytes(start, end) >= 0) { return compareBytes(key, start) >= 0 || compareBytes(key, end) < 0 }
  return compareBytes(key, start) >= 0 && compareBytes(key, end) < 0
}

/** Keys read per step of a range scan (one batch of log reads). */
const SCAN_STEP = 256

/** The active update at `loc` of an ordered database. */
async function spanAt (db: AnyDb, loc: number): Promise<OrderedSpan> {
  const bytes = await db.opAt(loc)
  let op
  try {
    op = db.codec.decode(bytes)
  } catch (err) {
    throw storedOpCorrupt(loc, err)
  }
  if (op.type !== 'update' || op.nextKey === undefined) { throw new QmdbError('DataCorrupted', `snapshot points at a non-update at ${loc}`) }
  return { loc, key: op.key, value: op.value, nextKey: op.nextKey }
}

function indexOf (db: AnyDb): NonNullable<AnyDb['orderedIndex']> {
  const index = db.orderedIndex
  if (index === undefined) { throw new QmdbError('UnexpectedData', 'not an ordered database') }
  return index
}

/** The active update of `key`, or undefined. */
export async function orderedGetAll (db: AnyDb, key: Uint8Array): Promise<OrderedSpan | undefined> {
  const loc = indexOf(db).get(key)
  return loc < 0 ? undefined : spanAt(db, loc)
}

/** The active update whose cyclic span contains `key` (the key itself if active); undefined iff the database is empty. */
export async function orderedSpan (db: AnyDb, key: Uint8Array): Promise<OrderedSpan | undefined> {
  const index = indexOf(db)
  const e = index.floor(key) ?? index.last()
  return e === undefined ? undefined : spanAt(db, e.loc)
}

/**
 * Active `(key, value)` pairs with `from <= key < to` (`to` undefined: to the
 * end) in key order. Reads `SCAN_STEP` keys at a time; each step reflects
 * the state applied when it ran.
 */
export async function * orderedEntries (db: AnyDb, from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }> {
  const index = indexOf(db)
  let cursor: Uint8Array | undefined
  for (;;) {
    const locs: number[] = []
    const start = cursor === undefined ? index.ceiling(from) : index.higher(cursor)
    if (start === undefined) { return }
    for (const [key, loc] of index.from(start.key)) {
      if (to !== undefined && compareBytes(key, to) >= 0) { break }
      locs.push(loc)
      cursor = key.slice()
      if (locs.length === SCAN_STEP) { break }
    }
    if (locs.length === 0) { return }
    const spans = await Promise.all(locs.map(async l => spanAt(db, l)))
    for (const s of spans) { yield { key: s.key, value: s.value } }
    if (locs.length < SCAN_STEP) { return }
  }
}

export class OrderedAnyDb extends AnyDb {
  readonly kind: string = 'any-ordered'

  protected constructor (options: AnyDbOptions) {
    super(options, 32, true)
  }

  /** Open (or create) an ordered `any` database. */
  static async open (options: AnyDbOptions = {}): Promise<OrderedAnyDb> {
    return new OrderedAnyDb(options).openCore()
  }

  /** Build the database from a completed state-sync journal; durable after `commitSyncResult()`. */
  static async fromSyncResult (options: AnyDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<OrderedAnyDb> {
    return new OrderedAnyDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): OrderedAnyReader<OrderedSpan> {
    return orderedAnyReader(this)
  }

  /** The value and next key of `key`, or undefined if it has no value. */
  async getAll (key: Uint8Array): Promise<OrderedSpan | undefined> {
    this.check()
    return orderedGetAll(this, key)
  }

  /** The active update whose span contains `key`; undefined iff the database is empty. */
  async getSpan (key: Uint8Array): Promise<OrderedSpan | undefined> {
    this.check()
    return orderedSpan(this, key)
  }

  /** Active pairs with `from <= key < to` in key order. */
  entries (from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }> {
    this.check()
    return orderedEntries(this, from, to)
  }
}
