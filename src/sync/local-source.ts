/**
 * A `Source` serving from a full QMDB database (`AnyDb`, `ImmutableDb`,
 * `KeylessDb`, anything built on `QmdbCore`), the server side of state sync
 * (commonware `storage/src/qmdb/sync/source.rs`, commonware `storage/src/qmdb/sync`).
 *
 * - Operations → `db.historicalProof(size, start, maxOps)`: ops
 * `[start, min(size, start + maxOps))` proven against the root the database
 * had at `size` (a commit boundary at or below its current size).
 * - Boundary → `historicalProof(size, start, 1)` plus `db.pinnedNodesAt(start)`.
 * - No database attached → `MissingSource`; database errors → `ServeError`
 * with the matching code. Never returns feedback: local data is final.
 *
 * The applied (not necessarily durable) state is served, which is safe
 * because clients verify everything against trusted targets. When the
 * database is guarded by a lock, pass `lock` so serving takes a read lock.
 */

import { QmdbError } from '../qmdb/errors.ts'
import { ConfigurationError } from './errors.ts'
import { ServeError } from './source.ts'
import type { Request } from './messages.ts'
import type { Served, ServeOptions, Source, ServeErrorCode } from './source.ts'
import type { Digest } from '../merkle/index.ts'
import type { ProvenOps } from '../qmdb/core.ts'

/** What the local source needs from a database (satisfied by every `QmdbCore`). */
export interface ServableDb {
  historicalProof(size: number, start: number, maxOps: number): Promise<ProvenOps>
  pinnedNodesAt(loc: number): Promise<Digest[]>
}

/** A read lock around the database (e.g. the stateful layer's reader/writer lock). */
export interface ReadLock {
  read<T>(fn: () => Promise<T>): Promise<T>
}

export interface LocalSourceOptions {
  lock?: ReadLock
}

const CODE_MAP: Partial<Record<string, ServeErrorCode>> = {
  RangeOutOfBounds: 'RangeOutOfBounds',
  LocationOutOfBounds: 'RangeOutOfBounds',
  ItemPruned: 'ItemPruned',
  OperationPruned: 'ItemPruned',
  HistoricalFloorPruned: 'HistoricalFloorPruned',
  Closed: 'Unavailable',
  Poisoned: 'Unavailable'
}

/** The `ServeError` a database failure maps to. */
export function toServeError (err: unknown): ServeError {
  if (err instanceof ServeError) { return err }
  if (err instanceof QmdbError) {
    return new ServeError(CODE_MAP[err.code] ?? 'Database', err.message, { cause: err })
  }
  return new ServeError('Database', (err as Error)?.message ?? String(err), { cause: err })
}

/**
 * Refuse what cannot serve ranges (a compact database keeps only its tip and
 * would answer no-data forever) at once, with the source it needs.
 */
function checkServable (db: unknown): void {
  const d = db as Partial<ServableDb> & { tipProof?: unknown }
  if (typeof d?.historicalProof === 'function' && typeof d.pinnedNodesAt === 'function') { return }
  const what = typeof d?.tipProof === 'function' ? 'a compact database: serve it with new CompactSource(db) (on the compact resolver)' : 'not a full QMDB database'
  throw new ConfigurationError('WrongSource', `LocalSource serves full databases (AnyDb, CurrentDb, ImmutableDb, KeylessDb and their ordered forms); this is ${what}`)
}

export class LocalSource implements Source {
  private current: ServableDb | undefined
  private readonly lock?: ReadLock

  constructor (db?: ServableDb, options: LocalSourceOptions = {}) {
    if (db !== undefined) { checkServable(db) }
    this.current = db
    this.lock = options.lock
  }

  /** The database served (undefined until attached). */
  get db (): ServableDb | undefined {
    return this.current
  }

  /** Serve from `db` from now on (replaces any previous database). */
  attach (db: ServableDb): void {
    checkServable(db)
    this.current = db
  }

  /** Stop serving: every request fails with `MissingSource` until `attach`. */
  detach (): void {
    this.current = undefined
  }

  async serve (request: Request, options: ServeOptions = {}): Promise<Served> {
    if (options.signal?.aborted === true) { throw new ServeError('Aborted', 'serve aborted') }
    const db = this.current
    if (db === undefined) { throw new ServeError('MissingSource', 'no database attached') }
    const run = async (): Promise<Served> => serveFrom(db, request)
    try {
      return this.lock === undefined ? await run() : await this.lock.read(run)
    } catch (err) {
      throw toServeError(err)
    }
  }
}

async function serveFrom (db: ServableDb, request: Request): Promise<Served> {
  if (request.start >= request.size) {
    throw new ServeError('RangeOutOfBounds', `start ${request.start} not below size ${request.size}`)
  }
  if (request.type === 'operations') {
    const { proof, ops } = await db.historicalProof(request.size, request.start, request.maxOps)
    return { response: { type: 'operations', proof, ops } }
  }
  const { proof, ops } = await db.historicalProof(request.size, request.start, 1)
  const pinnedNodes = await db.pinnedNodesAt(request.start)
  return { response: { type: 'boundary', proof, op: ops[0], pinnedNodes } }
}
