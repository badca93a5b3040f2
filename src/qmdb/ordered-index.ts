/**
 * The snapshot index of ordered databases: `key → location` kept in key order,
 * so a database can find the key before or after any key (the next-key links
 * of ordered updates, exclusion spans, range reads).
 *
 * Layout: a sorted list of leaves, each holding up to `LEAF` keys in key order
 * with their locations. Fixed-size keys are packed into one `Uint8Array` per
 * leaf and locations into one `Float64Array`, so the index costs two typed
 * arrays per ~100 keys and no heap object per key (millions of keys add
 * almost nothing to garbage-collection work). Lookups binary-search the
 * leaves by their first key, then the leaf. Variable-size keys keep one
 * `Uint8Array` per key in the leaf (unavoidable without a key arena).
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

interface Leaf {
  n: number
  readonly locs: Float64Array
  /** `compareBytes(key(i), key)` */
  cmp(i: number, key: Uint8Array): number
  key(i: number): Uint8Array
  insert(i: number, key: Uint8Array, loc: number): void
  remove(i: number): void
  /** Move entries `[i, n)` into a new leaf. */
  split(i: number): Leaf
  /** Append all of `other`'s entries (the caller checks they fit). */
  absorb(other: Leaf): void
}

class PackedLeaf implements Leaf {
  n = 0
  readonly locs = new Float64Array(LEAF)
  private readonly keys: Uint8Array
  private readonly k: number

  constructor (k: number) {
    this.k = k
    this.keys = new Uint8Array(LEAF * k)
  }

  cmp (i: number, key: Uint8Array): number {
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

  insert (i: number, key: Uint8Array, loc: number): void {
    const k = this.k
    this.keys.copyWithin((i + 1) * k, i * k, this.n * k)
    this.keys.set(key, i * k)
    this.locs.copyWithin(i + 1, i, this.n)
    this.locs[i] = loc
    this.n++
  }

  remove (i: number): void {
    const k = this.k
    this.keys.copyWithin(i * k, (i + 1) * k, this.n * k)
    this.locs.copyWithin(i, i + 1, this.n)
    this.n--
  }

  split (i: number): Leaf {
    const out = new PackedLeaf(this.k)
    out.keys.set(this.keys.subarray(i * this.k, this.n * this.k))
    out.locs.set(this.locs.subarray(i, this.n))
    out.n = this.n - i
    this.n = i
    return out
  }

  absorb (other: Leaf): void {
    const o = other as PackedLeaf
    this.keys.set(o.keys.subarray(0, o.n * this.k), this.n * this.k)
    this.locs.set(o.locs.subarray(0, o.n), this.n)
    this.n += o.n
  }
}

class ArrayLeaf implements Leaf {
  n = 0
  readonly locs = new Float64Array(LEAF)
  private keys: Uint8Array[] = []

  cmp (i: number, key: Uint8Array): number {
    return compareBytes(this.keys[i], key)
  }

  key (i: number): Uint8Array {
    return this.keys[i]
  }

  insert (i: number, key: Uint8Array, loc: number): void {
    this.keys.splice(i, 0, key.slice())
    this.locs.copyWithin(i + 1, i, this.n)
    this.locs[i] = loc
    this.n++
  }

  remove (i: number): void {
    this.keys.splice(i, 1)
    this.locs.copyWithin(i, i + 1, this.n)
    this.n--
  }

  split (i: number): Leaf {
    const out = new ArrayLeaf()
    out.keys = this.keys.splice(i)
    out.locs.set(this.locs.subarray(i, this.n))
    out.n = this.n - i
    this.n = i
    return out
  }

  absorb (other: Leaf): void {
    const o = other as ArrayLeaf
    this.keys.push(...o.keys)
    this.locs.set(o.locs.subarray(0, o.n), this.n)
    this.n += o.n
  }
}

export class OrderedKeyIndex implements KeyIndex {
  private readonly keySize: number | undefined
  private leaves: Leaf[] = []
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
  private leafFor (key: Uint8Array): number {
    let lo = 0
    let hi = this.leaves.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.leaves[mid].cmp(0, key) <= 0) { lo = mid } else { hi = mid - 1 }
    }
    return lo
  }

  /** First slot in `leaf` whose key is >= key. */
  private static lowerBound (leaf: Leaf, key: Uint8Array): number {
    let lo = 0
    let hi = leaf.n
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (leaf.cmp(mid, key) < 0) { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  private checkKey (key: Uint8Array): boolean {
    return this.keySize === undefined || key.length === this.keySize
  }

  get (key: Uint8Array): number {
    if (this.count === 0 || !this.checkKey(key)) { return -1 }
    const leaf = this.leaves[this.leafFor(key)]
    const i = OrderedKeyIndex.lowerBound(leaf, key)
    return i < leaf.n && leaf.cmp(i, key) === 0 ? leaf.locs[i] : -1
  }

  set (key: Uint8Array, loc: number): void {
    if (!this.checkKey(key)) { throw new RangeError(`key must be ${this.keySize} bytes`) }
    if (this.leaves.length === 0) { this.leaves.push(this.newLeaf()) }
    const li = this.leafFor(key)
    const leaf = this.leaves[li]
    const i = OrderedKeyIndex.lowerBound(leaf, key)
    if (i < leaf.n && leaf.cmp(i, key) === 0) {
      leaf.locs[i] = loc
      return
    }
    this.count++
    if (leaf.n < LEAF) {
      leaf.insert(i, key, loc)
      return
    }
    // full: appending past the last key starts a new leaf (keeps ascending loads dense), else split in half
    if (i === LEAF && li === this.leaves.length - 1) {
      const fresh = this.newLeaf()
      fresh.insert(0, key, loc)
      this.leaves.push(fresh)
      return
    }
    const right = leaf.split(LEAF >>> 1)
    this.leaves.splice(li + 1, 0, right)
    if (i <= leaf.n) { leaf.insert(i, key, loc) } else { right.insert(i - leaf.n, key, loc) }
  }

  delete (key: Uint8Array): void {
    if (this.count === 0 || !this.checkKey(key)) { return }
    const li = this.leafFor(key)
    const leaf = this.leaves[li]
    const i = OrderedKeyIndex.lowerBound(leaf, key)
    if (i >= leaf.n || leaf.cmp(i, key) !== 0) { return }
    leaf.remove(i)
    this.count--
    if (leaf.n === 0) {
      this.leaves.splice(li, 1)
      return
    }
    // keep leaves at least a quarter full by merging with the right neighbour when both fit
    const next = this.leaves[li + 1]
    if (leaf.n < LEAF >>> 2 && next !== undefined && leaf.n + next.n <= LEAF) {
      leaf.absorb(next)
      this.leaves.splice(li + 1, 1)
    }
  }

  clear (): void {
    this.leaves = []
    this.count = 0
  }

  private entryAt (li: number, i: number): IndexEntry {
    const leaf = this.leaves[li]
    return { key: leaf.key(i), loc: leaf.locs[i] }
  }

  /** Position of the first key >= key (or > key if `strict`), as (leaf, slot), or undefined past the end. */
  private seek (key: Uint8Array, strict: boolean): [number, number] | undefined {
    if (this.count === 0) { return undefined }
    let li = this.leafFor(key)
    const leaf = this.leaves[li]
    let i = OrderedKeyIndex.lowerBound(leaf, key)
    if (strict && i < leaf.n && leaf.cmp(i, key) === 0) { i++ }
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
    let li = this.leafFor(key)
    const leaf = this.leaves[li]
    let i = OrderedKeyIndex.lowerBound(leaf, key)
    if (inclusive && i < leaf.n && leaf.cmp(i, key) === 0) { return this.entryAt(li, i) }
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

  /** Approximate bytes held by the index's arrays (for benchmarks). */
  get footprint (): number {
    const perLeaf = LEAF * 8 + (this.keySize ?? 0) * LEAF
    return this.leaves.length * perLeaf
  }
}
