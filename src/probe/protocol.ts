/**
 * The probe wire protocol (commonware `glue/src/stateful/probe/wire.rs` over libp2p request/response):
 *
 * ```
 * /<prefix>/<chain>/probe/1.0.0
 * request frame  = uvarint(1) ‖ 0x00                 "send me your latest finalization"
 * response frame = uvarint(len) ‖ 0x01 ‖ finalization (the scheme's encoding, rest of the frame)
 *                | uvarint(1)   ‖ 0x02               no finalization to offer
 * ```
 *
 * Invariants: a request is exactly the byte 0x00 (anything else resets the
 * stream); a response frame is at most `scheme.maxBytes + 1` bytes, its tag
 * is known, and a finalization decodes strictly. Anything else is a
 * `ProbeViolation` (the peer is blocked).
 */

import { chainProtocolId } from '../net/protocol.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { RequestHandler } from '../net/server.ts'

export const TAG_REQUEST = 0x00
export const TAG_RESPONSE = 0x01
export const TAG_NONE = 0x02

export const PROBE_REQUEST = new Uint8Array([TAG_REQUEST])
export const PROBE_NONE = new Uint8Array([TAG_NONE])
/** Largest request frame accepted (a request is one byte). */
export const MAX_PROBE_REQUEST_FRAME = 8

/** `/<prefix>/<chain>/probe/1.0.0`. */
export function probeProtocolId (prefix: string, chain: string): string {
  return chainProtocolId(prefix, chain, 'probe')
}

/** The serving half for the kit's server: a request is the one byte 0x00; `answer` gives the response body. */
export function probeHandler (answer: () => Promise<Uint8Array>): RequestHandler<true> {
  return {
    maxRequestBytes: MAX_PROBE_REQUEST_FRAME,
    decode: frame => {
      if (!isProbeRequest(frame)) { throw new ProbeViolation('not a probe request') }
      return true
    },
    answer,
    isNoData: body => body === PROBE_NONE
  }
}

/** A peer broke the probe protocol. */
export class ProbeViolation extends Error {
  static readonly name = 'ProbeViolation'
  readonly name = 'ProbeViolation'
  readonly code = 'ProbeViolation'
}

export function isProbeRequest (body: Uint8Array): boolean {
  return body.length === 1 && body[0] === TAG_REQUEST
}

export function probeResponse<F> (scheme: FinalizationScheme<F>, f: F): Uint8Array {
  const bytes = scheme.encode(f)
  const out = new Uint8Array(bytes.length + 1)
  out[0] = TAG_RESPONSE
  out.set(bytes, 1)
  return out
}

/** The finalization in a response frame (unverified), `undefined` for none; throws `ProbeViolation`. */
export function parseProbeResponse<F> (body: Uint8Array, scheme: FinalizationScheme<F>): F | undefined {
  if (body.length === 0) { throw new ProbeViolation('empty frame') }
  const tag = body[0]
  if (tag === TAG_NONE) {
    if (body.length !== 1) { throw new ProbeViolation('a no-finalization frame with a payload') }
    return undefined
  }
  if (tag !== TAG_RESPONSE) { throw new ProbeViolation(`unknown tag 0x${tag.toString(16)}`) }
  if (body.length - 1 > scheme.maxBytes) { throw new ProbeViolation(`finalization of ${body.length - 1} bytes above ${scheme.maxBytes}`) }
  try {
    return scheme.decode(body.slice(1))
  } catch (err) {
    throw new ProbeViolation(`undecodable finalization: ${(err as Error)?.message}`)
  }
}
