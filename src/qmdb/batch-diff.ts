/**
 * The key changes of one `any` batch (its diff): for each key the batch
 * touched, the key's new location (-1 = deleted), its location in the
 * batch's parent state (-1 = absent before), and either its value or the
 * encoded operation it was moved with (moves are the bulk of a batch; their
 * value is decoded only if someone reads it).
 *
 * Data-oriented, because merkleize touches every entry: a `KeyIndex` (for
 * fixed-size keys the typed open-addressing table of `key-index.ts`) maps key
 * bytes to a slot, and the fields live in parallel arrays, so recording or
 * looking up a change builds no string id and no per-key object.
 *
 * Invariants: slots are dense and in first-touch order; a key has one slot
 * (`add` only for keys not in the diff; a key moved again is `relocate`d);
 * a slot added by a move keeps no key view of its own: its key is read from
 * its moved operation, which a relocation replaces by one with the same key.
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
  /** Per slot: the key (a view the batch keeps alive; undefined: the key of `moved`), new location, parent-state location, value, moved operation. */
  private readonly keyList: Array<Uint8Array | undefined> = []
  readonly locs: number[] = []
  readonly prevs: number[] = []
  readonly values: Array<Uint8Array | undefined> = []
  readonly moved: Array<Uint8Array | undefined> = []

  /** `keySize` undefined: variable-size keys. `expected`: entries to size the table for. */
  constructor (keySize: number | undefined, expected: number, keyOfOp: (op: Uint8Array) => Uint8Array) {
    this.index = keyIndexFor(keySize, expected)
    this.fixed = this.index instanceof FixedKeyIndex ? this.index : undefined
    this.keyOfOp = keyOfOp
  }

  get size (): number { return this.locs.length }

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
    this.index.set(key, this.locs.length)
    this.push(key, loc, value, prev, op)
  }

  /** Fixed-size keys only: `add` of a key not in the diff moved from `prev` to `loc` as `op`, whose key is at `op[o..]`. */
  addMove (op: Uint8Array, o: number, loc: number, prev: number): void {
    (this.fixed as FixedKeyIndex).setAt(op, o, this.locs.length)
    this.push(undefined, loc, undefined, prev, op)
  }

  private push (key: Uint8Array | undefined, loc: number, value: Uint8Array | undefined, prev: number, op: Uint8Array | undefined): void {
    this.keyList.push(key)
    this.locs.push(loc)
    this.prevs.push(prev)
    this.values.push(value)
    this.moved.push(op)
  }

  /** The key in `slot` moved again, to `loc`, as the operation `op` (its parent-state location is unchanged). */
  relocate (slot: number, loc: number, op: Uint8Array): void {
    this.locs[slot] = loc
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
