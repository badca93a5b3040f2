/**
 * Bounds-checked reader for commonware's canonical encodings (commonware `codec/src`).
 *
 * Invariants:
 * - every read checks the remaining length first and throws `CodecError`
 * (`EndOfBuffer`) instead of reading past the end;
 * - varints are canonical (no trailing zero group, at most 64 bits);
 * - every length read from the input is compared with a caller-supplied cap
 * before anything is allocated;
 * - integers are returned as JS numbers only when they are exact (safe range);
 * larger values are rejected with `Overflow` (use the `*Big` readers when
 * the full u64 range is part of the type).
 */

import { CodecError } from './errors.ts'

const U32_MAX = 0xffffffff
const TWO_32 = 0x100000000

export class Reader {
  private readonly buf: Uint8Array
  private pos: number
  private readonly end: number

  constructor (buf: Uint8Array, offset = 0, end = buf.length) {
    this.buf = buf
    this.pos = offset
    this.end = end
  }

  /** An independent reader at the same position (for look-ahead). */
  clone (): Reader {
    return new Reader(this.buf, this.pos, this.end)
  }

  /** Current offset into the underlying buffer. */
  get offset (): number {
    return this.pos
  }

  /** Bytes not yet consumed. */
  get remaining (): number {
    return this.end - this.pos
  }

  private need (n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new CodecError('EndOfBuffer', `${what}: need ${n} bytes, have ${this.end - this.pos}`)
    }
  }

  u8 (): number {
    this.need(1, 'u8')
    return this.buf[this.pos++]
  }

  bool (): boolean {
    const b = this.u8()
    if (b === 0) { return false }
    if (b === 1) { return true }
    throw new CodecError('InvalidBool', `bool byte 0x${b.toString(16)}`)
  }

  u32 (): number {
    this.need(4, 'u32')
    const b = this.buf
    const p = this.pos
    this.pos += 4
    return ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3]
  }

  /** Fixed 8-byte big-endian u64 as an exact number (`Overflow` above 2^53 - 1). */
  u64 (): number {
    this.need(8, 'u64')
    const hi = this.readU32At(this.pos)
    const lo = this.readU32At(this.pos + 4)
    if (hi > 0x1fffff) { throw new CodecError('Overflow', 'u64 above the safe integer range') }
    this.pos += 8
    return hi * TWO_32 + lo
  }

  /** Fixed 8-byte big-endian u64, full range. */
  u64Big (): bigint {
    this.need(8, 'u64')
    const hi = this.readU32At(this.pos)
    const lo = this.readU32At(this.pos + 4)
    this.pos += 8
    return (BigInt(hi) << 32n) | BigInt(lo)
  }

  private readU32At (p: number): number {
    const b = this.buf
    return ((b[p] << 24) >>> 0) + (b[p + 1] << 16) + (b[p + 2] << 8) + b[p + 3]
  }

  /** Canonical LEB128 varint as an exact number (`Overflow` above 2^53 - 1). */
  varint (): number {
    let result = 0
    let mul = 1
    for (let i = 0; i < 10; i++) {
      this.need(1, 'varint')
      const byte = this.buf[this.pos++]
      if (i === 9 && byte > 0x01) { throw new CodecError('InvalidVarint', 'varint exceeds 64 bits') }
      // products above 2^53 are inexact but stay above the limit checked below
      result += (byte & 0x7f) * mul
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) { throw new CodecError('InvalidVarint', 'non-canonical varint (trailing zero group)') }
        if (result > Number.MAX_SAFE_INTEGER) { throw new CodecError('Overflow', 'varint above the safe integer range') }
        return result
      }
      mul *= 128
    }
    throw new CodecError('InvalidVarint', 'varint exceeds 64 bits')
  }

  /** Canonical LEB128 varint, full u64 range. */
  varintBig (): bigint {
    let result = 0n
    let shift = 0n
    for (let i = 0; i < 10; i++) {
      this.need(1, 'varint')
      const byte = this.buf[this.pos++]
      if (i === 9 && byte > 0x01) { throw new CodecError('InvalidVarint', 'varint exceeds 64 bits') }
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) { throw new CodecError('InvalidVarint', 'non-canonical varint (trailing zero group)') }
        return result
      }
      shift += 7n
    }
    throw new CodecError('InvalidVarint', 'varint exceeds 64 bits')
  }

  /** A small varint known to fit a u32, with the fast number path. */
  varint32 (): number {
    let result = 0
    let mul = 1
    for (let i = 0; i < 5; i++) {
      this.need(1, 'varint')
      const byte = this.buf[this.pos++]
      result += (byte & 0x7f) * mul
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) { throw new CodecError('InvalidVarint', 'non-canonical varint (trailing zero group)') }
        if (result > U32_MAX) { throw new CodecError('Overflow', 'length exceeds u32') }
        return result
      }
      mul *= 128
    }
    throw new CodecError('Overflow', 'length exceeds u32')
  }

  /** A `usize` length, capped by `max` before anything is allocated. */
  length (max: number): number {
    const n = this.varint32()
    if (n > max) { throw new CodecError('InvalidLength', `length ${n} exceeds the maximum ${max}`) }
    return n
  }

  /** `n` raw bytes, copied (safe to keep after the input buffer is reused). */
  raw (n: number): Uint8Array {
    this.need(n, 'bytes')
    // a real copy even for a Node Buffer input (whose `slice` is a view)
    const out = new Uint8Array(this.buf.subarray(this.pos, this.pos + n))
    this.pos += n
    return out
  }

  /** `n` raw bytes as a view into the input (zero-copy; do not keep long-lived). */
  view (n: number): Uint8Array {
    this.need(n, 'bytes')
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** Length-prefixed bytes with a cap on the length. */
  bytes (max: number): Uint8Array {
    return this.raw(this.length(max))
  }

  /** Consume `n` bytes that must all be zero (fixed-size padding). */
  zeros (n: number): void {
    this.need(n, 'padding')
    const b = this.buf
    for (let i = this.pos; i < this.pos + n; i++) {
      if (b[i] !== 0) { throw new CodecError('NonZeroPadding', `non-zero padding byte at offset ${i}`) }
    }
    this.pos += n
  }

  /** `Option<T>`. */
  option<T>(read: (r: this) => T): T | undefined {
    return this.bool() ? read(this) : undefined
  }

  /** `Vec<T>` with at most `max` elements. */
  vec<T>(max: number, read: (r: this) => T): T[] {
    const n = this.length(max)
    // each element takes at least one byte: reject impossible counts before allocating
    if (n > this.remaining) { throw new CodecError('EndOfBuffer', `vector of ${n} elements needs at least ${n} bytes`) }
    const out = new Array<T>(n)
    for (let i = 0; i < n; i++) { out[i] = read(this) }
    return out
  }

  /** `Vec<[u8; size]>` of fixed-size items (digests) with at most `max` elements. */
  fixedVec (max: number, size: number): Uint8Array[] {
    const n = this.length(max)
    this.need(n * size, 'fixed vector')
    const out = new Array<Uint8Array>(n)
    for (let i = 0; i < n; i++) { out[i] = this.raw(size) }
    return out
  }

  /** Require that the whole input was consumed. */
  finish (): void {
    if (this.pos !== this.end) {
      throw new CodecError('ExtraData', `${this.end - this.pos} trailing bytes`)
    }
  }
}

/**
 * Decode a value that must consume the whole buffer.
 */
export function decodeExact<T> (bytes: Uint8Array, read: (r: Reader) => T): T {
  const r = new Reader(bytes)
  const value = read(r)
  r.finish()
  return value
}
