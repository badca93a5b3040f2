/**
 * `OrderedCurrentDb`: `current` over an ordered key space
 * (`storage/src/qmdb/current/ordered`): the ordered operations of
 * `OrderedAnyDb` with the grafted activity bitmap of `CurrentDb`, so one
 * proof against the canonical root shows that a key has its value now, or
 * that a key has no value (an exclusion proof: the active span covering it,
 * or the active commit of an empty database).
 */

import { CurrentDb } from './current.ts'
import { orderedEntries, orderedGetAll, orderedSpan } from './ordered.ts'
import type { AnyDbOptions } from './any.ts'
import type { OrderedSpan } from './ordered.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Digest } from '../merkle/index.ts'

export class OrderedCurrentDb extends CurrentDb {
  readonly kind: string = 'current-ordered'

  protected constructor (options: AnyDbOptions) {
    super(options, true)
  }

  /** Open (or create) an ordered `current` database. */
  static async open (options: AnyDbOptions = {}): Promise<OrderedCurrentDb> {
    const db = new OrderedCurrentDb(options)
    await db.openCore()
    return db
  }

  /** Build the database from a completed state-sync journal; durable after `commitSyncResult()`. */
  static async fromSyncResult (options: AnyDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = 1 << 16): Promise<OrderedCurrentDb> {
    const db = new OrderedCurrentDb(options)
    await db.buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
    return db
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
