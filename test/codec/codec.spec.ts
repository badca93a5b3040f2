import { expect } from 'aegir/chai'
import { CodecError, Reader, Writer, decodeExact } from '../../src/codec/index.ts'
import { fromHex, hex } from '../util/bytes.ts'
import { codeOfSync } from '../util/common.ts'
import { fuzzDecoder } from '../util/fuzz.ts'

/** The CodecError code `fn` throws (it must throw one). */
function codeOf (fn: () => unknown): string {
  const code = codeOfSync(fn, CodecError)
  if (code === 'ok') { throw new Error('expected a CodecError') }
  return code
}

/** The CodecError code of decoding hex `h` (whole buffer) with `read`. */
function rejects (h: string, read: (r: Reader) => unknown): string {
  return codeOf(() => decodeExact(fromHex(h), read))
}

describe('codec', function () {
  this.timeout(120_000)

  // standard LEB128 encodings (independent of this implementation)
  const vectors: Array<[bigint, string]> = [
    [0n, '00'], [1n, '01'], [127n, '7f'], [128n, '8001'], [300n, 'ac02'], [16383n, 'ff7f'], [16384n, '808001'],
    [0xffffffffn, 'ffffffff0f'], [2n ** 53n - 1n, 'ffffffffffffff0f'], [0xffffffffffffffffn, 'ffffffffffffffffff01']
  ]
  for (const [v, h] of vectors) {
    it(`encodes and decodes ${v}`, () => {
      expect(hex(new Writer().varint(v).finish())).to.equal(h)
      expect(decodeExact(fromHex(h), r => r.varintBig())).to.equal(v)
      if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        expect(hex(new Writer().varint(Number(v)).finish())).to.equal(h)
        expect(decodeExact(fromHex(h), r => r.varint())).to.equal(Number(v))
      }
    })
  }

  it('rejects non-canonical encodings (trailing zero group)', () => {
    expect(rejects('8000', r => r.varint())).to.equal('InvalidVarint')
    expect(rejects('ff00', r => r.varintBig())).to.equal('InvalidVarint')
    expect(rejects('808000', r => r.varint32())).to.equal('InvalidVarint')
  })

  it('rejects more than 64 bits', () => {
    expect(rejects('ffffffffffffffffff02', r => r.varintBig())).to.equal('InvalidVarint')
    expect(rejects('ffffffffffffffffff8001', r => r.varintBig())).to.equal('InvalidVarint')
  })

  it('rejects values above the safe integer range as Overflow, not as a wrong number', () => {
    expect(rejects('8080808080808010', r => r.varint())).to.equal('Overflow')
    expect(decodeExact(fromHex('8080808080808010'), r => r.varintBig())).to.equal(2n ** 53n)
  })

  it('rejects a truncated varint', () => {
    expect(rejects('80', r => r.varint())).to.equal('EndOfBuffer')
  })

  it('caps u32 lengths', () => {
    expect(rejects('8080808010', r => r.varint32())).to.equal('Overflow')
    expect(codeOf(() => new Reader(fromHex('0b')).length(10))).to.equal('InvalidLength')
    expect(new Reader(fromHex('0a')).length(10)).to.equal(10)
  })

  it('u64 is big-endian', () => {
    expect(hex(new Writer().u64(0x0102030405).finish())).to.equal('0000000102030405')
    expect(decodeExact(fromHex('0000000102030405'), r => r.u64())).to.equal(0x0102030405)
    expect(decodeExact(fromHex('ffffffffffffffff'), r => r.u64Big())).to.equal(0xffffffffffffffffn)
    expect(rejects('0020000000000000', r => r.u64())).to.equal('Overflow')
    expect(rejects('00000000', r => r.u64())).to.equal('EndOfBuffer')
  })

  it('bool accepts only 0 and 1', () => {
    expect(decodeExact(fromHex('00'), r => r.bool())).to.equal(false)
    expect(decodeExact(fromHex('01'), r => r.bool())).to.equal(true)
    expect(rejects('02', r => r.bool())).to.equal('InvalidBool')
  })

  it('option is a presence byte then the value', () => {
    expect(hex(new Writer().option(7, (w, v) => w.u8(v)).finish())).to.equal('0107')
    expect(hex(new Writer().option<number>(undefined, (w, v) => w.u8(v)).finish())).to.equal('00')
    expect(decodeExact(fromHex('0107'), r => r.option(r => r.u8()))).to.equal(7)
    expect(decodeExact(fromHex('00'), r => r.option(r => r.u8()))).to.equal(undefined)
    expect(rejects('0207', r => r.option(r => r.u8()))).to.equal('InvalidBool')
  })

  it('bytes are length-prefixed and capped', () => {
    const b = new Writer().bytes(new Uint8Array([1, 2, 3])).finish()
    expect(hex(b)).to.equal('03010203')
    expect(decodeExact(b, r => r.bytes(3))).to.deep.equal(new Uint8Array([1, 2, 3]))
    expect(codeOf(() => decodeExact(b, r => r.bytes(2)))).to.equal('InvalidLength')
  })

  it('vec caps the count before allocating', () => {
    // claims 2^32-1 elements in 5 bytes: the cap must reject it, not the allocator
    expect(rejects('ffffffff0f', r => r.vec(1000, r => r.u8()))).to.equal('InvalidLength')
    expect(rejects('ffffffff0f', r => r.fixedVec(1000, 32))).to.equal('InvalidLength')
    // a count within the cap but beyond the buffer
    expect(rejects('0501', r => r.vec(1000, r => r.u8()))).to.equal('EndOfBuffer')
    expect(rejects('05', r => r.fixedVec(1000, 32))).to.equal('EndOfBuffer')
    const enc = new Writer().vec([1, 2, 3], (w, v) => w.u8(v)).finish()
    expect(decodeExact(enc, r => r.vec(3, r => r.u8()))).to.deep.equal([1, 2, 3])
  })

  it('padding must be zero', () => {
    expect(() => { decodeExact(fromHex('000000'), r => { r.zeros(3) }) }).to.not.throw()
    expect(rejects('000100', r => { r.zeros(3) })).to.equal('NonZeroPadding')
    expect(rejects('0000', r => { r.zeros(3) })).to.equal('EndOfBuffer')
  })

  it('decodeExact rejects trailing bytes', () => {
    expect(rejects('0100', r => r.bool())).to.equal('ExtraData')
  })

  it('raw returns a copy that does not alias the input', () => {
    const input = fromHex('0a0b0c')
    const out = new Reader(input).raw(3)
    input[0] = 0
    expect(out[0]).to.equal(0x0a)
  })

  it('writer grows past its initial capacity', () => {
    const w = new Writer(1)
    for (let i = 0; i < 1000; i++) { w.u64(i) }
    const b = w.finish()
    expect(b.length).to.equal(8000)
    const r = new Reader(b)
    for (let i = 0; i < 1000; i++) { expect(r.u64()).to.equal(i) }
  })

  const valid = [
    new Writer().varint(300).bool(true).option(5, (w, v) => w.u64(v)).bytes(new Uint8Array(5)).finish(),
    new Writer().varint(0).bool(false).option<number>(undefined, (w, v) => w.u64(v)).bytes(new Uint8Array(0)).finish()
  ]
  const decoder = (b: Uint8Array): unknown => decodeExact(b, r => [r.varint(), r.bool(), r.option(r => r.u64()), r.bytes(64)])

  it('100k random and mutated inputs to a composite primitive decoder give values or CodecErrors', () => {
    const res = fuzzDecoder(decoder, valid, 100_000, 1)
    expect(res.ok + res.rejected).to.equal(100_000)
    expect(res.ok).to.be.greaterThan(0)
    expect(res.rejected).to.be.greaterThan(0)
  })

  it('100k inputs to varint / vec / padding decoders', () => {
    fuzzDecoder(b => decodeExact(b, r => r.varintBig()), [fromHex('ffffffffffffffffff01'), fromHex('ac02')], 100_000, 2)
    fuzzDecoder(b => decodeExact(b, r => r.vec(16, r => r.bytes(8))), [new Writer().vec([new Uint8Array(3)], (w, v) => w.bytes(v)).finish()], 100_000, 3)
    fuzzDecoder(b => decodeExact(b, r => { r.u8(); r.zeros(8) }), [new Uint8Array(9)], 100_000, 4)
  })
})
