/**
 * Typed errors of the QMDB databases (commonware `storage/src/qmdb/mod.rs`, `storage/src/qmdb/sync`).
 *
 * `Poisoned` is thrown by every call on a handle after a mutating call
 * failed: the in-memory state may be ahead of or behind what is durable, so
 * the only safe continuation is to reopen (durable state is intact).
 */

export type QmdbErrorCode =
  | 'DataCorrupted'
  | 'StaleBatch'
  | 'FloorRegressed'
  | 'FloorBeyondSize'
  | 'HistoricalFloorPruned'
  | 'OperationPruned'
  | 'ItemPruned'
  | 'KeyNotFound'
  | 'KeyExists'
  | 'LocationOutOfBounds'
  | 'RangeOutOfBounds'
  | 'PruneBeyondMinRequired'
  | 'InvalidRewind'
  | 'RewindBeyondHistory'
  | 'UnexpectedData'
  | 'InvalidPinnedNodes'
  | 'RootMismatch'
  | 'Poisoned'
  | 'Closed'
  | 'SyncInterrupted'

export class QmdbError extends Error {
  readonly name = 'QmdbError'
  readonly code: QmdbErrorCode

  constructor (code: QmdbErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message === undefined ? code : `${code}: ${message}`, options)
    this.code = code
  }
}

/** A stored operation at `loc` failed its codec's checks (`err`): the store is corrupt there. */
export function storedOpCorrupt (loc: number, err: unknown): QmdbError {
  return new QmdbError('DataCorrupted', `stored operation ${loc} does not decode: ${(err as Error).message}`, { cause: err })
}
