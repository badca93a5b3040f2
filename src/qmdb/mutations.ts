/**
 * The pending writes of an `any` batch: for each distinct key its latest
 * value, or a delete. Slots are dense, in first-write order; a key keeps its
 * slot when it is written again.
 *
 * Data-oriented, because a batch holds thousands of writes that live until
 * merkleize: fixed-size keys and values are copied into growing byte arenas
 * and found through a typed `FixedKeyIndex`, so a pending write is no string
 * id, no object and no reference to the caller's arrays (which then die
 * young instead of being copied by every collection until the batch is
 * sealed). Variable-size fields are kept by reference.
 *
 * Invariant: `deleted[slot] === 1` iff the slot's latest write is a delete
 * (its value bytes are then meaningless).
 */

import { FixedKeyIndex, keyIndexFor } from './key-index.ts'
import type { KeyIndex } from './key-index.ts'

/** A growing byte arena of `size`-byte fields (`slot * size`). */
function grown (arena: Uint8Array, need: number): Uint8Array {
  if (need <= arena.length) { return arena }
  let cap = Math.max(arena.length * 2, 64)
  while (cap < need) { cap *= 2 }
  const next = new Uint8Array(cap)
  next.set(arena)
  return next
}

export class Mutations {
  /** Field sizes (undefined: variable, kept by reference). */
  readonly keySize: number | undefined
  readonly valueSize: number | undefined
  private readonly index: KeyIndex
  private readonly fixed: FixedKeyIndex | undefined
  private keyArena: Uint8Array = new Uint8Array(0)
  private readonly keyList: Uint8Array[] = []
  private valueArena: Uint8Array = new Uint8Array(0)
  private readonly valueList: Array<Uint8Array | null> = []
  private deletes: Uint8Array = new Uint8Array(16)
  private count = 0

  constructor (keySize: number | undefined, valueSize: number | undefined) {
    this.keySize = keySize
    this.valueSize = valueSize
    this.index = keyIndexFor(keySize, 64)
    this.fixed = this.index instanceof FixedKeyIndex ? this.index : undefined
  }

  get size (): number { return this.count }

  /** Fixed-size keys: every key, slot `s` at `[s * keySize, (s + 1) * keySize)` (read-only). */
  get keyBytes (): Uint8Array { return this.keyArena }

  /** Fixed-size values: every value, slot `s` at `[s * valueSize, ...)` (read-only; meaningless for deletes). */
  get valueBytes (): Uint8Array { return this.valueArena }

  /** Per slot: 1 if its latest write is a delete (read-only). */
  get deleted (): Uint8Array { return this.deletes }

  /** Record `key → value` (`null`: delete); the bytes are copied when their field is fixed-size. */
  set (key: Uint8Array, value: Uint8Array | null): void {
    const ks = this.keySize
    const vs = this.valueSize
    if (ks !== undefined && key.length !== ks) { throw new RangeError(`key must be ${ks} bytes, got ${key.length}`) }
    if (vs !== undefined && value !== null && value.length !== vs) { throw new RangeError(`value must be ${vs} bytes, got ${value.length}`) }
    let slot = this.index.get(key)
    if (slot < 0) {
      slot = this.count++
      if (slot >= this.deletes.length) { this.deletes = grown(this.deletes, slot + 1) }
      if (ks !== undefined) {
        this.keyArena = grown(this.keyArena, (slot + 1) * ks)
        this.keyArena.set(key, slot * ks)
        ;(this.fixed as FixedKeyIndex).setAt(this.keyArena, slot * ks, slot)
      } else {
        this.keyList.push(key)
        this.index.set(key, slot)
      }
      if (vs === undefined) { this.valueList.push(null) }
    }
    this.deletes[slot] = value === null ? 1 : 0
    if (vs === undefined) {
      this.valueList[slot] = value
    } else if (value !== null) {
      this.valueArena = grown(this.valueArena, (slot + 1) * vs)
      this.valueArena.set(value, slot * vs)
    }
  }

  /** The slot of `key`, or -1. */
  slotOf (key: Uint8Array): number {
    return this.index.get(key)
  }

  /** The key of `slot` (a view of the arena for fixed-size keys). */
  keyOf (slot: number): Uint8Array {
    const ks = this.keySize
    return ks === undefined ? this.keyList[slot] : this.keyArena.subarray(slot * ks, (slot + 1) * ks)
  }

  /** The value of `slot`, `null` for a delete (a view of the arena for fixed-size values). */
  valueOf (slot: number): Uint8Array | null {
    if (this.deletes[slot] === 1) { return null }
    const vs = this.valueSize
    return vs === undefined ? this.valueList[slot] : this.valueArena.subarray(slot * vs, (slot + 1) * vs)
  }
}
