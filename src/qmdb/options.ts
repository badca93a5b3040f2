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
  /** Clean operation chunks (64 ops) kept in memory. Default 1024 (64k operations: at 4096 a busy node took thousands of blocks to fill it, which looked like a leak). */
  opCacheChunks?: number
  /** Clean MMR node chunks (256 nodes) kept in memory. Default 256 (appends and recent proofs read only the newest nodes). */
  nodeCacheChunks?: number
}
