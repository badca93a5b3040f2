/**
 * Datastore helpers: key layout, atomic write batches, chunked item arrays.
 */
export { Kv, WriteBatch, type WriteOptions } from './kv.ts'
export { FixedChunkStore, type FixedChunkStoreOptions, type StagedChunks } from './chunked.ts'
export { StorageError, type StorageErrorCode } from './errors.ts'
export { hex16, parseHex16, joinKey } from './keys.ts'
