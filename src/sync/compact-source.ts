/**
 * A `Source` serving the single state a compact database retains: its tip
 * (commonware `storage/src/qmdb/compact`, "Serving compact sync"). Requests must be for exactly the
 * current size (larger → `RangeOutOfBounds`, smaller → `ItemPruned`) and start
 * at `size - 1` (below → `ItemPruned`). No feedback: local data is final.
 */

import { ConfigurationError } from './errors.ts'
import { ServeError } from './source.ts'
import type { Request } from './messages.ts'
import type { Served, ServeOptions, Source } from './source.ts'
import type { CompactDb } from '../qmdb/compact.ts'

/** Refuse a database without a tip proof at once, with the source it needs. */
function checkCompact (db: unknown): void {
  if (typeof (db as { tipProof?: unknown })?.tipProof === 'function') { return }
  throw new ConfigurationError('WrongSource', 'CompactSource serves compact databases (CompactImmutableDb, CompactKeylessDb); serve a full database with new LocalSource(db), which answers both resolvers')
}

export class CompactSource<Op extends { type: string }> implements Source {
  private db: CompactDb<Op> | undefined

  constructor (db?: CompactDb<Op>) {
    if (db !== undefined) { checkCompact(db) }
    this.db = db
  }

  /** Serve `db` from now on (or nothing, with `undefined`). */
  attach (db: CompactDb<Op> | undefined): void {
    if (db !== undefined) { checkCompact(db) }
    this.db = db
  }

  async serve (request: Request, options: ServeOptions = {}): Promise<Served> {
    options.signal?.throwIfAborted()
    const db = this.db
    if (db === undefined) { throw new ServeError('MissingSource', 'no compact database attached') }
    if (request.size > db.size) { throw new ServeError('RangeOutOfBounds', `size ${request.size} beyond the tip ${db.size}`) }
    if (request.size < db.size || request.start < request.size - 1) { throw new ServeError('ItemPruned', `a compact database only serves its tip (size ${db.size})`) }
    if (request.start >= request.size) { throw new ServeError('InvalidRequest', `start ${request.start} not below size ${request.size}`) }
    const { proof, op, pinnedNodes } = await db.tipProof()
    if (request.type === 'boundary') { return { response: { type: 'boundary', proof, op, pinnedNodes } } }
    return { response: { type: 'operations', proof, ops: [op] } }
  }
}
