/**
 * Canonical binary codec compatible with commonware-codec (qmdb.md §1).
 */
export { CodecError, type CodecErrorCode } from './errors.ts'
export { Writer, varintSize } from './writer.ts'
export { Reader, decodeExact } from './reader.ts'
