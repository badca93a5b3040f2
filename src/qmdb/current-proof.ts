/**
 * Proofs of the `current` database (qmdb.md §8.4): a range proof over the
 * virtual* tree (the ops tree below the grafting height, grafted bitmap
 * chunks at and above it), which proves both the operations and their
 * activity bits against the canonical root.
 *
 * - `CurrentRangeProof { proof (leaves = L, inactivePeaks = kc), partialChunkDigest?, opsRoot }`,
 * wire `proof ‖ Option(partialChunkDigest) ‖ opsRoot` (the MMB-only pending chunk encodes to nothing);
 * - `OperationProof { loc, chunk, rangeProof }`, wire `varint(loc) ‖ chunk ‖ rangeProof`: the
 * operation at `loc` is active iff its bit in `chunk` is 1 and the range proof verifies.
 *
 * Verification never trusts the prover for anything it can check: the chunk
 * count must match the range, the partial chunk digest must be present iff the
 * bitmap ends mid-chunk (and equal the digest of the supplied last chunk when
 * the range reaches it), and the canonical root is recomputed from scratch.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MerkleError, decodeProof, digestEquals, encodeProof, reconstructRoot, sha256 } from '../merkle/index.ts'
import { CHUNK_BITS, CHUNK_BYTES, GRAFT_HEIGHT, canonicalRoot } from './grafting.ts'
import type { Digest, Proof } from '../merkle/index.ts'

export interface CurrentRangeProof {
  proof: Proof
  partialChunkDigest: Digest | undefined
  opsRoot: Digest
}

export interface OperationProof {
  loc: number
  chunk: Uint8Array
  rangeProof: CurrentRangeProof
}

export function encodeCurrentRangeProof (p: CurrentRangeProof, w: Writer = new Writer(256)): Writer {
  encodeProof(p.proof, w)
  w.option(p.partialChunkDigest, (w, d) => { w.raw(d) })
  return w.raw(p.opsRoot)
}

export function decodeCurrentRangeProof (r: Reader, maxDigests: number): CurrentRangeProof {
  const proof = decodeProof(r, maxDigests)
  const partialChunkDigest = r.option(r => r.raw(32))
  const opsRoot = r.raw(32)
  return { proof, partialChunkDigest, opsRoot }
}

export function encodeOperationProof (p: OperationProof): Uint8Array {
  const w = new Writer(512).varint(p.loc).raw(p.chunk)
  return encodeCurrentRangeProof(p.rangeProof, w).finish()
}

export function decodeOperationProof (bytes: Uint8Array, maxDigests = 122): OperationProof {
  const r = new Reader(bytes)
  const loc = r.varint()
  const chunk = r.raw(CHUNK_BYTES)
  const rangeProof = decodeCurrentRangeProof(r, maxDigests)
  r.finish()
  return { loc, chunk, rangeProof }
}

/**
 * Verify encoded operations `[start, start + ops.length)` and the bitmap
 * `chunks` covering them against a canonical root. Returns false on any
 * failure (never throws for malformed input).
 */
export function verifyCurrentRange (rp: CurrentRangeProof, start: number, ops: readonly Uint8Array[], chunks: readonly Uint8Array[], root: Digest): boolean {
  try {
    return digestEquals(reconstructCanonical(rp, start, ops, chunks), root)
  } catch (err) {
    if (err instanceof MerkleError || err instanceof CodecError) { return false }
    throw err
  }
}

function reconstructCanonical (rp: CurrentRangeProof, start: number, ops: readonly Uint8Array[], chunks: readonly Uint8Array[]): Digest {
  const leaves = rp.proof.leaves
  if (ops.length === 0 || chunks.length === 0) { throw new MerkleError('MissingElements', 'no operations or chunks') }
  const end = start + ops.length
  if (end > leaves) { throw new MerkleError('InvalidEndLoc', `end ${end} beyond ${leaves}`) }
  const startChunk = Math.floor(start / CHUNK_BITS)
  const endChunk = Math.floor((end - 1) / CHUNK_BITS)
  if (chunks.length !== endChunk - startChunk + 1) { throw new MerkleError('InvalidProof', `expected ${endChunk - startChunk + 1} chunks, got ${chunks.length}`) }
  if (chunks.some(c => c.length !== CHUNK_BYTES)) { throw new MerkleError('InvalidProof', 'chunk of the wrong size') }
  const nextBit = leaves % CHUNK_BITS
  const lastChunk = Math.floor(leaves / CHUNK_BITS)
  if (nextBit === 0) {
    if (rp.partialChunkDigest !== undefined) { throw new MerkleError('InvalidProof', 'unexpected partial chunk digest') }
  } else {
    if (rp.partialChunkDigest === undefined) { throw new MerkleError('InvalidProof', 'missing partial chunk digest') }
    if (endChunk === lastChunk && !digestEquals(sha256(chunks[chunks.length - 1]), rp.partialChunkDigest)) {
      throw new MerkleError('InvalidProof', 'partial chunk digest does not match the supplied chunk')
    }
  }
  const graftedRoot = reconstructRoot(rp.proof, start, ops, 'backward', {
    graft: {
      height: GRAFT_HEIGHT,
      chunk: (first: number) => {
        const c = Math.floor(first / CHUNK_BITS)
        return c >= startChunk && c <= endChunk ? chunks[c - startChunk] : undefined
      }
    }
  })
  return canonicalFromDigest(rp.opsRoot, graftedRoot, leaves, rp.partialChunkDigest)
}

/** `canonicalRoot` when only the partial chunk's digest is known. */
function canonicalFromDigest (opsRoot: Digest, graftedRoot: Digest, leaves: number, partialDigest: Digest | undefined): Digest {
  const nextBit = leaves % CHUNK_BITS
  if (nextBit === 0) { return canonicalRoot(opsRoot, graftedRoot, leaves, undefined) }
  const bits = new Uint8Array(8)
  new DataView(bits.buffer).setUint32(4, nextBit)
  return sha256(opsRoot, graftedRoot, bits, partialDigest as Digest)
}

/** True iff `proof` shows that `opBytes` is the active operation at `proof.loc` under `root`. */
export function verifyOperationProof (proof: OperationProof, opBytes: Uint8Array, root: Digest): boolean {
  const o = proof.loc % CHUNK_BITS
  if (proof.chunk.length !== CHUNK_BYTES || (proof.chunk[o >>> 3] & (1 << (o & 7))) === 0) { return false }
  return verifyCurrentRange(proof.rangeProof, proof.loc, [opBytes], [proof.chunk], root)
}
