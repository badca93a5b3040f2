/**
 * The key changes of one `any` batch (its diff): for each key the batch
 * touched, the key's new location (-1 = deleted), its location in the
 * batch's parent state (-1 = absent before), and either its value or the
 * encoded operation that last set it (moves, and with fixed-size keys the
 * batch's own writes: their key and value are read from it, and the value
 * decoded only if someone asks).
 *
 * Data-oriented, because merkleize touches every entry: a `KeyIndex` (for
 * fixed-size keys the typed open-addressing table of `key-index.ts`) maps key
 * bytes to a slot, locations live in typed arrays sized up front and the rest
 * in parallel arrays, so recording or looking up a change builds no string
 * id, no per-key object and no view of a key.
 *
 * Invariants: slots are dense (`[0, size)`) and in first-touch order; a key
 * has one slot (`add` only for keys not in the diff; a key moved again is
 * `relocate`d); a slot added from an operation keeps no key view of its own:
 * its key is read from that operation, which a relocation replaces by one
 * with the same key.
 */

import { FixedKeyIndex, keyIndexFor } from './key-index.ts'
import type { KeyIndex } from './key-index.ts'

/** One key's change, as handed to cold paths (`loc === -1`: deleted; `prev === -1`: absent before). */
export interface DiffEntry {
  key: Uint8Array
  loc: number
  value: Uint8Array | undefined
  prev: number
  op?: Uint8Array
}

export class BatchDiff {
  private readonly index: KeyIndex
  /** `index` when keys are fixed-size (it can hash a key inside an operation's bytes) */
  private readonly fixed: FixedKeyIndex | undefined
  /** The key of an encoded update or delete (a view). */
  private readonly keyOfOp: (op: Uint8Array) => Uint8Array
  private count = 0
  /** Per slot: new location, parent-state location (`[0, size)` are meaningful; replaced when they grow). */
  private locArray: Float64Array
  private prevArray: Float64Array
  /** Per slot: the key (a view the batch keeps alive; undefined: the key of `moved`), value, operation that set it. */
  private readonly keyList: Array<Uint8Array | undefined> = []
  readonly values: Array<Uint8Array | undefined> = []
  readonly moved: Array<Uint8Array | undefined> = []

  /** `keySize` undefined: variable-size keys. `expected`: entries to size the table for. */
  constructor (keySize: number | undefined, expected: number, keyOfOp: (op: Uint8Array) => Uint8Array) {
    this.index = keyIndexFor(keySize, expected)
    this.fixed = this.index instanceof FixedKeyIndex ? this.index : undefined
    this.keyOfOp = keyOfOp
    this.locArray = new Float64Array(Math.max(expected, 16))
    this.prevArray = new Float64Array(this.locArray.length)
  }

  get size (): number { return this.count }

  /** New location per slot (-1: deleted); only `[0, size)` is meaningful. */
  get locs (): Float64Array { return this.locArray }

  /** Parent-state location per slot (-1: absent before); only `[0, size)` is meaningful. */
  get prevs (): Float64Array { return this.prevArray }

  /** The key of `slot`. */
  keyOf (slot: number): Uint8Array {
    return this.keyList[slot] ?? this.keyOfOp(this.moved[slot] as Uint8Array)
  }

  /** The slot of `key`, or -1. */
  slotOf (key: Uint8Array): number {
    return this.index.get(key)
  }

  /** Fixed-size keys only: the slot of the key at `op[o..o + keySize)`, or -1 (no view of the key is made). */
  slotAt (op: Uint8Array, o: number): number {
    return (this.fixed as FixedKeyIndex).getAt(op, o)
  }

  /** Record the change of a key not in the diff yet (the caller knows: each user mutation is of a distinct key). */
  add (key: Uint8Array, loc: number, value: Uint8Array | undefined, prev: number, op?: Uint8Array): void {
    this.index.set(key, this.count)
    this.push(key, loc, value, prev, op)
  }

  /**
   * Fixed-size keys only: `add` of a key not in the diff, set by the encoded
   * operation `op` (a move from `prev`, or one of the batch's own writes)
   * whose key is at `op[o..]`; `loc` -1 if `op` deletes it.
   */
  addMove (op: Uint8Array, o: number, loc: number, prev: number): void {
    (this.fixed as FixedKeyIndex).setAt(op, o, this.count)
    this.push(undefined, loc, undefined, prev, op)
  }

  private push (key: Uint8Array | undefined, loc: number, value: Uint8Array | undefined, prev: number, op: Uint8Array | undefined): void {
    const s = this.count++
    if (s === this.locArray.length) {
      const locs = new Float64Array(2 * s)
      locs.set(this.locArray)
      this.locArray = locs
      const prevs = new Float64Array(2 * s)
      prevs.set(this.prevArray)
      this.prevArray = prevs
    }
    this.locArray[s] = loc
    this.prevArray[s] = prev
    this.keyList.push(key)
    this.values.push(value)
    this.moved.push(op)
  }

  /** The key in `slot` moved again, to `loc`, as the operation `op` (its parent-state location is unchanged). */
  relocate (slot: number, loc: number, op: Uint8Array): void {
    this.locArray[slot] = loc
    this.values[slot] = undefined
    this.moved[slot] = op
  }

  /** The change in `slot` as an object (cold paths only). */
  entry (slot: number): DiffEntry {
    const op = this.moved[slot]
    const e: DiffEntry = { key: this.keyOf(slot), loc: this.locs[slot], value: this.values[slot], prev: this.prevs[slot] }
    if (op !== undefined) { e.op = op }
    return e
  }

  * entries (): IterableIterator<DiffEntry> {
    for (let s = 0; s < this.size; s++) { yield this.entry(s) }
  }
}
