/**
 * The light-client proof protocol, one per database (docs/PROTOCOLS.md,
 * "Light-client proofs" is the normative description):
 *
 * ```
 * /<prefix>/<chain>/<db>/proof/1.0.0
 * request  = Option(varint height) ‖ bytes(key)            none = the latest height the peer can prove
 * response = 0x01 ‖ bytes(block) ‖ bytes(finalization) ‖ root(32) ‖ u8 result ‖ bytes(value) ‖ bytes(proof)
 *          | 0x02 ‖ varint(height)                          the key has no value (unordered: not provable)
 *          | 0x03 ‖ Option(varint latest)                   this height cannot be proven here
 * ```
 *
 * `result` is 0x00 (a value: `value` is the encoded update operation of an
 * unordered database, the value itself for an ordered one; `proof` the
 * operation or ordered key-value proof) or 0x01 (absent, ordered databases
 * only: `value` empty, `proof` an exclusion proof).
 *
 * Invariants: every length is capped before its bytes are allocated (the
 * caps come from the reader: the application's block size, the validator
 * count, `MAX_KEY_BYTES`, `MAX_PROOF_BYTES`); decoding is strict (unknown
 * tags, trailing bytes, non-canonical varints: `LightError('Malformed')`);
 * nothing here verifies — `verify.ts` does.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { checkDbName, checkPrefix } from '../p2p/protocol.ts'
import { LightError } from './errors.ts'

const LIGHT_PROTOCOL_VERSION = '1.0.0'
/** Largest key a request may carry. */
export const MAX_KEY_BYTES = 1024
/** Largest request frame body (an option tag, a varint height, a length-prefixed key). */
export const MAX_LIGHT_REQUEST_FRAME = 1 + 9 + 2 + MAX_KEY_BYTES
/** Largest value field of an answer. */
const MAX_VALUE_BYTES = 1 << 20
/** Largest proof field of an answer (a proof has at most 122 digests plus one bitmap chunk and a few fields). */
const MAX_PROOF_BYTES = 64 * 1024
/** Default largest response frame body a client reads. */
export const DEFAULT_MAX_LIGHT_RESPONSE = 4 * 1024 * 1024

const TAG_ANSWER = 0x01
const TAG_NO_VALUE = 0x02
const TAG_UNAVAILABLE = 0x03
const RESULT_VALUE = 0x00
const RESULT_ABSENT = 0x01

const NAME = /^[A-Za-z0-9._-]{1,64}$/

/** `/<prefix>/<chain>/<db>/proof/1.0.0`: beside the database's sync protocols (`/<prefix>/<chain>/<db>/sync/…`). */
export function lightProtocolId (prefix: string, chain: string, db: string): string {
  checkPrefix(prefix)
  if (!NAME.test(chain)) { throw new RangeError(`invalid chain name ${JSON.stringify(chain)}: use 1-64 of [A-Za-z0-9._-]`) }
  checkDbName(db)
  return `/${prefix}/${chain}/${db}/proof/${LIGHT_PROTOCOL_VERSION}`
}

export interface LightRequest {
  key: Uint8Array
  /** undefined: the latest height the peer can prove. */
  height: number | undefined
}

export type LightAnswer =
  | {
    type: 'answer'
    block: Uint8Array
    finalization: Uint8Array
    /** The root the proof is against (the block must commit to it). */
    root: Uint8Array
    result: 'value' | 'absent'
    value: Uint8Array
    proof: Uint8Array
  }
  | { type: 'no-value', height: number }
  | { type: 'unavailable', latest: number | undefined }

/** Caps a reader of answers applies (from its configuration, never from the peer). */
export interface AnswerCaps {
  maxBlockBytes: number
  maxFinalizationBytes: number
}

function malformed<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof CodecError || err instanceof RangeError) { throw new LightError('Malformed', `${what}: ${err.message}`, { cause: err }) }
    throw err
  }
}

export function encodeLightRequest (req: LightRequest): Uint8Array {
  if (req.key.length > MAX_KEY_BYTES) { throw new RangeError(`a key of at most ${MAX_KEY_BYTES} bytes`) }
  if (req.height !== undefined && (!Number.isSafeInteger(req.height) || req.height < 0)) { throw new RangeError('height must be a non-negative integer') }
  const w = new Writer(16 + req.key.length)
  w.option(req.height, (w, h) => { w.varint(h) })
  return w.bytes(req.key).finish()
}

/** Strict decode of a request body (`LightError('Malformed')` otherwise). */
export function decodeLightRequest (body: Uint8Array): LightRequest {
  return malformed('request', () => {
    const r = new Reader(body)
    const height = r.option(r => r.varint())
    const key = r.bytes(MAX_KEY_BYTES)
    r.finish()
    return { key, height }
  })
}

export function encodeLightAnswer (a: LightAnswer): Uint8Array {
  if (a.type === 'no-value') { return new Writer(10).u8(TAG_NO_VALUE).varint(a.height).finish() }
  if (a.type === 'unavailable') {
    const w = new Writer(10).u8(TAG_UNAVAILABLE)
    return w.option(a.latest, (w, h) => { w.varint(h) }).finish()
  }
  if (a.root.length !== 32) { throw new RangeError('a root is 32 bytes') }
  return new Writer(64 + a.block.length + a.finalization.length + a.value.length + a.proof.length)
    .u8(TAG_ANSWER).bytes(a.block).bytes(a.finalization).raw(a.root)
    .u8(a.result === 'value' ? RESULT_VALUE : RESULT_ABSENT).bytes(a.value).bytes(a.proof)
    .finish()
}

/** Whether an encoded answer is "unavailable" (the server's no-data outcome in the metrics). */
export function isAnswerUnavailable (body: Uint8Array): boolean {
  return body[0] === TAG_UNAVAILABLE
}

/** Strict decode of a response body within `caps` (`LightError('Malformed')` otherwise). */
export function decodeLightAnswer (body: Uint8Array, caps: AnswerCaps): LightAnswer {
  return malformed('response', () => {
    const r = new Reader(body)
    const tag = r.u8()
    let out: LightAnswer
    if (tag === TAG_ANSWER) {
      const block = r.bytes(caps.maxBlockBytes)
      const finalization = r.bytes(caps.maxFinalizationBytes)
      const root = r.raw(32)
      const result = r.u8()
      if (result !== RESULT_VALUE && result !== RESULT_ABSENT) { throw new CodecError('InvalidEnum', `unknown result 0x${result.toString(16)}`) }
      const value = r.bytes(MAX_VALUE_BYTES)
      const proof = r.bytes(MAX_PROOF_BYTES)
      if (result === RESULT_ABSENT && value.length !== 0) { throw new CodecError('Invalid', 'an absent answer with a value') }
      out = { type: 'answer', block, finalization, root, result: result === RESULT_VALUE ? 'value' : 'absent', value, proof }
    } else if (tag === TAG_NO_VALUE) {
      out = { type: 'no-value', height: r.varint() }
    } else if (tag === TAG_UNAVAILABLE) {
      out = { type: 'unavailable', latest: r.option(r => r.varint()) }
    } else {
      throw new CodecError('InvalidEnum', `unknown response tag 0x${tag.toString(16)}`)
    }
    r.finish()
    return out
  })
}
