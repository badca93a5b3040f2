/**
 * Proofs of ordered `current` databases (`storage/src/qmdb/current/ordered`):
 *
 * - `OrderedKeyValueProof { proof, nextKey }`: `key` has `value` now — the
 * operation `Update(key, value, nextKey)` is active under the canonical root;
 * - `ExclusionProof`: `key` has no value now — either `span`: an active
 * `Update(k, v, next)` with `key ≠ k` and `key` inside the cyclic span
 * `[k, next)` (no active key lies strictly between `k` and `next`), or
 * `empty`: the active last commit's floor equals its own location, which
 * happens iff the database has no active key.
 *
 * Wire (as Rust): key-value proof `operationProof ‖ nextKey`; exclusion proof
 * `u8(0) ‖ operationProof ‖ key ‖ value ‖ nextKey` or
 * `u8(1) ‖ operationProof ‖ Option(metadata)`, fields in the database's codec.
 * Verifiers rebuild the operation bytes with the database's `AnyOpCodec` and
 * never throw on malformed proofs (they return false).
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { encodeCurrentRangeProof, readOperationProof, verifyOperationProof } from './current-proof.ts'
import { CHUNK_BYTES } from './grafting.ts'
import { commitOp, compareBytes, readField, writeField } from './ops.ts'
import { spanContains } from './ordered.ts'
import type { OperationProof } from './current-proof.ts'
import type { AnyOp, AnyOpCodec } from './ops.ts'
import type { Digest } from '../merkle/index.ts'

export interface OrderedKeyValueProof {
  proof: OperationProof
  nextKey: Uint8Array
}

export type ExclusionProof =
  | { type: 'span', proof: OperationProof, key: Uint8Array, value: Uint8Array, nextKey: Uint8Array }
  | { type: 'empty', proof: OperationProof, metadata: Uint8Array | undefined }

const SPAN = 0
const EMPTY = 1

/** Encoding never throws for well-formed operations; anything else means "not this operation". */
function encodeOr (codec: AnyOpCodec, op: AnyOp): Uint8Array | undefined {
  try {
    return codec.encode(op)
  } catch (err) {
    if (err instanceof RangeError || err instanceof CodecError) { return undefined }
    throw err
  }
}

/** True iff `proof` shows that `key` has `value` under the canonical `root`. */
export function verifyOrderedKeyValueProof (codec: AnyOpCodec, key: Uint8Array, value: Uint8Array, proof: OrderedKeyValueProof, root: Digest, chunkBytes = CHUNK_BYTES): boolean {
  if (!codec.ordered) { return false }
  const op = encodeOr(codec, { type: 'update', key, value, nextKey: proof.nextKey })
  return op !== undefined && verifyOperationProof(proof.proof, op, root, chunkBytes)
}

/** True iff `proof` shows that `key` has no value under the canonical `root`. */
export function verifyExclusionProof (codec: AnyOpCodec, key: Uint8Array, proof: ExclusionProof, root: Digest, chunkBytes = CHUNK_BYTES): boolean {
  if (!codec.ordered) { return false }
  let op: Uint8Array | undefined
  if (proof.type === 'span') {
    if (compareBytes(proof.key, key) === 0 || !spanContains(proof.key, proof.nextKey, key)) { return false }
    op = encodeOr(codec, { type: 'update', key: proof.key, value: proof.value, nextKey: proof.nextKey })
  } else {
    // an active commit whose floor is its own location: nothing is active
    op = encodeOr(codec, commitOp(proof.metadata, proof.proof.loc))
  }
  return op !== undefined && verifyOperationProof(proof.proof, op, root, chunkBytes)
}

function writeOperationProof (w: Writer, p: OperationProof): void {
  w.varint(p.loc).raw(p.chunk)
  encodeCurrentRangeProof(p.rangeProof, w)
}

export function encodeOrderedKeyValueProof (codec: AnyOpCodec, p: OrderedKeyValueProof): Uint8Array {
  const w = new Writer(512)
  writeOperationProof(w, p.proof)
  writeField(w, codec.key, p.nextKey, 'next key')
  return w.finish()
}

export function decodeOrderedKeyValueProof (codec: AnyOpCodec, bytes: Uint8Array, maxDigests = 122, chunkBytes = CHUNK_BYTES): OrderedKeyValueProof {
  const r = new Reader(bytes)
  const proof = readOperationProof(r, maxDigests, chunkBytes)
  const nextKey = readField(r, codec.key)
  r.finish()
  return { proof, nextKey }
}

export function encodeExclusionProof (codec: AnyOpCodec, p: ExclusionProof): Uint8Array {
  const w = new Writer(512)
  if (p.type === 'span') {
    w.u8(SPAN)
    writeOperationProof(w, p.proof)
    writeField(w, codec.key, p.key, 'key')
    writeField(w, codec.value, p.value, 'value')
    writeField(w, codec.key, p.nextKey, 'next key')
  } else {
    w.u8(EMPTY)
    writeOperationProof(w, p.proof)
    w.option(p.metadata, (w, m) => { writeField(w, codec.value, m, 'metadata') })
  }
  return w.finish()
}

/** Strict decode (unknown tags, trailing bytes, oversized fields: `CodecError`). */
export function decodeExclusionProof (codec: AnyOpCodec, bytes: Uint8Array, maxDigests = 122, chunkBytes = CHUNK_BYTES): ExclusionProof {
  const r = new Reader(bytes)
  const tag = r.u8()
  let out: ExclusionProof
  if (tag === SPAN) {
    const proof = readOperationProof(r, maxDigests, chunkBytes)
    const key = readField(r, codec.key)
    const value = readField(r, codec.value)
    const nextKey = readField(r, codec.key)
    out = { type: 'span', proof, key, value, nextKey }
  } else if (tag === EMPTY) {
    const proof = readOperationProof(r, maxDigests, chunkBytes)
    out = { type: 'empty', proof, metadata: r.option(r => readField(r, codec.value)) }
  } else {
    throw new CodecError('InvalidEnum', `unknown exclusion proof tag ${tag}`)
  }
  r.finish()
  return out
}
