/**
 * Proofs of ordered `current` databases, `OpsRootWitness` and the
 * configurable chunk size:
 * - every key of a small key space, after every batch: present keys have a
 * key-value proof (value and next key) and absent keys an exclusion proof
 * that verify against the canonical root, survive an encode/decode round
 * trip, and fail for another key, another value, another root; asking the
 * wrong question is `KeyExists` / `KeyNotFound`;
 * - tampered exclusion proofs fail: a span that does not cover the key, a
 * span whose bounds cover the key while the key is present (a stale span,
 * a forged next key), flipped digests, chunk bits, ops roots, locations;
 * an empty database's commit proof stops verifying once a key exists;
 * - the ops-root witness binds the ops root to the canonical root (with and
 * without a partial chunk, after pruning) and nothing else; its canonical
 * root is recomputed here by hashing the parts directly;
 * - N = 64: the canonical root below one chunk is rebuilt from the N = 32
 * database's parts (same operations, two 32-byte chunks side by side);
 * proofs verify with N = 64 and not with N = 32; reopening with another N
 * is refused.
 */
import { createHash } from 'node:crypto'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { computeRoot } from '../../src/merkle/index.ts'
import {
  AnyOpCodec, CurrentDb, OrderedCurrentDb, QmdbError, decodeExclusionProof, decodeOpsRootWitness, decodeOrderedKeyValueProof,
  encodeExclusionProof, encodeOpsRootWitness, encodeOrderedKeyValueProof, fixedField, varField, verifyExclusionProof, verifyOperationProof,
  verifyOpsRootWitness, verifyOrderedKeyValueProof
} from '../../src/qmdb/index.ts'
import { hex } from '../util/bytes.ts'
import { Rng } from '../util/rng.ts'
import type { Encoding, ExclusionProof, OperationProof } from '../../src/qmdb/index.ts'

function k (b: number, tail = 0): Uint8Array {
  const out = new Uint8Array(32)
  out[0] = b
  out[31] = tail
  return out
}

function v (i: number): Uint8Array {
  return new Uint8Array(32).fill(i)
}

function sha (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) { h.update(p) }
  return new Uint8Array(h.digest())
}

function flip (b: Uint8Array, i: number, mask = 1): Uint8Array {
  const c = Uint8Array.from(b)
  c[i] ^= mask
  return c
}

async function code (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    expect(err).to.be.instanceOf(QmdbError)
    return (err as QmdbError).code
  }
  return 'ok'
}

/** Copies of `p` with one part tampered. */
function tamperedOpProofs (p: OperationProof): OperationProof[] {
  const out: OperationProof[] = []
  const rp = p.rangeProof
  rp.proof.digests.forEach((_, i) => {
    out.push({ ...p, rangeProof: { ...rp, proof: { ...rp.proof, digests: rp.proof.digests.map((d, j) => j === i ? flip(d, 5) : d) } } })
  })
  out.push({ ...p, chunk: flip(p.chunk, (p.loc % 256) >>> 3, 1 << (p.loc & 7)) }) // its own activity bit
  out.push({ ...p, chunk: flip(p.chunk, p.chunk.length - 1, 0x80) })
  out.push({ ...p, rangeProof: { ...rp, opsRoot: flip(rp.opsRoot, 0) } })
  out.push({ ...p, loc: p.loc + 1 })
  if (rp.partialChunkDigest !== undefined) { out.push({ ...p, rangeProof: { ...rp, partialChunkDigest: flip(rp.partialChunkDigest, 3) } }) }
  return out
}

const ENCODINGS: Encoding[] = ['fixed', 'variable']

describe('qmdb: ordered current proofs', function () {
  this.timeout(120_000)

  for (const encoding of ENCODINGS) {
    it(`${encoding}: every key has a verifying key-value or exclusion proof after every batch; none verifies for the wrong key, value or root`, async () => {
      const rng = new Rng(encoding.length)
      const db = await OrderedCurrentDb.open({ encoding })
      const codec = db.codec
      const space = Array.from({ length: 16 }, (_, i) => k(10 + (i % 4) * 10, i))
      const present = new Map<string, Uint8Array>()
      let previousRoot = db.root
      let checked = 0
      for (let j = 0; j < 24; j++) {
        const b = db.newBatch()
        for (let i = 0, n = 1 + rng.int(5); i < n; i++) {
          const key = space[rng.int(space.length)]
          const value = rng.int(3) === 0 ? null : v(j * 8 + i)
          b.write(key, value)
          if (value === null) { present.delete(hex(key)) } else { present.set(hex(key), value) }
        }
        await db.apply(await b.merkleize())
        const root = db.root
        for (const key of space) {
          const value = present.get(hex(key))
          if (value !== undefined) {
            const { proof, value: got } = await db.orderedKeyValueProof(key)
            expect(hex(got)).to.equal(hex(value))
            expect(verifyOrderedKeyValueProof(codec, key, value, proof, root)).to.equal(true)
            const again = decodeOrderedKeyValueProof(codec, encodeOrderedKeyValueProof(codec, proof))
            expect(verifyOrderedKeyValueProof(codec, key, value, again, root)).to.equal(true)
            expect(verifyOrderedKeyValueProof(codec, key, flip(value, 0), proof, root)).to.equal(false)
            expect(verifyOrderedKeyValueProof(codec, key, value, proof, previousRoot)).to.equal(false)
            expect(verifyOrderedKeyValueProof(codec, key, value, { ...proof, nextKey: flip(proof.nextKey, 31) }, root)).to.equal(false)
            expect(await code(db.exclusionProof(key))).to.equal('KeyExists')
          } else {
            const proof = await db.exclusionProof(key)
            expect(verifyExclusionProof(codec, key, proof, root)).to.equal(true, `exclusion of ${hex(key)}`)
            const again = decodeExclusionProof(codec, encodeExclusionProof(codec, proof))
            expect(verifyExclusionProof(codec, key, again, root)).to.equal(true)
            expect(verifyExclusionProof(codec, key, proof, previousRoot)).to.equal(false)
            expect(await code(db.orderedKeyValueProof(key))).to.equal('KeyNotFound')
            // the same proof excludes exactly the absent keys of its span (the model's greatest key <= other, cyclically)
            const sorted = [...present.keys()].sort()
            for (const other of space) {
              const h = hex(other)
              const below = sorted.filter(x => x <= h)
              const start = below.length > 0 ? below[below.length - 1] : sorted[sorted.length - 1]
              const expected = !present.has(h) && (proof.type === 'empty' ? sorted.length === 0 : start === hex(proof.key))
              expect(verifyExclusionProof(codec, other, proof, root)).to.equal(expected, `other ${h}`)
            }
          }
          checked++
        }
        previousRoot = root
      }
      expect(checked).to.equal(24 * space.length)
    })
  }

  it('variable-size keys: a key that is a prefix of another is excluded by its own span, and the proof round-trips', async () => {
    const db = await OrderedCurrentDb.open({ key: varField(16), value: varField(64), encoding: 'variable' })
    const codec = db.codec
    const [p1, p12, p2] = [Uint8Array.of(1), Uint8Array.of(1, 2), Uint8Array.of(2)]
    await db.apply(await db.newBatch().update(p1, Uint8Array.of(7)).update(p2, Uint8Array.of(8, 9)).merkleize())
    // [1] < [1, 0] < [1, 2] < [2]: both fall in the span [1] → [2]
    for (const absent of [Uint8Array.of(1, 0), p12, new Uint8Array(0), Uint8Array.of(3)]) {
      const proof = await db.exclusionProof(absent)
      expect(verifyExclusionProof(codec, absent, proof, db.root)).to.equal(true, hex(absent))
      expect(verifyExclusionProof(codec, absent, decodeExclusionProof(codec, encodeExclusionProof(codec, proof)), db.root)).to.equal(true)
    }
    const inner = await db.exclusionProof(p12)
    expect(inner.type === 'span' && hex(inner.key)).to.equal('01')
    expect(verifyExclusionProof(codec, p1, inner, db.root)).to.equal(false)
    expect(verifyExclusionProof(codec, p2, inner, db.root)).to.equal(false)
    const { proof, value } = await db.orderedKeyValueProof(p1)
    expect(verifyOrderedKeyValueProof(codec, p1, value, proof, db.root)).to.equal(true)
    expect(verifyOrderedKeyValueProof(codec, p1, value, decodeOrderedKeyValueProof(codec, encodeOrderedKeyValueProof(codec, proof)), db.root)).to.equal(true)
    // a span key longer than the codec allows cannot be encoded, so it cannot verify (and does not throw)
    if (inner.type !== 'span') { throw new Error('expected a span') }
    expect(verifyExclusionProof(codec, Uint8Array.of(1, 5), { ...inner, key: new Uint8Array(17).fill(1) }, db.root)).to.equal(false)
  })

  it('tampered exclusion proofs fail: wrong span, present key inside the bounds, forged next key, flipped digests', async () => {
    const db = await OrderedCurrentDb.open()
    const codec = db.codec
    const [a, b, c, d] = [k(10), k(20), k(30), k(40)]
    await db.apply(await db.newBatch().update(a, v(1)).update(c, v(3)).merkleize())
    const r1 = db.root
    const proofB = await db.exclusionProof(b)
    expect(proofB.type).to.equal('span')
    expect(verifyExclusionProof(codec, b, proofB, r1)).to.equal(true)
    // wrong span: the span [a, c) does not hold d
    expect(verifyExclusionProof(codec, d, proofB, r1)).to.equal(false)
    // the span's own start is present
    expect(verifyExclusionProof(codec, a, proofB, r1)).to.equal(false)
    // forged bounds that would hold d: the operation is then not the one in the log
    if (proofB.type !== 'span') { throw new Error('expected a span') }
    expect(verifyExclusionProof(codec, d, { ...proofB, nextKey: k(50) }, r1)).to.equal(false)
    expect(verifyExclusionProof(codec, b, { ...proofB, value: v(9) }, r1)).to.equal(false)
    // every flipped digest, chunk bit, ops root or location
    for (const t of tamperedOpProofs(proofB.proof)) { expect(verifyExclusionProof(codec, b, { ...proofB, proof: t }, r1)).to.equal(false) }

    // b becomes present: the old span still has b inside its bounds but is no longer active
    await db.apply(await db.newBatch().update(b, v(2)).merkleize())
    const r2 = db.root
    expect(verifyExclusionProof(codec, b, proofB, r2)).to.equal(false)
    expect(await code(db.exclusionProof(b))).to.equal('KeyExists')
    // the old operation itself is proven, but inactive: its bit is 0 in the new state
    const stale = await db.rangeProof(proofB.proof.loc, 1)
    const staleOp: OperationProof = { loc: proofB.proof.loc, chunk: stale.chunks[0], rangeProof: stale.proof }
    const o = proofB.proof.loc
    expect((staleOp.chunk[o >>> 3] >> (o & 7)) & 1).to.equal(0)
    expect(verifyExclusionProof(codec, b, { ...proofB, proof: staleOp }, r2)).to.equal(false)
    // forcing the bit on breaks the Merkle proof instead
    const forced = { ...staleOp, chunk: flip(staleOp.chunk, o >>> 3, 1 << (o & 7)) }
    expect(verifyExclusionProof(codec, b, { ...proofB, proof: forced }, r2)).to.equal(false)
    // garbage never throws
    const bytes = encodeExclusionProof(codec, proofB)
    expect(() => decodeExclusionProof(codec, bytes.subarray(0, bytes.length - 1))).to.throw()
    expect(() => decodeExclusionProof(codec, Uint8Array.of(7, ...bytes.subarray(1)))).to.throw()
  })

  it('an empty database proves exclusion with its last commit; the proof dies once a key exists', async () => {
    const db = await OrderedCurrentDb.open()
    const codec = db.codec
    const empty = await db.exclusionProof(k(1))
    if (empty.type !== 'empty') { throw new Error('expected a commit proof') }
    expect(verifyExclusionProof(codec, k(1), empty, db.root)).to.equal(true)
    expect(verifyExclusionProof(codec, k(200), empty, db.root)).to.equal(true)
    const bad: ExclusionProof = { ...empty, metadata: v(1) }
    expect(verifyExclusionProof(codec, k(1), bad, db.root)).to.equal(false)
    for (const t of tamperedOpProofs(empty.proof)) { expect(verifyExclusionProof(codec, k(1), { ...empty, proof: t }, db.root)).to.equal(false) }
    // emptied again after holding keys, with metadata on the last commit
    await db.apply(await db.newBatch().update(k(5), v(5)).merkleize())
    expect(verifyExclusionProof(codec, k(1), empty, db.root)).to.equal(false)
    expect((await db.exclusionProof(k(1))).type).to.equal('span')
    await db.apply(await db.newBatch().delete(k(5)).withMetadata(v(8)).merkleize())
    const again = await db.exclusionProof(k(1))
    expect(again.type === 'empty' && hex(again.metadata as Uint8Array)).to.equal(hex(v(8)))
    expect(verifyExclusionProof(codec, k(1), decodeExclusionProof(codec, encodeExclusionProof(codec, again)), db.root)).to.equal(true)
    // an unordered codec cannot express these proofs
    expect(verifyExclusionProof(new AnyOpCodec(fixedField(32), fixedField(32), 'fixed'), k(1), again, db.root)).to.equal(false)
  })
})

describe('qmdb: OpsRootWitness', () => {
  it('binds the ops root to the canonical root (partial chunk or not, pruned or not) and nothing else', async () => {
    const db = await CurrentDb.open()
    let seenPartial = false
    let seenAligned = false
    for (let j = 0; j < 140; j++) {
      await db.apply(await db.newBatch().update(k(j % 7), v(j)).update(k(100 + (j % 3)), v(j)).merkleize())
      if (j === 100) { await db.prune(db.syncBoundary) }
      const w = db.opsRootWitness()
      expect(verifyOpsRootWitness(w, db.opsRoot, db.root)).to.equal(true)
      expect(verifyOpsRootWitness(w, flip(db.opsRoot, 0), db.root)).to.equal(false)
      // the canonical root from its parts, hashed here
      const parts = [db.opsRoot, w.graftedRoot]
      if (w.partial !== undefined) {
        const bits = new Uint8Array(8)
        new DataView(bits.buffer).setBigUint64(0, BigInt(w.partial.nextBit))
        parts.push(bits, w.partial.digest)
        expect(w.partial.nextBit).to.equal(db.size % 256)
        expect(hex(w.partial.digest)).to.equal(hex(sha(db.chunk(Math.floor(db.size / 256)))))
        seenPartial = true
      } else {
        expect(db.size % 256).to.equal(0)
        seenAligned = true
      }
      expect(hex(sha(...parts))).to.equal(hex(db.root))
      const round = decodeOpsRootWitness(encodeOpsRootWitness(w))
      expect(verifyOpsRootWitness(round, db.opsRoot, db.root)).to.equal(true)
      if (w.partial !== undefined) {
        expect(verifyOpsRootWitness({ ...w, partial: { ...w.partial, nextBit: w.partial.nextBit + 1 } }, db.opsRoot, db.root)).to.equal(false)
        expect(verifyOpsRootWitness({ ...w, partial: undefined }, db.opsRoot, db.root)).to.equal(false)
      }
      expect(verifyOpsRootWitness({ ...w, graftedRoot: flip(w.graftedRoot, 9) }, db.opsRoot, db.root)).to.equal(false)
    }
    expect(db.pruningBoundary).to.be.greaterThan(0)
    expect(seenPartial).to.equal(true)
    expect(seenAligned || db.size > 256).to.equal(true)
  })
})

describe('qmdb: current chunk size N', function () {
  this.timeout(60_000)

  it('N = 64 below one chunk: the canonical root is H(opsRoot ‖ ops-peak root ‖ u64be(size) ‖ H(two 32-byte chunks))', async () => {
    const d32 = await CurrentDb.open()
    const d64 = await CurrentDb.open({ chunkBytes: 64 })
    for (let j = 0; j < 30; j++) {
      for (const db of [d32, d64]) { await db.apply(await db.newBatch().update(k(j % 5), v(j)).delete(k(7)).update(k(9 + (j % 2)), v(j)).merkleize()) }
      expect(d64.size).to.be.below(512)
      expect(hex(d64.opsRoot)).to.equal(hex(d32.opsRoot))
      // no ops peak reaches height 9, so the grafted root is the ops peaks bagged with no inactive peak
      const grafted = computeRoot(d32.size, 0, d32.merkle.peakDigests())
      const bits = new Uint8Array(8)
      new DataView(bits.buffer).setBigUint64(0, BigInt(d32.size))
      const chunk64 = new Uint8Array([...d32.chunk(0), ...d32.chunk(1)])
      expect(hex(d64.root)).to.equal(hex(sha(d32.opsRoot, grafted, bits, sha(chunk64))))
      expect(hex(d64.chunk(0))).to.equal(hex(chunk64))
    }
  })

  it('N = 64: proofs verify with N = 64 only, sync boundaries are multiples of 512, reopen keeps the root, another N is refused', async () => {
    const datastore = new MemoryDatastore()
    const db = await OrderedCurrentDb.open({ datastore, chunkBytes: 64 })
    for (let j = 0; j < 200; j++) {
      await db.apply(await db.newBatch().update(k(j % 9), v(j)).update(k(50), v(j)).merkleize())
    }
    expect(db.size).to.be.above(1024)
    expect(db.syncBoundary % 512).to.equal(0)
    expect(db.syncBoundary).to.be.above(0)
    await db.prune(db.syncBoundary)
    const root = db.root
    for (let i = 0; i < 9; i++) {
      const { proof, value } = await db.orderedKeyValueProof(k(i))
      expect(proof.proof.chunk.length).to.equal(64)
      expect(verifyOrderedKeyValueProof(db.codec, k(i), value, proof, root, 64)).to.equal(true)
      expect(verifyOrderedKeyValueProof(db.codec, k(i), value, proof, root)).to.equal(false)
      const ex = await db.exclusionProof(k(i, 1))
      expect(verifyExclusionProof(db.codec, k(i, 1), ex, root, 64)).to.equal(true)
      expect(verifyExclusionProof(db.codec, k(i, 1), decodeExclusionProof(db.codec, encodeExclusionProof(db.codec, ex), 122, 64), root, 64)).to.equal(true)
      expect(verifyOperationProof(ex.proof, new Uint8Array(97), root, 64)).to.equal(false)
    }
    expect(verifyOpsRootWitness(db.opsRootWitness(), db.opsRoot, root)).to.equal(true)
    await db.commit()
    await db.close()
    const reopened = await OrderedCurrentDb.open({ datastore, chunkBytes: 64 })
    expect(hex(reopened.root)).to.equal(hex(root))
    await reopened.close()
    expect(await code(OrderedCurrentDb.open({ datastore }))).to.equal('UnexpectedData')
    const bad = await CurrentDb.open({ chunkBytes: 48 }).then(() => undefined, (e: unknown) => e)
    expect(bad).to.be.instanceOf(RangeError)
  })
})
