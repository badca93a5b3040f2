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
 * (`add` only for keys not in the diff; a key moved again is `relocate`d).
 */

import { keyIndexFor } from './key-index.ts'
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
  /** Per slot: the key (a view the batch keeps alive), new location, parent-state location, value, moved operation. */
  readonly keys: Uint8Array[] = []
  readonly locs: number[] = []
  readonly prevs: number[] = []
  readonly values: Array<Uint8Array | undefined> = []
  readonly moved: Array<Uint8Array | undefined> = []

  /** `keySize` undefined: variable-size keys. `expected`: entries to size the table for. */
  constructor (keySize: number | undefined, expected = 1024) {
    this.index = keyIndexFor(keySize, expected)
  }

  get size (): number { return this.keys.length }

  /** The slot of `key`, or -1. */
  slotOf (key: Uint8Array): number {
    return this.index.get(key)
  }

  /** Record the change of a key not in the diff yet (the caller knows: each user mutation is of a distinct key). */
  add (key: Uint8Array, loc: number, value: Uint8Array | undefined, prev: number, op?: Uint8Array): void {
    this.index.set(key, this.keys.length)
    this.keys.push(key)
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
    const e: DiffEntry = { key: this.keys[slot], loc: this.locs[slot], value: this.values[slot], prev: this.prevs[slot] }
    if (op !== undefined) { e.op = op }
    return e
  }

  * entries (): IterableIterator<DiffEntry> {
    for (let s = 0; s < this.keys.length; s++) { yield this.entry(s) }
  }
}
