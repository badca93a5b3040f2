/**
 * The snapshot index `key → location` of keyed databases (commonware `storage/src/qmdb/mod.rs`).
 *
 * For fixed-size keys it is an open-addressing hash table in one typed
 * buffer of `location ‖ key` records (locations with empty and tombstone
 * markers): no per-key heap object, so a database with
 * millions of keys adds almost nothing to garbage-collection work, and a
 * lookup allocates nothing. Keys are hashed in full (all bytes mixed), so
 * keys that share long prefixes — as adversarial or structured keys do —
 * still spread. Variable-size keys use a plain `Map` keyed by the bytes.
 *
 * The index is not authenticated (the MMR is); it only has to be exact.
 */

import { keyId } from './ops.ts'

export interface KeyIndex {
  readonly size: number
  /** Location of `key`, or -1. */
  get(key: Uint8Array): number
  set(key: Uint8Array, loc: number): void
  delete(key: Uint8Array): void
  clear(): void
  /**
   * Make room for `entries` keys at once (a rebuild knows how many may come):
   * a table that grows while it fills holds its old and new arrays together
   * at each doubling. Optional; never shrinks.
   */
  reserve?(entries: number): void
  /** Every `(key, location)` (keys are views: copy them to keep). */
  entries(): IterableIterator<[Uint8Array, number]>
}

const EMPTY = -1
const TOMBSTONE = -2

/**
 * The table is one buffer of records `location (f64) ‖ key`, padded to a
 * multiple of 8 bytes: a probe reads the location and compares the key in
 * the same one or two cache lines and the same page. With the keys and the
 * locations in two arrays every probe of a large table touched two random
 * pages, and on a virtual machine a TLB miss is most of a probe's cost:
 * inserting into a 1M-key table took ~700 ns a key, ~350 ns interleaved.
 */
export class FixedKeyIndex implements KeyIndex {
  private readonly keySize: number
  /** Bytes per record, and the same in f64 words. */
  private readonly record: number
  private readonly stride: number
  private bytes: Uint8Array
  private locs: Float64Array
  private mask: number
  private count = 0
  private used = 0 // live + tombstones

  constructor (keySize: number, initialCapacity = 1024) {
    this.keySize = keySize
    this.record = 8 + Math.ceil(keySize / 8) * 8
    this.stride = this.record / 8
    let cap = 16
    while (cap < initialCapacity * 2) { cap *= 2 }
    const { bytes, locs } = this.allocate(cap)
    this.bytes = bytes
    this.locs = locs
    this.mask = cap - 1
  }

  /** An empty table of `cap` records. */
  private allocate (cap: number): { bytes: Uint8Array, locs: Float64Array } {
    const buffer = new ArrayBuffer(cap * this.record)
    const locs = new Float64Array(buffer)
    for (let i = 0; i < locs.length; i += this.stride) { locs[i] = EMPTY }
    return { bytes: new Uint8Array(buffer), locs }
  }

  get size (): number { return this.count }

  /** The hash of the key at `key[o..o + keySize)`. */
  private hash (key: Uint8Array, o: number): number {
    // FNV-1a over 32-bit words with a final avalanche (murmur3 fmix32)
    const n = this.keySize
    let h = 0x811c9dc5 ^ n
    let i = 0
    for (; i + 4 <= n; i += 4) {
      h = Math.imul(h ^ (key[o + i] | (key[o + i + 1] << 8) | (key[o + i + 2] << 16) | (key[o + i + 3] << 24)), 0x01000193)
    }
    for (; i < n; i++) { h = Math.imul(h ^ key[o + i], 0x01000193) }
    h ^= h >>> 16
    h = Math.imul(h, 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
    return h >>> 0
  }

  private matches (slot: number, key: Uint8Array, ko: number): boolean {
    const o = slot * this.record + 8
    const bytes = this.bytes
    for (let i = 0; i < this.keySize; i++) {
      if (bytes[o + i] !== key[ko + i]) { return false }
    }
    return true
  }

  /** The slot holding the key at `key[o..o + keySize)`, or -1. */
  private find (key: Uint8Array, o: number): number {
    let slot = this.hash(key, o) & this.mask
    for (;;) {
      const l = this.locs[slot * this.stride]
      if (l === EMPTY) { return -1 }
      if (l !== TOMBSTONE && this.matches(slot, key, o)) { return slot }
      slot = (slot + 1) & this.mask
    }
  }

  get (key: Uint8Array): number {
    return key.length === this.keySize ? this.getAt(key, 0) : -1
  }

  /** Location of the key at `bytes[o..o + keySize)` (inside a larger buffer, e.g. an encoded operation), or -1. */
  getAt (bytes: Uint8Array, o: number): number {
    const slot = this.find(bytes, o)
    return slot < 0 ? -1 : this.locs[slot * this.stride]
  }

  set (key: Uint8Array, loc: number): void {
    if (key.length !== this.keySize) { throw new RangeError(`key must be ${this.keySize} bytes`) }
    this.setAt(key, 0, loc)
  }

  /** `set` of the key at `bytes[o..o + keySize)` (copied into the table). */
  setAt (bytes: Uint8Array, o: number, loc: number): void {
    this.swapAt(bytes, o, loc)
  }

  /** `setAt` that returns the key's previous location (-1: it was absent), in one probe. */
  swapAt (bytes: Uint8Array, o: number, loc: number): number {
    if (o < 0 || o + this.keySize > bytes.length) { throw new RangeError(`key must be ${this.keySize} bytes`) }
    if ((this.used + 1) * 10 > (this.mask + 1) * 7) { this.grow() }
    const locs = this.locs
    const stride = this.stride
    let slot = this.hash(bytes, o) & this.mask
    let firstFree = -1
    for (;;) {
      const l = locs[slot * stride]
      if (l === EMPTY) { break }
      if (l === TOMBSTONE) {
        if (firstFree < 0) { firstFree = slot }
      } else if (this.matches(slot, bytes, o)) {
        locs[slot * stride] = loc
        return l
      }
      slot = (slot + 1) & this.mask
    }
    if (firstFree >= 0) {
      slot = firstFree // reuse a tombstone: `used` unchanged
    } else {
      this.used++
    }
    const ks = this.keySize
    const table = this.bytes
    const d = slot * this.record + 8
    for (let i = 0; i < ks; i++) { table[d + i] = bytes[o + i] }
    locs[slot * stride] = loc
    this.count++
    return -1
  }

  delete (key: Uint8Array): void {
    if (key.length !== this.keySize) { return }
    this.deleteAt(key, 0)
  }

  /** `delete` of the key at `bytes[o..o + keySize)`; returns its location (-1: it was absent), in one probe. */
  deleteAt (bytes: Uint8Array, o: number): number {
    const slot = this.find(bytes, o)
    if (slot < 0) { return -1 }
    const loc = this.locs[slot * this.stride]
    this.locs[slot * this.stride] = TOMBSTONE
    this.count--
    return loc
  }

  clear (): void {
    const locs = this.locs
    for (let i = 0; i < locs.length; i += this.stride) { locs[i] = EMPTY }
    this.count = 0
    this.used = 0
  }

  reserve (entries: number): void {
    let cap = this.mask + 1
    while (entries * 10 > cap * 7) { cap *= 2 }
    if (cap !== this.mask + 1) { this.rehash(cap) }
  }

  private grow (): void {
    // double unless mostly tombstones, then rebuild at the same size
    this.rehash(this.count * 2 > this.mask + 1 ? (this.mask + 1) * 2 : this.mask + 1)
  }

  private rehash (cap: number): void {
    const oldBytes = this.bytes
    const oldLocs = this.locs
    const { bytes, locs } = this.allocate(cap)
    this.bytes = bytes
    this.locs = locs
    this.mask = cap - 1
    this.count = 0
    this.used = 0
    const stride = this.stride
    for (let s = 0; s * stride < oldLocs.length; s++) {
      const l = oldLocs[s * stride]
      if (l >= 0) { this.setAt(oldBytes, s * this.record + 8, l) }
    }
  }

  * entries (): IterableIterator<[Uint8Array, number]> {
    for (let s = 0; s * this.stride < this.locs.length; s++) {
      const l = this.locs[s * this.stride]
      if (l >= 0) {
        const o = s * this.record + 8
        yield [this.bytes.subarray(o, o + this.keySize), l]
      }
    }
  }
}

/** Variable-size keys: a `Map` keyed by the key bytes. */
export class MapKeyIndex implements KeyIndex {
  private readonly map = new Map<string, { key: Uint8Array, loc: number }>()

  get size (): number { return this.map.size }

  get (key: Uint8Array): number {
    return this.map.get(keyId(key))?.loc ?? -1
  }

  set (key: Uint8Array, loc: number): void {
    this.map.set(keyId(key), { key, loc })
  }

  delete (key: Uint8Array): void {
    this.map.delete(keyId(key))
  }

  clear (): void {
    this.map.clear()
  }

  * entries (): IterableIterator<[Uint8Array, number]> {
    for (const { key, loc } of this.map.values()) { yield [key, loc] }
  }
}

/** `initialCapacity`: entries to size a fixed-key table for (it grows beyond). */
export function keyIndexFor (keySize: number | undefined, initialCapacity?: number): KeyIndex {
  return keySize === undefined ? new MapKeyIndex() : new FixedKeyIndex(keySize, initialCapacity)
}
