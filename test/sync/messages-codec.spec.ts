import { expect } from 'aegir/chai'
import { CodecError, Writer } from '../../src/codec/index.ts'
import { MAX_LEAVES } from '../../src/merkle/index.ts'
import { AnyOpCodec, ImmutableOpCodec, KeylessOpCodec, fixedField, varField } from '../../src/qmdb/index.ts'
import {
  compareRequests, decodeRequest, decodeResponse, encodeRequest, encodeResponse, maxProofDigests, requestKey,
  requestMaxOps, requestProblem, requestsEqual, responseSize
} from '../../src/sync/messages.ts'
import { fromHex, hex } from '../util/bytes.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import { Rng } from '../util/rng.ts'
import type { CodecErrorCode } from '../../src/codec/index.ts'
import type { OpBytesReader, Request, Response } from '../../src/sync/messages.ts'

const keyless = new KeylessOpCodec(fixedField(8), 'fixed')
const keylessVar = new KeylessOpCodec(varField(64), 'variable')

const digest = (i: number): Uint8Array => new Uint8Array(32).fill(i & 0xff)
const appendOp = (i: number): Uint8Array => keyless.encode({ type: 'append', value: new Uint8Array(8).fill(i) })

function codecError (fn: () => unknown): CodecErrorCode {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(CodecError)
    return (err as CodecError).code
  }
  throw new Error('expected a CodecError')
}

const opsReq = (size: number, start: number, maxOps: number): Request => ({ type: 'operations', size, start, maxOps })
const boundaryReq = (size: number, start: number): Request => ({ type: 'boundary', size, start })

/** An operations response body built by hand: tag, proof header, digests, op count, ops. */
function rawOpsResponse (digests: number, ops: Uint8Array[], digestCount = digests, opCount = ops.length): Uint8Array {
  const w = new Writer(256).u8(0).varint(10).varint(0).varint(digestCount)
  for (let i = 0; i < digests; i++) { w.raw(digest(i)) }
  w.varint(opCount)
  for (const op of ops) { w.raw(op) }
  return w.finish()
}

function rawBoundaryResponse (digests: number, op: Uint8Array | undefined, pins: number, pinCount = pins): Uint8Array {
  const w = new Writer(256).u8(1).varint(10).varint(0).varint(digests)
  for (let i = 0; i < digests; i++) { w.raw(digest(i)) }
  if (op !== undefined) { w.raw(op) }
  w.varint(pinCount)
  for (let i = 0; i < pins; i++) { w.raw(digest(100 + i)) }
  return w.finish()
}

describe('sync messages: requests', () => {
  it('encodes the worked examples byte for byte', () => {
    expect(hex(encodeRequest(opsReq(10, 3, 2)))).to.equal('000a030000000000000002')
    expect(hex(encodeRequest(boundaryReq(10, 3)))).to.equal('010a03')
    expect(decodeRequest(fromHex('000a030000000000000002'))).to.deep.equal(opsReq(10, 3, 2))
    expect(decodeRequest(fromHex('010a03'))).to.deep.equal(boundaryReq(10, 3))
  })

  it('round-trips requests at the edges of the location domain', () => {
    const cases: Request[] = [
      opsReq(1, 0, 1), boundaryReq(1, 0), opsReq(MAX_LEAVES, MAX_LEAVES - 1, Number.MAX_SAFE_INTEGER),
      boundaryReq(MAX_LEAVES, 0), opsReq(300, 128, 0x1_0000_0000), boundaryReq(2 ** 40, 2 ** 40 - 1)
    ]
    for (const req of cases) {
      expect(decodeRequest(encodeRequest(req))).to.deep.equal(req)
    }
  })

  it('rejects every malformed request with a typed error', () => {
    const bad: Array<[string, CodecErrorCode]> = [
      ['', 'EndOfBuffer'],
      ['07', 'InvalidEnum'],
      ['02', 'InvalidEnum'],
      ['ff0a03', 'InvalidEnum'],
      ['010a0a', 'Invalid'], // start == size
      ['010a0b', 'Invalid'], // start > size
      ['010000', 'Invalid'], // size 0: no start can be below it
      ['01000000', 'Invalid'], // start >= size is checked before the end of input
      ['000a030000000000000000', 'Invalid'], // maxOps = 0
      ['000a0300000000000000', 'EndOfBuffer'], // truncated maxOps
      ['000a03ffffffffffffffff', 'Overflow'], // maxOps beyond 2^53 - 1
      ['010a0300', 'ExtraData'],
      ['000a03000000000000000200', 'ExtraData'],
      ['01800003', 'InvalidVarint'], // non-canonical size
      ['010a', 'EndOfBuffer'],
      ['01', 'EndOfBuffer'],
      [`01${hex(new Writer().varint(MAX_LEAVES + 1).finish())}00`, 'Overflow'],
      [`01${hex(new Writer().varint(MAX_LEAVES).finish())}${hex(new Writer().varint(MAX_LEAVES + 1).finish())}`, 'Overflow'],
      ['01ffffffffffffffffff7f00', 'InvalidVarint'] // more than 64 bits
    ]
    for (const [input, code] of bad) {
      expect(codecError(() => decodeRequest(fromHex(input)))).to.equal(code, input)
    }
  })

  it('refuses to encode an invalid request', () => {
    expect(() => encodeRequest(opsReq(10, 10, 1))).to.throw(RangeError)
    expect(() => encodeRequest(opsReq(10, 3, 0))).to.throw(RangeError)
    expect(() => encodeRequest(boundaryReq(MAX_LEAVES + 1, 0))).to.throw(RangeError)
    expect(() => encodeRequest(opsReq(10, -1, 1))).to.throw(RangeError)
    expect(requestProblem(opsReq(10, 3, 1.5))).to.be.a('string')
    expect(requestProblem(boundaryReq(10, 3))).to.equal(undefined)
  })

  it('identity: (size, start, maxOps, isBoundary); a boundary is not a one-op operations request', () => {
    const b = boundaryReq(10, 3)
    const o1 = opsReq(10, 3, 1)
    expect(requestMaxOps(b)).to.equal(1)
    expect(requestsEqual(b, o1)).to.equal(false)
    expect(requestKey(b)).to.not.equal(requestKey(o1))
    expect(new Set([requestKey(b), requestKey(o1), requestKey(boundaryReq(10, 3))]).size).to.equal(2)
    expect(requestsEqual(opsReq(10, 3, 2), opsReq(10, 3, 2))).to.equal(true)
    expect(requestKey(opsReq(10, 3, 2))).to.not.equal(requestKey(opsReq(11, 3, 2)))
    // order: size, then start, then maxOps, then variant (operations < boundary)
    const sorted = [boundaryReq(10, 3), opsReq(10, 3, 2), opsReq(9, 8, 1), o1, opsReq(10, 2, 5), boundaryReq(10, 2)]
      .sort(compareRequests)
    expect(sorted).to.deep.equal([opsReq(9, 8, 1), boundaryReq(10, 2), opsReq(10, 2, 5), o1, boundaryReq(10, 3), opsReq(10, 3, 2)])
    expect(compareRequests(o1, b)).to.equal(-1)
    expect(compareRequests(b, boundaryReq(10, 3))).to.equal(0)
  })
})

describe('sync messages: responses', () => {
  it('encodes the worked example (size 10, two digests, two ops)', () => {
    const ops = [appendOp(3), appendOp(4)]
    const res: Response = { type: 'operations', proof: { leaves: 10, inactivePeaks: 0, digests: [digest(0), digest(1)] }, ops }
    const bytes = encodeResponse(res)
    expect(hex(bytes)).to.equal(`000a0002${hex(digest(0))}${hex(digest(1))}02${hex(ops[0])}${hex(ops[1])}`)
    expect(bytes.length).to.equal(responseSize(res))
    expect(decodeResponse(bytes, opsReq(10, 3, 2), keyless)).to.deep.equal(res)
  })

  it('round-trips boundary responses, and ops of variable size keep their exact bytes', () => {
    const op = keylessVar.encode({ type: 'append', value: new Uint8Array([1, 2, 3]) })
    const res: Response = { type: 'boundary', proof: { leaves: 9, inactivePeaks: 1, digests: [digest(5)] }, op, pinnedNodes: [digest(7), digest(8)] }
    const bytes = encodeResponse(res)
    expect(bytes.length).to.equal(responseSize(res))
    expect(decodeResponse(bytes, boundaryReq(9, 3), keylessVar)).to.deep.equal(res)
    const commit = keylessVar.encode({ type: 'commit', floor: 300, metadata: new Uint8Array([9]) })
    const opsRes: Response = { type: 'operations', proof: { leaves: 9, inactivePeaks: 0, digests: [] }, ops: [op, commit, op] }
    const decoded = decodeResponse(encodeResponse(opsRes), opsReq(9, 0, 3), keylessVar)
    expect(decoded).to.deep.equal(opsRes)
  })

  it('caps: ops ≤ maxOps, proof digests ≤ 122·maxOps, boundary digests ≤ 122, pins ≤ 64', () => {
    const three = [appendOp(1), appendOp(2), appendOp(3)]
    expect(decodeResponse(rawOpsResponse(0, three), opsReq(10, 0, 3), keyless).type).to.equal('operations')
    expect(codecError(() => decodeResponse(rawOpsResponse(0, three), opsReq(10, 0, 2), keyless))).to.equal('InvalidLength')
    expect(decodeResponse(rawOpsResponse(122, [appendOp(1)]), opsReq(10, 0, 1), keyless).type).to.equal('operations')
    expect(codecError(() => decodeResponse(rawOpsResponse(123, [appendOp(1)]), opsReq(10, 0, 1), keyless))).to.equal('InvalidLength')
    expect(decodeResponse(rawOpsResponse(123, [appendOp(1)]), opsReq(10, 0, 2), keyless).type).to.equal('operations')
    expect(maxProofDigests(opsReq(10, 0, Number.MAX_SAFE_INTEGER))).to.equal(Number.MAX_SAFE_INTEGER)
    expect(maxProofDigests(boundaryReq(10, 0))).to.equal(122)
    // an operations body answering a boundary request is decoded with maxOps = 1
    expect(codecError(() => decodeResponse(rawOpsResponse(0, three), boundaryReq(10, 0), keyless))).to.equal('InvalidLength')
    const op = appendOp(1)
    expect(decodeResponse(rawBoundaryResponse(122, op, 64), boundaryReq(10, 3), keyless).type).to.equal('boundary')
    expect(codecError(() => decodeResponse(rawBoundaryResponse(123, op, 0), boundaryReq(10, 3), keyless))).to.equal('InvalidLength')
    // the boundary digest cap does not grow with the request's maxOps
    expect(codecError(() => decodeResponse(rawBoundaryResponse(123, op, 0), opsReq(10, 3, 5), keyless))).to.equal('InvalidLength')
    expect(codecError(() => decodeResponse(rawBoundaryResponse(0, op, 65), boundaryReq(10, 3), keyless))).to.equal('InvalidLength')
  })

  it('caps are enforced before allocation: huge counts with tiny buffers fail fast', () => {
    const big = Number.MAX_SAFE_INTEGER
    for (const claim of [2 ** 32, 2 ** 32 - 1, 2 ** 40]) {
      // op count
      expect(codecError(() => decodeResponse(rawOpsResponse(0, [], 0, claim), opsReq(10, 0, 16), keyless))).to.equal('InvalidLength')
      // digest count
      expect(codecError(() => decodeResponse(rawOpsResponse(0, [], claim, 0), opsReq(10, 0, 16), keyless))).to.equal('InvalidLength')
      // pin count
      expect(codecError(() => decodeResponse(rawBoundaryResponse(0, appendOp(1), 0, claim), boundaryReq(10, 3), keyless))).to.equal('InvalidLength')
    }
    // counts under a huge cap but beyond the bytes present: EndOfBuffer before allocating
    expect(codecError(() => decodeResponse(rawOpsResponse(0, [], 0, 2 ** 31), opsReq(10, 0, big), keyless))).to.equal('EndOfBuffer')
    expect(codecError(() => decodeResponse(rawOpsResponse(0, [], 2 ** 31, 0), opsReq(10, 0, big), keyless))).to.equal('EndOfBuffer')
    // commonware's usize is a u32: even a cap above 2^32 cannot admit a count of 2^32
    expect(codecError(() => decodeResponse(rawOpsResponse(0, [], 0, 2 ** 32), opsReq(10, 0, big), keyless))).to.equal('InvalidLength')
  })

  it('any operations (fixed, unordered and ordered): exact bytes that do not alias the input; bad padding or tag is a typed error', () => {
    for (const ordered of [false, true]) {
      const any = new AnyOpCodec(fixedField(32), fixedField(32), 'fixed', ordered)
      const key = new Uint8Array(32).fill(7)
      const update = any.encode(ordered ? { type: 'update', key, value: digest(2), nextKey: digest(3) } : { type: 'update', key, value: digest(2) })
      const del = any.encode({ type: 'delete', key })
      const commit = any.encodeCommit(undefined, 4)
      const body = rawOpsResponse(0, [update, del, commit])
      const res = decodeResponse(body, opsReq(10, 0, 4), any)
      if (res.type !== 'operations') { throw new Error('expected operations') }
      expect(res.ops.map(hex)).to.deep.equal([update, del, commit].map(hex))
      body.fill(0xee)
      expect(res.ops.map(hex)).to.deep.equal([update, del, commit].map(hex), 'ops must not alias the input')
      // a delete's padding, a commit's padding, an unknown tag
      expect(codecError(() => decodeResponse(rawOpsResponse(0, [update, flipLast(del)]), opsReq(10, 0, 4), any))).to.equal('NonZeroPadding')
      expect(codecError(() => decodeResponse(rawOpsResponse(0, [flipLast(commit)]), opsReq(10, 0, 4), any))).to.equal('NonZeroPadding')
      const unknown = update.slice()
      unknown[0] = 0xd4
      expect(codecError(() => decodeResponse(rawOpsResponse(0, [unknown]), opsReq(10, 0, 4), any))).to.equal('InvalidEnum')
    }
  })

  it('rejects every other malformed response with a typed error', () => {
    const op = appendOp(1)
    const req = opsReq(10, 0, 4)
    const bad: Array<[Uint8Array, Request, CodecErrorCode]> = [
      [new Uint8Array(), req, 'EndOfBuffer'],
      [fromHex('02'), req, 'InvalidEnum'],
      [fromHex('ff0a0000'), req, 'InvalidEnum'],
      [new Writer().u8(0).varint(MAX_LEAVES + 1).varint(0).varint(0).varint(0).finish(), req, 'Overflow'],
      [fromHex('00800000000000'), req, 'InvalidVarint'],
      [rawOpsResponse(1, [op]).subarray(0, 20), req, 'EndOfBuffer'], // digest cut short
      [rawOpsResponse(0, [op]).subarray(0, 8), req, 'EndOfBuffer'], // op cut short
      [rawOpsResponse(0, [op, op], 0, 3), req, 'EndOfBuffer'], // fewer ops than claimed
      [concat(rawOpsResponse(0, [op]), fromHex('00')), req, 'ExtraData'],
      [rawOpsResponse(0, [fromHex('07' + '00'.repeat(17))]), req, 'InvalidEnum'], // not an operation
      [rawOpsResponse(0, [flipLast(op)]), req, 'NonZeroPadding'],
      [rawBoundaryResponse(0, undefined, 0), boundaryReq(10, 3), 'EndOfBuffer'], // no op
      [concat(rawBoundaryResponse(0, op, 1), fromHex('00')), boundaryReq(10, 3), 'ExtraData'],
      [rawBoundaryResponse(0, op, 1, 2), boundaryReq(10, 3), 'EndOfBuffer']
    ]
    for (const [bytes, r, code] of bad) {
      expect(codecError(() => decodeResponse(bytes, r, keyless))).to.equal(code, hex(bytes))
    }
  })

  it('fuzz: 100k random and mutated inputs per decoder only ever throw CodecError', function () {
    this.timeout(120_000)
    const rng = new Rng(7)
    const reqs: Request[] = []
    for (let i = 0; i < 64; i++) {
      const size = 1 + rng.int(2 ** 20)
      const start = rng.int(size)
      reqs.push(rng.int(2) === 0 ? boundaryReq(size, start) : opsReq(size, start, 1 + rng.int(300)))
    }
    const reqBytes = reqs.map(encodeRequest)
    const r1 = fuzzDecoder(b => decodeRequest(b), reqBytes, 100_000, 1)
    expect(r1.ok).to.be.greaterThan(0)
    expect(r1.rejected).to.be.greaterThan(0)

    const codecs: OpBytesReader[] = [
      keyless, keylessVar, new AnyOpCodec(fixedField(4), varField(16), 'variable'), new ImmutableOpCodec(fixedField(2), fixedField(2), 'fixed')
    ]
    for (const [ci, codec] of codecs.entries()) {
      const { ops: opsBodies, boundaries } = sampleResponses(rng, ci)
      const ro = fuzzDecoder(b => decodeResponse(b, opsReq(100, 0, 3), codec), opsBodies, 100_000 / codecs.length, 10 + ci)
      const rb = fuzzDecoder(b => decodeResponse(b, boundaryReq(100, 5), codec), boundaries, 100_000 / codecs.length, 20 + ci)
      expect(ro.rejected).to.be.greaterThan(0)
      expect(rb.rejected).to.be.greaterThan(0)
      if (ci === 0) {
        expect(ro.ok).to.be.greaterThan(0)
        expect(rb.ok).to.be.greaterThan(0)
      }
    }
  })
})

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

function flipLast (b: Uint8Array): Uint8Array {
  const c = b.slice()
  c[c.length - 1] ^= 1
  return c
}

/** Valid response bodies for the fuzzer, with ops of the codec at index `ci`. */
function sampleResponses (rng: Rng, ci: number): { ops: Uint8Array[], boundaries: Uint8Array[] } {
  const opFor = (i: number): Uint8Array => {
    switch (ci) {
      case 0: return appendOp(i)
      case 1: return keylessVar.encode(i % 3 === 0 ? { type: 'commit', floor: i } : { type: 'append', value: rng.bytes(rng.int(5)) })
      case 2: return new AnyOpCodec(fixedField(4), varField(16), 'variable').encode({ type: 'update', key: rng.bytes(4), value: rng.bytes(rng.int(6)) })
      default: return new ImmutableOpCodec(fixedField(2), fixedField(2), 'fixed').encode({ type: 'set', key: rng.bytes(2), value: rng.bytes(2) })
    }
  }
  const proof = (): Response['proof'] => ({ leaves: 100, inactivePeaks: rng.int(3), digests: Array.from({ length: rng.int(4) }, () => rng.bytes(32)) })
  const ops: Uint8Array[] = []
  const boundaries: Uint8Array[] = []
  for (let i = 0; i < 8; i++) {
    ops.push(encodeResponse({ type: 'operations', proof: proof(), ops: Array.from({ length: 1 + rng.int(3) }, (_, j) => opFor(i + j)) }))
    boundaries.push(encodeResponse({ type: 'boundary', proof: proof(), op: opFor(i), pinnedNodes: Array.from({ length: rng.int(3) }, () => rng.bytes(32)) }))
  }
  return { ops, boundaries }
}
