/**
 * The resolver wire protocol: protocol ids, request shapes per protocol, and
 * the response frame (docs/PROTOCOLS.md is the normative description).
 *
 * ```
 * /<prefix>/<chain>/<db>/sync/standard/1.0.0   body = Request (Operations or Boundary)
 * /<prefix>/<chain>/<db>/sync/compact/1.0.0    body = Boundary{size, size-1}, or Operations{1, 0, 1}
 * request frame  = uvarint(len ≤ 64) ‖ Request bytes
 * response frame = uvarint(len ≤ limit) ‖ status ‖ payload
 *                  status 0x01: payload = Response bytes; 0x02: no data, empty payload
 * ```
 *
 * Invariants: a request is accepted only if it decodes strictly and has a
 * shape its protocol allows; a response frame is accepted only if its status
 * is known, its payload decodes strictly against the request's caps, and its
 * shape answers the request (variant, proof size, op and pin counts). Any
 * other frame is a protocol violation (`ProtocolViolation`).
 */

import { CodecError, Writer } from '../codec/index.ts'
import { MAX_LEAVES, popcount } from '../merkle/index.ts'
import { ProtocolViolation, STATUS_RESPONSE, chainProtocolId, checkSegment, payloadOf } from '../net/protocol.ts'
import { decodeResponse, requestMaxOps, responseSize, writeResponse } from '../sync/messages.ts'
import type { OpBytesReader, Request, Response } from '../sync/messages.ts'

export {
  DEFAULT_PROTOCOL_PREFIX, STATUS_RESPONSE, STATUS_NO_DATA, NO_DATA_BODY, DEFAULT_MAX_RESPONSE_BYTES, ProtocolViolation, checkPrefix
} from '../net/protocol.ts'

export type ResolverKind = 'standard' | 'compact'

export const PROTOCOL_VERSION = '1.0.0'

/** Largest request frame body accepted (a valid request is at most 27 bytes). */
export const MAX_REQUEST_FRAME = 64

/** Database names are one protocol-id segment: `[A-Za-z0-9._-]{1,64}`. */
export function checkDbName (db: string): void {
  checkSegment('database name', db)
}

/**
 * `/<prefix>/<chain>/<db>/sync/<kind>/1.0.0`: the same `/<prefix>/<chain>/…`
 * namespace as the marshal and probe protocols, so one chain's protocols
 * share one prefix.
 */
export function protocolId (prefix: string, chain: string, db: string, kind: ResolverKind): string {
  checkDbName(db)
  return chainProtocolId(prefix, chain, `${db}/sync/${kind}`, PROTOCOL_VERSION)
}

/**
 * Why `req` may not be sent on a `kind` protocol, or `undefined`. The compact
 * protocol carries only the tip of a database: `Boundary{size, size - 1}`,
 * and at genesis (size 1) also `Operations{1, 0, 1}`, which is what
 * commonware's compact sync asks for when there are no pins to fetch.
 */
export function requestShapeProblem (kind: ResolverKind, req: Request): string | undefined {
  if (kind === 'standard') { return undefined }
  if (req.type === 'boundary') {
    return req.start === req.size - 1 ? undefined : 'compact boundary requests must ask for start = size - 1'
  }
  return req.size === 1 && req.start === 0 && req.maxOps === 1 ? undefined : 'compact operations requests must be Operations{1, 0, 1}'
}

/** The body of a response frame: `0x01 ‖ Response`. */
export function responseBody (res: Response): Uint8Array {
  const w = new Writer(1 + responseSize(res))
  w.u8(STATUS_RESPONSE)
  return writeResponse(w, res).finish()
}

export type ParsedFrame =
  | { type: 'response', response: Response }
  | { type: 'no-data' }

/**
 * Why `res` cannot be an honest answer to `req`, or `undefined`. These are
 * structural checks only; the sync engine verifies the proof itself.
 */
export function responseShapeProblem (req: Request, res: Response): string | undefined {
  if (res.type !== req.type) { return `a ${res.type} response to a ${req.type} request` }
  if (res.proof.leaves !== req.size) { return `proof for ${res.proof.leaves} leaves, requested size ${req.size}` }
  if (res.type === 'operations') {
    const most = Math.min(requestMaxOps(req), req.size - req.start)
    if (res.ops.length < 1 || res.ops.length > most) { return `${res.ops.length} operations, expected 1..${most}` }
    return undefined
  }
  if (req.start <= MAX_LEAVES && res.pinnedNodes.length !== popcount(req.start)) {
    return `${res.pinnedNodes.length} pinned nodes, expected ${popcount(req.start)}`
  }
  return undefined
}

/** Parse a response frame body for `req`; throws `ProtocolViolation` on anything else. */
export function parseResponseFrame (body: Uint8Array, req: Request, codec: OpBytesReader): ParsedFrame {
  const payload = payloadOf(body)
  if (payload.type === 'no-data') { return payload }
  let response: Response
  try {
    response = decodeResponse(payload.value, req, codec)
  } catch (err) {
    if (err instanceof CodecError) { throw new ProtocolViolation(`undecodable response: ${err.message}`, { cause: err }) }
    throw err
  }
  const problem = responseShapeProblem(req, response)
  if (problem !== undefined) { throw new ProtocolViolation(problem) }
  return { type: 'response', response }
}
