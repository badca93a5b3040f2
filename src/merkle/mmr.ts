/**
 * The committed Merkle Mountain Range: in memory, or persisted on a datastore
 * (commonware `storage/src/mmr`, `storage/src/qmdb`).
 *
 * Layout under `prefix` (persisted):
 * - `<prefix>/meta`: version u8 ‖ varint leaves ‖ varint prunedLoc
 * - `<prefix>/pins`: 32-byte digests of `nodesToPin(prunedLoc)`, oldest first
 * - `<prefix>/n/<chunk:16hex>`: node digests, 256 per chunk
 *
 * Invariants:
 * - the current peaks are always in memory (appending and roots never load);
 * - nodes below `locToPos(prunedLoc)` are gone except the pins, which are
 * exactly the peaks of the MMR with `prunedLoc` leaves; every range starting
 * at or after `prunedLoc` stays provable (commonware `storage/src/mmr`);
 * - `stage()` puts every change since the last durable write (nodes, pins,
 * meta) into one `WriteBatch`; committing that batch atomically is what
 * makes the structure durable, so a crash reopens at the last commit;
 * - `state` is replaced on every mutation (apply, rewind, reset): a batch
 * forked from an older state is rejected as stale.
 */

import { Reader, Writer } from '../codec/index.ts'
import { FixedChunkStore } from '../storage/chunked.ts'
import { joinKey } from '../storage/keys.ts'
import { MmrBatch, gatherNodes, proveRange } from './batch.ts'
import { markApplied, unappliedChain } from './chain.ts'
import { MerkleError } from './errors.ts'
import { computeRoot } from './hasher.ts'
import { locToPos, nodesToPin, peaks, MAX_LEAVES } from './math.ts'
import type { BatchBase, MerkleizedMmrBatch } from './batch.ts'
import type { Bagging, Digest } from './hasher.ts'
import type { Proof } from './proof.ts'
import type { StagedChunks } from '../storage/chunked.ts'
import type { Kv, WriteBatch, WriteOptions } from '../storage/kv.ts'

const META_VERSION = 1

export interface MmrOptions {
  /** Clean node chunks (256 nodes each) kept in memory. Default 256 (2 MiB). */
  cacheChunks?: number
}

/** Token returned by `stage()`; pass it to `markDurable()` once the batch committed. */
export interface StagedMmr {
  chunks: StagedChunks
  metaVersion: number
}

export class Mmr implements BatchBase {
  private _leaves = 0
  private _size = 0
  private _prunedLoc = 0
  private pins = new Map<number, Digest>()
  private peakMap = new Map<number, Digest>()
  private peakList: Digest[] = []
  private readonly store: FixedChunkStore
  private readonly kv?: Kv
  private readonly prefix: string
  private metaVersion = 0 // bumped when leaves/prunedLoc/pins change
  private durableMetaVersion = 0
  private _state: object = {}

  private constructor (kv: Kv | undefined, prefix: string, options: MmrOptions) {
    this.kv = kv
    this.prefix = prefix
    this.store = new FixedChunkStore({ itemSize: 32, chunkItems: 256, kv, prefix: joinKey(prefix, 'n'), cacheChunks: options.cacheChunks })
  }

  /** A new, empty, purely in-memory MMR. */
  static inMemory (): Mmr {
    return new Mmr(undefined, '', {})
  }

  /**
   * Open (or create) a persisted MMR under `prefix`. A missing meta record
   * means an empty MMR.
   */
  static async open (kv: Kv, prefix: string, options: MmrOptions = {}): Promise<Mmr> {
    const mmr = new Mmr(kv, prefix, options)
    const meta = await kv.get(joinKey(prefix, 'meta'))
    if (meta === undefined) { return mmr }
    let leaves: number, prunedLoc: number
    try {
      const r = new Reader(meta)
      const version = r.u8()
      if (version !== META_VERSION) { throw new MerkleError('DataCorrupted', `unknown MMR meta version ${version}`) }
      leaves = r.varint()
      prunedLoc = r.varint()
      r.finish()
    } catch (err) {
      if (err instanceof MerkleError) { throw err }
      throw new MerkleError('DataCorrupted', `MMR meta under ${prefix}: ${(err as Error).message}`)
    }
    if (leaves > MAX_LEAVES || prunedLoc > leaves) { throw new MerkleError('DataCorrupted', `MMR meta under ${prefix}: leaves ${leaves}, pruned ${prunedLoc}`) }
    const pinPositions = nodesToPin(prunedLoc)
    const pinBytes = await kv.get(joinKey(prefix, 'pins')) ?? new Uint8Array(0)
    if (pinBytes.length !== pinPositions.length * 32) { throw new MerkleError('DataCorrupted', `MMR pins under ${prefix}: ${pinBytes.length} bytes for ${pinPositions.length} pins`) }
    pinPositions.forEach((p, i) => mmr.pins.set(p, pinBytes.slice(i * 32, i * 32 + 32)))
    mmr._leaves = leaves
    mmr._size = locToPos(leaves)
    mmr._prunedLoc = prunedLoc
    mmr.store.open(mmr._size, locToPos(prunedLoc))
    await mmr.loadPeaks()
    await mmr.store.ensureTail()
    return mmr
  }

  /**
   * An empty persisted MMR under `prefix` that ignores whatever is stored
   * there (its first commit overwrites the meta; used to replace an
   * unreadable structure).
   */
  static create (kv: Kv, prefix: string, options: MmrOptions = {}): Mmr {
    return new Mmr(kv, prefix, options)
  }

  /**
   * A structure with `leaves` leaves whose history is pruned away entirely:
   * only the peaks (`pins`, the digests of `nodesToPin(leaves)`) are known.
   * It has the same root and the same future appends as the original
   * (the compact Merkle, and the starting point of state sync).
   */
  static fromPeaks (leaves: number, pins: readonly Digest[]): Mmr {
    const mmr = new Mmr(undefined, '', {})
    mmr.resetToPeaks(leaves, pins)
    return mmr
  }

  /**
   * Replace the whole content by `leaves` leaves known only through their
   * peaks (see `fromPeaks`). On a persisted MMR, previously stored chunks are
   * deleted by the next `stage()`.
   */
  reset (leaves: number, pins: readonly Digest[]): void {
    this.resetToPeaks(leaves, pins)
  }

  private resetToPeaks (leaves: number, pins: readonly Digest[]): void {
    if (leaves > MAX_LEAVES) { throw new MerkleError('LocationOverflow', `${leaves} leaves`) }
    const positions = nodesToPin(leaves)
    if (positions.length !== pins.length || pins.some(p => p.length !== 32)) {
      throw new MerkleError('InvalidPinnedNodes', `expected ${positions.length} pinned nodes, got ${pins.length}`)
    }
    this.pins = new Map(positions.map((p, i) => [p, pins[i].slice()]))
    this._leaves = leaves
    this._size = locToPos(leaves)
    this._prunedLoc = leaves
    this.peakMap = new Map(this.pins)
    this.peakList = positions.map(p => this.pins.get(p) as Digest)
    this.store.clear(this._size)
    this.metaVersion++
    this._state = {}
  }

  get leaves (): number { return this._leaves }
  get size (): number { return this._size }
  /** Leaf location below which nodes are pruned (except pins). */
  get prunedLoc (): number { return this._prunedLoc }
  get state (): object { return this._state }

  private get prunedPos (): number {
    return locToPos(this._prunedLoc)
  }

  peakDigests (): Digest[] {
    return this.peakList
  }

  root (k = 0, bagging: Bagging = 'backward'): Digest {
    return computeRoot(this._leaves, k, this.peakList, bagging)
  }

  nodeSync (pos: number): Digest | undefined {
    if (pos >= this._size) { return undefined }
    const peak = this.peakMap.get(pos)
    if (peak !== undefined) { return peak }
    if (pos < this.prunedPos) { return this.pins.get(pos) }
    return this.store.getSync(pos)
  }

  async getNodes (positions: readonly number[]): Promise<Digest[]> {
    const prunedPos = this.prunedPos
    return gatherNodes(positions, this._size, p => {
      const known = this.peakMap.get(p) ?? (p < prunedPos ? this.pins.get(p) : this.store.getSync(p))
      if (known === undefined && p < prunedPos) { throw new MerkleError('ElementPruned', `node ${p} is pruned (boundary ${prunedPos})`) }
      return known?.slice()
    }, async fromStore => this.store.getMany(fromStore))
  }

  private async loadPeaks (): Promise<void> {
    const positions = peaks(this._size).map(p => p.pos)
    const digests = await this.getNodes(positions)
    this.peakMap = new Map(positions.map((p, i) => [p, digests[i]]))
    this.peakList = digests
  }

  /** A speculative batch on top of the current state. */
  newBatch (): MmrBatch {
    return new MmrBatch(this)
  }

  /**
   * Make `batch` (and its unapplied ancestors) the current state. Throws
   * `StaleBatch` if the chain was not built on the current state.
   */
  apply (batch: MerkleizedMmrBatch): void {
    if (batch.base !== this) { throw new MerkleError('StaleBatch', 'batch belongs to another structure') }
    const chain = unappliedChain(batch, this._state)
    if (chain === undefined) { throw new MerkleError('StaleBatch', `batch chain is not built on the current state (size ${this._size})`) }
    for (const c of chain) {
      if (c.baseSize !== this._size) { throw new MerkleError('StaleBatch', `expected size ${c.baseSize}, actual ${this._size}`) }
      this.store.append(c.nodes, c.size - c.baseSize)
      this._size = c.size
      this._leaves = c.leaves
      this.peakList = c.peakDigests()
      this.peakMap = new Map(peaks(this._size).map((p, j) => [p.pos, this.peakList[j]]))
      this._state = markApplied(c)
      this.metaVersion++
    }
  }

  /** Append elements as leaves (convenience: one batch, merkleized and applied). */
  append (elements: readonly Uint8Array[]): void {
    const b = this.newBatch()
    for (const e of elements) { b.add(e) }
    this.apply(b.merkleize())
  }

  /** Prune every node below leaf `loc`, keeping the pins (`nodesToPin(loc)`). */
  async prune (loc: number): Promise<void> {
    if (loc > this._leaves) { throw new MerkleError('LeafOutOfBounds', `prune to ${loc} beyond ${this._leaves} leaves`) }
    if (loc <= this._prunedLoc) { return }
    const positions = nodesToPin(loc)
    const digests = await this.getNodes(positions)
    this.pins = new Map(positions.map((p, i) => [p, digests[i]]))
    this._prunedLoc = loc
    this.store.pruneBelow(locToPos(loc))
    this.metaVersion++
  }

  /** Remove leaves so that `leaves` remain. */
  async rewind (leaves: number): Promise<void> {
    if (leaves > this._leaves) { throw new MerkleError('InvalidSize', `rewind to ${leaves} beyond ${this._leaves} leaves`) }
    if (leaves === this._leaves) { return }
    if (leaves < this._prunedLoc) { throw new MerkleError('RewindBeyondHistory', `rewind to ${leaves} below pruning boundary ${this._prunedLoc}`) }
    const size = locToPos(leaves)
    await this.store.truncate(size)
    this._leaves = leaves
    this._size = size
    await this.loadPeaks()
    await this.store.ensureTail()
    this.metaVersion++
    this._state = {}
  }

  /**
   * Range proof for `[start, end)` of the tree with `leaves` leaves (default:
   * the current tree; older sizes give historical proofs) and `k` inactive peaks.
   */
  async proof (start: number, end: number, k = 0, leaves = this._leaves, bagging: Bagging = 'backward'): Promise<Proof> {
    return proveRange(this, start, end, k, leaves, bagging)
  }

  /** Digests of `nodesToPin(loc)`: what a client needs to continue from leaf `loc`. */
  async pinnedNodesAt (loc: number): Promise<Digest[]> {
    if (loc > this._leaves) { throw new MerkleError('LeafOutOfBounds', `${loc} beyond ${this._leaves} leaves`) }
    return this.getNodes(nodesToPin(loc))
  }

  /** Whether there are changes not yet made durable. */
  get dirty (): boolean {
    return this.metaVersion !== this.durableMetaVersion
  }

  /** Put every change since the last durable write into `batch`. */
  stage (batch: WriteBatch): StagedMmr {
    const chunks = this.store.stage(batch)
    if (this.kv !== undefined && this.metaVersion !== this.durableMetaVersion) {
      batch.put(joinKey(this.prefix, 'meta'), new Writer(24).u8(META_VERSION).varint(this._leaves).varint(this._prunedLoc).finish())
      const positions = nodesToPin(this._prunedLoc)
      const pins = new Uint8Array(positions.length * 32)
      positions.forEach((p, i) => pins.set(this.pins.get(p) as Digest, i * 32))
      batch.put(joinKey(this.prefix, 'pins'), pins)
    }
    return { chunks, metaVersion: this.metaVersion }
  }

  /** The batch holding `staged` was committed. */
  markDurable (staged: StagedMmr): void {
    this.store.markClean(staged.chunks)
    this.durableMetaVersion = Math.max(this.durableMetaVersion, staged.metaVersion)
  }

  /** Stage and commit in one atomic write (standalone use). */
  async commit (options: WriteOptions = {}): Promise<void> {
    if (this.kv === undefined) { return }
    const batch = this.kv.batch()
    const staged = this.stage(batch)
    await batch.commit(options)
    this.markDurable(staged)
  }
}
