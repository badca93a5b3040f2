import { expect } from 'aegir/chai'
import { CodecError, Reader, Writer } from '../../src/codec/index.ts'
import {
  Mmr, buildRangeProof, proofToBytes, proofFromBytes, verifyRangeProof, verifyProofAndPinnedNodes, reconstructRoot,
  peaks, locToPos, MerkleError, decodeProof, nodesToPin
} from '../../src/merkle/index.ts'
import { flip, u64be } from '../util/bytes.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import { Rng } from '../util/rng.ts'
import type { Bagging, Proof } from '../../src/merkle/index.ts'

const elements = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => u64be(i * 7 + 3))

function build (n: number): { mmr: Mmr, els: Uint8Array[] } {
  const mmr = Mmr.inMemory()
  const els = elements(n)
  mmr.append(els)
  return { mmr, els }
}

describe('merkle: range proofs', function () {
  this.timeout(300_000)

  /** Every range `[s, e)` of an `n`-leaf tree, as pairs. */
  const ranges = (n: number): Array<[number, number]> => {
    const out: Array<[number, number]> = []
    for (let s = 0; s < n; s++) {
      for (let e = s + 1; e <= n; e++) { out.push([s, e]) }
    }
    return out
  }

  it('every range of every MMR with 1..64 leaves, every k, both baggings: verifies; tampering fails; bytes round-trip', () => {
    const rng = new Rng(42)
    let cases = 0
    const check = (mmr: Mmr, els: Uint8Array[], k: number, bagging: Bagging, s: number, e: number): void => {
      const n = els.length
      const root = mmr.root(k, bagging)
      const proof = buildRangeProof(p => mmr.nodeSync(p), n, k, s, e, bagging)
      const range = els.slice(s, e)
      expect(verifyRangeProof(proof, s, range, root, bagging)).to.equal(true, `n=${n} k=${k} [${s},${e}) ${bagging}`)
      const bytes = proofToBytes(proof)
      expect(proofFromBytes(bytes, proof.digests.length)).to.deep.equal(proof)
      // one random byte flip in the encoded proof (header or digest) must fail:
      // either the bytes no longer decode, or the decoded proof does not verify
      const i = rng.int(bytes.length)
      expect(decodesAndVerifies(flip(bytes, i, 1 + rng.int(255)), s, range, root, bagging)).to.equal(false, `proof byte ${i}`)
      // a flipped byte of one element
      const ei = rng.int(range.length)
      const tampered = range.slice()
      tampered[ei] = flip(range[ei], rng.int(8))
      expect(verifyRangeProof(proof, s, tampered, root, bagging)).to.equal(false)
      // a flipped byte of the root
      expect(verifyRangeProof(proof, s, range, flip(root, rng.int(32)), bagging)).to.equal(false)
      // wrong start, one element more or less
      if (s + 1 < n && e < n) { expect(verifyRangeProof(proof, s + 1, range, root, bagging)).to.equal(false) }
      if (e < n) { expect(verifyRangeProof(proof, s, els.slice(s, e + 1), root, bagging)).to.equal(false) }
      if (e - s > 1) { expect(verifyRangeProof(proof, s, range.slice(0, -1), root, bagging)).to.equal(false) }
    }
    for (let n = 1; n <= 64; n++) {
      const { mmr, els } = build(n)
      const configs: Array<[number, Bagging]> = [[0, 'forward']]
      for (let k = 0; k <= peaks(mmr.size).length; k++) { configs.push([k, 'backward']) }
      for (const [k, bagging] of configs) {
        for (const [s, e] of ranges(n)) {
          cases++
          check(mmr, els, k, bagging, s, e)
        }
      }
    }
    expect(cases).to.be.greaterThan(150_000)
  })

  it('long ranges (whole subtrees of up to 2^12 leaves hashed a level at a time) verify; a changed leaf deep inside fails', () => {
    const { mmr, els } = build(20_000)
    const root = mmr.root()
    const rng = new Rng(7)
    for (const [s, n] of [[0, 4096], [4096, 4096], [12_345, 4096], [8191, 4098], [16_384, 3616], [19_983, 17], [5, 16_000]]) {
      const proof = buildRangeProof(p => mmr.nodeSync(p), els.length, 0, s, s + n)
      const range = els.slice(s, s + n)
      expect(verifyRangeProof(proof, s, range, root)).to.equal(true, `[${s}, ${s + n})`)
      // the same root through the walk that records every node (one node at a time)
      expect(reconstructRoot(proof, s, range, 'backward', { extracted: new Map() })).to.deep.equal(root)
      const i = rng.int(n)
      const tampered = range.slice()
      tampered[i] = flip(range[i], rng.int(8))
      expect(verifyRangeProof(proof, s, tampered, root)).to.equal(false, `element ${s + i} changed`)
      // two neighbours swapped: the leaf positions are hashed in
      const j = Math.min(i, n - 2)
      const swapped = range.slice()
      swapped[j] = range[j + 1]
      swapped[j + 1] = range[j]
      expect(verifyRangeProof(proof, s, swapped, root)).to.equal(false, `elements ${s + j} and ${s + j + 1} swapped`)
    }
  })

  it('flipping every byte of every proof fails (MMRs up to 16 leaves)', () => {
    const check = (mmr: Mmr, els: Uint8Array[], k: number, s: number, e: number): void => {
      const root = mmr.root(k)
      const bytes = proofToBytes(buildRangeProof(p => mmr.nodeSync(p), els.length, k, s, e))
      for (let i = 0; i < bytes.length; i++) {
        expect(decodesAndVerifies(flip(bytes, i), s, els.slice(s, e), root, 'backward')).to.equal(false)
      }
      // an extra or a missing digest
      const proof = proofFromBytes(bytes, 1000)
      expect(verifyRangeProof({ ...proof, digests: [...proof.digests, new Uint8Array(32)] }, s, els.slice(s, e), root)).to.equal(false)
      if (proof.digests.length > 0) { expect(verifyRangeProof({ ...proof, digests: proof.digests.slice(1) }, s, els.slice(s, e), root)).to.equal(false) }
    }
    for (let n = 1; n <= 16; n++) {
      const { mmr, els } = build(n)
      for (let k = 0; k <= peaks(mmr.size).length; k++) {
        for (const [s, e] of ranges(n)) { check(mmr, els, k, s, e) }
      }
    }
  })

  it('rejects a decoded proof with more digests than the cap before allocating', () => {
    const { mmr } = build(20)
    const proof = buildRangeProof(p => mmr.nodeSync(p), 20, 0, 3, 4)
    const bytes = proofToBytes(proof)
    expect(() => proofFromBytes(bytes, proof.digests.length - 1)).to.throw(CodecError).with.property('code', 'InvalidLength')
    // a header claiming 2^32-1 digests with no digest bytes: rejected by the cap, not by running out of bytes
    const huge = new Writer().varint(20).varint(0).varint(0xffffffff).finish()
    expect(() => proofFromBytes(huge, 122)).to.throw(CodecError).with.property('code', 'InvalidLength')
    expect(() => decodeProof(new Reader(huge), 2 ** 32)).to.throw(CodecError).with.property('code', 'EndOfBuffer')
  })

  it('the empty proof verifies only the empty tree', () => {
    const empty: Proof = { leaves: 0, inactivePeaks: 0, digests: [] }
    expect(verifyRangeProof(empty, 0, [], Mmr.inMemory().root())).to.equal(true)
    expect(verifyRangeProof(empty, 0, [], build(1).mmr.root())).to.equal(false)
    expect(verifyRangeProof({ leaves: 1, inactivePeaks: 0, digests: [] }, 0, [], build(1).mmr.root())).to.equal(false)
  })

  it('malformed proofs give typed errors', () => {
    const { mmr, els } = build(11)
    const proof = buildRangeProof(p => mmr.nodeSync(p), 11, 0, 2, 5)
    const codes = (p: Proof, s: number, e: Uint8Array[]): string => {
      try { reconstructRoot(p, s, e); return 'ok' } catch (err) { expect(err).to.be.instanceOf(MerkleError); return (err as MerkleError).code }
    }
    expect(codes(proof, 11, [els[0]])).to.equal('InvalidStartLoc')
    expect(codes(proof, 9, els.slice(0, 3))).to.equal('InvalidEndLoc')
    expect(codes({ ...proof, inactivePeaks: 9 }, 2, els.slice(2, 5))).to.equal('InvalidSize')
    expect(codes({ ...proof, digests: proof.digests.slice(1) }, 2, els.slice(2, 5))).to.equal('MissingDigests')
    expect(codes({ ...proof, digests: [...proof.digests, proof.digests[0]] }, 2, els.slice(2, 5))).to.equal('ExtraDigests')
  })

  it('historical proofs at an older size verify against the older root', async () => {
    const mmr = Mmr.inMemory()
    const els = elements(50)
    const roots: Uint8Array[] = [mmr.root()]
    for (const e of els) { mmr.append([e]); roots.push(mmr.root()) }
    for (let size = 1; size <= 50; size += 7) {
      for (let s = 0; s < size; s += 3) {
        const proof = await mmr.proof(s, size, 0, size)
        expect(proof.leaves).to.equal(size)
        expect(verifyRangeProof(proof, s, els.slice(s, size), roots[size])).to.equal(true)
        expect(verifyRangeProof(proof, s, els.slice(s, size), roots[50])).to.equal(size === 50)
      }
    }
  })

  describe('pruning and pinned nodes', () => {
    it('after pruning to any location every later range is provable; the boundary check accepts the true pins only', async () => {
      const rng = new Rng(7)
      for (let n = 1; n <= 40; n++) {
        for (let loc = 0; loc <= n; loc++) {
          const { mmr, els } = build(n)
          await mmr.prune(loc)
          const k = rng.int(peaks(mmr.size).length + 1)
          const root = mmr.root(k)
          for (let s = loc; s < n; s++) {
            for (let e = s + 1; e <= n; e++) {
              const proof = await mmr.proof(s, e, k)
              expect(verifyRangeProof(proof, s, els.slice(s, e), root)).to.equal(true, `n=${n} pruned=${loc} [${s},${e})`)
            }
            const proof = await mmr.proof(s, s + 1, k)
            const pins = await mmr.pinnedNodesAt(s)
            expect(pins.length).to.equal(nodesToPin(s).length)
            expect(verifyProofAndPinnedNodes(proof, s, [els[s]], pins, root)).to.equal(true, `pins at ${s} (n=${n}, pruned ${loc})`)
            for (let i = 0; i < pins.length; i++) {
              const altered = pins.slice()
              altered[i] = flip(pins[i], rng.int(32))
              expect(verifyProofAndPinnedNodes(proof, s, [els[s]], altered, root)).to.equal(false, 'altered pin')
              expect(verifyProofAndPinnedNodes(proof, s, [els[s]], pins.filter((_, j) => j !== i), root)).to.equal(false, 'missing pin')
            }
            expect(verifyProofAndPinnedNodes(proof, s, [els[s]], [...pins, new Uint8Array(32)], root)).to.equal(false, 'extra pin')
            if (pins.length >= 2) { expect(verifyProofAndPinnedNodes(proof, s, [els[s]], [...pins].reverse(), root)).to.equal(false, 'reordered pins') }
          }
          // a range starting below the pruning boundary cannot be proven
          if (loc > 1) {
            const pruned = (await mmr.proof(0, 1).then(() => 'ok', (err: MerkleError) => err.code))
            expect(pruned).to.equal('ElementPruned')
          }
        }
      }
    })

    it('pins are the peaks of the pruned prefix, and pruning never changes the root', async () => {
      const { mmr } = build(37)
      const before = mmr.root(2)
      await mmr.prune(21)
      expect(mmr.root(2)).to.deep.equal(before)
      const full = build(21).mmr
      expect(await mmr.pinnedNodesAt(21)).to.deep.equal(full.peakDigests())
    })
  })

  it('fuzzes the proof decoder with 100k inputs', () => {
    const valid: Uint8Array[] = []
    const { mmr } = build(30)
    for (let s = 0; s < 30; s += 5) { valid.push(proofToBytes(buildRangeProof(p => mmr.nodeSync(p), 30, 1, s, Math.min(30, s + 3)))) }
    const res = fuzzDecoder(b => proofFromBytes(b, 20), valid, 100_000, 9)
    expect(res.rejected).to.be.greaterThan(0)
  })

  it('fuzzed proofs never make verification throw anything but MerkleError', () => {
    const { mmr, els } = build(25)
    const root = mmr.root(1)
    const rng = new Rng(3)
    for (let i = 0; i < 20_000; i++) {
      const s = rng.int(25)
      const e = s + 1 + rng.int(25 - s)
      const proof = buildRangeProof(p => mmr.nodeSync(p), 25, 1, s, e)
      const mutated: Proof = {
        leaves: rng.int(3) === 0 ? rng.int(80) : proof.leaves,
        inactivePeaks: rng.int(3) === 0 ? rng.int(8) : proof.inactivePeaks,
        digests: rng.int(3) === 0 ? proof.digests.slice(rng.int(proof.digests.length + 1)) : proof.digests
      }
      const start = rng.int(4) === 0 ? rng.int(40) : s
      expect(() => verifyRangeProof(mutated, start, els.slice(s, e), root)).to.not.throw()
      expect(() => verifyProofAndPinnedNodes(mutated, start, els.slice(s, e), [], root)).to.not.throw()
    }
  })

  it('rejects an element count past the leaves and start past the end', () => {
    const { mmr, els } = build(8)
    const proof = buildRangeProof(p => mmr.nodeSync(p), 8, 0, 0, 8)
    expect(verifyRangeProof(proof, 0, [...els, els[0]], mmr.root())).to.equal(false)
    expect(locToPos(8)).to.equal(mmr.size)
  })
})

function decodesAndVerifies (bytes: Uint8Array, s: number, range: Uint8Array[], root: Uint8Array, bagging: Bagging): boolean {
  let p: Proof
  try {
    p = proofFromBytes(bytes, 1000)
  } catch (err) {
    expect(err).to.be.instanceOf(CodecError)
    return false
  }
  return verifyRangeProof(p, s, range, root, bagging)
}
