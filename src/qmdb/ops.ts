/**
 * Operations of the QMDB databases and their exact commonware encodings
 * (commonware `storage/src/qmdb/any`, `storage/src/qmdb/immutable`, `storage/src/qmdb/keyless`).
 *
 * Two encodings per database:
 * - `fixed`: every operation is padded with zeros to one size (`TOTAL`);
 * floors are 8-byte big-endian; decoders insist the padding is zero;
 * - `variable`: no padding; floors are varints; fields encode with their own
 * codec (raw bytes for fixed-size arrays, `varint(len) ‖ bytes` otherwise).
 *
 * Decoding is strict (unknown tags, non-zero padding, floors above the
 * supported maximum, trailing bytes) and only ever throws `CodecError`.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MAX_LEAVES } from '../merkle/index.ts'

/** How one key or value field is encoded. */
export interface FieldCodec {
  /** Size in bytes when the field is a fixed array (encoded raw). */
  readonly size?: number
  /** Largest accepted length of a variable field. */
  readonly max: number
}

/** A fixed-size byte array field (raw bytes, no length prefix). */
export function fixedField (size: number): FieldCodec {
  return { size, max: size }
}

/** A variable-length byte field (`varint(len) ‖ bytes`), capped at `max` bytes. */
export function varField (max = 1 << 20): FieldCodec {
  return { max }
}

export type Encoding = 'fixed' | 'variable'

/** Write one key or value field with its codec (raw if fixed-size, else length-prefixed). */
export function writeField (w: Writer, f: FieldCodec, v: Uint8Array, what: string): void {
  if (f.size !== undefined) {
    if (v.length !== f.size) { throw new RangeError(`${what} must be ${f.size} bytes, got ${v.length}`) }
    w.raw(v)
  } else {
    if (v.length > f.max) { throw new RangeError(`${what} exceeds ${f.max} bytes`) }
    w.bytes(v)
  }
}

/** Read one key or value field (lengths capped by the field's `max`). */
export function readField (r: Reader, f: FieldCodec): Uint8Array {
  return f.size !== undefined ? r.raw(f.size) : r.bytes(f.max)
}

function fieldSize (f: FieldCodec, what: string): number {
  if (f.size === undefined) { throw new RangeError(`the fixed encoding needs a fixed-size ${what}`) }
  return f.size
}

function checkFloor (floor: number): number {
  if (floor > MAX_LEAVES) { throw new CodecError('Overflow', `floor ${floor} exceeds ${MAX_LEAVES}`) }
  return floor
}

/** The part every commit operation shares. */
export interface CommitOp {
  type: 'commit'
  metadata?: Uint8Array
  floor: number
}

/** Behaviour shared by the operation codecs of every database. */
export interface OpCodec<Op> {
  readonly encoding: Encoding
  /** Size of every encoded operation (fixed encoding only). */
  readonly fixedSize?: number
  encode(op: Op): Uint8Array
  /** Strict decode of one operation that must consume `bytes` entirely. */
  decode(bytes: Uint8Array): Op
  /**
   * Read one operation from a stream of concatenated operations (a `Vec<Op>`
   * on the wire) and return its exact encoded bytes (what the MMR hashes).
   */
  readBytes(r: Reader): Uint8Array
  /** The commit floor if `op` is a commit. */
  floorOf(op: Op): number | undefined
}

/**
 * Read one operation's bytes from `r`: fixed encodings take exactly
 * `fixedSize` bytes; variable ones are parsed to find where they end. The
 * returned bytes always decode (they are validated here).
 */
function readOpBytes<Op> (codec: OpCodec<Op> & { parse(r: Reader): Op }, r: Reader): Uint8Array {
  if (codec.fixedSize !== undefined) {
    const bytes = r.raw(codec.fixedSize)
    codec.decode(bytes)
    return bytes
  }
  const start = r.offset
  const probe = r.clone()
  codec.parse(probe)
  const len = probe.offset - start
  return r.raw(len)
}

// ---------------------------------------------------------------------------
// any: Delete (0xD1) | Update (0xD2) | CommitFloor (0xD3)

export type AnyOp =
  | { type: 'delete', key: Uint8Array }
  | { type: 'update', key: Uint8Array, value: Uint8Array, nextKey?: Uint8Array }
  | CommitOp

export const ANY_DELETE = 0xd1
export const ANY_UPDATE = 0xd2
export const ANY_COMMIT = 0xd3

export class AnyOpCodec implements OpCodec<AnyOp> {
  readonly encoding: Encoding
  readonly key: FieldCodec
  readonly value: FieldCodec
  readonly ordered: boolean
  readonly fixedSize?: number

  constructor (key: FieldCodec, value: FieldCodec, encoding: Encoding, ordered = false) {
    this.key = key
    this.value = value
    this.encoding = encoding
    this.ordered = ordered
    if (encoding === 'fixed') {
      const k = fieldSize(key, 'key')
      const v = fieldSize(value, 'value')
      const u = ordered ? k + v + k : k + v
      this.fixedSize = Math.max(1 + u, 1 + 1 + v + 8, 1 + k)
    }
  }

  encode (op: AnyOp): Uint8Array {
    if (this.fixedSize !== undefined && op.type !== 'commit') { return this.encodeFixedKeyed(op) }
    const w = new Writer(this.fixedSize ?? 64)
    switch (op.type) {
      case 'delete':
        w.u8(ANY_DELETE)
        writeField(w, this.key, op.key, 'key')
        break
      case 'update':
        w.u8(ANY_UPDATE)
        writeField(w, this.key, op.key, 'key')
        writeField(w, this.value, op.value, 'value')
        if (this.ordered) {
          if (op.nextKey === undefined) { throw new RangeError('ordered update needs nextKey') }
          writeField(w, this.key, op.nextKey, 'next key')
        }
        break
      default:
        w.u8(ANY_COMMIT)
        writeCommitBody(w, this.encoding, this.value, op)
    }
    if (this.fixedSize !== undefined) { w.zeros(this.fixedSize - w.length) }
    return w.finish()
  }

  /** Read one operation (no padding or end checks: see `decode`). */
  parse (r: Reader): AnyOp {
    const tag = r.u8()
    let op: AnyOp
    switch (tag) {
      case ANY_DELETE:
        op = { type: 'delete', key: readField(r, this.key) }
        break
      case ANY_UPDATE: {
        const key = readField(r, this.key)
        const value = readField(r, this.value)
        op = this.ordered ? { type: 'update', key, value, nextKey: readField(r, this.key) } : { type: 'update', key, value }
        break
      }
      case ANY_COMMIT:
        op = readCommitBody(r, this.encoding, this.value)
        break
      default:
        throw new CodecError('InvalidEnum', `unknown any operation tag 0x${tag.toString(16)}`)
    }
    return op
  }

  /** Hot path: updates and deletes in the fixed encoding, written straight into the padded buffer. */
  private encodeFixedKeyed (op: Exclude<AnyOp, CommitOp>): Uint8Array {
    const k = this.key.size as number
    if (op.key.length !== k) { throw new RangeError(`key must be ${k} bytes, got ${op.key.length}`) }
    const out = new Uint8Array(this.fixedSize as number)
    out.set(op.key, 1)
    if (op.type === 'delete') {
      out[0] = ANY_DELETE
      return out
    }
    const v = this.value.size as number
    if (op.value.length !== v) { throw new RangeError(`value must be ${v} bytes, got ${op.value.length}`) }
    out[0] = ANY_UPDATE
    out.set(op.value, 1 + k)
    if (this.ordered) {
      if (op.nextKey?.length !== k) { throw new RangeError('ordered update needs a nextKey of the key size') }
      out.set(op.nextKey, 1 + k + v)
    }
    return out
  }

  decode (bytes: Uint8Array): AnyOp {
    const r = new Reader(bytes)
    const op = this.parse(r)
    if (this.fixedSize !== undefined) {
      if (bytes.length !== this.fixedSize) { throw new CodecError('InvalidLength', `fixed operation of ${bytes.length} bytes, expected ${this.fixedSize}`) }
      r.zeros(r.remaining)
    }
    r.finish()
    return op
  }

  readBytes (r: Reader): Uint8Array {
    return readOpBytes(this, r)
  }

  floorOf (op: AnyOp): number | undefined {
    return op.type === 'commit' ? op.floor : undefined
  }

  /** The key of an encoded update/delete without a full decode, or undefined for a commit. */
  peekKey (bytes: Uint8Array): Uint8Array | undefined {
    if (bytes[0] === ANY_COMMIT) { return undefined }
    if (this.key.size !== undefined) { return bytes.subarray(1, 1 + this.key.size) }
    const r = new Reader(bytes, 1)
    return r.view(r.length(this.key.max))
  }
}

function writeCommitBody (w: Writer, encoding: Encoding, value: FieldCodec, op: CommitOp): void {
  if (encoding === 'fixed') {
    const v = fieldSize(value, 'value')
    if (op.metadata !== undefined) {
      w.u8(1)
      writeField(w, value, op.metadata, 'metadata')
    } else {
      w.u8(0).zeros(v)
    }
    w.u64(op.floor)
  } else {
    w.option(op.metadata, (w, m) => { writeField(w, value, m, 'metadata') })
    w.varint(op.floor)
  }
}

function readCommitBody (r: Reader, encoding: Encoding, value: FieldCodec): CommitOp {
  if (encoding === 'fixed') {
    const present = r.bool()
    let metadata: Uint8Array | undefined
    if (present) {
      metadata = readField(r, value)
    } else {
      r.zeros(value.size ?? 0)
    }
    const floor = checkFloor(r.u64())
    return metadata === undefined ? { type: 'commit', floor } : { type: 'commit', metadata, floor }
  }
  const metadata = r.option(r => readField(r, value))
  const floor = checkFloor(r.varint())
  return metadata === undefined ? { type: 'commit', floor } : { type: 'commit', metadata, floor }
}

// ---------------------------------------------------------------------------
// immutable: Set (0x00) | Commit (0x01)

export type ImmutableOp =
  | { type: 'set', key: Uint8Array, value: Uint8Array }
  | CommitOp

export class ImmutableOpCodec implements OpCodec<ImmutableOp> {
  readonly encoding: Encoding
  readonly key: FieldCodec
  readonly value: FieldCodec
  readonly fixedSize?: number

  constructor (key: FieldCodec, value: FieldCodec, encoding: Encoding) {
    this.key = key
    this.value = value
    this.encoding = encoding
    if (encoding === 'fixed') {
      const k = fieldSize(key, 'key')
      const v = fieldSize(value, 'value')
      this.fixedSize = Math.max(1 + k + v, 1 + 1 + v + 8)
    }
  }

  encode (op: ImmutableOp): Uint8Array {
    const w = new Writer(this.fixedSize ?? 64)
    if (op.type === 'set') {
      w.u8(0)
      writeField(w, this.key, op.key, 'key')
      writeField(w, this.value, op.value, 'value')
    } else {
      w.u8(1)
      writeCommitBody(w, this.encoding, this.value, op)
    }
    if (this.fixedSize !== undefined) { w.zeros(this.fixedSize - w.length) }
    return w.finish()
  }

  /** Read one operation (no padding or end checks: see `decode`). */
  parse (r: Reader): ImmutableOp {
    const tag = r.u8()
    let op: ImmutableOp
    if (tag === 0) {
      op = { type: 'set', key: readField(r, this.key), value: readField(r, this.value) }
    } else if (tag === 1) {
      op = readCommitBody(r, this.encoding, this.value)
    } else {
      throw new CodecError('InvalidEnum', `unknown immutable operation tag 0x${tag.toString(16)}`)
    }
    return op
  }

  decode (bytes: Uint8Array): ImmutableOp {
    const r = new Reader(bytes)
    const op = this.parse(r)
    if (this.fixedSize !== undefined) {
      if (bytes.length !== this.fixedSize) { throw new CodecError('InvalidLength', `fixed operation of ${bytes.length} bytes, expected ${this.fixedSize}`) }
      r.zeros(r.remaining)
    }
    r.finish()
    return op
  }

  readBytes (r: Reader): Uint8Array {
    return readOpBytes(this, r)
  }

  floorOf (op: ImmutableOp): number | undefined {
    return op.type === 'commit' ? op.floor : undefined
  }
}

// ---------------------------------------------------------------------------
// keyless: Commit (0x00) | Append (0x01)

export type KeylessOp =
  | { type: 'append', value: Uint8Array }
  | CommitOp

export class KeylessOpCodec implements OpCodec<KeylessOp> {
  readonly encoding: Encoding
  readonly value: FieldCodec
  readonly fixedSize?: number

  constructor (value: FieldCodec, encoding: Encoding) {
    this.value = value
    this.encoding = encoding
    if (encoding === 'fixed') {
      this.fixedSize = 1 + 1 + fieldSize(value, 'value') + 8
    }
  }

  encode (op: KeylessOp): Uint8Array {
    const w = new Writer(this.fixedSize ?? 32)
    if (op.type === 'append') {
      w.u8(1)
      writeField(w, this.value, op.value, 'value')
    } else {
      w.u8(0)
      writeCommitBody(w, this.encoding, this.value, op)
    }
    if (this.fixedSize !== undefined) { w.zeros(this.fixedSize - w.length) }
    return w.finish()
  }

  /** Read one operation (no padding or end checks: see `decode`). */
  parse (r: Reader): KeylessOp {
    const tag = r.u8()
    let op: KeylessOp
    if (tag === 1) {
      op = { type: 'append', value: readField(r, this.value) }
    } else if (tag === 0) {
      op = readCommitBody(r, this.encoding, this.value)
    } else {
      throw new CodecError('InvalidEnum', `unknown keyless operation tag 0x${tag.toString(16)}`)
    }
    return op
  }

  decode (bytes: Uint8Array): KeylessOp {
    const r = new Reader(bytes)
    const op = this.parse(r)
    if (this.fixedSize !== undefined) {
      if (bytes.length !== this.fixedSize) { throw new CodecError('InvalidLength', `fixed operation of ${bytes.length} bytes, expected ${this.fixedSize}`) }
      r.zeros(r.remaining)
    }
    r.finish()
    return op
  }

  readBytes (r: Reader): Uint8Array {
    return readOpBytes(this, r)
  }

  floorOf (op: KeylessOp): number | undefined {
    return op.type === 'commit' ? op.floor : undefined
  }
}

/** Map key for byte-array keys (exact, one character per byte). */
export function keyId (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')
}

/** Lexicographic byte order (the key order of every sorted emission). */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) { return a[i] - b[i] }
  }
  return a.length - b.length
}
