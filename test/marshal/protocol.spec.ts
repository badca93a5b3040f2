import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { CodecError, Writer } from '../../src/codec/index.ts'
import {
  MARSHAL_NO_DATA, blockBody, decodeMarshalRequest, encodeMarshalRequest, finalizedBody, latestBody, marshalProtocolId,
  parseBlockResponse, parseFinalizedResponse, parseLatestResponse, payloadOf
} from '../../src/marshal/index.ts'
import { ProtocolViolation } from '../../src/p2p/index.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import { concat, connectAll, createBareNode, createMarshalNode, frame, metricValue, seedChain, sendRaw, stopAll, unframe as body, uvarint } from '../util/marshal-nodes.ts'
import { Rng } from '../util/rng.ts'
import type { RangeEntry } from '../../src/marshal/index.ts'
import type { TestBlock } from '../util/marshal-fixtures.ts'
import type { BareNode, MarshalNode } from '../util/marshal-nodes.ts'

function entries (validators: Validators, chain: TestBlock[], from: number, to: number, certs = true): RangeEntry[] {
  const out: RangeEntry[] = []
  for (let h = from; h <= to; h++) {
    const block = blockCodec.encode(chain[h])
    out.push(certs ? { block, finalization: validators.scheme.encode(validators.finalize(h, chain[h].digest)) } : { block })
  }
  return out
}

function violation (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolViolation)
    return (err as Error).message
  }
  throw new Error('expected a ProtocolViolation')
}

describe('marshal protocol: frames', () => {
  let validators: Validators
  let chain: TestBlock[]

  before(async () => {
    validators = await Validators.create(4)
    chain = buildChain(20)
  })

  it('names the protocol per chain and rejects bad names', () => {
    expect(marshalProtocolId('qmdb', 'main')).to.equal('/qmdb/main/marshal/1.0.0')
    expect(() => marshalProtocolId('qmdb', 'a/b')).to.throw(RangeError)
    expect(() => marshalProtocolId('', 'main')).to.throw(RangeError)
  })

  it('encodes requests and frames byte for byte', () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
    expect(hex(encodeMarshalRequest({ type: 'block', digest: new Uint8Array([0xaa, 0xbb]) }))).to.equal('0002aabb')
    expect(hex(encodeMarshalRequest({ type: 'finalized', from: 1, to: 300 }))).to.equal('0101ac02')
    expect(hex(encodeMarshalRequest({ type: 'latest' }))).to.equal('02')
    expect(hex(MARSHAL_NO_DATA)).to.equal('02')
    expect(hex(blockBody(new Uint8Array([7, 8])))).to.equal('010708')
    expect(hex(finalizedBody([{ block: new Uint8Array([5]) }, { block: new Uint8Array([6]), finalization: new Uint8Array([9, 9]) }]))).to.equal('01020105000106010209' + '09')
    expect(hex(latestBody(300, new Uint8Array([4])))).to.equal('01ac020104')
  })

  it('round-trips requests and decodes strictly', () => {
    const reqs = [
      { type: 'block' as const, digest: chain[3].digest },
      { type: 'finalized' as const, from: 0, to: 2 ** 40 },
      { type: 'latest' as const }
    ]
    for (const r of reqs) { expect(decodeMarshalRequest(encodeMarshalRequest(r))).to.deep.equal(r) }
    const bad = [
      new Uint8Array([]),
      new Uint8Array([0x03]),
      new Uint8Array([0x02, 0x00]),
      new Uint8Array([0x01, 0x05, 0x04]),
      new Uint8Array([0x01, 0x80, 0x00, 0x01]),
      concat(new Uint8Array([0x00]), uvarint(65), new Uint8Array(65)),
      concat(encodeMarshalRequest(reqs[0]), new Uint8Array([0]))
    ]
    for (const b of bad) { expect(() => decodeMarshalRequest(b)).to.throw(CodecError) }
    expect(() => encodeMarshalRequest({ type: 'finalized', from: 3, to: 2 })).to.throw(RangeError)
  })

  it('accepts a block only with the requested digest', () => {
    const bytes = blockCodec.encode(chain[5])
    const ok = parseBlockResponse(blockBody(bytes), chain[5].digest, blockCodec)
    expect(ok).to.deep.equal({ type: 'data', value: bytes })
    expect(parseBlockResponse(MARSHAL_NO_DATA, chain[5].digest, blockCodec)).to.deep.equal({ type: 'no-data' })
    expect(violation(() => parseBlockResponse(blockBody(bytes), chain[6].digest, blockCodec))).to.match(/instead of/)
    expect(violation(() => parseBlockResponse(blockBody(bytes.subarray(1)), chain[5].digest, blockCodec))).to.match(/undecodable/)
    expect(violation(() => payloadOf(new Uint8Array([0x07])))).to.match(/unknown status/)
    expect(violation(() => payloadOf(new Uint8Array([0x02, 0x00])))).to.match(/no-data frame/)
    expect(violation(() => payloadOf(new Uint8Array([])))).to.match(/empty/)
  })

  it('accepts a range only if it is a verified, chained suffix of the request', () => {
    const parse = (e: RangeEntry[], from = 3, to = 9): unknown => parseFinalizedResponse(finalizedBody(e), from, to, blockCodec, validators.scheme)
    expect((parse(entries(validators, chain, 3, 9)) as any).value).to.have.length(7)
    expect((parse(entries(validators, chain, 6, 9, false)) as any).value).to.have.length(4)
    // wrong top, gaps, broken links, bad certificates, too many, none
    expect(violation(() => parse(entries(validators, chain, 3, 8)))).to.match(/slot/)
    const gap = entries(validators, chain, 3, 9)
    gap.splice(2, 1)
    expect(violation(() => parse(gap))).to.match(/slot/)
    const other = buildChain(20, 'other')
    const broken = [...entries(validators, other, 3, 5, false), ...entries(validators, chain, 6, 9)]
    expect(violation(() => parse(broken))).to.match(/does not chain/)
    const misnamed = entries(validators, chain, 3, 9)
    misnamed[1] = { ...misnamed[1], finalization: misnamed[2].finalization }
    expect(violation(() => parse(misnamed))).to.match(/names another block/)
    const forged = entries(validators, chain, 3, 9)
    const f = validators.finalize(4, chain[4].digest)
    forged[1] = { ...forged[1], finalization: validators.scheme.encode({ ...f, signatures: f.signatures.slice(1) }) }
    expect(violation(() => parse(forged))).to.match(/does not verify/)
    expect(violation(() => parse(entries(validators, chain, 2, 9)))).to.match(/undecodable range/)
    expect(violation(() => parse([]))).to.match(/empty range/)
  })

  it('accepts a latest finalization only if it verifies', async () => {
    const f = validators.finalize(12, chain[12].digest)
    const got = parseLatestResponse(latestBody(12, validators.scheme.encode(f)), validators.scheme)
    expect(got.type === 'data' && got.value.height === 12).to.equal(true)
    const foreign = await Validators.create(4, 7)
    expect(violation(() => parseLatestResponse(latestBody(12, validators.scheme.encode(foreign.finalize(12, chain[12].digest))), validators.scheme))).to.match(/does not verify/)
    expect(violation(() => parseLatestResponse(concat(latestBody(12, validators.scheme.encode(f)), new Uint8Array([1])), validators.scheme))).to.match(/undecodable/)
  })
})

function malformedStreams (rng: Rng): Uint8Array[] {
  const valid = encodeMarshalRequest({ type: 'latest' })
  const out = [
    new Uint8Array([]), // nothing at all
    frame(new Uint8Array([])), // an empty frame
    frame(new Uint8Array([0x09])), // unknown tag
    frame(new Uint8Array([0x01, 0x05, 0x02])), // from > to
    frame(concat(new Uint8Array([0x00]), uvarint(65), new Uint8Array(65))), // digest too long
    frame(concat(valid, new Uint8Array([0]))), // trailing byte
    concat(uvarint(1 << 20), new Uint8Array(100)), // a frame far above the request cap
    concat(uvarint(40), valid), // claims more than it sends
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) // a length varint that never ends
  ]
  for (let i = 0; i < 200; i++) {
    const junk = rng.bytes(1 + rng.int(60))
    junk[0] = 3 + rng.int(250) // never a valid tag
    out.push(rng.int(2) === 0 ? frame(junk) : junk)
  }
  return out
}

describe('marshal protocol: a server under malformed and excess requests', function () {
  this.timeout(60_000)
  let validators: Validators
  let chain: TestBlock[]
  let server: MarshalNode
  let limited: MarshalNode
  let raw: BareNode
  let other: BareNode
  const registry = new Registry()

  before(async () => {
    validators = await Validators.create(4)
    chain = buildChain(31)
    const unlimited = { maxConcurrent: 1000, rate: { perSecond: 1e9, burst: 1e9 } }
    server = await createMarshalNode(validators, blockCodec, { inbound: unlimited, readTimeout: 500, maxServeBlocks: 10, maxInboundStreams: 1024 }, registry)
    limited = await createMarshalNode(validators, blockCodec, { inbound: { maxConcurrent: 4, rate: { perSecond: 0.001, burst: 2 } } })
    for (const n of [server, limited]) {
      await seedChain(n.services.marshal.store as any, chain, validators, 30, h => h % 2 === 0)
    }
    raw = await createBareNode()
    other = await createBareNode()
    await connectAll(raw, [server, limited])
    await connectAll(other, [limited])
  })

  after(async () => {
    await stopAll([server, limited, raw, other])
  })

  it('resets every malformed request without an answer and keeps serving', async () => {
    const protocol = server.services.marshal.protocol
    const latest = frame(encodeMarshalRequest({ type: 'latest' }))
    for (const bytes of malformedStreams(new Rng(5))) {
      expect(body(await sendRaw(raw, server, protocol, bytes))).to.equal(undefined)
    }
    const answer = body(await sendRaw(raw, server, protocol, latest)) as Uint8Array
    const parsed = parseLatestResponse(answer, validators.scheme)
    expect(parsed.type === 'data' && parsed.value.height === 30).to.equal(true)
    expect(server.status).to.equal('started')
    expect(await metricValue(registry, 'libp2p_qmdb_marshal_served_total', 'malformed')).to.equal(malformedStreams(new Rng(5)).length)
    expect(await metricValue(registry, 'libp2p_qmdb_marshal_served_total', 'response')).to.be.at.least(1)
  })

  it('serves the top of a long range, each block with its certificate when it has one', async () => {
    const answer = body(await sendRaw(raw, server, server.services.marshal.protocol, frame(encodeMarshalRequest({ type: 'finalized', from: 0, to: 30 })))) as Uint8Array
    const parsed = parseFinalizedResponse(answer, 0, 30, blockCodec, validators.scheme)
    if (parsed.type !== 'data') { throw new Error('expected data') }
    expect(parsed.value.map(e => blockCodec.decode(e.block).height)).to.deep.equal([21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
    expect(parsed.value.map(e => e.finalization !== undefined)).to.deep.equal([false, true, false, true, false, true, false, true, false, true])
    // the top of the range is not finalized here: no data
    const beyond = body(await sendRaw(raw, server, server.services.marshal.protocol, frame(encodeMarshalRequest({ type: 'finalized', from: 25, to: 31 }))))
    expect(beyond).to.deep.equal(MARSHAL_NO_DATA)
    const unknown = body(await sendRaw(raw, server, server.services.marshal.protocol, frame(encodeMarshalRequest({ type: 'block', digest: new Uint8Array(32) }))))
    expect(unknown).to.deep.equal(MARSHAL_NO_DATA)
  })

  it('sheds a peer above its rate while serving other peers', async () => {
    const protocol = limited.services.marshal.protocol
    const latest = frame(encodeMarshalRequest({ type: 'latest' }))
    const answers: Array<Uint8Array | undefined> = []
    for (let i = 0; i < 4; i++) { answers.push(body(await sendRaw(raw, limited, protocol, latest))) }
    expect(answers.map(a => a !== undefined)).to.deep.equal([true, true, false, false])
    expect(body(await sendRaw(other, limited, protocol, latest))).to.not.equal(undefined)
  })

  it('never sends a range frame above its response limit', async () => {
    const small = await createMarshalNode(validators, blockCodec, { maxResponseBytes: 600 })
    try {
      await seedChain(small.services.marshal.store as any, chain, validators, 30)
      await connectAll(raw, [small])
      const answer = body(await sendRaw(raw, small, small.services.marshal.protocol, frame(encodeMarshalRequest({ type: 'finalized', from: 0, to: 30 })))) as Uint8Array
      expect(answer.length).to.be.at.most(600)
      const parsed = parseFinalizedResponse(answer, 0, 30, blockCodec, validators.scheme)
      if (parsed.type !== 'data') { throw new Error('expected data') }
      expect(parsed.value.length).to.be.within(1, 9)
      expect(blockCodec.decode(parsed.value[parsed.value.length - 1].block).height).to.equal(30)
    } finally {
      await small.stop()
    }
  })

  it('writes a well-formed frame for a digest request', async () => {
    const w = new Writer(40).u8(0).bytes(chain[4].digest).finish()
    const answer = body(await sendRaw(raw, server, server.services.marshal.protocol, frame(w))) as Uint8Array
    expect(parseBlockResponse(answer, chain[4].digest, blockCodec)).to.deep.equal({ type: 'data', value: blockCodec.encode(chain[4]) })
  })
})
