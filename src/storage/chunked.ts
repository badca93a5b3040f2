/**
 * An append-mostly array of fixed-size items (e.g. 32-byte Merkle nodes)
 * stored in chunks of `chunkItems` items under one key each.
 *
 * Why chunks: one LevelDB key per Merkle node would mean two writes per
 * appended operation; a chunk of 256 nodes is one 8 KiB value, so appends cost
 * ~1/256 of a key write and a proof's siblings usually share chunks.
 *
 * Invariants:
 * - items `[base, length)` are readable; `base` only grows (pruning), and a
 * chunk is deleted once it lies wholly below `base`;
 * - the chunk receiving the next append is resident whenever it holds
 * readable items (`ensureTail()` after open/truncate), so `append` is
 * synchronous and never touches storage;
 * - dirty chunks stay resident until `markClean()` confirms the writes staged
 * by `stage()`; only clean chunks are evicted (LRU, `cacheChunks`);
 * - without a `Kv` backing the store is purely in memory and never evicts;
 * - the persisted `length`/`base` are owned by the caller's metadata record.
 */

import { StorageError } from './errors.ts'
import { hex16, joinKey } from './keys.ts'
import type { Kv, WriteBatch } from './kv.ts'

export interface FixedChunkStoreOptions {
  itemSize: number
  chunkItems?: number
  kv?: Kv
  prefix?: string
  /** Clean chunks kept in memory (persisted stores only). */
  cacheChunks?: number
}

interface Chunk {
  data: Uint8Array
  dirty: boolean
  /** bumped on every modification, so `markClean` never cleans a chunk changed after `stage` */
  version: number
}

/** What `stage` wrote: chunk index → version, and the deleted chunks. */
export interface StagedChunks {
  written: Map<number, number>
  deleted: number[]
}

export class FixedChunkStore {
  readonly itemSize: number
  readonly chunkItems: number
  private readonly chunkBytes: number
  private readonly kv?: Kv
  private readonly prefix: string
  private readonly cacheChunks: number
  private readonly chunks = new Map<number, Chunk>() // insertion order = LRU order
  private readonly deleted = new Set<number>()
  private _length = 0
  private _base = 0

  constructor (options: FixedChunkStoreOptions) {
    this.itemSize = options.itemSize
    this.chunkItems = options.chunkItems ?? 256
    this.chunkBytes = this.itemSize * this.chunkItems
    this.kv = options.kv
    this.prefix = options.prefix ?? ''
    this.cacheChunks = Math.max(options.cacheChunks ?? 256, 2)
  }

  get length (): number {
    return this._length
  }

  /** First readable item. */
  get base (): number {
    return this._base
  }

  /** Set the logical bounds after opening from persisted metadata. */
  open (length: number, base: number): void {
    this._length = length
    this._base = base
    this.chunks.clear()
    this.deleted.clear()
  }

  private key (chunk: number): string {
    return joinKey(this.prefix, hex16(chunk))
  }

  private chunkOf (i: number): number {
    return Math.floor(i / this.chunkItems)
  }

  /** Whether chunk `idx` holds any readable item. */
  private holdsReadable (idx: number): boolean {
    const start = Math.max(idx * this.chunkItems, this._base)
    const end = Math.min((idx + 1) * this.chunkItems, this._length)
    return start < end
  }

  private evict (): void {
    if (this.kv === undefined || this.chunks.size <= this.cacheChunks) { return }
    const tail = this.chunkOf(this._length)
    for (const [idx, c] of this.chunks) {
      if (this.chunks.size <= this.cacheChunks) { break }
      if (c.dirty || idx === tail) { continue }
      this.chunks.delete(idx)
    }
  }

  /** The item at `i` if resident (a view; do not mutate), else undefined. */
  getSync (i: number): Uint8Array | undefined {
    if (i < this._base || i >= this._length) { return undefined }
    const idx = this.chunkOf(i)
    const c = this.chunks.get(idx)
    if (c === undefined) { return undefined }
    const off = (i - idx * this.chunkItems) * this.itemSize
    return c.data.subarray(off, off + this.itemSize)
  }

  private async loadChunk (idx: number): Promise<Chunk> {
    const have = this.chunks.get(idx)
    if (have !== undefined) {
      if (this.kv !== undefined) {
        this.chunks.delete(idx)
        this.chunks.set(idx, have)
      }
      return have
    }
    const data = new Uint8Array(this.chunkBytes)
    if (this.kv !== undefined && this.holdsReadable(idx)) {
      const stored = await this.kv.get(this.key(idx))
      const again = this.chunks.get(idx) // a concurrent load may have won
      if (again !== undefined) { return again }
      if (stored === undefined) { throw new StorageError('MissingItem', `chunk ${idx} under ${this.prefix} is missing`) }
      if (stored.length > this.chunkBytes || stored.length % this.itemSize !== 0) {
        throw new StorageError('DataCorrupted', `chunk ${idx} under ${this.prefix} has ${stored.length} bytes`)
      }
      data.set(stored)
    }
    const c: Chunk = { data, dirty: false, version: 0 }
    this.chunks.set(idx, c)
    this.evict()
    return c
  }

  private checkRange (i: number): void {
    if (i < this._base || i >= this._length) {
      throw new StorageError('OutOfRange', `item ${i} outside [${this._base}, ${this._length}) under ${this.prefix}`)
    }
  }

  /** The item at `i` (a copy), loading its chunk if needed. */
  async get (i: number): Promise<Uint8Array> {
    this.checkRange(i)
    const idx = this.chunkOf(i)
    const c = await this.loadChunk(idx)
    const off = (i - idx * this.chunkItems) * this.itemSize
    return c.data.slice(off, off + this.itemSize)
  }

  /** Items at `indices` (copies); each chunk is loaded once. */
  async getMany (indices: readonly number[]): Promise<Uint8Array[]> {
    const missing = new Set<number>()
    for (const i of indices) {
      this.checkRange(i)
      const idx = this.chunkOf(i)
      if (!this.chunks.has(idx)) { missing.add(idx) }
    }
    const loaded = new Map<number, Chunk>()
    await Promise.all([...missing].map(async idx => { loaded.set(idx, await this.loadChunk(idx)) }))
    return indices.map(i => {
      const idx = this.chunkOf(i)
      const c = this.chunks.get(idx) ?? loaded.get(idx) as Chunk
      const off = (i - idx * this.chunkItems) * this.itemSize
      return c.data.slice(off, off + this.itemSize)
    })
  }

  /** Load the chunk that receives the next append (after open/truncate). */
  async ensureTail (): Promise<void> {
    const idx = this.chunkOf(this._length)
    if (this.holdsReadable(idx)) { await this.loadChunk(idx) }
  }

  /** Append `count` items from `src` (`count * itemSize` bytes). Synchronous. */
  append (src: Uint8Array, count: number): void {
    let i = 0
    while (i < count) {
      const pos = this._length
      const idx = this.chunkOf(pos)
      const within = pos - idx * this.chunkItems
      let c = this.chunks.get(idx)
      if (c === undefined) {
        if (this.holdsReadable(idx)) { throw new StorageError('MissingItem', `tail chunk ${idx} under ${this.prefix} not resident`) }
        c = { data: new Uint8Array(this.chunkBytes), dirty: true, version: 0 }
        this.chunks.set(idx, c)
      }
      const take = Math.min(this.chunkItems - within, count - i)
      c.data.set(src.subarray(i * this.itemSize, (i + take) * this.itemSize), within * this.itemSize)
      c.dirty = true
      c.version++
      this.deleted.delete(idx)
      this._length += take
      i += take
    }
    this.evict()
  }

  /** Shrink to `length` items (a rewind). */
  async truncate (length: number): Promise<void> {
    if (length >= this._length) { return }
    if (length < this._base) { throw new StorageError('OutOfRange', `cannot truncate to ${length} below ${this._base}`) }
    const firstDropped = Math.ceil(length / this.chunkItems)
    const lastOld = this.chunkOf(this._length - 1)
    for (let idx = firstDropped; idx <= lastOld; idx++) {
      this.chunks.delete(idx)
      if (this.kv !== undefined) { this.deleted.add(idx) }
    }
    const keep = this.chunkOf(length)
    if (length % this.chunkItems !== 0 && this.holdsReadable(keep)) {
      // the partially kept chunk is rewritten so its tail is zero again
      const c = await this.loadChunk(keep)
      c.data.fill(0, (length - keep * this.chunkItems) * this.itemSize)
      c.dirty = true
      c.version++
    }
    this._length = length
  }

  /** Forget items below `boundary`; chunks wholly below it are deleted. */
  pruneBelow (boundary: number): void {
    const newBase = Math.min(boundary, this._length)
    if (newBase <= this._base) { return }
    for (let idx = this.chunkOf(this._base); idx < this.chunkOf(newBase); idx++) {
      this.chunks.delete(idx)
      if (this.kv !== undefined) { this.deleted.add(idx) }
    }
    this._base = newBase
  }

  /** Drop everything and continue as an empty array starting at `length`. */
  clear (length: number): void {
    if (this._length > this._base) {
      for (let idx = this.chunkOf(this._base); idx <= this.chunkOf(this._length - 1); idx++) {
        if (this.kv !== undefined) { this.deleted.add(idx) }
      }
    }
    this.chunks.clear()
    this._length = length
    this._base = length
  }

  /** Stage dirty chunks and deletions into `batch` (no state change). */
  stage (batch: WriteBatch): StagedChunks {
    const staged: StagedChunks = { written: new Map(), deleted: [] }
    if (this.kv === undefined) { return staged }
    for (const idx of this.deleted) {
      if (this.chunks.get(idx)?.dirty === true) { continue } // re-created since: written below
      batch.delete(this.key(idx))
      staged.deleted.push(idx)
    }
    for (const [idx, c] of this.chunks) {
      if (!c.dirty) { continue }
      const used = Math.min(this.chunkItems, this._length - idx * this.chunkItems)
      if (used <= 0) { continue }
      batch.put(this.key(idx), c.data.slice(0, used * this.itemSize))
      staged.written.set(idx, c.version)
    }
    return staged
  }

  /** The writes of `staged` are durable: those chunks may now be evicted. */
  markClean (staged: StagedChunks): void {
    for (const idx of staged.deleted) { this.deleted.delete(idx) }
    for (const [idx, version] of staged.written) {
      const c = this.chunks.get(idx)
      if (c !== undefined && c.version === version) { c.dirty = false }
    }
    this.evict()
  }
}
