/**
 * The part every QMDB database shares: the authenticated journal (operation
 * log + MMR, item `i` ↔ leaf `i`), the batch chain rules, durability,
 * historical proofs, pruning, rewinding and poisoning (commonware `storage/src/journal/authenticated.rs`, `storage/src/qmdb/mod.rs`, `storage/src/qmdb/batch_chain.rs`).
 *
 * Persistence layout under `prefix` (one atomic write batch per commit):
 * - `<prefix>/meta`: version u8 ‖ varint size ‖ varint logStart
 * - `<prefix>/ops/<chunk:16hex>`: encoded operations, 64 per chunk
 * - `<prefix>/mmr/...`: the MMR (see `merkle/mmr.ts`)
 * - anything a subclass stages in `stageExtra`.
 *
 * Invariants:
 * - `mmr.leaves === log.length` after every apply, open and rewind;
 * - the last operation is a commit; its floor is the inactivity floor and
 * never exceeds its own location; floors never decrease;
 * - nothing is pruned above the floor;
 * - a durable commit writes ops, nodes, pins and meta in one batch, so a
 * crash reopens exactly at the last durable commit (a sync build writes its
 * MMR ahead of the meta, see `buildFromSync`: the database stays unopenable
 * until the meta is written);
 * - a mutating call that throws poisons the handle: every later call throws
 * `Poisoned` until the database is reopened.
 */

import { Reader, Writer } from '../codec/index.ts'
import { Mmr, MerkleError, computeRoot, inactivePeaks, leafDigest, markApplied, unappliedChain } from '../merkle/index.ts'
import { ItemLog } from '../storage/items.ts'
import { joinKey } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import { QmdbError, storedOpCorrupt } from './errors.ts'
import { DbGuard } from './guard.ts'
import { targetsEqual } from './target.ts'
import type { MerkleOwner, MerkleizedBatch } from './merkleized.ts'
import type { OpCodec } from './ops.ts'
import type { DbOptions } from './options.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Target } from './target.ts'
import type { Digest, Proof } from '../merkle/index.ts'
import type { WriteBatch, WriteOptions } from '../storage/kv.ts'

const META_VERSION = 1

export type { DbOptions } from './options.ts'

/** A range of operations and the proof that they belong to the log at some size. */
export interface ProvenOps {
  proof: Proof
  /** Encoded operations `[start, start + ops.length)`. */
  ops: Uint8Array[]
}

function digestEqualsSafe (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) { return false }
  for (let i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false } }
  return true
}

/**
 * `Op`: the database's operations; `B`: its sealed batch, whose `newBatch()`
 * forks a batch `U` that merkleizes into another `B`.
 */
/** Operations hashed (and the MMR written) per step when a state sync rebuilds a database's MMR. */
export const SYNC_REBUILD_STEP = 1 << 14

export abstract class QmdbCore<Op, B extends MerkleizedBatch<MerkleOwner, B> & { newBatch(): U }, U extends { merkleize(): Promise<B> }> {
  readonly codec: OpCodec<Op>
  protected readonly kv?: Kv
  protected readonly prefix: string
  protected log: ItemLog
  protected mmr!: Mmr
  protected _floor = 0
  protected _metadata: Uint8Array | undefined
  protected _opsRoot!: Digest
  protected _state: object = {}
  private readonly guard = new DbGuard()
  private metaVersion = 0
  private durableMetaVersion = -1
  private readonly options: DbOptions
  /** `oldestServableSize` for a pruning boundary */
  private servable: { base: number, size: number } | undefined

  protected constructor (codec: OpCodec<Op>, options: DbOptions) {
    this.codec = codec
    this.options = options
    this.kv = options.datastore === undefined ? undefined : new Kv(options.datastore)
    this.prefix = options.prefix ?? '/qmdb'
    this.log = new ItemLog({ kv: this.kv, prefix: joinKey(this.prefix, 'ops'), cacheChunks: options.opCacheChunks })
  }

  // ---- state ----------------------------------------------------------------

  /** Number of operations (the next location). */
  get size (): number { return this.log.length }
  /** Location of the last commit. */
  get lastCommitLoc (): number { return this.log.length - 1 }
  /** Inactivity floor of the last commit. */
  get inactivityFloor (): number { return this._floor }
  /** Metadata of the last commit. */
  get metadata (): Uint8Array | undefined { return this._metadata }
  /** First retained operation (everything below is pruned). */
  get pruningBoundary (): number { return this.log.base }
  /** Identity of the applied state; replaced by every apply and rewind. */
  get state (): object { return this._state }
  /** Root of the operations MMR (the sync target root). */
  get opsRoot (): Digest { return this._opsRoot }
  /** The database root (the ops root; `current` overrides: the canonical root). */
  get root (): Digest { return this._opsRoot }

  /** The first location state sync needs (the floor; `current` rounds it down). */
  get syncBoundary (): number { return this._floor }

  /** The committed MMR (read-only use: proofs and node reads). */
  get merkle (): Mmr { return this.mmr }

  protected check (): void {
    this.guard.check()
  }

  /** Run a mutating step; any failure poisons the handle. */
  protected async mutate<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.guard.mutate(fn)
  }

  // ---- subclass hooks --------------------------------------------------------

  /** Forget the in-memory index (before a replay). */
  protected abstract resetIndex (): void
  /** Room for up to `entries` keys before the index is rebuilt (variants without a sized index ignore it). */
  protected reserveIndex (_entries: number): void {}
  /** Replay one operation at `loc` (>= floor) into the index. */
  protected abstract indexOp (loc: number, op: Op): void
  /** Apply a validated batch's index changes (its ops are already in the log). */
  protected abstract applyIndex (batch: B): void
  /** The index dropped everything below `loc`. */
  protected pruneIndex (loc: number): void {}
  /** Recompute derived roots after the ops root changed (`current` overrides). */
  protected async refreshRoots (): Promise<void> {}
  /** Stage subclass records into a commit. */
  protected stageExtra (batch: WriteBatch): void {}

  // ---- state sync ---------------------------------------------------------------

  /** Keys deleted by the next commit (e.g. the sync meta once a sync completes). */
  private pendingDeletes: string[] = []

  /**
   * Turn a completed sync journal into this database (commonware `storage/src/qmdb/sync`): the MMR
   * is rebuilt from the pinned nodes at `range.start` plus the journal's
   * operations (reusing a compatible MMR already on disk, falling back to a
   * fresh one if that does not reproduce `expectedRoot`), then the index is
   * replayed from the last commit's floor. The database is not durable until
   * `commitSyncResult()`: the MMR is written under `<prefix>/mmr` as it grows
   * (each write a self-consistent structure), but while `syncmeta` stands in
   * for `meta` the database does not open (`SyncInterrupted`) and a resumed
   * sync reuses that MMR only if it reproduces the target root.
   */
  protected async buildFromSync (journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize: number): Promise<this> {
    if (journal.size !== range.end || journal.start > range.start) {
      throw new QmdbError('UnexpectedData', `journal [${journal.start}, ${journal.size}) does not cover [${range.start}, ${range.end})`)
    }
    this.log = journal.log
    this.pendingDeletes.push(joinKey(this.prefix, 'syncmeta'))
    const fresh = async (): Promise<Mmr> => {
      if (range.start > 0 && pins === undefined) { throw new QmdbError('InvalidPinnedNodes', `pinned nodes for ${range.start} are required`) }
      const mmr = this.kv === undefined
        ? Mmr.inMemory()
        : await Mmr.open(this.kv, joinKey(this.prefix, 'mmr'), { cacheChunks: this.options.nodeCacheChunks }).catch(() => Mmr.create(this.kv as Kv, joinKey(this.prefix, 'mmr')))
      mmr.reset(range.start, pins ?? [])
      return mmr
    }
    let mmr: Mmr | undefined
    if (this.kv !== undefined) {
      const existing = await Mmr.open(this.kv, joinKey(this.prefix, 'mmr'), { cacheChunks: this.options.nodeCacheChunks }).catch(() => undefined)
      if (existing !== undefined && existing.leaves >= range.start && existing.prunedLoc <= range.start && existing.leaves > 0) {
        if (existing.leaves > range.end) { await existing.rewind(range.end) }
        mmr = existing
      }
    }
    this.mmr = mmr ?? await fresh()
    await this.extendMmr(range.end, applyBatchSize)
    if (mmr !== undefined) {
      // a reused MMR must reproduce the target; otherwise rebuild it from the pins
      const floor = this.codec.floorOf(await this.readOp(range.end - 1))
      if (floor === undefined || !digestEqualsSafe(this.mmr.root(inactivePeaks(range.end, floor)), expectedRoot)) {
        this.mmr = await fresh()
        await this.extendMmr(range.end, applyBatchSize)
      }
    }
    this.metaVersion++
    this._state = {}
    await this.loadTipAndIndex()
    return this
  }

  /**
   * Hash journal operations `[mmr.leaves, end)` into the MMR, `chunk` at a
   * time. A persisted MMR is written after every step (its chunks, meta and
   * pins in one batch, while the next step hashes), so the rebuilt nodes of a
   * large sync never sit in memory all at once: the resident cost is one
   * step's nodes plus the node cache, not the whole structure.
   */
  private async extendMmr (end: number, chunk: number): Promise<void> {
    let writing: Promise<void> | undefined
    let failed = false
    try {
      for (let s = this.mmr.leaves; s < end; s += chunk) {
        const e = Math.min(end, s + chunk)
        const batch = this.mmr.newBatch()
        for (const op of await this.log.range(s, e)) { batch.add(op) }
        this.mmr.apply(batch.merkleize())
        if (this.kv !== undefined) {
          await writing
          writing = this.mmr.commit()
          // awaited at the next step or below; a handler now, so a failure while hashing is not unhandled
          writing.catch(() => {})
        }
      }
    } catch (err) {
      failed = true
      throw err
    } finally {
      // a failed step still waits for its write, so nothing runs on after the build returns; the step's own
      // error is the one reported (a write failing with it must not replace it)
      await (failed ? writing?.catch(() => {}) : writing)
    }
  }

  /** Make a sync result durable (one atomic write: ops, MMR, meta; the sync meta removed). */
  async commitSyncResult (): Promise<void> {
    await this.commit({ sync: true })
  }

  // ---- open -------------------------------------------------------------------

  /** Open from storage, or initialise with the bootstrap commit. */
  protected async openCore (): Promise<this> {
    this.mmr = this.kv === undefined
      ? Mmr.inMemory()
      : await Mmr.open(this.kv, joinKey(this.prefix, 'mmr'), { cacheChunks: this.options.nodeCacheChunks })
    const meta = this.kv === undefined ? undefined : await this.kv.get(joinKey(this.prefix, 'meta'))
    if (meta === undefined && this.kv !== undefined && await this.kv.get(joinKey(this.prefix, 'syncmeta')) !== undefined) {
      throw new QmdbError('SyncInterrupted', `a state sync into ${this.prefix} was interrupted; resume it before opening the database`)
    }
    if (meta === undefined) {
      if (this.mmr.leaves !== 0) { throw new QmdbError('DataCorrupted', `MMR has ${this.mmr.leaves} leaves but no database meta`) }
      const bootstrap = this.codec.encodeCommit(undefined, 0)
      this.log.append([bootstrap])
      this.mmr.append([bootstrap])
      this._floor = 0
      this._metadata = undefined
      this.resetIndex()
      this.indexOp(0, this.codec.decode(bootstrap))
      this._opsRoot = this.mmr.root(0)
      await this.refreshRoots()
      await this.commit({ sync: true })
      return this
    }
    let size: number, logStart: number
    try {
      const r = new Reader(meta)
      const version = r.u8()
      if (version !== META_VERSION) { throw new Error(`unknown version ${version}`) }
      size = r.varint()
      logStart = r.varint()
      r.finish()
    } catch (err) {
      throw new QmdbError('DataCorrupted', `database meta under ${this.prefix}: ${(err as Error).message}`)
    }
    if (size === 0 || logStart >= size) { throw new QmdbError('DataCorrupted', `database meta: size ${size}, start ${logStart}`) }
    if (this.mmr.leaves !== size) { throw new QmdbError('DataCorrupted', `log has ${size} operations but the MMR ${this.mmr.leaves} leaves`) }
    this.log.open(size, logStart)
    await this.log.ensureTail()
    this.durableMetaVersion = this.metaVersion
    await this.loadTipAndIndex()
    return this
  }

  /** Read the last commit, rebuild the index from its floor, compute the roots. */
  protected async loadTipAndIndex (): Promise<void> {
    const last = await this.readOp(this.size - 1)
    const floor = this.codec.floorOf(last)
    if (floor === undefined) { throw new QmdbError('DataCorrupted', `operation ${this.size - 1} is not a commit`) }
    if (floor > this.size - 1) { throw new QmdbError('DataCorrupted', `floor ${floor} beyond its commit at ${this.size - 1}`) }
    if (floor < this.log.base) { throw new QmdbError('DataCorrupted', `floor ${floor} below the pruning boundary ${this.log.base}`) }
    this._floor = floor
    this._metadata = (last as { metadata?: Uint8Array }).metadata
    this.resetIndex()
    // at most one key per operation above the floor: sized once, the index never doubles while it is rebuilt
    this.reserveIndex(this.size - floor)
    const step = 4096
    for (let s = floor; s < this.size; s += step) {
      const e = Math.min(this.size, s + step)
      const ops = await this.log.range(s, e)
      for (let i = 0; i < ops.length; i++) { this.indexStored(s + i, ops[i]) }
    }
    this._opsRoot = this.mmr.root(inactivePeaks(this.size, floor))
    await this.refreshRoots()
  }

  /** `indexOp` of a stored encoded operation (variants may index the bytes without decoding them). */
  protected indexStored (loc: number, bytes: Uint8Array): void {
    this.indexOp(loc, this.decodeStored(loc, bytes))
  }

  protected decodeStored (loc: number, bytes: Uint8Array): Op {
    try {
      return this.codec.decode(bytes)
    } catch (err) {
      throw storedOpCorrupt(loc, err)
    }
  }

  // ---- reads ------------------------------------------------------------------

  /** Encoded operation at `loc`. */
  async readOpBytes (loc: number): Promise<Uint8Array> {
    this.check()
    if (loc >= this.size || loc < 0) { throw new QmdbError('LocationOutOfBounds', `location ${loc}, size ${this.size}`) }
    if (loc < this.log.base) { throw new QmdbError('ItemPruned', `operation ${loc} is pruned (boundary ${this.log.base})`) }
    return this.log.get(loc)
  }

  /** Decoded operation at `loc`. */
  async readOp (loc: number): Promise<Op> {
    return this.decodeStored(loc, await this.readOpBytes(loc))
  }

  /** The encoded operation if its chunk is in memory (hot paths). */
  protected opBytesSync (loc: number): Uint8Array | undefined {
    return this.log.getSync(loc)
  }

  protected async ensureOp (loc: number): Promise<void> {
    await this.log.ensure(loc)
  }

  /** The inactivity floor declared by the commit at `size - 1` (commonware `storage/src/qmdb/mod.rs`). */
  async floorAt (size: number): Promise<number> {
    this.check()
    if (size === 0 || size > this.size) { throw new QmdbError('HistoricalFloorPruned', `no commit governs size ${size}`) }
    if (size - 1 < this.log.base) { throw new QmdbError('ItemPruned', `commit at ${size - 1} is pruned`) }
    const op = await this.readOp(size - 1)
    const floor = this.codec.floorOf(op)
    if (floor === undefined) { throw new QmdbError('HistoricalFloorPruned', `operation ${size - 1} is not a commit`) }
    if (floor > size - 1) { throw new QmdbError('DataCorrupted', `floor ${floor} beyond commit ${size - 1}`) }
    return floor
  }

  /**
   * Operations `[start, min(size, start + maxOps))` with a range proof against
   * the root the database had at `size` (which must be a commit boundary).
   */
  async historicalProof (size: number, start: number, maxOps: number): Promise<ProvenOps> {
    this.check()
    if (size > this.size) { throw new QmdbError('RangeOutOfBounds', `size ${size} beyond ${this.size}`) }
    if (start >= size) { throw new QmdbError('RangeOutOfBounds', `start ${start} not below size ${size}`) }
    if (start < this.log.base) { throw new QmdbError('ItemPruned', `operation ${start} is pruned (boundary ${this.log.base})`) }
    const k = inactivePeaks(size, await this.floorAt(size))
    const end = Math.min(size, start + Math.max(1, maxOps))
    try {
      const [proof, ops] = await Promise.all([this.mmr.proof(start, end, k, size), this.log.range(start, end)])
      return { proof, ops }
    } catch (err) {
      if (err instanceof MerkleError && err.code === 'ElementPruned') { throw new QmdbError('ItemPruned', err.message) }
      throw err
    }
  }

  /**
   * The smallest size at which this database can still serve a sync target:
   * the first commit at or after the pruning boundary whose inactivity floor
   * is retained too (a target `[floor, size)` needs every operation from its
   * floor). Remembered until the next prune.
   */
  async oldestServableSize (): Promise<number> {
    this.check()
    const base = this.log.base
    if (this.servable?.base === base && this.servable.size <= this.size) { return this.servable.size }
    let size = this.size
    for (let loc = base; loc < this.size; loc++) {
      const floor = this.codec.floorOf(await this.readOp(loc))
      if (floor !== undefined && floor >= base) {
        size = loc + 1
        break
      }
    }
    if (this.log.base === base) { this.servable = { base, size } }
    return size
  }

  /** Proof of `[start, start + maxOps)` against the current root. */
  async proof (start: number, maxOps: number): Promise<ProvenOps> {
    return this.historicalProof(this.size, start, maxOps)
  }

  /** Digests of `nodesToPin(loc)` (what a client needs to continue from `loc`). */
  async pinnedNodesAt (loc: number): Promise<Digest[]> {
    this.check()
    try {
      return await this.mmr.pinnedNodesAt(loc)
    } catch (err) {
      if (err instanceof MerkleError) { throw new QmdbError('ItemPruned', err.message) }
      throw err
    }
  }

  // ---- batches ---------------------------------------------------------------

  /** The unapplied batches of `tip`'s chain, oldest first (StaleBatch if it does not build on the current state). */
  chainOf (tip: B): B[] {
    if (tip.owner !== this) { throw new QmdbError('StaleBatch', 'batch belongs to another database') }
    const chain = unappliedChain(tip, this._state)
    if (chain === undefined) { throw new QmdbError('StaleBatch', `batch is not built on the current state (size ${this.size})`) }
    return chain
  }

  /** Check that applying `tip` would succeed, without changing anything. */
  validateBatch (tip: B): void {
    this.check()
    let prev = this._floor
    for (const b of this.chainOf(tip)) {
      if (b.floor < prev) { throw new QmdbError('FloorRegressed', `batch floor ${b.floor} below ${prev}`) }
      if (b.floor > b.size - 1) { throw new QmdbError('FloorBeyondSize', `floor ${b.floor} beyond commit ${b.size - 1}`) }
      prev = b.floor
    }
  }

  /**
   * Make `tip` (and its unapplied ancestors) the database state. Published to
   * reads and proofs at once; durable only after `commit()`.
   * Returns the written location range `[start, end)`.
   */
  async apply (tip: B): Promise<{ start: number, end: number }> {
    this.validateBatch(tip)
    return this.mutate(async () => {
      const start = this.size
      const chain = this.chainOf(tip)
      for (const b of chain) {
        if (b.baseSize !== this.size) { throw new QmdbError('StaleBatch', `expected size ${b.baseSize}, actual ${this.size}`) }
        this.log.append(b.ops)
        this.applyIndex(b)
        this._floor = b.floor
        this._metadata = b.metadata
        this._opsRoot = b.opsRoot
        this._state = markApplied(b)
      }
      if (chain.length > 0) {
        this.mmr.apply(tip.mmr)
        this.metaVersion++
        await this.refreshRoots()
      }
      return { start, end: this.size }
    })
  }

  // ---- durability ------------------------------------------------------------

  /** Whether applied state is not yet durable. */
  get dirty (): boolean {
    return this.metaVersion !== this.durableMetaVersion || this.mmr.dirty
  }

  /**
   * Make everything applied so far durable: one atomic write. Commits are
   * serialized; later applies may proceed while a commit is in flight.
   * `sync: true` also fsyncs (survives an OS crash, not only a process crash).
   */
  async commit (options: WriteOptions = {}): Promise<void> {
    await this.guard.commit(async () => {
      if (this.kv === undefined) {
        this.durableMetaVersion = this.metaVersion
        return
      }
      const batch = this.kv.batch()
      const version = this.metaVersion
      const items = this.log.stage(batch)
      const nodes = this.mmr.stage(batch)
      this.stageExtra(batch)
      batch.put(joinKey(this.prefix, 'meta'), new Writer(24).u8(META_VERSION).varint(this.size).varint(this.log.base).finish())
      const deletes = this.pendingDeletes.splice(0)
      for (const k of deletes) { batch.delete(k) }
      await batch.commit(options)
      this.log.markClean(items)
      this.mmr.markDurable(nodes)
      this.durableMetaVersion = Math.max(this.durableMetaVersion, version)
    })
  }

  /** `commit` with an fsync. */
  async sync (): Promise<void> {
    await this.commit({ sync: true })
  }

  // ---- prune / rewind --------------------------------------------------------

  /** Discard operations below `loc` (at most the sync boundary); durable on return. */
  async prune (loc: number): Promise<void> {
    this.check()
    if (loc > this.syncBoundary) { throw new QmdbError('PruneBeyondMinRequired', `prune to ${loc} beyond ${this.syncBoundary}`) }
    if (loc <= this.log.base) { return }
    await this.mutate(async () => {
      await this.mmr.prune(loc)
      this.log.pruneBelow(loc)
      this.pruneIndex(loc)
      this.metaVersion++
    })
    await this.commit()
  }

  /**
   * Rewind to `size` operations (a commit boundary at or above the pruning
   * boundary). Not durable until the next commit.
   */
  async rewind (size: number): Promise<void> {
    this.check()
    if (size === this.size) { return }
    if (size === 0 || size > this.size) { throw new QmdbError('InvalidRewind', `cannot rewind to ${size} (size ${this.size})`) }
    if (size <= this.log.base) { throw new QmdbError('ItemPruned', `rewind to ${size} at or below the pruning boundary ${this.log.base}`) }
    const op = await this.readOp(size - 1)
    const floor = this.codec.floorOf(op)
    if (floor === undefined) { throw new QmdbError('UnexpectedData', `operation ${size - 1} is not a commit`) }
    if (floor < this.log.base) { throw new QmdbError('ItemPruned', `floor ${floor} of the rewind target is pruned`) }
    await this.mutate(async () => {
      await this.log.truncate(size)
      await this.mmr.rewind(size)
      this.metaVersion++
      this._state = {}
      await this.loadTipAndIndex()
    })
  }

  // ---- ManagedDb (standard sync targets) -------------------------------------

  forkBatch (parent: B): U {
    return parent.newBatch()
  }

  async merkleize (batch: U): Promise<B> {
    return batch.merkleize()
  }

  batchRoot (batch: B): Digest {
    return batch.root
  }

  /** The sync boundary a batch's state would have (`current` rounds the floor down). */
  protected batchSyncBoundary (batch: B): number {
    return batch.floor
  }

  /** The latest applied target: `(opsRoot, [syncBoundary, size))`. */
  syncTarget (): Target {
    return { root: this._opsRoot, range: { start: this.syncBoundary, end: this.size } }
  }

  matchesSyncTarget (batch: B, target: Target): boolean {
    return target.range.end === batch.size && target.range.start === this.batchSyncBoundary(batch) &&
      digestEqualsSafe(batch.opsRoot, target.root)
  }

  /** The target of a freshly created database: the bootstrap commit alone. */
  initialSyncTarget (): Target {
    const leaf = leafDigest(0, this.codec.encodeCommit(undefined, 0))
    return { root: computeRoot(1, 0, [leaf]), range: { start: 0, end: 1 } }
  }

  targetsEqual (a: Target, b: Target): boolean {
    return targetsEqual(a, b)
  }

  /**
   * Persist everything applied so far with an fsync; resolves when durable.
   * The stateful manager acknowledges a finalized block to marshal only after
   * this, so it must survive a power loss, not only a process crash.
   */
  async finalize (): Promise<void> {
    await this.commit({ sync: true })
  }

  async pruneTo (target: Target): Promise<void> {
    await this.prune(target.range.start)
  }

  /** Rewind to an applied target and make it durable; the result must equal `target`. */
  async rewindToTarget (target: Target): Promise<void> {
    await this.rewind(target.range.end)
    await this.sync()
    if (!targetsEqual(this.syncTarget(), target)) {
      throw new QmdbError('RootMismatch', `after rewinding to ${target.range.end} the database does not match the target`)
    }
  }

  /** Wait for in-flight commits and release the handle. */
  async close (): Promise<void> {
    await this.guard.settle(true)
  }
}
