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
   * on the wire) and return its exact encoded bytes (what the MMR hashes):
   * a copy, or with `copy: false` a view of the reader's buffer.
   */
  readBytes(r: Reader, copy?: boolean): Uint8Array
  /** The commit floor if `op` is a commit. */
  floorOf(op: Op): number | undefined
  /** `encode` of `Commit(metadata, floor)` (the bootstrap commit and every batch's last operation). */
  encodeCommit(metadata: Uint8Array | undefined, floor: number): Uint8Array
}

/** A commit with its optional metadata (the one shape every database's commit has). */
export function commitOp (metadata: Uint8Array | undefined, floor: number): CommitOp {
  return metadata === undefined ? { type: 'commit', floor } : { type: 'commit', metadata, floor }
}

function unknownTag (db: string, tag: number): CodecError {
  return new CodecError('InvalidEnum', `unknown ${db} operation tag 0x${tag.toString(16)}`)
}

/**
 * What the codecs of all three databases share: the padding of the fixed
 * encoding, strict decoding, stream reading and the commit body. A database's
 * codec supplies only its tags and fields (`writeOp`, `parse`).
 */
export abstract class BaseOpCodec<Op extends { type: string, floor?: number }> implements OpCodec<Op> {
  readonly encoding: Encoding
  readonly value: FieldCodec
  readonly fixedSize?: number
  private readonly commitTag: number
  /** initial buffer of a variable-encoding operation */
  private readonly sizeHint: number

  /** `fixedSize` is only called for the fixed encoding (it throws on variable fields). */
  protected constructor (value: FieldCodec, encoding: Encoding, commitTag: number, fixedSize: () => number, sizeHint: number) {
    this.value = value
    this.encoding = encoding
    this.commitTag = commitTag
    if (encoding === 'fixed') { this.fixedSize = fixedSize() }
    this.sizeHint = sizeHint
  }

  /** Write the tag and body of `op` (no padding). */
  protected abstract writeOp (w: Writer, op: Op): void

  /** Read one operation (no padding or end checks: see `decode`). */
  abstract parse (r: Reader): Op

  encode (op: Op): Uint8Array {
    const w = new Writer(this.fixedSize ?? this.sizeHint)
    this.writeOp(w, op)
    return this.padded(w)
  }

  encodeCommit (metadata: Uint8Array | undefined, floor: number): Uint8Array {
    const w = new Writer(this.fixedSize ?? this.sizeHint)
    this.writeCommit(w, commitOp(metadata, floor))
    return this.padded(w)
  }

  private padded (w: Writer): Uint8Array {
    if (this.fixedSize !== undefined) { w.zeros(this.fixedSize - w.length) }
    return w.finish()
  }

  decode (bytes: Uint8Array): Op {
    const r = new Reader(bytes)
    const op = this.parse(r)
    if (this.fixedSize !== undefined) {
      if (bytes.length !== this.fixedSize) { throw new CodecError('InvalidLength', `fixed operation of ${bytes.length} bytes, expected ${this.fixedSize}`) }
      r.zeros(r.remaining)
    }
    r.finish()
    return op
  }

  /**
   * Fixed encodings take exactly `fixedSize` bytes; variable ones are parsed
   * to find where they end. The returned bytes always decode (they are
   * validated here).
   */
  readBytes (r: Reader, copy = true): Uint8Array {
    if (this.fixedSize !== undefined) {
      const bytes = copy ? r.raw(this.fixedSize) : r.view(this.fixedSize)
      this.validate(bytes)
      return bytes
    }
    const start = r.offset
    const probe = r.clone()
    this.parse(probe)
    return copy ? r.raw(probe.offset - start) : r.view(probe.offset - start)
  }

  /** Throw `CodecError` unless `bytes` is one valid fixed-size operation (`decode`'s checks; codecs may check without decoding). */
  validate (bytes: Uint8Array): void {
    this.decode(bytes)
  }

  floorOf (op: Op): number | undefined {
    return op.type === 'commit' ? op.floor : undefined
  }

  /** The commit: its tag, `Option<metadata>`, the floor (fixed: padded metadata, u64 floor). */
  protected writeCommit (w: Writer, op: CommitOp): void {
    w.u8(this.commitTag)
    if (this.encoding === 'fixed') {
      const v = fieldSize(this.value, 'value')
      if (op.metadata !== undefined) {
        w.u8(1)
        writeField(w, this.value, op.metadata, 'metadata')
      } else {
        w.u8(0).zeros(v)
      }
      w.u64(op.floor)
    } else {
      w.option(op.metadata, (w, m) => { writeField(w, this.value, m, 'metadata') })
      w.varint(op.floor)
    }
  }

  /** The commit body after its tag. */
  protected readCommit (r: Reader): CommitOp {
    if (this.encoding === 'fixed') {
      let metadata: Uint8Array | undefined
      if (r.bool()) {
        metadata = readField(r, this.value)
      } else {
        r.zeros(this.value.size ?? 0)
      }
      return commitOp(metadata, checkFloor(r.u64()))
    }
    const metadata = r.option(r => readField(r, this.value))
    return commitOp(metadata, checkFloor(r.varint()))
  }
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

export class AnyOpCodec extends BaseOpCodec<AnyOp> {
  readonly key: FieldCodec
  readonly ordered: boolean

  constructor (key: FieldCodec, value: FieldCodec, encoding: Encoding, ordered = false) {
    super(value, encoding, ANY_COMMIT, () => {
      const k = fieldSize(key, 'key')
      const v = fieldSize(value, 'value')
      const u = ordered ? k + v + k : k + v
      return Math.max(1 + u, 1 + 1 + v + 8, 1 + k)
    }, 64)
    this.key = key
    this.ordered = ordered
  }

  encode (op: AnyOp): Uint8Array {
    if (this.fixedSize !== undefined && op.type !== 'commit') { return this.encodeFixedKeyed(op) }
    return super.encode(op)
  }

  protected writeOp (w: Writer, op: AnyOp): void {
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
        this.writeCommit(w, op)
    }
  }

  parse (r: Reader): AnyOp {
    const tag = r.u8()
    switch (tag) {
      case ANY_DELETE:
        return { type: 'delete', key: readField(r, this.key) }
      case ANY_UPDATE: {
        const key = readField(r, this.key)
        const value = readField(r, this.value)
        return this.ordered ? { type: 'update', key, value, nextKey: readField(r, this.key) } : { type: 'update', key, value }
      }
      case ANY_COMMIT:
        return this.readCommit(r)
      default:
        throw unknownTag('any', tag)
    }
  }

  /** Hot path: updates and deletes in the fixed encoding, written straight into the padded buffer. */
  private encodeFixedKeyed (op: Exclude<AnyOp, CommitOp>): Uint8Array {
    const out = new Uint8Array(this.fixedSize as number)
    this.encodeKeyedInto(op.key, op.type === 'delete' ? null : op.value, op.type === 'update' ? op.nextKey : undefined, out, 0)
    return out
  }

  /**
   * Fixed encoding only: write an update (`value` non-null) or a delete of
   * `key` at `out[off..off + fixedSize)`, which must already be zero (the
   * padding is not written: merkleize encodes into one fresh zeroed arena per
   * batch instead of allocating a buffer per operation).
   */
  encodeKeyedInto (key: Uint8Array, value: Uint8Array | null, nextKey: Uint8Array | undefined, out: Uint8Array, off: number): void {
    if (this.fixedSize === undefined) { throw new RangeError('encodeKeyedInto needs the fixed encoding') }
    const k = this.key.size as number
    if (key.length !== k) { throw new RangeError(`key must be ${k} bytes, got ${key.length}`) }
    copyInto(key, out, off + 1)
    if (value === null) {
      out[off] = ANY_DELETE
      return
    }
    const v = this.value.size as number
    if (value.length !== v) { throw new RangeError(`value must be ${v} bytes, got ${value.length}`) }
    out[off] = ANY_UPDATE
    copyInto(value, out, off + 1 + k)
    if (this.ordered) {
      if (nextKey?.length !== k) { throw new RangeError('ordered update needs a nextKey of the key size') }
      copyInto(nextKey, out, off + 1 + k + v)
    }
  }

  /**
   * `encodeKeyedInto` of an unordered write whose key and value sit in arenas
   * (`keys[ko..]`, `values[vo..]`; `values` null: a delete): nothing is
   * viewed or allocated. The caller has checked the field sizes (the arenas
   * of `mutations.ts` hold only fixed-size fields).
   */
  encodeKeyedAt (keys: Uint8Array, ko: number, values: Uint8Array | null, vo: number, out: Uint8Array, off: number): void {
    if (this.fixedSize === undefined || this.ordered) { throw new RangeError('encodeKeyedAt needs the fixed encoding of an unordered codec') }
    const k = this.key.size as number
    for (let i = 0; i < k; i++) { out[off + 1 + i] = keys[ko + i] }
    if (values === null) {
      out[off] = ANY_DELETE
      return
    }
    out[off] = ANY_UPDATE
    const v = this.value.size as number
    const o = off + 1 + k
    for (let i = 0; i < v; i++) { out[o + i] = values[vo + i] }
  }

  /**
   * `decode`'s checks without decoding, for updates and deletes of the fixed
   * encoding (the bulk of a sync response): fields are raw bytes, so an
   * operation is valid iff its tag is known and its padding is zero.
   */
  validate (bytes: Uint8Array): void {
    const tag = bytes[0]
    const size = this.fixedSize
    if (size === undefined || bytes.length !== size || (tag !== ANY_UPDATE && tag !== ANY_DELETE)) {
      super.validate(bytes)
      return
    }
    const k = this.key.size as number
    const used = tag === ANY_DELETE ? 1 + k : 1 + k + (this.value.size as number) + (this.ordered ? k : 0)
    for (let i = used; i < size; i++) {
      if (bytes[i] !== 0) { throw new CodecError('NonZeroPadding', `non-zero padding byte at offset ${i}`) }
    }
  }

  /** Fixed-size keys only: where the key of an encoded update/delete starts (right after its tag: `peekKey` without a view), -1 for a commit. */
  keyOffset (bytes: Uint8Array): number {
    return bytes[0] === ANY_COMMIT ? -1 : 1
  }

  /** The key of an encoded update/delete without a full decode, or undefined for a commit. */
  peekKey (bytes: Uint8Array): Uint8Array | undefined {
    if (bytes[0] === ANY_COMMIT) { return undefined }
    if (this.key.size !== undefined) { return bytes.subarray(1, 1 + this.key.size) }
    const r = new Reader(bytes, 1)
    return r.view(r.length(this.key.max))
  }
}

// ---------------------------------------------------------------------------
// immutable: Set (0x00) | Commit (0x01)

export type ImmutableOp =
  | { type: 'set', key: Uint8Array, value: Uint8Array }
  | CommitOp

export class ImmutableOpCodec extends BaseOpCodec<ImmutableOp> {
  readonly key: FieldCodec

  constructor (key: FieldCodec, value: FieldCodec, encoding: Encoding) {
    super(value, encoding, 1, () => Math.max(1 + fieldSize(key, 'key') + fieldSize(value, 'value'), 1 + 1 + fieldSize(value, 'value') + 8), 64)
    this.key = key
  }

  protected writeOp (w: Writer, op: ImmutableOp): void {
    if (op.type === 'commit') {
      this.writeCommit(w, op)
      return
    }
    writeField(w.u8(0), this.key, op.key, 'key')
    writeField(w, this.value, op.value, 'value')
  }

  parse (r: Reader): ImmutableOp {
    const tag = r.u8()
    if (tag === 0) { return { type: 'set', key: readField(r, this.key), value: readField(r, this.value) } }
    if (tag === 1) { return this.readCommit(r) }
    throw unknownTag('immutable', tag)
  }
}

// ---------------------------------------------------------------------------
// keyless: Commit (0x00) | Append (0x01)

export type KeylessOp =
  | { type: 'append', value: Uint8Array }
  | CommitOp

export class KeylessOpCodec extends BaseOpCodec<KeylessOp> {
  constructor (value: FieldCodec, encoding: Encoding) {
    super(value, encoding, 0, () => 1 + 1 + fieldSize(value, 'value') + 8, 32)
  }

  protected writeOp (w: Writer, op: KeylessOp): void {
    if (op.type === 'commit') {
      this.writeCommit(w, op)
      return
    }
    writeField(w.u8(1), this.value, op.value, 'value')
  }

  parse (r: Reader): KeylessOp {
    const tag = r.u8()
    if (tag === 1) { return { type: 'append', value: readField(r, this.value) } }
    if (tag === 0) { return this.readCommit(r) }
    throw unknownTag('keyless', tag)
  }
}

/** `out.set(src, off)` without its per-call cost for the short fields of an operation. */
function copyInto (src: Uint8Array, out: Uint8Array, off: number): void {
  if (src.length > 64) {
    out.set(src, off)
    return
  }
  for (let i = 0; i < src.length; i++) { out[off + i] = src[i] }
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
