/**
 * What an `any` batch's merkleize writes: its pending mutations and the
 * arena its new operations are encoded into. Shared by the unordered
 * pipeline (`any.ts`) and the ordered user-operation phase
 * (`ordered-batch.ts`), kept apart so neither imports the other.
 */

import type { AnyOp, AnyOpCodec } from './ops.ts'

/** One pending write of a batch (`null` deletes). */
export interface Mutation {
  key: Uint8Array
  value: Uint8Array | null
}

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

  /** Append an update (`value` non-null; `nextKey` for ordered codecs) or a delete of `key`. */
  keyed (key: Uint8Array, value: Uint8Array | null, nextKey?: Uint8Array): void {
    const size = this.codec.fixedSize
    if (size === undefined || this.arena === undefined || this.used + size > this.arena.length) {
      let op: AnyOp = { type: 'delete', key }
      if (value !== null) { op = nextKey === undefined ? { type: 'update', key, value } : { type: 'update', key, value, nextKey } }
      this.ops.push(this.codec.encode(op))
      return
    }
    const off = this.used
    this.codec.encodeKeyedInto(key, value, nextKey, this.arena, off)
    this.used += size
    this.ops.push(this.arena.subarray(off, off + size))
  }
}
