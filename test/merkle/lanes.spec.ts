/**
 * The batched SHA-256 of `sha256-lanes.ts` (WebAssembly SIMD, eight messages
 * per call lane set, JS fallback) against node:crypto on random inputs, and an
 * MMR built through it against an independently computed root.
 */
import { createHash, randomBytes } from 'node:crypto'
import { expect } from 'aegir/chai'
import { Mmr } from '../../src/merkle/index.ts'
import { Sha256Lanes, sha256Lanes } from '../../src/merkle/sha256-lanes.ts'
import { hex, u64be } from '../util/bytes.ts'

function sha256 (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) { h.update(p) }
  return new Uint8Array(h.digest())
}

/** Positions above 2^32 too (the high word of the u64 prefix). */
function randomPos (): number {
  return Math.random() < 0.5 ? randomBytes(4).readUInt32BE() : randomBytes(4).readUInt32BE() * 0x1000 + 7
}

describe('merkle: batched SHA-256 lanes', () => {
  it('WebAssembly SIMD is available here (the accelerated path is the one tested)', () => {
    expect(sha256Lanes.accelerated).to.equal(true)
  })

  for (const [label, lanes] of [['simd', sha256Lanes], ['js fallback', new Sha256Lanes(false)]] as const) {
    it(`${label}: node digests equal node:crypto, including more than one call's worth and a partial lane set`, () => {
      const n = 4096 * 2 + 3
      const src = randomBytes(64 * n)
      const pos = Array.from({ length: n }, randomPos)
      const out = new Uint8Array(32 * n)
      for (let i = 0; i < n; i++) { lanes.node(pos[i], src, 64 * i, src, 64 * i + 32, out, 32 * i) }
      lanes.flush()
      for (let i = 0; i < n; i++) {
        const want = sha256(u64be(pos[i]), src.subarray(64 * i, 64 * i + 64))
        expect(hex(out.subarray(32 * i, 32 * i + 32)), `node ${i}`).to.equal(hex(want))
      }
    })

    it(`${label}: leaf digests equal node:crypto for every element length from 0 to 200 bytes (one-, two- and three-block messages)`, () => {
      const elements = Array.from({ length: 201 }, (_, len) => randomBytes(len + 3))
      const pos = elements.map(randomPos)
      const out = new Uint8Array(32 * elements.length)
      // elements at an offset: the lanes must read [eo, eo + elen) only
      elements.forEach((e, len) => { lanes.leaf(pos[len], e, 2, len, out, 32 * len) })
      lanes.flush()
      elements.forEach((e, len) => {
        const want = sha256(u64be(pos[len]), e.subarray(2, 2 + len))
        expect(hex(out.subarray(32 * len, 32 * len + 32)), `length ${len}`).to.equal(hex(want))
      })
    })

    it(`${label}: nodes and leaves hashed in place in the arena, mixed with plain arrays, across a full queue and a partial lane set`, () => {
      const n = 2048 + 13
      const arena = lanes.arena(32 * (4 * n))
      const children = randomBytes(64 * n)
      arena.set(children)
      const plain = randomBytes(32)
      const pos = Array.from({ length: n }, randomPos)
      const elements = Array.from({ length: n }, (_, i) => randomBytes(i % 120))
      const plainOut = new Uint8Array(32 * n)
      const nodeOut = 64 * n
      const leafOut = 96 * n
      for (let i = 0; i < n; i++) {
        // every third node's left child is a plain array, every fifth node's digest goes to a plain array
        const left = i % 3 === 0 ? plain : arena
        const out = i % 5 === 0 ? plainOut : arena
        lanes.node(pos[i], left, i % 3 === 0 ? 0 : 64 * i, arena, 64 * i + 32, out, i % 5 === 0 ? 32 * i : nodeOut + 32 * i)
        lanes.leaf(pos[i], elements[i], 0, elements[i].length, arena, leafOut + 32 * i)
      }
      lanes.flush()
      for (let i = 0; i < n; i++) {
        const left = i % 3 === 0 ? plain : children.subarray(64 * i, 64 * i + 32)
        const want = sha256(u64be(pos[i]), left, children.subarray(64 * i + 32, 64 * i + 64))
        const got = i % 5 === 0 ? plainOut.subarray(32 * i, 32 * i + 32) : arena.subarray(nodeOut + 32 * i, nodeOut + 32 * i + 32)
        expect(hex(got), `node ${i}`).to.equal(hex(want))
        expect(hex(arena.subarray(leafOut + 32 * i, leafOut + 32 * i + 32)), `leaf ${i}`).to.equal(hex(sha256(u64be(pos[i]), elements[i])))
      }
      const kept = lanes.detach(arena)
      expect(hex(kept)).to.equal(hex(arena))
      expect(kept.buffer === arena.buffer).to.equal(!lanes.accelerated)
    })

    it(`${label}: the idle lanes of a partial flush write nowhere a previous flush wrote`, () => {
      // children in the arena, changed after the first flush: a lane replaying its stale descriptor would write a new digest
      const arena = lanes.arena(32 * 26)
      const src = randomBytes(64)
      arena.set(src, 768)
      for (let i = 0; i < 8; i++) { lanes.node(i, arena, 768, arena, 800, arena, 32 * i) }
      lanes.flush()
      const before = hex(arena.subarray(0, 256))
      arena.fill(7, 768)
      const out = new Uint8Array(32 * 3)
      for (let i = 0; i < 3; i++) { lanes.node(100 + i, src, 0, src, 32, out, 32 * i) }
      for (let i = 0; i < 3; i++) { lanes.leaf(200 + i, src, 0, 20 + 20 * i, arena, 256 + 32 * i) }
      lanes.flush()
      expect(hex(arena.subarray(0, 256))).to.equal(before)
      expect(hex(arena.subarray(352, 768))).to.equal('00'.repeat(768 - 352))
      for (let i = 0; i < 3; i++) {
        expect(hex(out.subarray(32 * i, 32 * i + 32))).to.equal(hex(sha256(u64be(100 + i), src)))
        expect(hex(arena.subarray(256 + 32 * i, 288 + 32 * i))).to.equal(hex(sha256(u64be(200 + i), src.subarray(0, 20 + 20 * i))))
      }
    })

    it(`${label}: an arena beyond the initial wasm memory, and one too big to keep there, hash the same`, () => {
      for (const bytes of [3 << 20, (16 << 20) + 32]) {
        const arena = lanes.arena(bytes)
        const l = randomBytes(32)
        arena.set(l, bytes - 96)
        lanes.node(2 ** 40 + 3, arena, bytes - 96, l, 0, arena, bytes - 32)
        lanes.flush()
        expect(hex(arena.subarray(bytes - 32)), `${bytes} bytes`).to.equal(hex(sha256(u64be(2 ** 40 + 3), l, l)))
      }
      lanes.arena(0)
    })

    it(`${label}: inputs may be overwritten once queued`, () => {
      const l = randomBytes(32)
      const r = randomBytes(32)
      const want = sha256(u64be(9), l, r)
      const out = new Uint8Array(32)
      lanes.node(9, l, 0, r, 0, out, 0)
      l.fill(0)
      r.fill(0)
      lanes.flush()
      expect(hex(out)).to.equal(hex(want))
    })
  }

  for (const elementBytes of [32, 65]) {
    it(`an MMR of ${elementBytes === 32 ? 'one' : 'two'}-block leaves appended in uneven batches has the root of a node:crypto reference MMR`, () => {
      // reference: the append rule of commonware `storage/src/mmr` with one node:crypto call per hash, backward bagging, k = 0
      const stack: Array<{ height: number, digest: Uint8Array }> = []
      let pos = 0
      const elements = Array.from({ length: 1000 }, () => randomBytes(elementBytes))
      for (const e of elements) {
        stack.push({ height: 0, digest: sha256(u64be(pos++), e) })
        while (stack.length >= 2 && stack[stack.length - 1].height === stack[stack.length - 2].height) {
          const right = stack.pop() as { height: number, digest: Uint8Array }
          const left = stack.pop() as { height: number, digest: Uint8Array }
          stack.push({ height: left.height + 1, digest: sha256(u64be(pos++), left.digest, right.digest) })
        }
      }
      let folded = stack[stack.length - 1].digest
      for (let j = stack.length - 2; j >= 0; j--) { folded = sha256(stack[j].digest, folded) }
      const want = sha256(u64be(elements.length), folded)

      const mmr = Mmr.inMemory()
      for (let s = 0; s < elements.length; s += 299) {
        const batch = mmr.newBatch()
        for (const e of elements.slice(s, s + 299)) { batch.add(e) }
        mmr.apply(batch.merkleize())
      }
      expect(mmr.size).to.equal(pos)
      expect(hex(mmr.root(0, 'backward'))).to.equal(hex(want))
    })
  }
})
