/**
 * The marshal wire protocol: how a node asks a peer for blocks and
 * finalizations (one request per stream, one answer).
 *
 * ```
 * /<prefix>/<chain>/marshal/1.0.0
 * request frame  = uvarint(len ≤ 80) ‖ request
 *   0x00 ‖ bytes(digest ≤ 64)        block by digest (any stored block)
 *   0x01 ‖ varint(from) ‖ varint(to) finalized blocks [from, to], from ≤ to
 *   0x02                             latest finalization
 * response frame = uvarint(len ≤ limit) ‖ status ‖ payload
 *   status 0x02: no data (empty payload)
 *   status 0x01, block:     the encoded block (rest of the frame)
 *   status 0x01, finalized: varint(n ≥ 1) ‖ n × (bytes(block) ‖ option(bytes(certificate)))
 *                           heights to-n+1 … to, oldest first
 *   status 0x01, latest:    varint(height) ‖ bytes(certificate)
 * ```
 *
 * Invariants: requests decode strictly (known tag, canonical varints, no
 * trailing bytes, from ≤ to); a response is accepted only if it decodes
 * strictly with every length capped by the codec's and scheme's `maxBytes`
 * before allocation, and answers the request: the block has the requested
 * digest; a finalized range is contiguous, ends at `to`, lies within
 * `[from, to]`, chains by parent digests, and every certificate verifies and
 * names its block; the latest certificate verifies. Anything else is a
 * `ProtocolViolation` (the peer is blocked). Whether the range chains to a
 * certified tip is for `Marshal` to judge (it reports through `feedback`).
 */

import { CodecError, Reader, Writer, hex } from '../codec/index.ts'
import { frameSize } from '../net/frames.ts'
import { NO_DATA_BODY, ProtocolViolation, STATUS_RESPONSE, chainProtocolId, payloadOf } from '../net/protocol.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { Parsed } from '../net/protocol.ts'

export { payloadOf, type Parsed } from '../net/protocol.ts'

export const MARSHAL_PROTOCOL_VERSION = '1.0.0'
/** Largest request frame body (a digest request is at most 66 bytes). */
export const MAX_MARSHAL_REQUEST_FRAME = 80
/** Largest digest accepted in a request. */
export const MAX_DIGEST_BYTES = 64

const TAG_BLOCK = 0x00
const TAG_FINALIZED = 0x01
const TAG_LATEST = 0x02

/** `/<prefix>/<chain>/marshal/1.0.0`. */
export function marshalProtocolId (prefix: string, chain: string): string {
  return chainProtocolId(prefix, chain, 'marshal', MARSHAL_PROTOCOL_VERSION)
}

export type MarshalRequest =
  | { type: 'block', digest: Uint8Array }
  | { type: 'finalized', from: number, to: number }
  | { type: 'latest' }

export function encodeMarshalRequest (req: MarshalRequest): Uint8Array {
  const w = new Writer(MAX_MARSHAL_REQUEST_FRAME)
  switch (req.type) {
    case 'block':
      if (req.digest.length > MAX_DIGEST_BYTES) { throw new RangeError(`digest of ${req.digest.length} bytes`) }
      return w.u8(TAG_BLOCK).bytes(req.digest).finish()
    case 'finalized':
      if (!(Number.isSafeInteger(req.from) && Number.isSafeInteger(req.to) && req.from >= 0 && req.from <= req.to)) {
        throw new RangeError(`invalid height range [${req.from}, ${req.to}]`)
      }
      return w.u8(TAG_FINALIZED).varint(req.from).varint(req.to).finish()
    default:
      return w.u8(TAG_LATEST).finish()
  }
}

/** Strict decode of a request body; throws `CodecError`. */
export function decodeMarshalRequest (bytes: Uint8Array): MarshalRequest {
  const r = new Reader(bytes)
  const tag = r.u8()
  let req: MarshalRequest
  if (tag === TAG_BLOCK) {
    req = { type: 'block', digest: r.bytes(MAX_DIGEST_BYTES) }
  } else if (tag === TAG_FINALIZED) {
    const from = r.varint()
    const to = r.varint()
    if (from > to) { throw new CodecError('Invalid', `range [${from}, ${to}] is empty`) }
    req = { type: 'finalized', from, to }
  } else if (tag === TAG_LATEST) {
    req = { type: 'latest' }
  } else {
    throw new CodecError('InvalidEnum', `request tag 0x${tag.toString(16)}`)
  }
  r.finish()
  return req
}

/** A stable key of a request (for logs). */
export function marshalRequestKey (req: MarshalRequest): string {
  switch (req.type) {
    case 'block': return `block:${hex(req.digest)}`
    case 'finalized': return `finalized:${req.from}-${req.to}`
    default: return 'latest'
  }
}

// ---- response bodies ---------------------------------------------------------------------

/** The no-data answer (the status byte every request/response protocol of a node shares). */
export const MARSHAL_NO_DATA = NO_DATA_BODY

export interface RangeEntry {
  block: Uint8Array
  finalization?: Uint8Array
}

export function blockBody (block: Uint8Array): Uint8Array {
  return new Writer(block.length + 1).u8(STATUS_RESPONSE).raw(block).finish()
}

/** Encoded size of one range entry. */
export function rangeEntrySize (e: RangeEntry): number {
  // a bytes field is encoded like a frame: uvarint(length) ‖ bytes
  return frameSize(e.block.length) + 1 + (e.finalization === undefined ? 0 : frameSize(e.finalization.length))
}

export function finalizedBody (entries: readonly RangeEntry[]): Uint8Array {
  const w = new Writer(16 + entries.reduce((n, e) => n + rangeEntrySize(e), 0))
  w.u8(STATUS_RESPONSE).vec(entries, (w, e) => {
    w.bytes(e.block).option(e.finalization, (w, f) => w.bytes(f))
  })
  return w.finish()
}

export function latestBody (height: number, finalization: Uint8Array): Uint8Array {
  return new Writer(finalization.length + 16).u8(STATUS_RESPONSE).varint(height).bytes(finalization).finish()
}

// ---- response parsing (client side) ------------------------------------------------------

function violation (what: string, err: unknown): ProtocolViolation {
  return new ProtocolViolation(`${what}: ${(err as Error)?.message ?? String(err)}`)
}

function decodeBlock<B extends MarshalBlock> (codec: BlockCodec<B>, bytes: Uint8Array): B {
  if (bytes.length > codec.maxBytes) { throw new ProtocolViolation(`block of ${bytes.length} bytes above ${codec.maxBytes}`) }
  try {
    return codec.decode(bytes)
  } catch (err) {
    throw violation('undecodable block', err)
  }
}

/** Decode and verify a certificate; throws `ProtocolViolation` unless it verifies. */
export function verifiedFinalization<F> (scheme: FinalizationScheme<F>, bytes: Uint8Array): F {
  let f: F
  try {
    f = scheme.decode(bytes)
  } catch (err) {
    throw violation('undecodable finalization', err)
  }
  let ok: boolean
  try {
    ok = scheme.verify(f)
  } catch (err) {
    throw violation('finalization verification failed', err)
  }
  if (!ok) { throw new ProtocolViolation('finalization does not verify') }
  return f
}

/** The block answering a by-digest request. */
export function parseBlockResponse<B extends MarshalBlock> (body: Uint8Array, digest: Uint8Array, codec: BlockCodec<B>): Parsed<Uint8Array> {
  const p = payloadOf(body)
  if (p.type === 'no-data') { return p }
  const bytes = p.value.slice()
  const block = decodeBlock(codec, bytes)
  if (hex(block.digest) !== hex(digest)) { throw new ProtocolViolation(`block ${hex(block.digest)} instead of ${hex(digest)}`) }
  return { type: 'data', value: bytes }
}

/** The blocks answering a range request (see the module comment for what is checked). */
export function parseFinalizedResponse<B extends MarshalBlock, F> (
  body: Uint8Array, from: number, to: number, codec: BlockCodec<B>, scheme: FinalizationScheme<F>
): Parsed<RangeEntry[]> {
  const p = payloadOf(body)
  if (p.type === 'no-data') { return p }
  let entries: RangeEntry[]
  try {
    const r = new Reader(p.value)
    entries = r.vec(to - from + 1, r => {
      const block = r.bytes(codec.maxBytes)
      const finalization = r.option(r => r.bytes(scheme.maxBytes))
      return finalization === undefined ? { block } : { block, finalization }
    })
    r.finish()
  } catch (err) {
    throw violation('undecodable range', err)
  }
  if (entries.length === 0) { throw new ProtocolViolation('an empty range is not data') }
  let previous: B | undefined
  const first = to - entries.length + 1
  for (let i = 0; i < entries.length; i++) {
    const block = decodeBlock(codec, entries[i].block)
    if (block.height !== first + i) { throw new ProtocolViolation(`block at height ${block.height} in slot ${first + i}`) }
    if (previous !== undefined && hex(block.parent) !== hex(previous.digest)) {
      throw new ProtocolViolation(`block at height ${block.height} does not chain to its predecessor`)
    }
    const cert = entries[i].finalization
    if (cert !== undefined) {
      const f = verifiedFinalization(scheme, cert)
      if (hex(scheme.payload(f)) !== hex(block.digest)) { throw new ProtocolViolation(`the certificate at height ${block.height} names another block`) }
    }
    previous = block
  }
  return { type: 'data', value: entries }
}

/** The latest finalization: its height and verified certificate. */
export function parseLatestResponse<F> (body: Uint8Array, scheme: FinalizationScheme<F>): Parsed<{ height: number, finalization: F, bytes: Uint8Array }> {
  const p = payloadOf(body)
  if (p.type === 'no-data') { return p }
  let height: number
  let bytes: Uint8Array
  try {
    const r = new Reader(p.value)
    height = r.varint()
    bytes = r.bytes(scheme.maxBytes)
    r.finish()
  } catch (err) {
    throw violation('undecodable latest finalization', err)
  }
  return { type: 'data', value: { height, finalization: verifiedFinalization(scheme, bytes), bytes } }
}
