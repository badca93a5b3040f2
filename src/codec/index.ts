/**
 * Canonical binary codec compatible with commonware-codec (commonware `codec/src`).
 */
export { CodecError, type CodecErrorCode } from './errors.ts'
export { Writer, varintSize } from './writer.ts'
export { Reader, decodeExact } from './reader.ts'
