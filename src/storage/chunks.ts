/**
 * The chunk bookkeeping `FixedChunkStore` (fixed-size items) and `ItemLog`
 * (variable-size items) share: an append-mostly array of items kept in
 * chunks of `chunkItems` items, one datastore key per chunk
 * (`<prefix>/<chunk:16hex>`), cached in memory and written in atomic batches.
 *
 * Invariants:
 * - items `[base, length)` are readable; `base` only grows (pruning), and a
 * chunk is deleted once it lies wholly below `base`;
 * - the chunk receiving the next append is resident whenever it holds
 * readable items (`ensureTail()` after open/truncate), so appends are
 * synchronous and never touch storage;
 * - dirty chunks stay resident until `markClean()` confirms the writes staged
 * by `stage()`; only clean chunks are evicted (LRU, `cacheChunks`);
 * - without a `Kv` backing the array is purely in memory and never evicts;
 * - the persisted `length`/`base` are owned by the caller's metadata record.
 */

import { StorageError } from './errors.ts'
import { hex16, joinKey } from './keys.ts'
import type { Kv, WriteBatch } from './kv.ts'

export interface ChunkState {
  dirty: boolean
  /** bumped on every modification, so `markClean` never cleans a chunk changed after `stage` */
  version: number
}

/** What `stage` wrote: chunk index → version, and the deleted chunks. */
export interface StagedChunks {
  written: Map<number, number>
  deleted: number[]
}

export interface ChunkedOptions {
  chunkItems?: number
  kv?: Kv
  prefix?: string
  /** Clean chunks kept in memory (persisted arrays only). */
  cacheChunks?: number
}

export abstract class ChunkedArray<C extends ChunkState> {
  readonly chunkItems: number
  protected readonly kv?: Kv
  protected readonly prefix: string
  private readonly cacheChunks: number
  protected readonly chunks = new Map<number, C>() // insertion order = LRU order
  protected readonly deleted = new Set<number>()
  protected _length = 0
  protected _base = 0

  protected constructor (options: ChunkedOptions, defaults: { chunkItems: number, cacheChunks: number }) {
    this.chunkItems = options.chunkItems ?? defaults.chunkItems
    this.kv = options.kv
    this.prefix = options.prefix ?? ''
    this.cacheChunks = Math.max(options.cacheChunks ?? defaults.cacheChunks, 2)
  }

  /** A fresh chunk for the tail (nothing stored yet). */
  protected abstract newChunk (): C
  /** The resident chunk `idx`, loaded from storage if needed. */
  protected abstract loadChunk (idx: number): Promise<C>
  /** Keep only the first `items` items of `c` (a truncate inside it). */
  protected abstract cutChunk (c: C, items: number): void
  /** The stored value of a chunk whose first `used` items are live. */
  protected abstract encodeChunk (c: C, used: number): Uint8Array

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

  protected key (chunk: number): string {
    return joinKey(this.prefix, hex16(chunk))
  }

  protected chunkOf (i: number): number {
    return Math.floor(i / this.chunkItems)
  }

  /** Whether chunk `idx` holds any readable item. */
  protected holdsReadable (idx: number): boolean {
    return Math.max(idx * this.chunkItems, this._base) < Math.min((idx + 1) * this.chunkItems, this._length)
  }

  protected evict (): void {
    if (this.kv === undefined || this.chunks.size <= this.cacheChunks) { return }
    const tail = this.chunkOf(this._length)
    for (const [idx, c] of this.chunks) {
      if (this.chunks.size <= this.cacheChunks) { break }
      if (c.dirty || idx === tail) { continue }
      this.chunks.delete(idx)
    }
  }

  protected checkRange (i: number): void {
    if (!(i >= this._base && i < this._length)) {
      throw new StorageError('OutOfRange', `item ${i} outside [${this._base}, ${this._length}) under ${this.prefix}`)
    }
  }

  /** The chunk receiving the append at `idx` (created if it holds nothing readable yet). */
  protected tailChunk (idx: number): C {
    let c = this.chunks.get(idx)
    if (c === undefined) {
      if (this.holdsReadable(idx)) { throw new StorageError('MissingItem', `tail chunk ${idx} under ${this.prefix} not resident`) }
      c = this.newChunk()
      this.chunks.set(idx, c)
      this.deleted.delete(idx)
    }
    return c
  }

  /** Load the chunk that receives the next append (after open/truncate). */
  async ensureTail (): Promise<void> {
    const idx = this.chunkOf(this._length)
    if (this.holdsReadable(idx)) { await this.loadChunk(idx) }
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
      const c = await this.loadChunk(keep)
      this.cutChunk(c, length - keep * this.chunkItems)
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

  /** Drop everything and continue as an empty array whose next item is `length`. */
  clear (length: number): void {
    if (this._length > this._base && this.kv !== undefined) {
      for (let idx = this.chunkOf(this._base); idx <= this.chunkOf(this._length - 1); idx++) { this.deleted.add(idx) }
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
      batch.put(this.key(idx), this.encodeChunk(c, used))
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
