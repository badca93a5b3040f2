/**
 * Where an `any` batch's merkleize encodes its new operations. Shared by the
 * unordered pipeline (`any.ts`) and the ordered user-operation phase
 * (`ordered-batch.ts`), kept apart so neither imports the other.
 */

import type { AnyOp, AnyOpCodec } from './ops.ts'

/**
 * Where a batch's new operations are encoded: for the fixed encoding, views
 * of one zeroed arena sized for the user operations (no buffer per
 * operation); otherwise one `encode` each.
 */
export class OpWriter {
  readonly ops: Uint8Array[] = []
  private readonly codec: AnyOpCodec
  private readonly arena: Uint8Array | undefined
  private used = 0

  constructor (codec: AnyOpCodec, expected: number) {
    this.codec = codec
    this.arena = codec.fixedSize !== undefined ? new Uint8Array(codec.fixedSize * expected) : undefined
  }

  /** Append an update (`value` non-null; `nextKey` for ordered codecs) or a delete of `key`; returns the encoded operation. */
  keyed (key: Uint8Array, value: Uint8Array | null, nextKey?: Uint8Array): Uint8Array {
    const size = this.codec.fixedSize
    let op: Uint8Array
    if (size === undefined || this.arena === undefined || this.used + size > this.arena.length) {
      let o: AnyOp = { type: 'delete', key }
      if (value !== null) { o = nextKey === undefined ? { type: 'update', key, value } : { type: 'update', key, value, nextKey } }
      op = this.codec.encode(o)
    } else {
      const off = this.used
      this.codec.encodeKeyedInto(key, value, nextKey, this.arena, off)
      this.used += size
      op = this.arena.subarray(off, off + size)
    }
    this.ops.push(op)
    return op
  }

  /**
   * Unordered fixed encoding: append the write whose key is at `keys[ko..]`
   * and value at `values[vo..]` (`values` null: a delete), encoded straight
   * from those arenas; returns the encoded operation.
   */
  keyedAt (keys: Uint8Array, ko: number, values: Uint8Array | null, vo: number): Uint8Array {
    const size = this.codec.fixedSize as number
    const arena = this.arena
    if (arena === undefined || this.used + size > arena.length) {
      const ks = this.codec.key.size as number
      const vs = this.codec.value.size as number
      return this.keyed(keys.subarray(ko, ko + ks), values === null ? null : values.subarray(vo, vo + vs))
    }
    const off = this.used
    this.codec.encodeKeyedAt(keys, ko, values, vo, arena, off)
    this.used += size
    const op = arena.subarray(off, off + size)
    this.ops.push(op)
    return op
  }
}
