/**
 * An append-only log of variable-size items (encoded operations) stored in
 * chunks of `chunkItems` items, one datastore key per chunk (the chunk
 * bookkeeping and its invariants: `chunks.ts`).
 *
 * Chunk value: for each item `varint(len) ‖ bytes`. Items are addressed by
 * their index (location). A chunk that does not decode is a `StorageError`,
 * never a crash.
 */

import { Reader, Writer } from '../codec/index.ts'
import { ChunkedArray } from './chunks.ts'
import { StorageError } from './errors.ts'
import type { ChunkState, ChunkedOptions } from './chunks.ts'

const EMPTY = new Uint8Array(0)

export interface ItemLogOptions extends ChunkedOptions {
  /** Maximum size of one item (decode cap for stored chunks). */
  maxItemBytes?: number
}

interface ItemChunk extends ChunkState {
  items: Uint8Array[]
}

export class ItemLog extends ChunkedArray<ItemChunk> {
  private readonly maxItemBytes: number

  constructor (options: ItemLogOptions = {}) {
    super(options, { chunkItems: 64, cacheChunks: 1024 })
    this.maxItemBytes = options.maxItemBytes ?? (1 << 24)
  }

  protected newChunk (): ItemChunk {
    return { items: [], dirty: true, version: 0 }
  }

  protected cutChunk (c: ItemChunk, items: number): void {
    c.items.length = items
  }

  /** Items below `base` in a partially pruned chunk are holes: stored empty, never read. */
  protected encodeChunk (c: ItemChunk, used: number): Uint8Array {
    let size = 0
    for (let i = 0; i < used; i++) { size += (c.items[i]?.length ?? 0) + 5 }
    const w = new Writer(size)
    for (let i = 0; i < used; i++) { w.bytes(c.items[i] ?? EMPTY) }
    return w.finish()
  }

  /**
   * The items of a stored chunk, as views of `bytes` (a fresh value from the
   * store that nothing else holds): one allocation per chunk instead of one
   * buffer per item keeps the resident cost of a cached item near its size.
   */
  private decodeChunk (idx: number, bytes: Uint8Array): Uint8Array[] {
    const expected = Math.min(this.chunkItems, this._length - idx * this.chunkItems)
    try {
      const r = new Reader(bytes)
      const items: Uint8Array[] = []
      while (r.remaining > 0) {
        if (items.length >= this.chunkItems) { throw new Error('too many items') }
        items.push(r.view(r.length(this.maxItemBytes)))
      }
      if (items.length < expected) { throw new Error(`${items.length} items, expected ${expected}`) }
      return items
    } catch (err) {
      throw new StorageError('DataCorrupted', `item chunk ${idx} under ${this.prefix}: ${(err as Error).message}`)
    }
  }

  protected async loadChunk (idx: number): Promise<ItemChunk> {
    const have = this.chunks.get(idx)
    if (have !== undefined) { return have }
    let items: Uint8Array[] = []
    if (this.kv !== undefined && this.holdsReadable(idx)) {
      const stored = await this.kv.get(this.key(idx))
      const again = this.chunks.get(idx)
      if (again !== undefined) { return again }
      if (stored === undefined) { throw new StorageError('MissingItem', `item chunk ${idx} under ${this.prefix} is missing`) }
      items = this.decodeChunk(idx, stored)
    }
    const c: ItemChunk = { items, dirty: false, version: 0 }
    this.chunks.set(idx, c)
    this.evict()
    return c
  }

  /** The item at `i` if its chunk is resident (do not mutate), else undefined. */
  getSync (i: number): Uint8Array | undefined {
    if (i < this._base || i >= this._length) { return undefined }
    const idx = this.chunkOf(i)
    return this.chunks.get(idx)?.items[i - idx * this.chunkItems]
  }

  /** The item at `i` (do not mutate). */
  async get (i: number): Promise<Uint8Array> {
    this.checkRange(i)
    const idx = this.chunkOf(i)
    const c = await this.loadChunk(idx)
    return c.items[i - idx * this.chunkItems]
  }

  /**
   * The items of chunks `missing` (distinct, not resident when asked) in one
   * `getMany`, read through without entering the cache: scattered or long
   * reads (an ordered batch's rewrites, a sync rebuild, an index replay)
   * would only evict what is hot. A chunk that became resident during the
   * read (loaded or appended meanwhile) is taken from memory: it is newer.
   */
  private async readThrough (missing: readonly number[]): Promise<Uint8Array[][]> {
    if (missing.length === 0) { return [] }
    if (this.kv === undefined) { throw new StorageError('MissingItem', `item chunk ${missing[0]} under ${this.prefix} is missing`) }
    const stored = await this.kv.getMany(missing.map(idx => this.key(idx)))
    return missing.map((idx, j) => {
      const resident = this.chunks.get(idx)
      if (resident !== undefined) { return resident.items }
      const bytes = stored[j]
      if (bytes === undefined) { throw new StorageError('MissingItem', `item chunk ${idx} under ${this.prefix} is missing`) }
      return this.decodeChunk(idx, bytes)
    })
  }

  /** Item `i` of chunk `idx`'s `items`; a log cut below `i` while it was read is `OutOfRange`, not an undefined item. */
  private itemOf (items: Uint8Array[], idx: number, i: number): Uint8Array {
    const item = items[i - idx * this.chunkItems]
    if (item === undefined) { this.checkRange(i) }
    return item
  }

  /** The items at `locs` (any order, repeats allowed): resident chunks as they are, the rest read through (`readThrough`). */
  async getMany (locs: readonly number[]): Promise<Uint8Array[]> {
    const out = new Array<Uint8Array>(locs.length)
    const missing: number[] = []
    const pending = new Map<number, number[]>()
    for (let j = 0; j < locs.length; j++) {
      const i = locs[j]
      this.checkRange(i)
      const idx = this.chunkOf(i)
      const c = this.chunks.get(idx)
      if (c !== undefined) {
        out[j] = c.items[i - idx * this.chunkItems]
        continue
      }
      const waiting = pending.get(idx)
      if (waiting === undefined) {
        pending.set(idx, [j])
        missing.push(idx)
      } else {
        waiting.push(j)
      }
    }
    const read = await this.readThrough(missing)
    for (let m = 0; m < missing.length; m++) {
      for (const j of pending.get(missing[m]) as number[]) { out[j] = this.itemOf(read[m], missing[m], locs[j]) }
    }
    return out
  }

  /** Items `[start, end)`: resident chunks as they are, the rest read through (`readThrough`). */
  async range (start: number, end: number): Promise<Uint8Array[]> {
    if (start >= end) { return [] }
    this.checkRange(start)
    this.checkRange(end - 1)
    const first = this.chunkOf(start)
    const last = this.chunkOf(end - 1)
    const chunks = new Array<Uint8Array[]>(last - first + 1)
    const missing: number[] = []
    for (let idx = first; idx <= last; idx++) {
      const c = this.chunks.get(idx)
      if (c === undefined) { missing.push(idx) } else { chunks[idx - first] = c.items }
    }
    const read = await this.readThrough(missing)
    for (let m = 0; m < missing.length; m++) { chunks[missing[m] - first] = read[m] }
    const out = new Array<Uint8Array>(end - start)
    for (let i = start; i < end; i++) {
      const idx = this.chunkOf(i)
      out[i - start] = this.itemOf(chunks[idx - first], idx, i)
    }
    return out
  }

  /**
   * Load every chunk overlapping `[start, end)` (a read-ahead for sequential
   * scans such as the floor raise): one `getMany` for all missing chunks, not
   * one read each.
   */
  async prefetch (start: number, end: number): Promise<void> {
    start = Math.max(start, this._base)
    end = Math.min(end, this._length)
    if (start >= end || this.kv === undefined) { return }
    const missing: number[] = []
    for (let idx = this.chunkOf(start); idx <= this.chunkOf(end - 1); idx++) {
      if (!this.chunks.has(idx) && this.holdsReadable(idx)) { missing.push(idx) }
    }
    if (missing.length === 0) { return }
    const stored = await this.kv.getMany(missing.map(idx => this.key(idx)))
    for (let j = 0; j < missing.length; j++) {
      const idx = missing[j]
      // appended or loaded while the read was in flight: what is resident is newer
      if (this.chunks.has(idx) || !this.holdsReadable(idx)) { continue }
      const bytes = stored[j]
      if (bytes === undefined) { throw new StorageError('MissingItem', `item chunk ${idx} under ${this.prefix} is missing`) }
      this.chunks.set(idx, { items: this.decodeChunk(idx, bytes), dirty: false, version: 0 })
    }
    this.evict()
  }

  /** Make sure the chunk holding item `i` is resident (so `getSync(i)` succeeds). */
  async ensure (i: number): Promise<void> {
    this.checkRange(i)
    await this.loadChunk(this.chunkOf(i))
  }

  /** Append items (synchronous; the items are kept by reference). */
  append (items: readonly Uint8Array[]): void {
    for (const item of items) {
      const idx = this.chunkOf(this._length)
      const c = this.tailChunk(idx)
      c.items.length = this._length - idx * this.chunkItems
      c.items.push(item)
      c.dirty = true
      c.version++
      this._length++
    }
    this.evict()
  }
}
