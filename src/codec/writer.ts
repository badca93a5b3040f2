/**
 * Canonical binary writer for commonware's encodings (commonware `codec/src`).
 *
 * Big-endian fixed integers, unsigned LEB128 varints, `u32`-bounded lengths.
 * Numbers are JS numbers guarded to the safe-integer range; a value the codec
 * cannot represent exactly is a programming error here (writers only see
 * values this process produced), so it throws a RangeError rather than
 * silently truncating.
 */

const U32_MAX = 0xffffffff

export class Writer {
  private buf: Uint8Array
  private view: DataView
  private pos = 0

  constructor (capacity = 64) {
    this.buf = new Uint8Array(Math.max(capacity, 16))
    this.view = new DataView(this.buf.buffer)
  }

  /** Number of bytes written so far. */
  get length (): number {
    return this.pos
  }

  private reserve (n: number): void {
    const need = this.pos + n
    if (need <= this.buf.length) { return }
    let cap = this.buf.length * 2
    while (cap < need) { cap *= 2 }
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  u8 (v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) { throw new RangeError(`u8 out of range: ${v}`) }
    this.reserve(1)
    this.buf[this.pos++] = v
    return this
  }

  bool (v: boolean): this {
    return this.u8(v ? 1 : 0)
  }

  /** Fixed 8-byte big-endian u64. */
  u64 (v: number | bigint): this {
    this.reserve(8)
    if (typeof v === 'bigint') {
      if (v < 0n || v > 0xffffffffffffffffn) { throw new RangeError(`u64 out of range: ${v}`) }
      this.view.setBigUint64(this.pos, v)
    } else {
      if (!Number.isSafeInteger(v) || v < 0) { throw new RangeError(`u64 out of range: ${v}`) }
      this.view.setUint32(this.pos, Math.floor(v / 0x100000000))
      this.view.setUint32(this.pos + 4, v >>> 0)
    }
    this.pos += 8
    return this
  }

  /** Fixed 4-byte big-endian u32. */
  u32 (v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) { throw new RangeError(`u32 out of range: ${v}`) }
    this.reserve(4)
    this.view.setUint32(this.pos, v)
    this.pos += 4
    return this
  }

  /** Canonical unsigned LEB128 varint. */
  varint (v: number | bigint): this {
    if (typeof v === 'bigint') {
      if (v < 0n || v > 0xffffffffffffffffn) { throw new RangeError(`varint out of range: ${v}`) }
      this.reserve(10)
      while (v >= 0x80n) {
        this.buf[this.pos++] = Number(v & 0x7fn) | 0x80
        v >>= 7n
      }
      this.buf[this.pos++] = Number(v)
      return this
    }
    if (!Number.isSafeInteger(v) || v < 0) { throw new RangeError(`varint out of range: ${v}`) }
    this.reserve(10)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[this.pos++] = v
    return this
  }

  /** A `usize` length: a varint that must fit in a u32. */
  length32 (n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > U32_MAX) { throw new RangeError(`length out of range: ${n}`) }
    return this.varint(n)
  }

  /** Raw bytes, no length prefix (fixed arrays, digests). */
  raw (bytes: Uint8Array): this {
    this.reserve(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
    return this
  }

  /** `n` zero bytes (fixed-size padding). */
  zeros (n: number): this {
    this.reserve(n)
    this.buf.fill(0, this.pos, this.pos + n)
    this.pos += n
    return this
  }

  /** Length-prefixed bytes (`Vec<u8>`). */
  bytes (bytes: Uint8Array): this {
    this.length32(bytes.length)
    return this.raw(bytes)
  }

  /** `Option<T>`: presence byte then the value. */
  option<T>(value: T | undefined, write: (w: this, v: T) => void): this {
    if (value === undefined) { return this.u8(0) }
    this.u8(1)
    write(this, value)
    return this
  }

  /** `Vec<T>`: length then each element. */
  vec<T>(items: readonly T[], write: (w: this, v: T) => void): this {
    this.length32(items.length)
    for (const item of items) { write(this, item) }
    return this
  }

  /** A copy of the bytes written, sized exactly. */
  finish (): Uint8Array {
    return this.buf.slice(0, this.pos)
  }
}

/** Encoded size of a varint without writing it. */
export function varintSize (v: number): number {
  let n = 1
  while (v >= 0x80) {
    v = Math.floor(v / 0x80)
    n++
  }
  return n
}
