/**
 * An append-only log of variable-size items (encoded operations) stored in
 * chunks of `chunkItems` items, one datastore key per chunk.
 *
 * Chunk value: for each item `varint(len) ‖ bytes`. Items are addressed by
 * their index (location). Like `FixedChunkStore`:
 * - items `[base, length)` are readable; pruning drops whole chunks below `base`;
 * - the chunk receiving the next append is resident whenever it holds
 * readable items, so `append` is synchronous;
 * - dirty chunks stay resident until `markClean` confirms the staged writes;
 * clean chunks are evicted LRU beyond `cacheChunks`;
 * - the persisted `length`/`base` are owned by the caller's metadata record,
 * and a chunk that does not decode is a `StorageError`, never a crash.
 */

import { Reader, Writer } from '../codec/index.ts'
import { StorageError } from './errors.ts'
import { hex16, joinKey } from './keys.ts'
import type { Kv, WriteBatch } from './kv.ts'

const EMPTY = new Uint8Array(0)

export interface ItemLogOptions {
  chunkItems?: number
  kv?: Kv
  prefix?: string
  /** Clean chunks kept in memory (persisted logs only). */
  cacheChunks?: number
  /** Maximum size of one item (decode cap for stored chunks). */
  maxItemBytes?: number
}

interface ItemChunk {
  items: Uint8Array[]
  dirty: boolean
  version: number
}

export interface StagedItems {
  written: Map<number, number>
  deleted: number[]
}

export class ItemLog {
  readonly chunkItems: number
  private readonly kv?: Kv
  private readonly prefix: string
  private readonly cacheChunks: number
  private readonly maxItemBytes: number
  private readonly chunks = new Map<number, ItemChunk>()
  private readonly deleted = new Set<number>()
  private _length = 0
  private _base = 0

  constructor (options: ItemLogOptions = {}) {
    this.chunkItems = options.chunkItems ?? 64
    this.kv = options.kv
    this.prefix = options.prefix ?? ''
    this.cacheChunks = Math.max(options.cacheChunks ?? 1024, 2)
    this.maxItemBytes = options.maxItemBytes ?? (1 << 24)
  }

  get length (): number { return this._length }
  get base (): number { return this._base }

  open (length: number, base: number): void {
    this._length = length
    this._base = base
    this.chunks.clear()
    this.deleted.clear()
  }

  private key (idx: number): string {
    return joinKey(this.prefix, hex16(idx))
  }

  private chunkOf (i: number): number {
    return Math.floor(i / this.chunkItems)
  }

  private holdsReadable (idx: number): boolean {
    return Math.max(idx * this.chunkItems, this._base) < Math.min((idx + 1) * this.chunkItems, this._length)
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

  private async loadChunk (idx: number): Promise<ItemChunk> {
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

  private checkRange (i: number): void {
    if (!(i >= this._base && i < this._length)) {
      throw new StorageError('OutOfRange', `item ${i} outside [${this._base}, ${this._length}) under ${this.prefix}`)
    }
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

  /** Items `[start, end)`, loading their chunks concurrently. */
  async range (start: number, end: number): Promise<Uint8Array[]> {
    if (start >= end) { return [] }
    this.checkRange(start)
    this.checkRange(end - 1)
    const first = this.chunkOf(start)
    const last = this.chunkOf(end - 1)
    const loads: Array<Promise<ItemChunk>> = []
    for (let idx = first; idx <= last; idx++) { loads.push(this.loadChunk(idx)) }
    const chunks = await Promise.all(loads)
    const out = new Array<Uint8Array>(end - start)
    for (let i = start; i < end; i++) {
      const idx = this.chunkOf(i)
      out[i - start] = chunks[idx - first].items[i - idx * this.chunkItems]
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

  /** Load the chunk that receives the next append (after open/truncate). */
  async ensureTail (): Promise<void> {
    const idx = this.chunkOf(this._length)
    if (this.holdsReadable(idx)) { await this.loadChunk(idx) }
  }

  /** Append items (synchronous; the items are kept by reference). */
  append (items: readonly Uint8Array[]): void {
    for (const item of items) {
      const idx = this.chunkOf(this._length)
      let c = this.chunks.get(idx)
      if (c === undefined) {
        if (this.holdsReadable(idx)) { throw new StorageError('MissingItem', `tail chunk ${idx} under ${this.prefix} not resident`) }
        c = { items: [], dirty: true, version: 0 }
        this.chunks.set(idx, c)
        this.deleted.delete(idx)
      }
      const within = this._length - idx * this.chunkItems
      c.items.length = within
      c.items.push(item)
      c.dirty = true
      c.version++
      this._length++
    }
    this.evict()
  }

  /** Shrink to `length` items. */
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
      c.items.length = length - keep * this.chunkItems
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

  /** Drop everything and continue as an empty log whose next item is `length`. */
  clear (length: number): void {
    if (this._length > this._base && this.kv !== undefined) {
      for (let idx = this.chunkOf(this._base); idx <= this.chunkOf(this._length - 1); idx++) { this.deleted.add(idx) }
    }
    this.chunks.clear()
    this._length = length
    this._base = length
  }

  /** Stage dirty chunks and deletions into `batch`. */
  stage (batch: WriteBatch): StagedItems {
    const staged: StagedItems = { written: new Map(), deleted: [] }
    if (this.kv === undefined) { return staged }
    for (const idx of this.deleted) {
      if (this.chunks.get(idx)?.dirty === true) { continue }
      batch.delete(this.key(idx))
      staged.deleted.push(idx)
    }
    for (const [idx, c] of this.chunks) {
      if (!c.dirty) { continue }
      const used = Math.min(this.chunkItems, this._length - idx * this.chunkItems)
      if (used <= 0) { continue }
      // items below `base` in a partially pruned chunk are holes: stored empty, never read
      let size = 0
      for (let i = 0; i < used; i++) { size += (c.items[i]?.length ?? 0) + 5 }
      const w = new Writer(size)
      for (let i = 0; i < used; i++) { w.bytes(c.items[i] ?? EMPTY) }
      batch.put(this.key(idx), w.finish())
      staged.written.set(idx, c.version)
    }
    return staged
  }

  markClean (staged: StagedItems): void {
    for (const idx of staged.deleted) { this.deleted.delete(idx) }
    for (const [idx, version] of staged.written) {
      const c = this.chunks.get(idx)
      if (c !== undefined && c.version === version) { c.dirty = false }
    }
    this.evict()
  }
}
