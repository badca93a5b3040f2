/**
 * `any`: an authenticated key-value store that can prove any historical value
 * of a key (`storage/src/qmdb/any`), fixed or variable encoding. This class is
 * the unordered variant and the shared machinery of the ordered one
 * (`OrderedAnyDb`, `ordered.ts`), whose only difference is the user-operation
 * phase of merkleize (`ordered-batch.ts`) and a key-ordered index.
 *
 * State: the operation log + MMR (`QmdbCore`), a snapshot `key → location of
 * its active Update`, and an activity bitmap (1 = latest update of an active
 * key, or the last commit; exact, so floor raising can skip zero bits).
 *
 * Merkleize (reproduced byte for byte — the conformance hashes
 * depend on it): unordered, updates and deletes of existing keys in order of
 * their current* location, then creates in key order, then the floor raise moves
 * `userSteps + 1` active operations from the floor to the tip (never scanning
 * what it appended itself), then `CommitFloor(metadata, floor)`.
 *
 * Batch diffs record each touched key's new location and its location in the
 * batch's *parent* state (`prev`), so batches apply one after another.
 */

import { inactivePeaks } from '../merkle/index.ts'
import { Bitmap } from './bitmap.ts'
import { QmdbCore } from './core.ts'
import { QmdbError } from './errors.ts'
import { keyIndexFor } from './key-index.ts'
import { AnyOpCodec, compareBytes, keyId, fixedField } from './ops.ts'
import { emitOrderedUserOps } from './ordered-batch.ts'
import { OrderedKeyIndex } from './ordered-index.ts'
import { anyReader } from './readers.ts'
import type { DbOptions, MerkleizedCore } from './core.ts'
import type { DiffEntry, Mutation } from './diff.ts'
import type { GraftOverlay } from './grafting.ts'
import type { KeyIndex } from './key-index.ts'
import type { ManagedDb } from './managed.ts'
import type { AnyOp, Encoding, FieldCodec } from './ops.ts'
import type { AnyReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Target } from './target.ts'
import type { Digest, MerkleizedMmrBatch } from '../merkle/index.ts'

export interface AnyDbOptions extends DbOptions {
  /** Key field (default: 32-byte fixed keys). */
  key?: FieldCodec
  /** Value field (default: 32-byte fixed values). */
  value?: FieldCodec
  /** Operation encoding (default `fixed`). */
  encoding?: Encoding
}

export class AnyDb extends QmdbCore<AnyOp, MerkleizedAnyBatch> implements ManagedDb<AnyBatch, MerkleizedAnyBatch, Target> {
  declare readonly codec: AnyOpCodec
  /** key → location of its active update */
  protected readonly snapshot: KeyIndex
  protected readonly bitmap: Bitmap

  /** Ordered databases only: the same snapshot, in key order. */
  private readonly ordered: OrderedKeyIndex | undefined

  /** `ordered`: every update carries the next active key (ordered variants). */
  protected constructor (options: AnyDbOptions, bitmapChunkBytes = 32, ordered = false) {
    super(new AnyOpCodec(options.key ?? fixedField(32), options.value ?? fixedField(32), options.encoding ?? 'fixed', ordered), options)
    this.bitmap = new Bitmap(bitmapChunkBytes)
    this.ordered = ordered ? new OrderedKeyIndex(this.codec.key.size) : undefined
    this.snapshot = this.ordered ?? keyIndexFor(this.codec.key.size)
  }

  /** The key-ordered snapshot of an ordered database (read-only use), undefined for unordered ones. */
  get orderedIndex (): OrderedKeyIndex | undefined {
    return this.ordered
  }

  /** Open (or create) an `any` database. */
  /**
   * Build the database from a completed state-sync journal (see
   * `QmdbCore.buildFromSync`); durable after `commitSyncResult()`.
   */
  static async fromSyncResult (options: AnyDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = 1 << 16): Promise<AnyDb> {
    const db = new AnyDb(options)
    await db.buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
    return db
  }

  static async open (options: AnyDbOptions = {}): Promise<AnyDb> {
    const db = new AnyDb(options)
    await db.openCore()
    return db
  }

  readonly kind: string = 'any'

  forkBatch (parent: MerkleizedAnyBatch): AnyBatch {
    return parent.newBatch()
  }

  async merkleize (batch: AnyBatch): Promise<MerkleizedAnyBatch> {
    return batch.merkleize()
  }

  batchRoot (batch: MerkleizedAnyBatch): Digest {
    return batch.root
  }

  protected commitOp (metadata: Uint8Array | undefined, floor: number): AnyOp {
    return metadata === undefined ? { type: 'commit', floor } : { type: 'commit', metadata, floor }
  }

  /** Number of keys with a value. */
  get activeKeys (): number { return this.snapshot.size }

  /** The database root (for `any`: the ops root). */
  get root (): Digest { return this._opsRoot }

  // ---- index ------------------------------------------------------------------

  private lastCommitBit = -1

  protected resetIndex (): void {
    this.snapshot.clear()
    this.bitmap.reset(0, Math.floor(this.log.base / this.bitmap.chunkBits))
    this.lastCommitBit = -1
  }

  protected indexOp (loc: number, op: AnyOp): void {
    this.bitmap.extend(loc + 1)
    if (op.type === 'commit') {
      if (this.lastCommitBit >= 0) { this.bitmap.set(this.lastCommitBit, false) }
      this.bitmap.set(loc)
      this.lastCommitBit = loc
      return
    }
    const old = this.snapshot.get(op.key)
    if (old >= 0) { this.bitmap.set(old, false) }
    if (op.type === 'update') {
      this.snapshot.set(op.key, loc)
      this.bitmap.set(loc)
    } else {
      this.snapshot.delete(op.key)
    }
  }

  protected applyIndex (batch: MerkleizedAnyBatch): void {
    this.bitmap.extend(batch.size)
    if (this.lastCommitBit >= 0) { this.bitmap.set(this.lastCommitBit, false) }
    for (const e of batch.diff.values()) {
      if (e.prev >= 0) { this.bitmap.set(e.prev, false) }
      if (e.loc >= 0) {
        this.snapshot.set(e.key, e.loc)
        this.bitmap.set(e.loc)
      } else {
        this.snapshot.delete(e.key)
      }
    }
    this.lastCommitBit = batch.size - 1
    this.bitmap.set(this.lastCommitBit)
  }

  protected pruneIndex (loc: number): void {
    this.bitmap.pruneTo(loc)
  }

  // ---- reads ------------------------------------------------------------------

  /** Location of `key`'s active update, or -1. */
  locationOf (key: Uint8Array): number {
    return this.snapshot.get(key)
  }

  /** Activity bit of `loc` (exact for applied state). */
  isActiveBit (loc: number): boolean {
    return this.bitmap.get(loc)
  }

  /** Next possibly-active location in `[from, to)`, or -1. */
  nextActive (from: number, to: number): number {
    return this.bitmap.nextSetBit(from, to)
  }

  /**
   * Read ahead the committed operations the floor raise will visit: the
   * locations of the next `steps` set bits from `from` (bounded, so a huge
   * batch does not pull the whole log into memory at once).
   */
  async prefetchActive (from: number, steps: number): Promise<void> {
    let loc = from
    let end = from
    for (let i = 0; i < Math.min(steps, 1 << 16); i++) {
      const next = this.bitmap.nextSetBit(loc, this.size)
      if (next < 0) { break }
      end = next + 1
      loc = next + 1
    }
    await this.log.prefetch(from, end)
  }

  /** The encoded operation at `loc` (loads its chunk if needed). */
  async opAt (loc: number): Promise<Uint8Array> {
    return this.opBytesSync(loc) ?? this.log.get(loc)
  }

  /** The encoded operation at `loc` if its chunk is in memory. */
  opAtSync (loc: number): Uint8Array | undefined {
    return this.opBytesSync(loc)
  }

  /** The current value of `key`, or undefined. */
  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    const loc = this.snapshot.get(key)
    if (loc < 0) { return undefined }
    const op = this.decodeStored(loc, await this.opAt(loc))
    if (op.type !== 'update') { throw new QmdbError('DataCorrupted', `snapshot points at a non-update at ${loc}`) }
    return op.value
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(keys.map(async k => this.get(k)))
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): AnyReader {
    return anyReader(this)
  }

  /** Extension point: `current` grafts the bitmap onto a freshly merkleized batch. */
  async afterMerkleize (batch: MerkleizedAnyBatch): Promise<void> {}

  /** A new speculative batch on the applied state. */
  newBatch (): AnyBatch {
    this.check()
    return new AnyBatch(this, undefined)
  }

  /** The unapplied ancestors of `batch`, oldest first (throws `StaleBatch`). */
  unappliedAncestors (batch: MerkleizedAnyBatch): MerkleizedAnyBatch[] {
    return this.chainOf(batch)
  }
}

/** A batch being written: reads see its own writes, then the parent chain, then the database. */
export class AnyBatch {
  readonly db: AnyDb
  readonly parent: MerkleizedAnyBatch | undefined
  private readonly mutations = new Map<string, Mutation>()
  private meta: Uint8Array | undefined

  constructor (db: AnyDb, parent: MerkleizedAnyBatch | undefined) {
    this.db = db
    this.parent = parent
  }

  /** Set `key` to `value` (`null` deletes). */
  write (key: Uint8Array, value: Uint8Array | null): this {
    this.mutations.set(keyId(key), { key, value })
    return this
  }

  update (key: Uint8Array, value: Uint8Array): this {
    return this.write(key, value)
  }

  delete (key: Uint8Array): this {
    return this.write(key, null)
  }

  /** Metadata carried by this batch's commit. */
  withMetadata (metadata: Uint8Array | undefined): this {
    this.meta = metadata
    return this
  }

  get size (): number {
    return this.mutations.size
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    const m = this.mutations.get(keyId(key))
    if (m !== undefined) { return m.value ?? undefined }
    return this.parent !== undefined ? this.parent.get(key) : this.db.get(key)
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(keys.map(async k => this.get(k)))
  }

  /** Resolve the mutations into operations and compute the speculative root. */
  async merkleize (): Promise<MerkleizedAnyBatch> {
    const m = await merkleizeAny(this.db, this.parent, this.mutations, this.meta)
    await this.db.afterMerkleize(m)
    return m
  }
}

/** A sealed batch: root, size, floor; reads and children read through it. */
export class MerkleizedAnyBatch implements MerkleizedCore {
  readonly owner: AnyDb
  parent: MerkleizedAnyBatch | undefined
  baseToken: object | undefined
  appliedToken: object | undefined = undefined
  readonly ops: Uint8Array[]
  readonly mmr: MerkleizedMmrBatch
  readonly baseSize: number
  readonly size: number
  readonly floor: number
  readonly metadata: Uint8Array | undefined
  readonly opsRoot: Digest
  readonly activeKeys: number
  readonly diff: Map<string, DiffEntry>
  /** `current` only: the grafted bitmap state after this batch. */
  graft: GraftOverlay | undefined = undefined

  constructor (init: {
    owner: AnyDb
    parent: MerkleizedAnyBatch | undefined
    baseToken: object | undefined
    ops: Uint8Array[]
    mmr: MerkleizedMmrBatch
    baseSize: number
    floor: number
    metadata: Uint8Array | undefined
    activeKeys: number
    diff: Map<string, DiffEntry>
  }) {
    this.owner = init.owner
    this.parent = init.parent
    this.baseToken = init.baseToken
    this.ops = init.ops
    this.mmr = init.mmr
    this.baseSize = init.baseSize
    this.size = init.baseSize + init.ops.length
    this.floor = init.floor
    this.metadata = init.metadata
    this.activeKeys = init.activeKeys
    this.diff = init.diff
    this.opsRoot = init.mmr.root(inactivePeaks(this.size, this.floor))
  }

  /** The root of the state after this batch (`any`: the ops root; `current`: the canonical root). */
  get root (): Digest { return this.graft?.canonical ?? this.opsRoot }

  /** The sync boundary after this batch (`current` rounds the floor down to a chunk). */
  get syncBoundary (): number { return this.graft !== undefined ? this.floor - (this.floor % this.graft.chunkBits) : this.floor }

  /** The value of `key` after this batch. */
  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    const id = keyId(key)
    for (let b: MerkleizedAnyBatch | undefined = this; b !== undefined; b = b.parent) {
      const e = b.diff.get(id)
      if (e !== undefined) { return entryValue(this.owner, e) }
    }
    return this.owner.get(key)
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(keys.map(async k => this.get(k)))
  }

  /** A child batch that reads through this one. */
  newBatch (): AnyBatch {
    return new AnyBatch(this.owner, this)
  }
}

/** The value a diff entry stands for (decoding a moved operation lazily). */
function entryValue (db: AnyDb, e: DiffEntry): Uint8Array | undefined {
  if (e.loc < 0) { return undefined }
  if (e.value === undefined && e.op !== undefined) {
    const op = db.codec.decode(e.op)
    if (op.type === 'update') { e.value = op.value }
  }
  return e.value
}

/** What merkleize works against: the parent state and how to read it. */
export interface Base {
  db: AnyDb
  /** unapplied ancestors, nearest first (their diffs shadow the database) */
  ancestors: MerkleizedAnyBatch[]
  /** size of the parent state (first location of this batch) */
  size: number
  /** size of the applied database (locations below are read from the log) */
  committed: number
  /** location of the key (map id `id`) in the parent state, or -1 */
  loc(id: string, key: Uint8Array): number
}

function baseOf (db: AnyDb, parent: MerkleizedAnyBatch | undefined): Base {
  const ancestors = parent === undefined ? [] : db.unappliedAncestors(parent).reverse()
  return {
    db,
    ancestors,
    size: parent?.size ?? db.size,
    committed: db.size,
    loc (id: string, key: Uint8Array): number {
      for (const a of ancestors) {
        const e = a.diff.get(id)
        if (e !== undefined) { return e.loc }
      }
      return db.locationOf(key)
    }
  }
}

/** The encoded operation at `l` in the state being built (`ops` = this batch's so far). */
async function opIn (base: Base, ops: Uint8Array[], l: number): Promise<Uint8Array> {
  if (l >= base.size) { return ops[l - base.size] }
  if (l >= base.committed) {
    for (const a of base.ancestors) {
      if (l >= a.baseSize && l < a.size) { return a.ops[l - a.baseSize] }
    }
    throw new QmdbError('DataCorrupted', `location ${l} not in any ancestor`)
  }
  return base.db.opAtSync(l) ?? await base.db.opAt(l)
}

/**
 * updates/deletes of existing keys in current-location order, then
 * creates in key order. Returns the user steps and the change in active keys.
 */
function emitUserOps (base: Base, mutations: Map<string, Mutation>, ops: Uint8Array[], diff: Map<string, DiffEntry>): { userSteps: number, delta: number } {
  const codec = base.db.codec
  const existing: Array<{ loc: number, id: string, m: Mutation }> = []
  const creates: Array<{ id: string, m: Mutation }> = []
  for (const [id, m] of mutations) {
    const loc = base.loc(id, m.key)
    if (loc >= 0) { existing.push({ loc, id, m }) } else if (m.value !== null) { creates.push({ id, m }) }
  }
  existing.sort((a, b) => a.loc - b.loc)
  creates.sort((a, b) => compareBytes(a.m.key, b.m.key))
  let delta = 0
  for (const { loc, id, m } of existing) {
    const at = base.size + ops.length
    if (m.value !== null) {
      ops.push(codec.encode({ type: 'update', key: m.key, value: m.value }))
      diff.set(id, { key: m.key, loc: at, value: m.value, prev: loc })
    } else {
      ops.push(codec.encode({ type: 'delete', key: m.key }))
      diff.set(id, { key: m.key, loc: -1, value: undefined, prev: loc })
      delta--
    }
  }
  for (const { id, m } of creates) {
    const value = m.value as Uint8Array
    diff.set(id, { key: m.key, loc: base.size + ops.length, value, prev: -1 })
    ops.push(codec.encode({ type: 'update', key: m.key, value }))
    delta++
  }
  return { userSteps: existing.length, delta }
}

/**
 * move `steps` active operations from the floor to the tip. Locations
 * the applied bitmap marks inactive are skipped without advancing the floor;
 * the scan never reaches operations appended by the raise itself.
 */
async function raiseFloor (base: Base, floor: number, steps: number, ops: Uint8Array[], diff: Map<string, DiffEntry>): Promise<number> {
  const codec = base.db.codec
  const tip = base.size + ops.length
  let moved = 0
  let loc = floor
  if (loc < base.committed) { await base.db.prefetchActive(loc, steps) }
  while (loc < tip && moved < steps) {
    if (loc < base.committed) {
      const next = base.db.nextActive(loc, base.committed)
      if (next < 0) {
        loc = base.committed
        continue
      }
      loc = next
    }
    floor = loc + 1
    const bytes = await opIn(base, ops, loc)
    const key = codec.peekKey(bytes)
    if (key !== undefined) {
      const id = keyId(key)
      const mine = diff.get(id)
      if ((mine !== undefined ? mine.loc : base.loc(id, key)) === loc) {
        // operations are immutable once encoded: keep views, decode the value only on read
        diff.set(id, { key, loc: base.size + ops.length, value: undefined, prev: mine !== undefined ? mine.prev : loc, op: bytes })
        ops.push(bytes)
        moved++
      }
    }
    loc++
  }
  return floor
}

/**
 * The merkleize algorithm. `parent` undefined = on the applied database
 * state as it is now (an unmerkleized batch holds no snapshot).
 */
async function merkleizeAny (db: AnyDb, parent: MerkleizedAnyBatch | undefined, mutations: Map<string, Mutation>, metadata: Uint8Array | undefined): Promise<MerkleizedAnyBatch> {
  const base = baseOf(db, parent)
  const baseToken = parent === undefined ? db.state : undefined
  const ops: Uint8Array[] = []
  const diff = new Map<string, DiffEntry>()
  const { userSteps, delta } = db.codec.ordered
    ? await emitOrderedUserOps(base, mutations, ops, diff, async l => opIn(base, ops, l))
    : emitUserOps(base, mutations, ops, diff)
  const totalActive = (parent?.activeKeys ?? db.activeKeys) + delta
  const floor = totalActive > 0
    ? await raiseFloor(base, parent?.floor ?? db.inactivityFloor, userSteps + 1, ops, diff)
    : base.size + ops.length // nothing active: the floor is the commit's own location
  ops.push(db.codec.encode(metadata === undefined ? { type: 'commit', floor } : { type: 'commit', metadata, floor }))

  const mmrBatch = parent !== undefined ? parent.mmr.newBatch() : db.merkle.newBatch()
  for (const op of ops) { mmrBatch.add(op) }
  return new MerkleizedAnyBatch({
    owner: db,
    parent,
    baseToken,
    ops,
    mmr: mmrBatch.merkleize(),
    baseSize: base.size,
    floor,
    metadata,
    activeKeys: totalActive,
    diff
  })
}
