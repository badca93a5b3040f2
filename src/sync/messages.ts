/**
 * The state-sync wire types: commonware's `Request` and `Response` with their
 * exact byte encodings (commonware `storage/src/qmdb/sync`, commonware `codec/src`, `storage/src/qmdb/sync/source.rs`).
 *
 * ```
 * Request.Operations  = 00 ‖ varint(size) ‖ varint(start) ‖ u64be(maxOps ≠ 0)
 * Request.Boundary    = 01 ‖ varint(size) ‖ varint(start)
 * Response.Operations = 00 ‖ Proof ‖ Vec<Op>            (digests ≤ 122·maxOps, ops ≤ maxOps)
 * Response.Boundary   = 01 ‖ Proof ‖ Op ‖ Vec<Digest>   (digests ≤ 122, pins ≤ 64)
 * Proof               = varint(leaves) ‖ varint(inactivePeaks) ‖ Vec<Digest>
 * ```
 *
 * Invariants:
 * - decoders are strict (unknown tags, `start >= size`, `maxOps = 0`,
 * locations above `MAX_LEAVES`, non-canonical varints, trailing bytes) and
 * only ever throw `CodecError`;
 * - every count is checked against its cap (and against the bytes left)
 * before anything is allocated; a count that does not fit the cap is
 * `InvalidLength`, whatever its size;
 * - operations are kept as their exact encoded bytes: those bytes are the
 * Merkle leaves the proof authenticates, so they are never re-encoded;
 * - a request's identity is `(size, start, maxOps, isBoundary)`; a boundary
 * counts as `maxOps = 1` but never equals a one-op operations request.
 *
 * Locations are JS numbers: this package supports up to `MAX_LEAVES = 2^52`
 * (above it a location decodes as `Overflow`), and `maxOps` up to 2^53 - 1.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MAX_LEAVES, MAX_PINNED_NODES, MAX_PROOF_DIGESTS_PER_ELEMENT, encodeProof } from '../merkle/index.ts'
import type { Digest, Proof } from '../merkle/index.ts'

/** Tag bytes shared by `Request` and `Response`. */
export const OPERATIONS_TAG = 0x00
export const BOUNDARY_TAG = 0x01

/** Size of a SHA-256 digest on the wire. */
const DIGEST_BYTES = 32
const U32_MAX = 0xffffffff

/** Largest encoded request: tag + two 9-byte varints (≤ 2^62) + u64. */
export const MAX_REQUEST_BYTES = 1 + 9 + 9 + 8

/** Operations `[start, min(size, start + maxOps))` proven against the root at `size`. */
export interface OperationsRequest {
  type: 'operations'
  size: number
  start: number
  maxOps: number
}

/** The operation at `start`, proven against the root at `size`, plus the pinned nodes at `start`. */
export interface BoundaryRequest {
  type: 'boundary'
  size: number
  start: number
}

export type Request = OperationsRequest | BoundaryRequest

export interface OperationsResponse {
  type: 'operations'
  proof: Proof
  /** Exact encoded operations `[start, start + ops.length)`. */
  ops: Uint8Array[]
}

export interface BoundaryResponse {
  type: 'boundary'
  proof: Proof
  /** Exact encoded operation at `start`. */
  op: Uint8Array
  /** Digests of `nodesToPin(start)`, oldest first. */
  pinnedNodes: Digest[]
}

export type Response = OperationsResponse | BoundaryResponse

/** What decoding a response needs from the database's operation codec. */
export interface OpBytesReader {
  /**
   * Read one operation from `r` and return its exact bytes; throws
   * `CodecError` if the bytes are not a valid operation.
   */
  readBytes(r: Reader, copy?: boolean): Uint8Array
  /** Size of every operation when the encoding is fixed (lets caps use it). */
  readonly fixedSize?: number
}

// ---------------------------------------------------------------------------
// Requests

/** `maxOps` of a request: the field for operations, 1 for a boundary. */
export function requestMaxOps (req: Request): number {
  return req.type === 'operations' ? req.maxOps : 1
}

/**
 * A string identifying a request for maps and sets:
 * `size:start:maxOps:isBoundary`.
 */
export function requestKey (req: Request): string {
  return `${req.size}:${req.start}:${requestMaxOps(req)}:${req.type === 'boundary' ? 1 : 0}`
}

export function requestsEqual (a: Request, b: Request): boolean {
  return a.type === b.type && a.size === b.size && a.start === b.start && requestMaxOps(a) === requestMaxOps(b)
}

/** Total order of requests: by size, then start, then maxOps, then variant (operations first). */
export function compareRequests (a: Request, b: Request): number {
  if (a.size !== b.size) { return a.size < b.size ? -1 : 1 }
  if (a.start !== b.start) { return a.start < b.start ? -1 : 1 }
  const ma = requestMaxOps(a)
  const mb = requestMaxOps(b)
  if (ma !== mb) { return ma < mb ? -1 : 1 }
  if (a.type === b.type) { return 0 }
  return a.type === 'operations' ? -1 : 1
}

function isLocation (n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_LEAVES
}

/**
 * Why `req` is not a valid request (the rules decoding enforces), or
 * `undefined` if it is valid.
 */
export function requestProblem (req: Request): string | undefined {
  if (req.type !== 'operations' && req.type !== 'boundary') { return 'unknown request type' }
  if (!isLocation(req.size) || !isLocation(req.start)) { return `locations must be integers in [0, ${MAX_LEAVES}]` }
  if (req.start >= req.size) { return `start ${req.start} >= size ${req.size}` }
  if (req.type === 'operations' && (!Number.isSafeInteger(req.maxOps) || req.maxOps < 1)) {
    return `maxOps ${req.maxOps} must be a positive integer`
  }
  return undefined
}

export function writeRequest (w: Writer, req: Request): Writer {
  const problem = requestProblem(req)
  if (problem !== undefined) { throw new RangeError(`invalid request: ${problem}`) }
  if (req.type === 'operations') {
    return w.u8(OPERATIONS_TAG).varint(req.size).varint(req.start).u64(req.maxOps)
  }
  return w.u8(BOUNDARY_TAG).varint(req.size).varint(req.start)
}

export function encodeRequest (req: Request): Uint8Array {
  return writeRequest(new Writer(MAX_REQUEST_BYTES), req).finish()
}

function readLocation (r: Reader, what: string): number {
  const v = r.varint()
  if (v > MAX_LEAVES) { throw new CodecError('Overflow', `${what} ${v} exceeds ${MAX_LEAVES}`) }
  return v
}

/** Read one request (the caller checks that the input ends where it should). */
export function readRequest (r: Reader): Request {
  const tag = r.u8()
  if (tag !== OPERATIONS_TAG && tag !== BOUNDARY_TAG) {
    throw new CodecError('InvalidEnum', `unknown request tag 0x${tag.toString(16)}`)
  }
  const size = readLocation(r, 'request size')
  const start = readLocation(r, 'request start')
  let req: Request
  if (tag === OPERATIONS_TAG) {
    const maxOps = r.u64()
    if (maxOps === 0) { throw new CodecError('Invalid', 'maxOps must be non-zero') }
    req = { type: 'operations', size, start, maxOps }
  } else {
    req = { type: 'boundary', size, start }
  }
  if (start >= size) { throw new CodecError('Invalid', `request start ${start} >= size ${size}`) }
  return req
}

/** Strict decode of a request that must consume `bytes` entirely. */
export function decodeRequest (bytes: Uint8Array): Request {
  const r = new Reader(bytes)
  const req = readRequest(r)
  r.finish()
  return req
}

// ---------------------------------------------------------------------------
// Responses

/** Proof digest cap for a response to `req`: `122 · maxOps` (saturating). */
export function maxProofDigests (req: Request): number {
  return Math.min(requestMaxOps(req) * MAX_PROOF_DIGESTS_PER_ELEMENT, Number.MAX_SAFE_INTEGER)
}

/**
 * Read a `usize` count capped at `max`. Any count above the cap (including one
 * that does not even fit a u32, which commonware also rejects) is
 * `InvalidLength`; nothing is allocated here.
 */
export function readCount (r: Reader, max: number, what: string): number {
  const n = r.varintBig()
  const cap = BigInt(Math.min(max, U32_MAX))
  if (n > cap) { throw new CodecError('InvalidLength', `${what}: count ${n} exceeds the maximum ${cap}`) }
  return Number(n)
}

/** `Vec<Digest>` of at most `max` digests; the bytes are checked before allocating. */
function readDigests (r: Reader, max: number, what: string): Digest[] {
  const n = readCount(r, max, what)
  if (n * DIGEST_BYTES > r.remaining) {
    throw new CodecError('EndOfBuffer', `${what}: ${n} digests need ${n * DIGEST_BYTES} bytes, have ${r.remaining}`)
  }
  const out = new Array<Digest>(n)
  for (let i = 0; i < n; i++) { out[i] = r.raw(DIGEST_BYTES) }
  return out
}

/** A `Proof` with at most `maxDigests` digests (same rules as `merkle.decodeProof`). */
export function readProof (r: Reader, maxDigests: number): Proof {
  const leaves = r.varint()
  if (leaves > MAX_LEAVES) { throw new CodecError('Overflow', `proof leaves ${leaves} exceed ${MAX_LEAVES}`) }
  const inactivePeaks = r.varint32()
  const digests = readDigests(r, maxDigests, 'proof digests')
  return { leaves, inactivePeaks, digests }
}

/** `Vec<Op>` of at most `max` operations, each kept as its exact bytes. */
function readOps (r: Reader, max: number, codec: OpBytesReader): Uint8Array[] {
  const n = readCount(r, max, 'operations')
  // every operation takes at least one byte (or exactly `fixedSize`)
  const minBytes = n * Math.max(1, codec.fixedSize ?? 1)
  if (minBytes > r.remaining) {
    throw new CodecError('EndOfBuffer', `${n} operations need at least ${minBytes} bytes, have ${r.remaining}`)
  }
  // validated in place, then copied once: every operation is a view of one
  // buffer per response, not a buffer of its own (the journal keeps them).
  // Its bounds are where the reader stood, not the lengths a codec returned:
  // a codec that returns fewer bytes than it read cannot shift the rest.
  const probe = r.clone()
  const start = r.offset
  const ends = new Int32Array(n)
  for (let i = 0; i < n; i++) {
    codec.readBytes(r, false)
    ends[i] = r.offset - start
  }
  const all = probe.raw(n > 0 ? ends[n - 1] : 0)
  const out = new Array<Uint8Array>(n)
  for (let i = 0; i < n; i++) { out[i] = all.subarray(i > 0 ? ends[i - 1] : 0, ends[i]) }
  return out
}

export function writeResponse (w: Writer, res: Response): Writer {
  if (res.type === 'operations') {
    w.u8(OPERATIONS_TAG)
    encodeProof(res.proof, w)
    w.length32(res.ops.length)
    for (const op of res.ops) { w.raw(op) }
    return w
  }
  w.u8(BOUNDARY_TAG)
  encodeProof(res.proof, w)
  w.raw(res.op)
  w.length32(res.pinnedNodes.length)
  for (const d of res.pinnedNodes) {
    if (d.length !== DIGEST_BYTES) { throw new RangeError(`pinned node of ${d.length} bytes`) }
    w.raw(d)
  }
  return w
}

/** Size of `res` once encoded (without encoding it). */
export function responseSize (res: Response): number {
  const varintLen = (v: number): number => {
    let n = 1
    while (v >= 0x80) {
      v = Math.floor(v / 0x80)
      n++
    }
    return n
  }
  const p = res.proof
  const proof = varintLen(p.leaves) + varintLen(p.inactivePeaks) + varintLen(p.digests.length) + DIGEST_BYTES * p.digests.length
  if (res.type === 'operations') {
    return 1 + proof + varintLen(res.ops.length) + res.ops.reduce((s, op) => s + op.length, 0)
  }
  return 1 + proof + res.op.length + varintLen(res.pinnedNodes.length) + DIGEST_BYTES * res.pinnedNodes.length
}

export function encodeResponse (res: Response): Uint8Array {
  return writeResponse(new Writer(responseSize(res)), res).finish()
}

/**
 * Read a response to `req`: the variant comes from the bytes (the caller
 * checks it matches the request), the caps from the request.
 */
export function readResponse (r: Reader, req: Request, codec: OpBytesReader): Response {
  const tag = r.u8()
  if (tag === OPERATIONS_TAG) {
    const proof = readProof(r, maxProofDigests(req))
    const ops = readOps(r, requestMaxOps(req), codec)
    return { type: 'operations', proof, ops }
  }
  if (tag === BOUNDARY_TAG) {
    const proof = readProof(r, MAX_PROOF_DIGESTS_PER_ELEMENT)
    const op = codec.readBytes(r)
    const pinnedNodes = readDigests(r, MAX_PINNED_NODES, 'pinned nodes')
    return { type: 'boundary', proof, op, pinnedNodes }
  }
  throw new CodecError('InvalidEnum', `unknown response tag 0x${tag.toString(16)}`)
}

/** Strict decode of a response to `req` that must consume `bytes` entirely. */
export function decodeResponse (bytes: Uint8Array, req: Request, codec: OpBytesReader): Response {
  const r = new Reader(bytes)
  const res = readResponse(r, req, codec)
  r.finish()
  return res
}
