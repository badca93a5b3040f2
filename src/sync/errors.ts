/**
 * Errors of the state sync engine (commonware `storage/src/qmdb/sync`). Every one is terminal
 * for the sync it ends; tolerated events (responses for aborted requests,
 * non-advancing target updates, stale roots) never surface as errors.
 */

export type SyncErrorCode =
  | 'RootMismatch' // the rebuilt database does not have the target root
  | 'InvalidResponse' // a response failed validation and its source gives no feedback
  | 'InvalidTarget' // a target beyond the supported range, or a bad compact size
  | 'InvalidState' // the journal grew past the target (a bug)
  | 'SyncTargetRootUnchanged' // an advancing target update kept the same root (a caller bug)
  | 'SyncStalled' // nothing outstanding and nothing that could produce an event
  | 'FinishChannelClosed' // the finish channel closed without a finish signal
  | 'Source' // the source failed (see cause)
  | 'Database' // building or persisting the database failed (see cause)
  | 'Aborted' // the caller's signal aborted

export class SyncError extends Error {
  readonly name = 'SyncError'
  readonly code: SyncErrorCode
  /** The database the failure belongs to, when known (multi-database syncs). */
  readonly database?: string

  constructor (code: SyncErrorCode, message?: string, options?: { cause?: unknown, database?: string }) {
    super(message === undefined ? code : `${code}: ${message}`, options)
    this.code = code
    if (options?.database !== undefined) { this.database = options.database }
  }
}

export type ConfigurationErrorCode =
  | 'UnknownDatabase' // a database name no resolver on this node declares
  | 'WrongSource' // a source type that cannot serve this kind of database
  | 'MissingIdentify' // `peers: 'connected'` without libp2p's identify service
  | 'MissingCodec' // a network source asked to fetch with no operation codec
  | 'CodecMismatch' // every peer's answer fails to decode with the local codec

/**
 * A mistake in the local setup, reported before any peer is blamed. The
 * message names the fix; `code` says which mistake it is.
 */
export class ConfigurationError extends Error {
  static readonly name = 'ConfigurationError'
  readonly name = 'ConfigurationError'
  readonly code: ConfigurationErrorCode

  constructor (code: ConfigurationErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}
