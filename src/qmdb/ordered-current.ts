/**
 * `OrderedCurrentDb`: `current` over an ordered key space
 * (`storage/src/qmdb/current/ordered`): the ordered operations of
 * `OrderedAnyDb` with the grafted activity bitmap of `CurrentDb`, so one
 * proof against the canonical root shows that a key has its value now, or
 * that a key has no value (an exclusion proof: the active span covering it,
 * or the active commit of an empty database).
 */

import { SYNC_REBUILD_STEP } from './core.ts'
import { CurrentDb } from './current.ts'
import { QmdbError } from './errors.ts'
import { compareBytes } from './ops.ts'
import { orderedEntries, orderedGetAll, orderedSpan } from './ordered.ts'
import { orderedCurrentReader } from './readers.ts'
import type { CurrentRangeProof, OperationProof } from './current-proof.ts'
import type { CurrentDbOptions } from './current.ts'
import type { ExclusionProof, OrderedKeyValueProof } from './ordered-proof.ts'
import type { OrderedSpan } from './ordered.ts'
import type { OrderedCurrentReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Digest } from '../merkle/index.ts'

export class OrderedCurrentDb extends CurrentDb {
  readonly kind: string = 'current-ordered'

  protected constructor (options: CurrentDbOptions) {
    super(options, true)
  }

  /** Open (or create) an ordered `current` database. */
  static async open (options: CurrentDbOptions = {}): Promise<OrderedCurrentDb> {
    return new OrderedCurrentDb(options).openCurrent()
  }

  /** Build the database from a completed state-sync journal; durable after `commitSyncResult()`. */
  static async fromSyncResult (options: CurrentDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<OrderedCurrentDb> {
    return new OrderedCurrentDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): OrderedCurrentReader<
  { proof: CurrentRangeProof, ops: Uint8Array[], chunks: Uint8Array[] }, { proof: OperationProof, op: Uint8Array }, OrderedSpan,
  { proof: OrderedKeyValueProof, value: Uint8Array }, ExclusionProof
  > {
    return orderedCurrentReader(this)
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

  /** Proof that the operation at `loc` is active under the canonical root. */
  private async operationProof (loc: number): Promise<OperationProof> {
    const { proof, chunks } = await this.rangeProof(loc, 1)
    return { loc, chunk: chunks[0], rangeProof: proof }
  }

  /**
   * Proof that `key` currently has its value (and which key follows it), for
   * `verifyOrderedKeyValueProof`. `KeyNotFound` if it has no value.
   */
  async orderedKeyValueProof (key: Uint8Array): Promise<{ proof: OrderedKeyValueProof, value: Uint8Array }> {
    const span = await this.getAll(key)
    if (span === undefined) { throw new QmdbError('KeyNotFound', 'the key has no value') }
    return { proof: { proof: await this.operationProof(span.loc), nextKey: span.nextKey }, value: span.value }
  }

  /**
   * Proof that `key` has no value, for `verifyExclusionProof`: the active span
   * covering it, or (empty database) the active last commit. `KeyExists` if
   * the key has a value.
   */
  async exclusionProof (key: Uint8Array): Promise<ExclusionProof> {
    const span = await this.getSpan(key)
    if (span === undefined) {
      const loc = this.lastCommitLoc
      if (this.inactivityFloor !== loc) { throw new QmdbError('DataCorrupted', `no active key but the floor ${this.inactivityFloor} is not the last commit ${loc}`) }
      return { type: 'empty', proof: await this.operationProof(loc), metadata: this.metadata }
    }
    if (compareBytes(span.key, key) === 0) { throw new QmdbError('KeyExists', 'the key has a value') }
    return { type: 'span', proof: await this.operationProof(span.loc), key: span.key, value: span.value, nextKey: span.nextKey }
  }

  /** Active pairs with `from <= key < to` in key order. */
  entries (from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }> {
    this.check()
    return orderedEntries(this, from, to)
  }
}
