/**
 * `immutable`: a write-once authenticated key-value store (commonware `storage/src/qmdb/immutable`).
 *
 * A key is set at most once (the application's promise; if broken, reads may
 * return any of its values). Batches emit `Set` operations in ascending key
 * order, then `Commit(metadata, floor)` with a floor the application chooses
 * (default 0: keep passing the current floor, floors may never decrease).
 * Keys set below the floor are forgotten by reads after reopen or sync.
 */

import { QmdbCore, SYNC_REBUILD_STEP } from './core.ts'
import { QmdbError } from './errors.ts'
import { MerkleizedBatch, forkPoint } from './merkleized.ts'
import { FloorBatch } from './open-batch.ts'
import { ImmutableOpCodec, compareBytes, fixedField, keyId } from './ops.ts'
import { immutableReader } from './readers.ts'
import type { DbOptions } from './core.ts'
import type { ManagedDb } from './managed.ts'
import type { ForkPoint } from './merkleized.ts'
import type { Encoding, FieldCodec, ImmutableOp } from './ops.ts'
import type { ImmutableReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Target } from './target.ts'
import type { Digest } from '../merkle/index.ts'

export interface ImmutableDbOptions extends DbOptions {
  key?: FieldCodec
  value?: FieldCodec
  encoding?: Encoding
}

export class ImmutableDb extends QmdbCore<ImmutableOp, MerkleizedImmutableBatch, ImmutableBatch> implements ManagedDb<ImmutableBatch, MerkleizedImmutableBatch, Target> {
  declare readonly codec: ImmutableOpCodec
  private readonly snapshot = new Map<string, number>()

  private constructor (options: ImmutableDbOptions) {
    super(new ImmutableOpCodec(options.key ?? fixedField(32), options.value ?? fixedField(32), options.encoding ?? 'fixed'), options)
  }

  /**
   * Build the database from a completed state-sync journal (see
   * `QmdbCore.buildFromSync`); durable after `commitSyncResult()`.
   */
  static async fromSyncResult (options: ImmutableDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<ImmutableDb> {
    return new ImmutableDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  static async open (options: ImmutableDbOptions = {}): Promise<ImmutableDb> {
    return new ImmutableDb(options).openCore()
  }

  readonly kind: string = 'immutable'

  protected resetIndex (): void { this.snapshot.clear() }

  protected indexOp (loc: number, op: ImmutableOp): void {
    if (op.type === 'set') { this.snapshot.set(keyId(op.key), loc) }
  }

  protected applyIndex (batch: MerkleizedImmutableBatch): void {
    for (const [id, loc] of batch.locs) { this.snapshot.set(id, loc) }
  }

  protected pruneIndex (loc: number): void {
    for (const [id, l] of this.snapshot) {
      if (l < loc) { this.snapshot.delete(id) }
    }
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    const loc = this.snapshot.get(keyId(key))
    if (loc === undefined || loc < this.log.base) { return undefined }
    const op = await this.readOp(loc)
    if (op.type !== 'set') { throw new QmdbError('DataCorrupted', `snapshot points at a non-set at ${loc}`) }
    return op.value
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): ImmutableReader {
    return immutableReader(this)
  }

  newBatch (): ImmutableBatch {
    this.check()
    return new ImmutableBatch(this, undefined)
  }
}

export class ImmutableBatch extends FloorBatch<ImmutableDb, MerkleizedImmutableBatch> {
  private readonly sets = new Map<string, { key: Uint8Array, value: Uint8Array }>()

  /** Set a key that has never been set. */
  set (key: Uint8Array, value: Uint8Array): this {
    this.sets.set(keyId(key), { key, value })
    return this
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    const s = this.sets.get(keyId(key))
    if (s !== undefined) { return s.value }
    return this.parent !== undefined ? this.parent.get(key) : this.db.get(key)
  }

  async merkleize (): Promise<MerkleizedImmutableBatch> {
    const db = this.db
    const parent = this.parent
    if (parent !== undefined) { db.chainOf(parent) } // throws StaleBatch
    const fork = forkPoint(db, parent)
    const sorted = [...this.sets.entries()].sort((a, b) => compareBytes(a[1].key, b[1].key))
    const ops: Uint8Array[] = []
    const locs = new Map<string, number>()
    const values = new Map<string, Uint8Array>()
    for (const [id, { key, value }] of sorted) {
      locs.set(id, fork.baseSize + ops.length)
      values.set(id, value)
      ops.push(db.codec.encode({ type: 'set', key, value }))
    }
    ops.push(db.codec.encodeCommit(this.meta, this.floor))
    return new MerkleizedImmutableBatch(db, fork, ops, this.floor, this.meta, locs, values)
  }
}

export class MerkleizedImmutableBatch extends MerkleizedBatch<ImmutableDb, MerkleizedImmutableBatch> {
  /** key id → location of its Set in this batch */
  readonly locs: Map<string, number>
  private readonly values: Map<string, Uint8Array>

  constructor (db: ImmutableDb, fork: ForkPoint<MerkleizedImmutableBatch>, ops: Uint8Array[], floor: number, metadata: Uint8Array | undefined, locs: Map<string, number>, values: Map<string, Uint8Array>) {
    super(db, fork, ops, floor, metadata)
    this.locs = locs
    this.values = values
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    const id = keyId(key)
    for (let b: MerkleizedImmutableBatch | undefined = this; b !== undefined; b = b.parent) {
      const v = b.values.get(id)
      if (v !== undefined) { return v }
    }
    return this.owner.get(key)
  }

  newBatch (): ImmutableBatch {
    return new ImmutableBatch(this.owner, this)
  }
}
