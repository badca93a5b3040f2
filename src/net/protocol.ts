/**
 * What every request/response protocol of a node shares on the wire
 * (docs/PROTOCOLS.md): the protocol-id namespace `/<prefix>/<chain>/…`, so
 * one chain's protocols share one prefix; the response frame
 * `status ‖ payload` with status 0x01 (data) or 0x02 (no data, empty
 * payload); and the errors a peer's misbehaviour is reported with.
 *
 * Invariant: a response frame is accepted only with a known status, and a
 * no-data frame only without a payload; anything else is a
 * `ProtocolViolation`.
 */

export const DEFAULT_PROTOCOL_PREFIX = 'qmdb'

/** Status byte of a response frame. */
export const STATUS_RESPONSE = 0x01
export const STATUS_NO_DATA = 0x02

/** The body of a no-data frame. */
export const NO_DATA_BODY = new Uint8Array([STATUS_NO_DATA])

/** Default largest response frame body accepted or sent. */
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024

/** A peer broke the protocol: its data is not something an honest node sends. */
export class ProtocolViolation extends Error {
  static readonly name = 'ProtocolViolation'
  readonly name = 'ProtocolViolation'
  readonly code = 'ProtocolViolation'
}

/** A stream was shed by the server's limits before it was read. */
export class RateLimitedError extends Error {
  static readonly name = 'RateLimitedError'
  readonly name = 'RateLimitedError'
}

const SEGMENT = /^[A-Za-z0-9._-]{1,64}$/
const PREFIX = /^[A-Za-z0-9._-]{1,64}(\/[A-Za-z0-9._-]{1,64})*$/

/** One protocol-id segment (a chain or database name): `[A-Za-z0-9._-]{1,64}`. */
export function checkSegment (what: string, value: string): void {
  if (!SEGMENT.test(value)) { throw new RangeError(`invalid ${what} ${JSON.stringify(value)}: use 1-64 of [A-Za-z0-9._-]`) }
}

export function checkPrefix (prefix: string): void {
  if (!PREFIX.test(prefix)) { throw new RangeError(`invalid protocol prefix ${JSON.stringify(prefix)}`) }
}

/** `/<prefix>/<chain>/<path>/<version>` after checking the prefix and the chain name. */
export function chainProtocolId (prefix: string, chain: string, path: string, version = '1.0.0'): string {
  checkPrefix(prefix)
  checkSegment('chain name', chain)
  return `/${prefix}/${chain}/${path}/${version}`
}

/** What a response frame says: no data, or data (`value`). */
export type Parsed<T> = { type: 'no-data' } | { type: 'data', value: T }

/** Split a response frame into no-data or its payload; anything else is a violation. */
export function payloadOf (body: Uint8Array): Parsed<Uint8Array> {
  if (body.length === 0) { throw new ProtocolViolation('empty response frame') }
  if (body[0] === STATUS_NO_DATA) {
    if (body.length !== 1) { throw new ProtocolViolation('no-data frame with a payload') }
    return { type: 'no-data' }
  }
  if (body[0] !== STATUS_RESPONSE) { throw new ProtocolViolation(`unknown status 0x${body[0].toString(16)}`) }
  return { type: 'data', value: body.subarray(1) }
}
