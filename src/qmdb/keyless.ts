/**
 * `keyless`: an authenticated append-only log of values (commonware `storage/src/qmdb/keyless`).
 *
 * `get(loc)` returns the value of an `Append` or the metadata of a `Commit`.
 * The floor is chosen by the application, as for `immutable`.
 */

import { QmdbCore, SYNC_REBUILD_STEP } from './core.ts'
import { QmdbError } from './errors.ts'
import { MerkleizedBatch, forkPoint } from './merkleized.ts'
import { FloorBatch } from './open-batch.ts'
import { KeylessOpCodec, fixedField } from './ops.ts'
import { keylessReader } from './readers.ts'
import type { DbOptions } from './core.ts'
import type { ManagedDb } from './managed.ts'
import type { Encoding, FieldCodec, KeylessOp } from './ops.ts'
import type { KeylessReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Target } from './target.ts'
import type { Digest } from '../merkle/index.ts'

export interface KeylessDbOptions extends DbOptions {
  value?: FieldCodec
  encoding?: Encoding
}

export class KeylessDb extends QmdbCore<KeylessOp, MerkleizedKeylessBatch, KeylessBatch> implements ManagedDb<KeylessBatch, MerkleizedKeylessBatch, Target> {
  declare readonly codec: KeylessOpCodec

  private constructor (options: KeylessDbOptions) {
    super(new KeylessOpCodec(options.value ?? fixedField(32), options.encoding ?? 'fixed'), options)
  }

  /**
   * Build the database from a completed state-sync journal (see
   * `QmdbCore.buildFromSync`); durable after `commitSyncResult()`.
   */
  static async fromSyncResult (options: KeylessDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<KeylessDb> {
    return new KeylessDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  static async open (options: KeylessDbOptions = {}): Promise<KeylessDb> {
    return new KeylessDb(options).openCore()
  }

  readonly kind: string = 'keyless'

  protected resetIndex (): void {}
  protected indexOp (): void {}
  protected applyIndex (): void {}

  /** The value appended at `loc` (or the metadata of the commit there). */
  async get (loc: number): Promise<Uint8Array | undefined> {
    this.check()
    if (loc >= this.size) { throw new QmdbError('LocationOutOfBounds', `location ${loc}, size ${this.size}`) }
    const op = await this.readOp(loc)
    return op.type === 'append' ? op.value : op.metadata
  }

  /** Values at strictly increasing locations. */
  async getMany (locs: readonly number[]): Promise<Array<Uint8Array | undefined>> {
    for (let i = 1; i < locs.length; i++) {
      if (locs[i] <= locs[i - 1]) { throw new QmdbError('UnexpectedData', 'locations must be strictly increasing') }
    }
    return Promise.all(locs.map(async l => this.get(l)))
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): KeylessReader {
    return keylessReader(this)
  }

  newBatch (): KeylessBatch {
    this.check()
    return new KeylessBatch(this, undefined)
  }
}

export class KeylessBatch extends FloorBatch<KeylessDb, MerkleizedKeylessBatch> {
  private readonly values: Uint8Array[] = []

  append (value: Uint8Array): this {
    this.values.push(value)
    return this
  }

  async merkleize (): Promise<MerkleizedKeylessBatch> {
    const db = this.db
    const parent = this.parent
    if (parent !== undefined) { db.chainOf(parent) }
    const ops = this.values.map(value => db.codec.encode({ type: 'append', value }))
    ops.push(db.codec.encodeCommit(this.meta, this.floor))
    return new MerkleizedKeylessBatch(db, forkPoint(db, parent), ops, this.floor, this.meta)
  }
}

export class MerkleizedKeylessBatch extends MerkleizedBatch<KeylessDb, MerkleizedKeylessBatch> {
  newBatch (): KeylessBatch {
    return new KeylessBatch(this.owner, this)
  }
}
