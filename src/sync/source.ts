/**
 * The `Source` contract between the sync engine and whatever supplies
 * operations: a local database, or peers over the network (commonware `storage/src/qmdb/sync/source.rs`).
 *
 * - `serve(request)` resolves with a `Response` of the request's variant, or
 * rejects with a `ServeError` (or a `ConfigurationError` for a local
 * mistake). For the engine every rejection is fatal, so a network source
 * never rejects on a transient failure: it keeps retrying until the
 * caller's signal aborts (`Aborted`), it is shut down (`Unavailable`) or it
 * made no progress for its stall timeout (`Stalled`).
 * - `feedback` is present when the source wants the engine's verdict: the
 * engine calls it once with `true` (the response verified) or `false` (it
 * did not; the source blames whoever served it and the engine asks again).
 * Never calling it means "no verdict", not "invalid". A source without
 * feedback (a local database) is final: an invalid response from it is
 * terminal for the sync.
 */

import type { OpBytesReader, Request, Response } from './messages.ts'

export type ServeErrorCode =
  | 'RangeOutOfBounds' // the requested size (or start) is beyond the source's data
  | 'ItemPruned' // the requested operations (or pins) are pruned
  | 'HistoricalFloorPruned' // no commit governs the requested size
  | 'MissingSource' // no database is attached (yet, or any more)
  | 'NoData' // the source cannot serve this request (no detail available)
  | 'InvalidRequest' // the request itself is malformed (a caller bug)
  | 'Database' // the database failed (see `cause`)
  | 'Unavailable' // the source is shut down or its database is unusable
  | 'Aborted' // the caller's signal aborted
  | 'Stalled' // a network source made no progress for its stall timeout (the message says why)

export class ServeError extends Error {
  static readonly name = 'ServeError'
  readonly name = 'ServeError'
  readonly code: ServeErrorCode

  constructor (code: ServeErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message === undefined ? code : `${code}: ${message}`, options)
    this.code = code
  }
}

/** One-shot verdict callback: `true` iff the response verified. Later calls are ignored. */
export type Feedback = (valid: boolean) => void

export interface Served {
  response: Response
  /** Present iff the source wants the verdict (network sources). */
  feedback?: Feedback
}

export interface ServeOptions {
  signal?: AbortSignal
  /**
   * The operation codec of the database being synced (the sync engine passes
   * its kind's), for sources that decode bytes from elsewhere.
   */
  codec?: OpBytesReader
}

export interface Source {
  serve(request: Request, options: ServeOptions): Promise<Served>
}
