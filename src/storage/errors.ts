/**
 * Errors of the storage layer: the bytes on disk are not what the metadata
 * says they should be. Never caused by a peer; always a local corruption or a
 * programming error, and never silently ignored.
 */

export type StorageErrorCode = 'MissingItem' | 'OutOfRange' | 'DataCorrupted'

export class StorageError extends Error {
  readonly name = 'StorageError'
  readonly code: StorageErrorCode

  constructor (code: StorageErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}
