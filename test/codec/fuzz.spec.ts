/**
 * Decoder robustness for everything decoded from the network or from disk in
 * the codec/merkle/storage/qmdb layers (acceptance point 5, and the op-codec
 * half of point 11):
 * - every operation codec (any unordered/ordered, immutable, keyless; fixed
 * and variable) against hand-built encodings from commonware `storage/src/qmdb/any`, `storage/src/qmdb/immutable`, `storage/src/qmdb/keyless`, and
 * the typed error of each kind of malformed encoding;
 * - 100k random and mutated inputs per decoder (op codecs, their stream
 * readers, targets, witnesses, `current` operation proofs, Merkle proofs):
 * each gives a value or a `CodecError`, and every accepted input is the
 * canonical encoding of its value (re-encoding gives the same bytes);
 * - 100k corrupted stored values per storage decoder (item-log chunks, node
 * chunks, MMR meta): a value or a typed storage/merkle error.
 */
import { expect } from 'aegir/chai'
import { CodecError, Reader, Writer, decodeExact } from '../../src/codec/index.ts'
import { MAX_LEAVES, MerkleError, Mmr, proofFromBytes, proofToBytes } from '../../src/merkle/index.ts'
import {
  AnyOpCodec, ImmutableOpCodec, KeylessOpCodec, decodeCompactTarget, decodeOperationProof, decodeTarget, decodeWitness, encodeCompactTarget,
  encodeOperationProof, encodeTarget, encodeWitness, fixedField, varField, CurrentDb, decodeCurrentRangeProof, encodeCurrentRangeProof
} from '../../src/qmdb/index.ts'
import { FixedChunkStore } from '../../src/storage/chunked.ts'
import { StorageError } from '../../src/storage/index.ts'
import { ItemLog } from '../../src/storage/items.ts'
import { hex, u64be } from '../util/bytes.ts'
import { FastRng, fuzz, mutate } from '../util/codec-fuzz.ts'
import { codeOfSync as codeOfAny } from '../util/common.ts'
import { key, val } from '../util/workloads.ts'
import type { OpCodec } from '../../src/qmdb/index.ts'
import type { Kv } from '../../src/storage/index.ts'

const codeOfSync = (fn: () => unknown): string => codeOfAny(fn, CodecError)

const N = 100_000

function concat (...parts: Array<Uint8Array | number[]>): Uint8Array {
  const out: number[] = []
  for (const p of parts) { out.push(...p) }
  return Uint8Array.from(out)
}
const zeros = (n: number): Uint8Array => new Uint8Array(n)
const fill = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b)

/** Re-encoding what was decoded must give back the input (strict, canonical decoders). */
function canonical<T> (encode: (v: T) => Uint8Array): (input: Uint8Array, v: T) => void {
  return (input, v) => {
    const again = encode(v)
    if (hex(again) !== hex(input)) { throw new Error(`re-encodes to ${hex(again)}`) }
  }
}

interface CodecCase {
  name: string
  codec: OpCodec<any>
  /** [spec bytes, op] pairs built by hand from commonware `storage/src/qmdb`. */
  vectors: Array<[Uint8Array, unknown]>
  tags: number[]
}

const K = key(1)
const V = val(1, 1)
const NK = key(2)
const M = val(99, 0)

const cases: CodecCase[] = [
  {
    name: 'any unordered fixed (K = V = 32, TOTAL 65)',
    codec: new AnyOpCodec(fixedField(32), fixedField(32), 'fixed'),
    tags: [0xd1, 0xd2, 0xd3],
    vectors: [
      [concat([0xd1], K, zeros(32)), { type: 'delete', key: K }],
      [concat([0xd2], K, V), { type: 'update', key: K, value: V }],
      [concat([0xd3, 0x01], M, u64be(7), zeros(23)), { type: 'commit', metadata: M, floor: 7 }],
      [concat([0xd3, 0x00], zeros(32), u64be(MAX_LEAVES), zeros(23)), { type: 'commit', floor: MAX_LEAVES }]
    ]
  },
  {
    name: 'any ordered fixed (TOTAL 97)',
    codec: new AnyOpCodec(fixedField(32), fixedField(32), 'fixed', true),
    tags: [0xd1, 0xd2, 0xd3],
    vectors: [
      [concat([0xd1], K, zeros(64)), { type: 'delete', key: K }],
      [concat([0xd2], K, V, NK), { type: 'update', key: K, value: V, nextKey: NK }],
      [concat([0xd3, 0x00], zeros(32), u64be(3), zeros(55)), { type: 'commit', floor: 3 }]
    ]
  },
  {
    name: 'any unordered variable (32-byte array fields)',
    codec: new AnyOpCodec(fixedField(32), fixedField(32), 'variable'),
    tags: [0xd1, 0xd2, 0xd3],
    vectors: [
      [concat([0xd1], K), { type: 'delete', key: K }],
      [concat([0xd2], K, V), { type: 'update', key: K, value: V }],
      [concat([0xd3, 0x01], M, [0xac, 0x02]), { type: 'commit', metadata: M, floor: 300 }],
      [concat([0xd3, 0x00, 0x00]), { type: 'commit', floor: 0 }]
    ]
  },
  {
    name: 'any ordered variable (Vec<u8> key ≤ 16, value ≤ 40)',
    codec: new AnyOpCodec(varField(16), varField(40), 'variable', true),
    tags: [0xd1, 0xd2, 0xd3],
    vectors: [
      [concat([0xd1, 0x03, 1, 2, 3]), { type: 'delete', key: Uint8Array.from([1, 2, 3]) }],
      [concat([0xd2, 0x01, 9, 0x00, 0x02, 7, 8]), { type: 'update', key: Uint8Array.from([9]), value: zeros(0), nextKey: Uint8Array.from([7, 8]) }],
      [concat([0xd3, 0x01, 0x02, 5, 6, 0x7f]), { type: 'commit', metadata: Uint8Array.from([5, 6]), floor: 127 }]
    ]
  },
  {
    name: 'immutable fixed (K = V = 32, TOTAL 65)',
    codec: new ImmutableOpCodec(fixedField(32), fixedField(32), 'fixed'),
    tags: [0x00, 0x01],
    vectors: [
      [concat([0x00], K, V), { type: 'set', key: K, value: V }],
      [concat([0x01, 0x00], zeros(32), u64be(9), zeros(23)), { type: 'commit', floor: 9 }],
      [concat([0x01, 0x01], M, u64be(0), zeros(23)), { type: 'commit', metadata: M, floor: 0 }]
    ]
  },
  {
    name: 'immutable variable (Vec<u8> key ≤ 64, value ≤ 256)',
    codec: new ImmutableOpCodec(varField(64), varField(256), 'variable'),
    tags: [0x00, 0x01],
    vectors: [
      [concat([0x00, 0x02, 1, 2, 0x01, 3]), { type: 'set', key: Uint8Array.from([1, 2]), value: Uint8Array.from([3]) }],
      [concat([0x01, 0x00, 0x80, 0x01]), { type: 'commit', floor: 128 }],
      [concat([0x01, 0x01, 0x00, 0x05]), { type: 'commit', metadata: zeros(0), floor: 5 }]
    ]
  },
  {
    name: 'keyless fixed (V = u64, TOTAL 18)',
    codec: new KeylessOpCodec(fixedField(8), 'fixed'),
    tags: [0x00, 0x01],
    vectors: [
      [concat([0x01], u64be(0x0102030405), zeros(9)), { type: 'append', value: u64be(0x0102030405) }],
      [concat([0x00, 0x00], zeros(8), u64be(4)), { type: 'commit', floor: 4 }],
      [concat([0x00, 0x01], u64be(77), u64be(2)), { type: 'commit', metadata: u64be(77), floor: 2 }]
    ]
  },
  {
    name: 'keyless variable (Vec<u8> ≤ 1024)',
    codec: new KeylessOpCodec(varField(1024), 'variable'),
    tags: [0x00, 0x01],
    vectors: [
      [concat([0x01, 0x08], u64be(5)), { type: 'append', value: u64be(5) }],
      [concat([0x00, 0x00, 0x00]), { type: 'commit', floor: 0 }],
      [concat([0x00, 0x01, 0x01, 0xaa, 0x03]), { type: 'commit', metadata: Uint8Array.from([0xaa]), floor: 3 }]
    ]
  }
]

describe('op codecs: spec encodings and typed errors', () => {
  for (const c of cases) {
    it(`${c.name}: encodes and decodes the hand-built spec encodings`, () => {
      for (const [bytes, op] of c.vectors) {
        expect(hex(c.codec.encode(op))).to.equal(hex(bytes))
        expect(c.codec.decode(bytes)).to.deep.equal(op)
        if (c.codec.fixedSize !== undefined) { expect(bytes.length).to.equal(c.codec.fixedSize) }
        // the stream reader finds the same boundaries in a concatenation
        const stream = concat(bytes, bytes)
        const r = new Reader(stream)
        expect(hex(c.codec.readBytes(r))).to.equal(hex(bytes))
        expect(hex(c.codec.readBytes(r))).to.equal(hex(bytes))
        expect(r.remaining).to.equal(0)
      }
    })
  }

  it('fixed encodings: unknown tag, non-zero padding, wrong size, bad bool, floor overflow', () => {
    const any = cases[0].codec
    const commit = concat([0xd3, 0x00], zeros(32), u64be(7), zeros(23))
    const set = (b: Uint8Array, i: number, v: number): Uint8Array => { const c = b.slice(); c[i] = v; return c }
    expect(codeOfSync(() => any.decode(set(commit, 0, 0xd4)))).to.equal('InvalidEnum')
    expect(codeOfSync(() => any.decode(set(commit, 0, 0x00)))).to.equal('InvalidEnum')
    expect(codeOfSync(() => any.decode(set(commit, 64, 1)))).to.equal('NonZeroPadding') // trailing padding
    expect(codeOfSync(() => any.decode(set(commit, 10, 1)))).to.equal('NonZeroPadding') // absent metadata must be zeros
    expect(codeOfSync(() => any.decode(set(commit, 1, 2)))).to.equal('InvalidBool')
    expect(codeOfSync(() => any.decode(commit.subarray(0, 64)))).to.be.oneOf(['EndOfBuffer', 'InvalidLength'])
    expect(codeOfSync(() => any.decode(concat(commit, [0])))).to.be.oneOf(['ExtraData', 'InvalidLength'])
    expect(codeOfSync(() => any.decode(concat([0xd3, 0x00], zeros(32), u64be(MAX_LEAVES + 1), zeros(23))))).to.equal('Overflow')
    expect(codeOfSync(() => any.decode(concat([0xd3, 0x00], zeros(32), fill(8, 0xff), zeros(23))))).to.equal('Overflow')
    expect(codeOfSync(() => any.decode(concat([0xd1], K, zeros(31), [1])))).to.equal('NonZeroPadding')
    expect(codeOfSync(() => any.decode(new Uint8Array(0)))).to.equal('EndOfBuffer')

    const imm = cases[4].codec
    expect(codeOfSync(() => imm.decode(concat([0x02], K, V)))).to.equal('InvalidEnum')
    expect(codeOfSync(() => imm.decode(concat([0x01, 0x00], zeros(32), u64be(1), zeros(22), [1])))).to.equal('NonZeroPadding')
    expect(codeOfSync(() => imm.decode(concat([0x01, 0x03], zeros(32), u64be(1), zeros(23))))).to.equal('InvalidBool')
    const kl = cases[6].codec
    expect(codeOfSync(() => kl.decode(concat([0x02], zeros(17))))).to.equal('InvalidEnum')
    expect(codeOfSync(() => kl.decode(concat([0x01], u64be(1), zeros(8), [1])))).to.equal('NonZeroPadding')
    expect(codeOfSync(() => kl.decode(concat([0x00, 0x00], zeros(8), u64be(MAX_LEAVES + 1))))).to.equal('Overflow')
    expect(codeOfSync(() => kl.decode(concat([0x01], u64be(1), zeros(8))))).to.be.oneOf(['EndOfBuffer', 'InvalidLength'])
  })

  it('variable encodings: trailing bytes, over-long fields, non-canonical varints, truncation', () => {
    const any = cases[3].codec
    expect(codeOfSync(() => any.decode(concat([0xd1, 0x03, 1, 2, 3, 0])))).to.equal('ExtraData')
    expect(codeOfSync(() => any.decode(concat([0xd1, 0x11], zeros(17))))).to.equal('InvalidLength') // key cap 16
    expect(codeOfSync(() => any.decode(concat([0xd1, 0xff, 0xff, 0xff, 0xff, 0x0f])))).to.equal('InvalidLength') // cap before allocation
    expect(codeOfSync(() => any.decode(concat([0xd1, 0x05, 1, 2])))).to.equal('EndOfBuffer')
    expect(codeOfSync(() => any.decode(concat([0xd3, 0x00, 0x80, 0x00])))).to.equal('InvalidVarint')
    expect(codeOfSync(() => any.decode(concat([0xd3, 0x02, 0x00])))).to.equal('InvalidBool')
    // a floor above MAX_LEAVES (2^52 + 1) in a canonical varint
    const big = new Writer().u8(0xd3).u8(0).varint(MAX_LEAVES + 1).finish()
    expect(codeOfSync(() => any.decode(big))).to.equal('Overflow')
    const imm = cases[5].codec
    expect(codeOfSync(() => imm.decode(concat([0x00, 0x01, 7, 0x82, 0x02], zeros(258))))).to.equal('InvalidLength') // value cap 256
    expect(codeOfSync(() => imm.decode(concat([0x01, 0x00, 0x05, 0x00])))).to.equal('ExtraData')
    const kl = cases[7].codec
    expect(codeOfSync(() => kl.decode(concat([0x01, 0x81, 0x08], zeros(1025))))).to.equal('InvalidLength')
    expect(codeOfSync(() => kl.decode(concat([0x00, 0x00])))).to.equal('EndOfBuffer')
    // the stream reader rejects a truncated last operation instead of returning short bytes
    expect(codeOfSync(() => kl.readBytes(new Reader(concat([0x01, 0x08], u64be(5)).subarray(0, 7))))).to.equal('EndOfBuffer')
  })
})

describe('codec: decoded bytes do not alias the input', () => {
  it('raw/bytes copy a Node Buffer input into a plain Uint8Array', () => {
    const input = Buffer.from('030a0b0c', 'hex')
    const r = new Reader(input)
    const out = r.bytes(3)
    input[1] = 0
    expect(out[0]).to.equal(0x0a)
    expect(Object.getPrototypeOf(out)).to.equal(Uint8Array.prototype)
  })
})

describe('decoder fuzzing (100k inputs per decoder)', function () {
  this.timeout(120_000)

  cases.forEach((c, ci) => {
    const valid = c.vectors.map(([b]) => b)
    // also real operations of realistic sizes
    it(`${c.name}: decode`, () => {
      const res = fuzz(b => c.codec.decode(b), valid, N, 100 + ci, { tags: c.tags, check: canonical(op => c.codec.encode(op)) })
      expect(res.ok + res.rejected).to.equal(N)
      expect(res.ok).to.be.greaterThan(N / 100)
      expect(res.rejected).to.be.greaterThan(N / 10)
    })

    it(`${c.name}: stream reader over concatenated operations`, () => {
      const streams = [concat(...valid), concat(valid[0], valid[valid.length - 1]), ...valid]
      let ops = 0
      const res = fuzz(b => {
        // read operations until the buffer ends; each must decode and re-encode to its own bytes
        const r = new Reader(b)
        const out: Uint8Array[] = []
        while (r.remaining > 0) { out.push(c.codec.readBytes(r)) }
        return out
      }, streams, N, 200 + ci, {
        tags: c.tags,
        check: (input, out) => {
          let at = 0
          for (const op of out) {
            if (hex(input.subarray(at, at + op.length)) !== hex(op)) { throw new Error('not a slice of the input') }
            if (hex(c.codec.encode(c.codec.decode(op))) !== hex(op)) { throw new Error('returned bytes do not round-trip') }
            at += op.length
            ops++
          }
          if (at !== input.length) { throw new Error('did not consume the input') }
        }
      })
      expect(res.ok).to.be.greaterThan(N / 100)
      expect(ops).to.be.greaterThan(res.ok / 2)
    })
  })

  it('sync targets and compact targets', () => {
    const t = encodeTarget({ root: key(1), range: { start: 5, end: 300 } }).finish()
    const t2 = encodeTarget({ root: key(2), range: { start: 0, end: 1 } }).finish()
    const res = fuzz(b => decodeExact(b, decodeTarget), [t, t2], N, 301, {
      check: canonical(v => encodeTarget(v).finish())
    })
    expect(res.ok).to.be.greaterThan(N / 100)
    // the decoder's semantic rules
    expect(codeOfSync(() => decodeExact(concat(key(1), [5, 5]), decodeTarget))).to.equal('Invalid')
    expect(codeOfSync(() => decodeExact(concat(key(1), [6, 5]), decodeTarget))).to.equal('Invalid')
    expect(codeOfSync(() => decodeExact(new Writer().raw(key(1)).varint(0).varint(MAX_LEAVES + 1).finish(), decodeTarget))).to.equal('Overflow')

    const c = encodeCompactTarget({ root: key(3), size: 77 }).finish()
    const rc = fuzz(b => decodeExact(b, decodeCompactTarget), [c], N, 302, {
      check: canonical(v => encodeCompactTarget(v).finish())
    })
    expect(rc.ok).to.be.greaterThan(N / 100)
    expect(codeOfSync(() => decodeExact(concat(key(1), [0]), decodeCompactTarget))).to.equal('Invalid')
  })

  it('compact witnesses', () => {
    const op = cases[4].codec.encode({ type: 'commit', floor: 3 })
    const w1 = encodeWitness({ opBytes: op, size: 11, pinnedNodes: [key(1), key(2), key(3)] })
    const w2 = encodeWitness({ opBytes: op, size: 1, pinnedNodes: [] })
    const res = fuzz(b => decodeWitness(b, 128), [w1, w2], N, 303, { check: canonical(encodeWitness) })
    expect(res.ok).to.be.greaterThan(N / 100)
    // pin count capped (64) before allocation; op length capped
    expect(codeOfSync(() => decodeWitness(new Writer().bytes(op).varint(11).varint(65).finish()))).to.equal('InvalidLength')
    expect(codeOfSync(() => decodeWitness(new Writer().bytes(op).varint(11).varint(0xffffffff).finish()))).to.equal('InvalidLength')
    expect(codeOfSync(() => decodeWitness(w1, 10))).to.equal('InvalidLength')
  })

  it('current operation proofs and range proofs', async () => {
    const db = await CurrentDb.open()
    const b = db.newBatch()
    for (let i = 0; i < 300; i++) { b.update(key(i), val(i, 1)) }
    await db.apply(await b.merkleize())
    const valid: Uint8Array[] = []
    for (const i of [0, 7, 150, 299]) {
      const { proof } = await db.keyValueProof(key(i))
      valid.push(encodeOperationProof(proof))
    }
    const res = fuzz(b => decodeOperationProof(b), valid, N, 304, { check: canonical(encodeOperationProof) })
    expect(res.ok).to.be.greaterThan(N / 100)
    const ranges = [(await db.rangeProof(3, 40)).proof, (await db.rangeProof(250, 1)).proof].map(p => encodeCurrentRangeProof(p).finish())
    const rr = fuzz(b => decodeExact(b, r => decodeCurrentRangeProof(r, 64)), ranges, N, 305, {
      check: canonical(p => encodeCurrentRangeProof(p).finish())
    })
    expect(rr.ok).to.be.greaterThan(N / 100)
  })

  it('merkle range proofs re-encode canonically', () => {
    const mmr = Mmr.inMemory()
    mmr.append(Array.from({ length: 45 }, (_, i) => u64be(i)))
    const valid = [proofToBytes({ leaves: 45, inactivePeaks: 1, digests: mmr.peakDigests() }), proofToBytes({ leaves: 0, inactivePeaks: 0, digests: [] })]
    const res = fuzz(b => proofFromBytes(b, 20), valid, N, 306, { check: canonical(proofToBytes) })
    expect(res.ok).to.be.greaterThan(N / 100)
    expect(codeOfSync(() => proofFromBytes(new Writer().varint(MAX_LEAVES + 1).varint(0).varint(0).finish(), 20))).to.equal('Overflow')
  })
})

/** A `Kv` whose reads come from a map (enough for the storage decoders). */
function stubKv (values: Map<string, Uint8Array>): Kv {
  return { get: async (k: string) => values.get(k) } as unknown as Kv
}

/** Run `body` on `n` corrupted values; it may resolve or throw one of `allowed`. */
async function fuzzStored (n: number, seed: number, valid: Uint8Array[], allowed: Array<new (...args: any[]) => Error>, body: (bytes: Uint8Array, rng: FastRng) => Promise<void>): Promise<{ ok: number, rejected: number }> {
  const rng = new FastRng(seed)
  const stats = { ok: 0, rejected: 0 }
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0 // rejections throw: skip the stack capture
  try {
    await runStored(n, rng, stats, valid, allowed, body)
  } finally {
    Error.stackTraceLimit = limit
  }
  return stats
}

async function runStored (n: number, rng: FastRng, stats: { ok: number, rejected: number }, valid: Uint8Array[], allowed: Array<new (...args: any[]) => Error>, body: (bytes: Uint8Array, rng: FastRng) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i++) {
    let input = rng.int(5) === 0 ? rng.bytes(rng.int(80)) : mutate(rng, rng.pick(valid), valid)
    if (rng.int(2) === 0) { input = mutate(rng, input, valid) }
    try {
      await body(input, rng)
      stats.ok++
    } catch (err) {
      if (allowed.some(t => err instanceof t)) {
        stats.rejected++
        continue
      }
      throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message} on stored value ${hex(input)}`)
    }
  }
}

describe('stored-value decoders (100k corrupted values each)', function () {
  this.timeout(120_000)

  it('item-log chunks: items or StorageError(DataCorrupted)', async () => {
    const values = new Map<string, Uint8Array>()
    const log = new ItemLog({ kv: stubKv(values), prefix: '/ops', chunkItems: 8, maxItemBytes: 64 })
    const w = new Writer()
    for (let i = 0; i < 8; i++) { w.bytes(fill(i * 3, i)) }
    const full = w.finish()
    const valid = [full, new Writer().bytes(fill(5, 1)).bytes(zeros(0)).finish()]
    const res = await fuzzStored(N, 401, valid, [StorageError], async (bytes, rng) => {
      values.set('/ops/0000000000000000', bytes)
      const length = 1 + rng.int(8)
      log.open(length, 0)
      const i = rng.int(length)
      const item = await log.get(i)
      if (!(item instanceof Uint8Array) || item.length > 64) { throw new Error('not an item within the cap') }
    })
    expect(res.ok).to.be.greaterThan(N / 100)
    expect(res.rejected).to.be.greaterThan(N / 10)
    // and the exact error for a chunk with fewer items than the log claims
    values.set('/ops/0000000000000000', valid[1])
    log.open(5, 0)
    await expect(log.get(0)).to.eventually.be.rejectedWith(StorageError).with.property('code', 'DataCorrupted')
    values.delete('/ops/0000000000000000')
    log.open(5, 0)
    await expect(log.get(0)).to.eventually.be.rejectedWith(StorageError).with.property('code', 'MissingItem')
  })

  it('fixed-size node chunks: a copy of the stored item or StorageError', async () => {
    const values = new Map<string, Uint8Array>()
    const store = new FixedChunkStore({ itemSize: 32, chunkItems: 4, kv: stubKv(values), prefix: '/n' })
    const valid = [concat(key(1), key(2), key(3), key(4)), concat(key(5))]
    const res = await fuzzStored(N, 402, valid, [StorageError], async (bytes, rng) => {
      values.set('/n/0000000000000000', bytes)
      const length = 1 + rng.int(4)
      store.open(length, 0)
      const i = rng.int(length)
      const item = await store.get(i)
      // an accepted chunk is item-aligned and no longer than the chunk; missing tail items read as zero
      const want = bytes.length >= (i + 1) * 32 ? bytes.subarray(i * 32, (i + 1) * 32) : zeros(32)
      if (bytes.length % 32 !== 0 || bytes.length > 128 || hex(item) !== hex(want)) { throw new Error(`accepted a bad chunk, item ${hex(item)}`) }
    })
    expect(res.ok).to.be.greaterThan(N / 100)
  })

  it('persisted MMR meta and pins: an MMR or a typed error (never a crash or a bogus structure)', async () => {
    const src = Mmr.inMemory()
    src.append(Array.from({ length: 20 }, (_, i) => u64be(i)))
    await src.prune(12)
    const values = new Map<string, Uint8Array>()
    // the real persisted form: meta, pins of MMR(12), node chunk 0
    values.set('/m/pins', concat(...await src.pinnedNodesAt(12)))
    const nodes: Uint8Array[] = []
    for (let p = 0; p < src.size; p++) { nodes.push(src.nodeSync(p) ?? zeros(32)) }
    values.set('/m/n/0000000000000000', concat(...nodes))
    const meta = new Writer().u8(1).varint(20).varint(12).finish()
    const kv = stubKv(values)
    values.set('/m/meta', meta)
    expect((await Mmr.open(kv, '/m')).root()).to.deep.equal(src.root())
    const res = await fuzzStored(N / 2, 403, [meta], [MerkleError, StorageError], async bytes => {
      values.set('/m/meta', bytes)
      const mmr = await Mmr.open(kv, '/m')
      // accepted meta is self-consistent: pins and node chunks matched it
      if (mmr.prunedLoc > mmr.leaves || mmr.leaves > MAX_LEAVES) { throw new Error(`accepted leaves ${mmr.leaves}, pruned ${mmr.prunedLoc}`) }
    })
    expect(res.ok).to.be.greaterThan(100)
    expect(res.rejected).to.be.greaterThan(N / 10)
    values.set('/m/meta', meta)
    const pins = values.get('/m/pins') as Uint8Array
    const res2 = await fuzzStored(N / 2, 404, [pins], [MerkleError, StorageError], async bytes => {
      values.set('/m/pins', bytes)
      await Mmr.open(kv, '/m')
      if (bytes.length !== pins.length) { throw new Error('accepted pins of the wrong length') }
    })
    expect(res2.rejected).to.be.greaterThan(N / 10)
  })
})
