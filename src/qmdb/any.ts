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

import { BatchDiff } from './batch-diff.ts'
import { OpWriter } from './batch-ops.ts'
import { Bitmap } from './bitmap.ts'
import { QmdbCore, SYNC_REBUILD_STEP } from './core.ts'
import { QmdbError, storedOpCorrupt } from './errors.ts'
import { FixedKeyIndex, keyIndexFor } from './key-index.ts'
import { MerkleizedBatch, forkPoint } from './merkleized.ts'
import { Mutations } from './mutations.ts'
import { OpenBatch } from './open-batch.ts'
import { ANY_DELETE, AnyOpCodec, compareBytes, fixedField } from './ops.ts'
import { emitOrderedUserOps } from './ordered-batch.ts'
import { OrderedKeyIndex } from './ordered-index.ts'
import { anyReader } from './readers.ts'
import type { DbOptions } from './core.ts'
import type { GraftOverlay } from './grafting.ts'
import type { KeyIndex } from './key-index.ts'
import type { ManagedDb } from './managed.ts'
import type { ForkPoint } from './merkleized.ts'
import type { AnyOp, Encoding, FieldCodec } from './ops.ts'
import type { AnyReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Target } from './target.ts'
import type { Digest } from '../merkle/index.ts'

export interface AnyDbOptions extends DbOptions {
  /** Key field (default: 32-byte fixed keys). */
  key?: FieldCodec
  /** Value field (default: 32-byte fixed values). */
  value?: FieldCodec
  /** Operation encoding (default `fixed`). */
  encoding?: Encoding
}

/**
 * Floor-raise steps of each database's last merkleize, set by `merkleizeAny`:
 * how far a new batch reads ahead. Kept here, not on the database, so it is
 * no part of the public API.
 */
const lastRaiseSteps = new WeakMap<AnyDb, number>()

export class AnyDb extends QmdbCore<AnyOp, MerkleizedAnyBatch, AnyBatch> implements ManagedDb<AnyBatch, MerkleizedAnyBatch, Target> {
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

  /**
   * Build the database from a completed state-sync journal (see
   * `QmdbCore.buildFromSync`); durable after `commitSyncResult()`.
   */
  static async fromSyncResult (options: AnyDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<AnyDb> {
    return new AnyDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  /** Open (or create) an `any` database. */
  static async open (options: AnyDbOptions = {}): Promise<AnyDb> {
    return new AnyDb(options).openCore()
  }

  readonly kind: string = 'any'

  /** Number of keys with a value. */
  get activeKeys (): number { return this.snapshot.size }

  // ---- index ------------------------------------------------------------------

  private lastCommitBit = -1

  protected reserveIndex (entries: number): void {
    this.snapshot.reserve?.(entries)
  }

  protected resetIndex (): void {
    this.snapshot.clear()
    this.bitmap.reset(0, Math.floor(this.log.base / this.bitmap.chunkBits))
    this.lastCommitBit = -1
  }

  protected indexOp (loc: number, op: AnyOp): void {
    if (op.type === 'commit') {
      this.indexCommit(loc)
      return
    }
    this.bitmap.extend(loc + 1)
    const old = this.snapshot.get(op.key)
    if (old >= 0) { this.bitmap.set(old, false) }
    if (op.type === 'update') {
      this.snapshot.set(op.key, loc)
      this.bitmap.set(loc)
    } else {
      this.snapshot.delete(op.key)
    }
  }

  /**
   * Rebuilding the index at open or after a sync visits every operation
   * above the floor: with fixed-size keys in the hash table (unordered) and
   * the fixed encoding, the key is hashed where it sits in the stored bytes,
   * which are checked as `decode` would (a corrupt one is `DataCorrupted`)
   * but not decoded — no operation object or key view per operation.
   */
  protected indexStored (loc: number, bytes: Uint8Array): void {
    const index = this.snapshot
    if (!(index instanceof FixedKeyIndex) || this.codec.fixedSize === undefined) {
      super.indexStored(loc, bytes)
      return
    }
    try {
      this.codec.validate(bytes)
    } catch (err) {
      throw storedOpCorrupt(loc, err)
    }
    const ko = this.codec.keyOffset(bytes)
    if (ko < 0) {
      this.indexCommit(loc)
      return
    }
    this.bitmap.extend(loc + 1)
    const old = bytes[0] === ANY_DELETE ? index.deleteAt(bytes, ko) : index.swapAt(bytes, ko, loc)
    if (old >= 0) { this.bitmap.set(old, false) }
    if (bytes[0] !== ANY_DELETE) { this.bitmap.set(loc) }
  }

  private indexCommit (loc: number): void {
    this.bitmap.extend(loc + 1)
    if (this.lastCommitBit >= 0) { this.bitmap.set(this.lastCommitBit, false) }
    this.bitmap.set(loc)
    this.lastCommitBit = loc
  }

  protected applyIndex (batch: MerkleizedAnyBatch): void {
    this.bitmap.extend(batch.size)
    if (this.lastCommitBit >= 0) { this.bitmap.set(this.lastCommitBit, false) }
    const diff = batch.diff
    const { locs, prevs } = diff
    for (let s = 0; s < diff.size; s++) {
      const prev = prevs[s]
      const loc = locs[s]
      if (prev >= 0) { this.bitmap.set(prev, false) }
      if (loc >= 0) {
        this.snapshot.set(diff.keyOf(s), loc)
        this.bitmap.set(loc)
      } else {
        this.snapshot.delete(diff.keyOf(s))
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
   * batch does not pull the whole log into memory at once). A read-ahead
   * started by `newBatch` is waited for first, so nothing is read twice.
   */
  async prefetchActive (from: number, steps: number): Promise<void> {
    await this.readingAhead
    await this.readActive(from, steps)
  }

  private async readActive (from: number, steps: number): Promise<void> {
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

  /** The read-ahead in flight, if any (it never rejects). */
  private readingAhead: Promise<void> | undefined

  /**
   * Start reading the operations a new batch forking at floor `from` will
   * move (as many as the last merkleize moved) while the caller fills the
   * batch, so its merkleize finds them resident. A failed read-ahead is
   * dropped: the merkleize then reads, and reports, for itself.
   */
  readAhead (from: number): void {
    const steps = lastRaiseSteps.get(this) ?? 0
    if (this.readingAhead !== undefined || steps === 0 || from >= this.size) { return }
    const reading: Promise<void> = this.readActive(from, steps).then(() => {}, () => {}).then(() => {
      if (this.readingAhead === reading) { this.readingAhead = undefined }
    })
    this.readingAhead = reading
  }

  /** The encoded operation at `loc` (loads its chunk if needed). */
  async opAt (loc: number): Promise<Uint8Array> {
    return this.opBytesSync(loc) ?? this.log.get(loc)
  }

  /** The encoded operations at `locs` (committed ones: one storage read for all missing chunks). */
  async opsAt (locs: readonly number[]): Promise<Uint8Array[]> {
    return this.log.getMany(locs)
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
    this.readAhead(this.inactivityFloor)
    return new AnyBatch(this, undefined)
  }
}

/** A batch being written: reads see its own writes, then the parent chain, then the database. */
export class AnyBatch extends OpenBatch<AnyDb, MerkleizedAnyBatch> {
  private readonly mutations: Mutations

  constructor (db: AnyDb, parent: MerkleizedAnyBatch | undefined) {
    super(db, parent)
    this.mutations = new Mutations(db.codec.key.size, db.codec.value.size)
  }

  /** Set `key` to `value` (`null` deletes); fixed-size keys and values are copied. */
  write (key: Uint8Array, value: Uint8Array | null): this {
    this.mutations.set(key, value)
    return this
  }

  update (key: Uint8Array, value: Uint8Array): this {
    return this.write(key, value)
  }

  delete (key: Uint8Array): this {
    return this.write(key, null)
  }

  get size (): number {
    return this.mutations.size
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    const slot = this.mutations.slotOf(key)
    if (slot >= 0) { return this.mutations.valueOf(slot)?.slice() }
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
export class MerkleizedAnyBatch extends MerkleizedBatch<AnyDb, MerkleizedAnyBatch> {
  readonly activeKeys: number
  readonly diff: BatchDiff
  /** `current` only: the grafted bitmap state after this batch. */
  graft: GraftOverlay | undefined = undefined

  constructor (db: AnyDb, fork: ForkPoint<MerkleizedAnyBatch>, ops: Uint8Array[], floor: number, metadata: Uint8Array | undefined, activeKeys: number, diff: BatchDiff) {
    super(db, fork, ops, floor, metadata)
    this.activeKeys = activeKeys
    this.diff = diff
  }

  /** The root of the state after this batch (`any`: the ops root; `current`: the canonical root). */
  get root (): Digest { return this.graft?.canonical ?? this.opsRoot }

  /** The sync boundary after this batch (`current` rounds the floor down to a chunk). */
  get syncBoundary (): number { return this.graft !== undefined ? this.floor - (this.floor % this.graft.chunkBits) : this.floor }

  /** The value of `key` after this batch. */
  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    for (let b: MerkleizedAnyBatch | undefined = this; b !== undefined; b = b.parent) {
      const slot = b.diff.slotOf(key)
      if (slot >= 0) { return entryValue(this.owner, b.diff, slot) }
    }
    return this.owner.get(key)
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(keys.map(async k => this.get(k)))
  }

  /** A child batch that reads through this one. */
  newBatch (): AnyBatch {
    this.owner.readAhead(this.floor)
    return new AnyBatch(this.owner, this)
  }
}

/** The value a diff entry stands for (decoding a moved operation lazily). */
function entryValue (db: AnyDb, diff: BatchDiff, slot: number): Uint8Array | undefined {
  if (diff.locs[slot] < 0) { return undefined }
  const moved = diff.moved[slot]
  if (diff.values[slot] === undefined && moved !== undefined) {
    const op = db.codec.decode(moved)
    if (op.type === 'update') { diff.values[slot] = op.value }
  }
  return diff.values[slot]
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
  /** location of `key` in the parent state, or -1 */
  loc(key: Uint8Array): number
}

function baseOf (db: AnyDb, parent: MerkleizedAnyBatch | undefined): Base {
  const ancestors = parent === undefined ? [] : db.chainOf(parent).reverse()
  return {
    db,
    ancestors,
    size: parent?.size ?? db.size,
    committed: db.size,
    loc (key: Uint8Array): number {
      for (let i = 0; i < ancestors.length; i++) {
        const s = ancestors[i].diff.slotOf(key)
        if (s >= 0) { return ancestors[i].diff.locs[s] }
      }
      return db.locationOf(key)
    }
  }
}

/** The encoded operation at `l` in the state being built (`ops` = this batch's so far) if it is in memory. */
function opInSync (base: Base, ops: Uint8Array[], l: number): Uint8Array | undefined {
  if (l >= base.size) { return ops[l - base.size] }
  if (l >= base.committed) {
    for (const a of base.ancestors) {
      if (l >= a.baseSize && l < a.size) { return a.ops[l - a.baseSize] }
    }
    throw new QmdbError('DataCorrupted', `location ${l} not in any ancestor`)
  }
  return base.db.opAtSync(l)
}

/** `opInSync` for each of `locs`, the ones not in memory loaded from storage together. */
async function opsIn (base: Base, ops: Uint8Array[], locs: readonly number[]): Promise<Uint8Array[]> {
  const out = new Array<Uint8Array>(locs.length)
  const missing: number[] = []
  for (let j = 0; j < locs.length; j++) {
    const bytes = opInSync(base, ops, locs[j])
    if (bytes === undefined) { missing.push(j) } else { out[j] = bytes }
  }
  if (missing.length > 0) {
    const loaded = await base.db.opsAt(missing.map(j => locs[j]))
    for (let m = 0; m < missing.length; m++) { out[missing[m]] = loaded[m] }
  }
  return out
}

/**
 * The indices `j` with `locs[j] >= 0` (`count` of them), by ascending
 * location. Each is packed as `loc * n + j` into one float array and sorted
 * natively (no comparator calls): exact while `loc * n + j` stays below
 * 2^53, which real logs do; beyond that a comparator sort.
 */
function locationOrder (locs: Float64Array, count: number): Uint32Array {
  const n = locs.length
  const order = new Uint32Array(count)
  let max = 0
  let e = 0
  for (let j = 0; j < n; j++) {
    if (locs[j] >= 0) {
      order[e++] = j
      if (locs[j] > max) { max = locs[j] }
    }
  }
  if ((max + 1) * n >= Number.MAX_SAFE_INTEGER) { return order.sort((a, b) => locs[a] - locs[b]) }
  const packed = new Float64Array(count)
  for (let i = 0; i < count; i++) { packed[i] = locs[order[i]] * n + order[i] }
  packed.sort()
  for (let i = 0; i < count; i++) { order[i] = packed[i] % n }
  return order
}

/** `muts`' slots `creates` sorted by key (fixed-size keys: compared in the key arena, no views; variable ones are held as given). */
function sortByKey (muts: Mutations, creates: Uint32Array): Uint32Array {
  const ks = muts.keySize
  if (ks === undefined) { return creates.sort((a, b) => compareBytes(muts.keyOf(a), muts.keyOf(b))) }
  const bytes = muts.keyBytes
  return creates.sort((a, b) => {
    const x = a * ks
    const y = b * ks
    for (let i = 0; i < ks; i++) {
      const d = bytes[x + i] - bytes[y + i]
      if (d !== 0) { return d }
    }
    return 0
  })
}

/**
 * updates/deletes of existing keys in current-location order, then
 * creates in key order. Returns the user steps and the change in active keys.
 * With fixed-size keys and values each write is encoded straight from the
 * mutation arenas and its diff entry reads key and value from its operation.
 */
function emitUserOps (base: Base, muts: Mutations, out: OpWriter, diff: BatchDiff): { userSteps: number, delta: number } {
  const n = muts.size
  const locs = new Float64Array(n)
  const deleted = muts.deleted
  let existing = 0
  let nc = 0
  for (let s = 0; s < n; s++) {
    const loc = base.loc(muts.keyOf(s))
    locs[s] = loc
    if (loc >= 0) { existing++ } else if (deleted[s] === 0) { nc++ }
  }
  // existing keys in location order (locations are distinct), then creates in key order
  const order = locationOrder(locs, existing)
  const unsorted = new Uint32Array(nc)
  for (let s = 0, c = 0; s < n; s++) {
    if (locs[s] < 0 && deleted[s] === 0) { unsorted[c++] = s }
  }
  const creates = sortByKey(muts, unsorted)
  const ops = out.ops
  const ks = muts.keySize
  const vs = muts.valueSize
  const codec = base.db.codec
  const arenas = ks !== undefined && vs !== undefined && codec.fixedSize !== undefined
  const keys = muts.keyBytes
  const values = muts.valueBytes
  let delta = 0
  const emit = (s: number, prev: number): void => {
    const del = deleted[s] === 1
    const at = del ? -1 : base.size + ops.length
    if (arenas) {
      const op = out.keyedAt(keys, s * ks, del ? null : values, s * vs)
      diff.addMove(op, codec.keyOffset(op), at, prev)
    } else {
      const key = muts.keyOf(s)
      const value = muts.valueOf(s)
      out.keyed(key, value)
      diff.add(key, at, value ?? undefined, prev)
    }
  }
  for (let j = 0; j < existing; j++) {
    const s = order[j]
    emit(s, locs[s])
    if (deleted[s] === 1) { delta-- }
  }
  for (let c = 0; c < nc; c++) {
    emit(creates[c], -1)
    delta++
  }
  return { userSteps: existing, delta }
}

/**
 * move `steps` active operations from the floor to the tip. Locations
 * the applied bitmap marks inactive are skipped without advancing the floor;
 * the scan never reaches operations appended by the raise itself. Operations
 * are immutable once encoded, so a move appends a view of the old bytes.
 */
async function raiseFloor (base: Base, floor: number, steps: number, ops: Uint8Array[], diff: BatchDiff, readAhead: Promise<void> | undefined): Promise<number> {
  const codec = base.db.codec
  const tip = base.size + ops.length
  // on the applied state, a set bit below `committed` is its key's active update (the bitmap is exact), so a key
  // this batch did not touch needs no snapshot lookup there
  const applied = base.ancestors.length === 0
  const keySize = codec.key.size as number
  const fixedKeys = codec.key.size !== undefined
  let moved = 0
  let loc = floor
  await readAhead
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
    const bytes = opInSync(base, ops, loc) ?? await base.db.opAt(loc)
    // fixed-size keys are hashed where they sit in the operation (no key view); others are peeked
    const ko = fixedKeys ? codec.keyOffset(bytes) : -1
    const key = fixedKeys ? undefined : codec.peekKey(bytes)
    if (ko >= 0 || key !== undefined) {
      const slot = key === undefined ? diff.slotAt(bytes, ko) : diff.slotOf(key)
      if (slot >= 0) {
        if (diff.locs[slot] === loc) {
          diff.relocate(slot, base.size + ops.length, bytes)
          ops.push(bytes)
          moved++
        }
      } else if ((applied && loc < base.committed) || base.loc(key ?? bytes.subarray(ko, ko + keySize)) === loc) {
        if (key === undefined) { diff.addMove(bytes, ko, base.size + ops.length, loc) } else { diff.add(key, base.size + ops.length, undefined, loc, bytes) }
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
async function merkleizeAny (db: AnyDb, parent: MerkleizedAnyBatch | undefined, mutations: Mutations, metadata: Uint8Array | undefined): Promise<MerkleizedAnyBatch> {
  const fork = forkPoint(db, parent)
  const base = baseOf(db, parent)
  // read the committed operations the floor raise will visit (at most one per mutation, plus one) while the user
  // operations are emitted; awaited by the raise (caught here only so that a throw before then leaves nothing unhandled)
  const from = parent?.floor ?? db.inactivityFloor
  const readAhead = from < base.committed ? db.prefetchActive(from, mutations.size + 1) : undefined
  readAhead?.catch(() => {})
  // the user operations (ordered: plus at most one rewrite per create or delete)
  const out = new OpWriter(db.codec, db.codec.ordered ? 2 * mutations.size : mutations.size)
  const ops = out.ops
  // every mutation and about as many moves
  const diff = new BatchDiff(db.codec.key.size, 2 * mutations.size + 16, op => db.codec.peekKey(op) as Uint8Array)
  const { userSteps, delta } = db.codec.ordered
    ? await emitOrderedUserOps(base, mutations, out, diff, async locs => opsIn(base, ops, locs))
    : emitUserOps(base, mutations, out, diff)
  lastRaiseSteps.set(db, userSteps + 1)
  const totalActive = (parent?.activeKeys ?? db.activeKeys) + delta
  const floor = totalActive > 0
    ? await raiseFloor(base, from, userSteps + 1, ops, diff, readAhead)
    : base.size + ops.length // nothing active: the floor is the commit's own location
  ops.push(db.codec.encodeCommit(metadata, floor))

  return new MerkleizedAnyBatch(db, fork, ops, floor, metadata, totalActive, diff)
}
