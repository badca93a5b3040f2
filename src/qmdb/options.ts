/**
 * Where and how a QMDB database keeps its state: the options every variant
 * shares. A module of its own so the journal core and the sync journal can
 * both depend on it without depending on each other.
 */

import type { Datastore } from 'interface-datastore'

export interface DbOptions {
  /** Where the database lives. Omit for a purely in-memory database. */
  datastore?: Datastore
  /** Key prefix inside the datastore (one namespace per database). Default `/qmdb`. */
  prefix?: string
  /** Clean operation chunks (64 ops) kept in memory. Default 4096. */
  opCacheChunks?: number
  /** Clean MMR node chunks (256 nodes) kept in memory. Default 2048. */
  nodeCacheChunks?: number
}
