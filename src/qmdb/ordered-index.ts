/**
 * The snapshot index of ordered databases: `key → location` kept in key order,
 * so a database can find the key before or after any key (the next-key links
 * of ordered updates, exclusion spans, range reads).
 *
 * Layout: a sorted list of leaves, each holding up to `LEAF` keys in key order
 * with their locations. Fixed-size keys are packed into one `Uint8Array` per
 * leaf and locations into one `Float64Array`, so the index costs a few typed
 * arrays per ~100 keys and no heap object per key (millions of keys add
 * almost nothing to garbage-collection work). Variable-size keys keep one
 * `Uint8Array` per key in the leaf (unavoidable without a key arena).
 *
 * Lookups binary-search a contiguous directory of the leaves' first-key
 * prefixes (the first 4 bytes as a big-endian number, zero-padded: this
 * preserves byte order, and equal prefixes fall back to full comparison),
 * then the leaf's own prefix array, so a lookup touches a few cache lines
 * instead of one key array per step.
 *
 * Invariants: leaves are non-empty, keys strictly increase across the whole
 * list, and every stored key is a copy (callers may reuse their buffers).
 * Returned keys are views into the index: copy them to keep them across a
 * mutation. Key order is plain lexicographic byte order (`compareBytes`).
 */

import { compareBytes } from './ops.ts'
import type { KeyIndex } from './key-index.ts'

/** Keys per leaf: small enough that an insert's shift is cheap, large enough that leaves are few. */
const LEAF = 128

/** One key of the index and its location (`key` is a view into the index). */
export interface IndexEntry {
  key: Uint8Array
  loc: number
}

/** Order-preserving 32-bit prefix of a key (first 4 bytes, big-endian, zero-padded). */
export function prefixOf (key: Uint8Array): number {
  return ((key[0] ?? 0) * 0x1000000) + ((key[1] ?? 0) << 16) + ((key[2] ?? 0) << 8) + (key[3] ?? 0)
}

/**
 * A leaf: locations and key prefixes in typed arrays (kept here), keys in
 * the subclass's storage (packed for fixed-size keys, one array per key
 * otherwise). Every structural change moves keys, locations and prefixes
 * together.
 */
abstract class Leaf {
  n = 0
  readonly locs = new Float64Array(LEAF)
  /** Prefix of each key (`prefixOf`). */
  readonly pre = new Float64Array(LEAF)

  /** `compareBytes(key(i), key)`, where `kp = prefixOf(key)` */
  abstract cmp (i: number, key: Uint8Array, kp: number): number
  abstract key (i: number): Uint8Array
  /** Store a copy of `key` at `i` (the first `n` keys are live). */
  protected abstract insertKey (i: number, key: Uint8Array): void
  protected abstract removeKey (i: number): void
  /** A new leaf holding keys `[i, n)` (its `n` still 0). */
  protected abstract splitKeys (i: number): Leaf
  /** Append `other`'s keys after the first `n`. */
  protected abstract absorbKeys (other: Leaf): void

  insert (i: number, key: Uint8Array, loc: number): void {
    this.insertKey(i, key)
    this.locs.copyWithin(i + 1, i, this.n)
    this.locs[i] = loc
    this.pre.copyWithin(i + 1, i, this.n)
    this.pre[i] = prefixOf(key)
    this.n++
  }

  remove (i: number): void {
    this.removeKey(i)
    this.locs.copyWithin(i, i + 1, this.n)
    this.pre.copyWithin(i, i + 1, this.n)
    this.n--
  }

  /** Move entries `[i, n)` into a new leaf. */
  split (i: number): Leaf {
    const out = this.splitKeys(i)
    out.locs.set(this.locs.subarray(i, this.n))
    out.pre.set(this.pre.subarray(i, this.n))
    out.n = this.n - i
    this.n = i
    return out
  }

  /** Append all of `other`'s entries (the caller checks they fit). */
  absorb (other: Leaf): void {
    this.absorbKeys(other)
    this.locs.set(other.locs.subarray(0, other.n), this.n)
    this.pre.set(other.pre.subarray(0, other.n), this.n)
    this.n += other.n
  }
}

class PackedLeaf extends Leaf {
  private readonly keys: Uint8Array
  private readonly k: number

  constructor (k: number) {
    super()
    this.k = k
    this.keys = new Uint8Array(LEAF * k)
  }

  cmp (i: number, key: Uint8Array, kp: number): number {
    const p = this.pre[i]
    if (p !== kp) { return p < kp ? -1 : 1 }
    const keys = this.keys
    const o = i * this.k
    for (let j = 0; j < this.k; j++) {
      const d = keys[o + j] - key[j]
      if (d !== 0) { return d }
    }
    return 0
  }

  key (i: number): Uint8Array {
    return this.keys.subarray(i * this.k, (i + 1) * this.k)
  }

  protected insertKey (i: number, key: Uint8Array): void {
    const k = this.k
    this.keys.copyWithin((i + 1) * k, i * k, this.n * k)
    this.keys.set(key, i * k)
  }

  protected removeKey (i: number): void {
    const k = this.k
    this.keys.copyWithin(i * k, (i + 1) * k, this.n * k)
  }

  protected splitKeys (i: number): Leaf {
    const out = new PackedLeaf(this.k)
    out.keys.set(this.keys.subarray(i * this.k, this.n * this.k))
    return out
  }

  protected absorbKeys (other: Leaf): void {
    this.keys.set((other as PackedLeaf).keys.subarray(0, other.n * this.k), this.n * this.k)
  }
}

class ArrayLeaf extends Leaf {
  private keys: Uint8Array[] = []

  cmp (i: number, key: Uint8Array, kp: number): number {
    const p = this.pre[i]
    if (p !== kp) { return p < kp ? -1 : 1 }
    return compareBytes(this.keys[i], key)
  }

  key (i: number): Uint8Array {
    return this.keys[i]
  }

  protected insertKey (i: number, key: Uint8Array): void {
    this.keys.splice(i, 0, key.slice())
  }

  protected removeKey (i: number): void {
    this.keys.splice(i, 1)
  }

  protected splitKeys (i: number): Leaf {
    const out = new ArrayLeaf()
    out.keys = this.keys.splice(i)
    return out
  }

  protected absorbKeys (other: Leaf): void {
    this.keys.push(...(other as ArrayLeaf).keys)
  }
}

export class OrderedKeyIndex implements KeyIndex {
  private readonly keySize: number | undefined
  private leaves: Leaf[] = []
  /** `dir[i]` = prefix of leaf i's first key (a plain number array: V8 stores it as unboxed doubles) */
  private dir: number[] = []
  private count = 0

  /** `keySize` undefined: variable-size keys. */
  constructor (keySize?: number) {
    this.keySize = keySize
  }

  get size (): number { return this.count }

  private newLeaf (): Leaf {
    return this.keySize === undefined ? new ArrayLeaf() : new PackedLeaf(this.keySize)
  }

  /** Index of the last leaf whose first key is <= key (0 if none). */
  private leafFor (key: Uint8Array, kp: number): number {
    const dir = this.dir
    let lo = 0
    let hi = dir.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      const p = dir[mid]
      if (p < kp || (p === kp && this.leaves[mid].cmp(0, key, kp) <= 0)) { lo = mid } else { hi = mid - 1 }
    }
    return lo
  }

  /** First slot in `leaf` whose key is >= key. */
  private static lowerBound (leaf: Leaf, key: Uint8Array, kp: number): number {
    let lo = 0
    let hi = leaf.n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (leaf.cmp(mid, key, kp) < 0) { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  private checkKey (key: Uint8Array): boolean {
    return this.keySize === undefined || key.length === this.keySize
  }

  get (key: Uint8Array): number {
    if (this.count === 0 || !this.checkKey(key)) { return -1 }
    const kp = prefixOf(key)
    const leaf = this.leaves[this.leafFor(key, kp)]
    const i = OrderedKeyIndex.lowerBound(leaf, key, kp)
    return i < leaf.n && leaf.cmp(i, key, kp) === 0 ? leaf.locs[i] : -1
  }

  set (key: Uint8Array, loc: number): void {
    if (!this.checkKey(key)) { throw new RangeError(`key must be ${this.keySize} bytes`) }
    if (this.leaves.length === 0) {
      this.leaves.push(this.newLeaf())
      this.dir.push(0)
    }
    const kp = prefixOf(key)
    const li = this.leafFor(key, kp)
    const leaf = this.leaves[li]
    const i = OrderedKeyIndex.lowerBound(leaf, key, kp)
    if (i < leaf.n && leaf.cmp(i, key, kp) === 0) {
      leaf.locs[i] = loc
      return
    }
    this.count++
    if (leaf.n < LEAF) {
      leaf.insert(i, key, loc)
      if (i === 0) { this.dir[li] = kp }
      return
    }
    // full: appending past the last key starts a new leaf (keeps ascending loads dense), else split in half
    if (i === LEAF && li === this.leaves.length - 1) {
      const fresh = this.newLeaf()
      fresh.insert(0, key, loc)
      this.leaves.push(fresh)
      this.dir.push(kp)
      return
    }
    const right = leaf.split(LEAF >>> 1)
    if (i <= leaf.n) { leaf.insert(i, key, loc) } else { right.insert(i - leaf.n, key, loc) }
    this.leaves.splice(li + 1, 0, right)
    this.dir.splice(li + 1, 0, right.pre[0])
    this.dir[li] = leaf.pre[0]
  }

  delete (key: Uint8Array): void {
    if (this.count === 0 || !this.checkKey(key)) { return }
    const kp = prefixOf(key)
    const li = this.leafFor(key, kp)
    const leaf = this.leaves[li]
    const i = OrderedKeyIndex.lowerBound(leaf, key, kp)
    if (i >= leaf.n || leaf.cmp(i, key, kp) !== 0) { return }
    leaf.remove(i)
    this.count--
    if (leaf.n === 0) {
      this.leaves.splice(li, 1)
      this.dir.splice(li, 1)
      return
    }
    this.dir[li] = leaf.pre[0]
    // keep leaves at least a quarter full by merging with the right neighbour when both fit
    const next = this.leaves[li + 1]
    if (leaf.n < LEAF >>> 2 && next !== undefined && leaf.n + next.n <= LEAF) {
      leaf.absorb(next)
      this.leaves.splice(li + 1, 1)
      this.dir.splice(li + 1, 1)
    }
  }

  clear (): void {
    this.leaves = []
    this.dir = []
    this.count = 0
  }

  private entryAt (li: number, i: number): IndexEntry {
    const leaf = this.leaves[li]
    return { key: leaf.key(i), loc: leaf.locs[i] }
  }

  /** Position of the first key >= key (or > key if `strict`), as (leaf, slot), or undefined past the end. */
  private seek (key: Uint8Array, strict: boolean): [number, number] | undefined {
    if (this.count === 0) { return undefined }
    const kp = prefixOf(key)
    let li = this.leafFor(key, kp)
    const leaf = this.leaves[li]
    let i = OrderedKeyIndex.lowerBound(leaf, key, kp)
    if (strict && i < leaf.n && leaf.cmp(i, key, kp) === 0) { i++ }
    if (i >= leaf.n) {
      li++
      i = 0
      if (li >= this.leaves.length) { return undefined }
    }
    return [li, i]
  }

  /** Smallest key >= `key`. */
  ceiling (key: Uint8Array): IndexEntry | undefined {
    const p = this.seek(key, false)
    return p === undefined ? undefined : this.entryAt(p[0], p[1])
  }

  /** Smallest key > `key`. */
  higher (key: Uint8Array): IndexEntry | undefined {
    const p = this.seek(key, true)
    return p === undefined ? undefined : this.entryAt(p[0], p[1])
  }

  /** Greatest key < `key` (or <= key if `inclusive`). */
  lower (key: Uint8Array, inclusive = false): IndexEntry | undefined {
    if (this.count === 0) { return undefined }
    const kp = prefixOf(key)
    let li = this.leafFor(key, kp)
    const leaf = this.leaves[li]
    let i = OrderedKeyIndex.lowerBound(leaf, key, kp)
    if (inclusive && i < leaf.n && leaf.cmp(i, key, kp) === 0) { return this.entryAt(li, i) }
    i--
    if (i < 0) {
      li--
      if (li < 0) { return undefined }
      i = this.leaves[li].n - 1
    }
    return this.entryAt(li, i)
  }

  /** Greatest key <= `key`. */
  floor (key: Uint8Array): IndexEntry | undefined {
    return this.lower(key, true)
  }

  first (): IndexEntry | undefined {
    return this.count === 0 ? undefined : this.entryAt(0, 0)
  }

  last (): IndexEntry | undefined {
    if (this.count === 0) { return undefined }
    const li = this.leaves.length - 1
    return this.entryAt(li, this.leaves[li].n - 1)
  }

  /** Keys >= `from` in ascending order (stop iterating before mutating the index). */
  * from (from: Uint8Array): IterableIterator<[Uint8Array, number]> {
    const p = this.seek(from, false)
    if (p === undefined) { return }
    for (let li = p[0], i = p[1]; li < this.leaves.length; li++, i = 0) {
      const leaf = this.leaves[li]
      for (; i < leaf.n; i++) { yield [leaf.key(i), leaf.locs[i]] }
    }
  }

  * entries (): IterableIterator<[Uint8Array, number]> {
    for (const leaf of this.leaves) {
      for (let i = 0; i < leaf.n; i++) { yield [leaf.key(i), leaf.locs[i]] }
    }
  }

  /** Bytes held by the leaves' arrays and the directory (for benchmarks). */
  get footprint (): number {
    const perLeaf = LEAF * 16 + (this.keySize ?? 0) * LEAF
    return this.leaves.length * perLeaf + this.dir.length * 8
  }
}
