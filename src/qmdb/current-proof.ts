/**
 * Proofs of the `current` database (`storage/src/qmdb/current/proof/mod.rs`): a range proof over the
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
 * The chunk size N is the verifier's configuration (default 32 bytes), never
 * taken from the proof.
 *
 * `OpsRootWitness` binds an ops root (what sync targets carry) to a trusted
 * canonical root.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MerkleError, decodeProof, digestEquals, encodeProof, reconstructRoot, sha256 } from '../merkle/index.ts'
import { CHUNK_BYTES, combineRoots, graftShape } from './grafting.ts'
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

/** Read an operation proof whose chunks are `chunkBytes` long from `r`. */
export function readOperationProof (r: Reader, maxDigests = 122, chunkBytes = CHUNK_BYTES): OperationProof {
  const loc = r.varint()
  const chunk = r.raw(chunkBytes)
  const rangeProof = decodeCurrentRangeProof(r, maxDigests)
  return { loc, chunk, rangeProof }
}

export function decodeOperationProof (bytes: Uint8Array, maxDigests = 122, chunkBytes = CHUNK_BYTES): OperationProof {
  const r = new Reader(bytes)
  const p = readOperationProof(r, maxDigests, chunkBytes)
  r.finish()
  return p
}

/**
 * Verify encoded operations `[start, start + ops.length)` and the bitmap
 * `chunks` covering them against a canonical root. Returns false on any
 * failure (never throws for malformed input).
 */
export function verifyCurrentRange (rp: CurrentRangeProof, start: number, ops: readonly Uint8Array[], chunks: readonly Uint8Array[], root: Digest, chunkBytes = CHUNK_BYTES): boolean {
  try {
    return digestEquals(reconstructCanonical(rp, start, ops, chunks, chunkBytes), root)
  } catch (err) {
    if (err instanceof MerkleError || err instanceof CodecError) { return false }
    throw err
  }
}

function reconstructCanonical (rp: CurrentRangeProof, start: number, ops: readonly Uint8Array[], chunks: readonly Uint8Array[], chunkBytes: number): Digest {
  const { chunkBits, height } = graftShape(chunkBytes)
  const leaves = rp.proof.leaves
  if (ops.length === 0 || chunks.length === 0) { throw new MerkleError('MissingElements', 'no operations or chunks') }
  const end = start + ops.length
  if (end > leaves) { throw new MerkleError('InvalidEndLoc', `end ${end} beyond ${leaves}`) }
  const startChunk = Math.floor(start / chunkBits)
  const endChunk = Math.floor((end - 1) / chunkBits)
  if (chunks.length !== endChunk - startChunk + 1) { throw new MerkleError('InvalidProof', `expected ${endChunk - startChunk + 1} chunks, got ${chunks.length}`) }
  if (chunks.some(c => c.length !== chunkBytes)) { throw new MerkleError('InvalidProof', 'chunk of the wrong size') }
  const nextBit = leaves % chunkBits
  const lastChunk = Math.floor(leaves / chunkBits)
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
      height,
      chunk: (first: number) => {
        const c = Math.floor(first / chunkBits)
        return c >= startChunk && c <= endChunk ? chunks[c - startChunk] : undefined
      }
    }
  })
  return combineRoots(rp.opsRoot, graftedRoot, nextBit === 0 ? undefined : { nextBit, digest: rp.partialChunkDigest as Digest })
}

/** True iff `proof` shows that `opBytes` is the active operation at `proof.loc` under `root`. */
export function verifyOperationProof (proof: OperationProof, opBytes: Uint8Array, root: Digest, chunkBytes = CHUNK_BYTES): boolean {
  const o = proof.loc % (chunkBytes * 8)
  if (proof.chunk.length !== chunkBytes || (proof.chunk[o >>> 3] & (1 << (o & 7))) === 0) { return false }
  return verifyCurrentRange(proof.rangeProof, proof.loc, [opBytes], [proof.chunk], root, chunkBytes)
}

/**
 * What the canonical root adds to the ops root (`OpsRootWitness` in
 * `storage/src/qmdb/current/proof/mod.rs`, MMR: no pending chunk): the grafted
 * root and, when the bitmap ends mid-chunk, the bit count and digest of the
 * partial chunk. Wire: `graftedRoot ‖ bool ‖ [varint(nextBit) ‖ digest]`.
 */
export interface OpsRootWitness {
  graftedRoot: Digest
  partial: { nextBit: number, digest: Digest } | undefined
}

export function encodeOpsRootWitness (w: OpsRootWitness): Uint8Array {
  const out = new Writer(80).raw(w.graftedRoot).bool(w.partial !== undefined)
  if (w.partial !== undefined) { out.varint(w.partial.nextBit).raw(w.partial.digest) }
  return out.finish()
}

export function decodeOpsRootWitness (bytes: Uint8Array): OpsRootWitness {
  const r = new Reader(bytes)
  const graftedRoot = r.raw(32)
  const partial = r.bool() ? { nextBit: r.varint(), digest: r.raw(32) } : undefined
  r.finish()
  return { graftedRoot, partial }
}

/** The canonical root that commits to `opsRoot` through `witness`. */
export function opsRootWitnessRoot (witness: OpsRootWitness, opsRoot: Digest): Digest {
  return combineRoots(opsRoot, witness.graftedRoot, witness.partial)
}

/** True iff the trusted canonical `root` commits to `opsRoot` (via `witness`). */
export function verifyOpsRootWitness (witness: OpsRootWitness, opsRoot: Digest, root: Digest): boolean {
  if (witness.graftedRoot.length !== 32 || opsRoot.length !== 32 || (witness.partial !== undefined && witness.partial.digest.length !== 32)) { return false }
  return digestEquals(opsRootWitnessRoot(witness, opsRoot), root)
}
