/**
 * The databases a node serves and fetches over its resolvers, declared once
 * and shared by the standard and the compact resolver (pass the same
 * registry as `databases` to both).
 *
 * Invariants: every name is a valid protocol-id segment; a declared name
 * stays declared (its handlers stay registered, answering no-data while no
 * source is attached); `serve(name, db)` picks the source the database
 * needs (`LocalSource` for full databases, `CompactSource` for compact
 * ones), so a database cannot be served by a source that cannot answer it.
 */

import { CompactSource } from '../sync/compact-source.ts'
import { ConfigurationError } from '../sync/errors.ts'
import { LocalSource } from '../sync/local-source.ts'
import { checkDbName } from './protocol.ts'
import type { CompactDb } from '../qmdb/compact.ts'
import type { ServableDb } from '../sync/local-source.ts'
import type { Source } from '../sync/source.ts'

/** A full database, a compact database, or a ready `Source`. */
export type Servable = ServableDb | CompactDb<{ type: string }> | Source

function isSource (x: Servable): x is Source {
  return typeof (x as Partial<Source>).serve === 'function'
}

function isCompact (x: Servable): x is CompactDb<{ type: string }> {
  return typeof (x as { tipProof?: unknown }).tipProof === 'function'
}

export class DatabaseRegistry {
  private readonly entries = new Map<string, Source | undefined>()
  private readonly listeners = new Set<(name: string) => void>()

  constructor (names: Iterable<string> = []) {
    for (const name of names) { this.declare(name) }
  }

  /** Declare `name` (idempotent): resolvers register its protocols, answering no-data until it is served. */
  declare (name: string): void {
    checkDbName(name)
    if (this.entries.has(name)) { return }
    this.entries.set(name, undefined)
    for (const listener of this.listeners) { listener(name) }
  }

  has (name: string): boolean {
    return this.entries.has(name)
  }

  names (): string[] {
    return [...this.entries.keys()]
  }

  /**
   * Serve `name` from `db` (declaring it if needed): a full database through
   * a `LocalSource` (both resolvers), a compact one through a `CompactSource`
   * (the compact resolver), or the given `Source` as it is.
   */
  serve (name: string, db: Servable): Source {
    let source: Source
    if (isSource(db)) {
      source = db
    } else if (isCompact(db)) {
      source = new CompactSource(db)
    } else {
      source = new LocalSource(db)
    }
    this.declare(name)
    this.entries.set(name, source)
    return source
  }

  /** Stop serving `name`: requests get no-data until it is served again. */
  stopServing (name: string): void {
    if (this.entries.has(name)) { this.entries.set(name, undefined) }
  }

  /** The source serving `name`, if any. */
  source (name: string): Source | undefined {
    return this.entries.get(name)
  }

  /** Throw `UnknownDatabase` unless `name` is declared. */
  require (name: string): void {
    if (this.entries.has(name)) { return }
    const known = this.names()
    throw new ConfigurationError('UnknownDatabase', `database ${JSON.stringify(name)} is not declared on this node (declared: ${known.length === 0 ? 'none' : known.join(', ')}): add it to the resolvers' \`databases\` (a name list or a shared DatabaseRegistry), or fix the spelling`)
  }

  /** Be told of every name declared from now on; returns an unsubscribe function. */
  onDeclare (listener: (name: string) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
