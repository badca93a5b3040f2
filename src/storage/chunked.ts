/**
 * An append-mostly array of fixed-size items (e.g. 32-byte Merkle nodes)
 * stored in chunks of `chunkItems` items under one key each (the chunk
 * bookkeeping and its invariants: `chunks.ts`).
 *
 * Why chunks: one LevelDB key per Merkle node would mean two writes per
 * appended operation; a chunk of 256 nodes is one 8 KiB value, so appends cost
 * ~1/256 of a key write and a proof's siblings usually share chunks.
 *
 * A chunk value is its live items back to back; a stored chunk longer than
 * `chunkItems` items or not a whole number of items is `DataCorrupted`.
 */

import { ChunkedArray } from './chunks.ts'
import { StorageError } from './errors.ts'
import type { ChunkState, ChunkedOptions } from './chunks.ts'

export type { StagedChunks } from './chunks.ts'

export interface FixedChunkStoreOptions extends ChunkedOptions {
  itemSize: number
}

interface Chunk extends ChunkState {
  data: Uint8Array
}

export class FixedChunkStore extends ChunkedArray<Chunk> {
  readonly itemSize: number
  private readonly chunkBytes: number

  constructor (options: FixedChunkStoreOptions) {
    super(options, { chunkItems: 256, cacheChunks: 256 })
    this.itemSize = options.itemSize
    this.chunkBytes = this.itemSize * this.chunkItems
  }

  protected newChunk (): Chunk {
    return { data: new Uint8Array(this.chunkBytes), dirty: true, version: 0 }
  }

  protected cutChunk (c: Chunk, items: number): void {
    c.data.fill(0, items * this.itemSize) // the tail is zero again, as in a fresh chunk
  }

  protected encodeChunk (c: Chunk, used: number): Uint8Array {
    return c.data.slice(0, used * this.itemSize)
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

  protected async loadChunk (idx: number): Promise<Chunk> {
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

  /** Append `count` items from `src` (`count * itemSize` bytes). Synchronous. */
  append (src: Uint8Array, count: number): void {
    let i = 0
    while (i < count) {
      const idx = this.chunkOf(this._length)
      const within = this._length - idx * this.chunkItems
      const c = this.tailChunk(idx)
      const take = Math.min(this.chunkItems - within, count - i)
      c.data.set(src.subarray(i * this.itemSize, (i + take) * this.itemSize), within * this.itemSize)
      c.dirty = true
      c.version++
      this._length += take
      i += take
    }
    this.evict()
  }
}
