/**
 * Merkle Mountain Range compatible with commonware's QMDB (commonware `storage/src/mmr`):
 * arithmetic, SHA-256 hashing and roots, speculative batches, pruning with
 * pinned nodes, range proofs and their verification, persistence.
 */
export { MerkleError, type MerkleErrorCode } from './errors.ts'
export {
  MAX_LEAVES, MAX_NODES, MAX_PINNED_NODES, MAX_PROOF_DIGESTS_PER_ELEMENT,
  locToPos, posToLoc, leavesOf, isValidSize, toNearestSize, posToHeight, peaks, peakPositions,
  nodesToPin, inactivePeaks, popcount, trailingOnes, bitLength, checkLocation, type Peak
} from './math.ts'
export {
  type Digest, type Hasher, type Bagging, DIGEST_LENGTH,
  jsHasher, nobleHasher, defaultHasher,
  sha256, leafDigest, nodeDigest, fold, computeRoot, rootWithFolded, emptyRoot, digestEquals
} from './hasher.ts'
export {
  type Proof, type Blueprint, type Subtree, type GraftHook, type ReconstructOptions, blueprint, blueprintPositions, assembleProof, buildRangeProof,
  encodeProof, decodeProof, proofToBytes, proofFromBytes, reconstructRoot, verifyRangeProof,
  verifyAndExtractDigests, verifyProofAndPinnedNodes, peakSubtrees
} from './proof.ts'
export { type MerkleSource, type BatchBase, MmrBatch, MerkleizedMmrBatch, proveRange, sourceRoot } from './batch.ts'
export { Mmr, type MmrOptions, type StagedMmr } from './mmr.ts'
export { type ChainLink, unappliedChain, markApplied } from './chain.ts'
