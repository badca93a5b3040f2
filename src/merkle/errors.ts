/**
 * Typed errors of the Merkle layer (commonware `storage/src/mmr`).
 *
 * Proof reconstruction failures (`MissingDigests`, `ExtraDigests`, ...) are
 * distinguished so a sync engine can tell a malformed proof from a wrong root,
 * but every one of them means "reject the peer's data".
 */

export type MerkleErrorCode =
  | 'NonLeaf'
  | 'LocationOverflow'
  | 'Empty'
  | 'RangeOutOfBounds'
  | 'InvalidSize'
  | 'LeafOutOfBounds'
  | 'ElementPruned'
  | 'InvalidPinnedNodes'
  | 'StaleBatch'
  | 'InvalidProof'
  | 'InvalidInactivePeaks'
  | 'RootMismatch'
  | 'MissingNode'
  | 'DataCorrupted'
  | 'RewindBeyondHistory'
  | 'MissingDigests'
  | 'ExtraDigests'
  | 'InvalidStartLoc'
  | 'InvalidEndLoc'
  | 'MissingElements'

export class MerkleError extends Error {
  readonly name = 'MerkleError'
  readonly code: MerkleErrorCode

  constructor (code: MerkleErrorCode, message?: string) {
    super(message === undefined ? code : `${code}: ${message}`)
    this.code = code
  }
}
