/**
 * QMDB databases: operations and codecs, the shared journal core, and the
 * `any`, `immutable`, `keyless`, `current` (unordered and ordered) and compact databases.
 */
export { QmdbError, type QmdbErrorCode } from './errors.ts'
export {
  type FieldCodec, type Encoding, type OpCodec, type CommitOp, type AnyOp, type ImmutableOp, type KeylessOp,
  fixedField, varField, AnyOpCodec, ImmutableOpCodec, KeylessOpCodec, keyId, compareBytes, ANY_DELETE, ANY_UPDATE, ANY_COMMIT
} from './ops.ts'
export { Bitmap } from './bitmap.ts'
export { QmdbCore, type DbOptions, type ProvenOps } from './core.ts'
export { AnyDb, AnyBatch, MerkleizedAnyBatch, type AnyDbOptions } from './any.ts'
export type { DiffEntry } from './batch-diff.ts'
export { MerkleizedBatch, SealedBatch } from './merkleized.ts'
export { ImmutableDb, ImmutableBatch, MerkleizedImmutableBatch, type ImmutableDbOptions } from './immutable.ts'
export { KeylessDb, KeylessBatch, MerkleizedKeylessBatch, type KeylessDbOptions } from './keyless.ts'
export {
  type Target, type CompactTarget, InvalidTargetError, encodeTarget, decodeTarget, encodeCompactTarget, decodeCompactTarget,
  targetAdvances, compactToTarget, targetsEqual, compactTargetsEqual
} from './target.ts'
export {
  type ManagedDb, type SomeManagedDb, type UnmerkleizedOfDb, type MerkleizedOfDb, type TargetOfDb, type DatabaseRecord,
  type UnmerkleizedOf, type MerkleizedOf, type SyncTargetsOf, type ReaderOfDb, type ReadersOf, type Barrier, DatabaseSet, DatabaseSetError
} from './managed.ts'
export {
  type LogReader, type AnyReader, type CurrentReader, type ImmutableReader, type KeylessReader, type CompactReader,
  type OrderedReads, type OrderedAnyReader, type OrderedCurrentReader
} from './readers.ts'
export { CurrentDb, type CurrentDbOptions } from './current.ts'
export { OrderedKeyIndex, type IndexEntry } from './ordered-index.ts'
export { OrderedAnyDb, type OrderedSpan, spanContains } from './ordered.ts'
export { OrderedCurrentDb } from './ordered-current.ts'
export {
  type OrderedKeyValueProof, type ExclusionProof, verifyOrderedKeyValueProof, verifyExclusionProof, encodeOrderedKeyValueProof,
  decodeOrderedKeyValueProof, encodeExclusionProof, decodeExclusionProof
} from './ordered-proof.ts'
export {
  CHUNK_BYTES, CHUNK_BITS, GRAFT_HEIGHT, GraftedTree, chunkOpsPosition, opsPosition, graftedLeaf, graftedNode,
  chunkAlignedInactivePeaks, canonicalRoot, combineRoots, graftedRoot, graftShape, type GraftView, type GraftShape, type GraftOverlay
} from './grafting.ts'
export {
  CompactDb, CompactBatch, CompactImmutableBatch, CompactKeylessBatch, MerkleizedCompactBatch, CompactImmutableDb, CompactKeylessDb, encodeWitness, decodeWitness,
  type Witness, type CompactDbOptions, type CompactImmutableOptions, type CompactKeylessOptions
} from './compact.ts'
export {
  type CurrentRangeProof, type OperationProof, type OpsRootWitness, encodeCurrentRangeProof, decodeCurrentRangeProof, encodeOperationProof,
  decodeOperationProof, readOperationProof, verifyCurrentRange, verifyOperationProof, encodeOpsRootWitness, decodeOpsRootWitness,
  opsRootWitnessRoot, verifyOpsRootWitness
} from './current-proof.ts'
export { FullSyncJournal, type SyncJournal, type SyncRange } from './sync-journal.ts'
