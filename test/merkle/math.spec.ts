import { expect } from 'aegir/chai'
import {
  locToPos, posToLoc, isValidSize, toNearestSize, posToHeight, peaks, nodesToPin, inactivePeaks, trailingOnes, popcount, bitLength
} from '../../src/merkle/index.ts'

describe('merkle: MMR arithmetic', () => {
  it('maps locations to positions (commonware `storage/src/mmr` table)', () => {
    const table = [0, 1, 3, 4, 7, 8, 10, 11, 15, 16, 18, 19, 22, 23, 25, 26]
    table.forEach((pos, loc) => {
      expect(locToPos(loc)).to.equal(pos)
      expect(posToLoc(pos)).to.equal(loc)
    })
  })

  it('rejects non-leaf positions', () => {
    for (const p of [2, 5, 6, 9, 12, 13, 14, 17, 20, 21, 24, 27, 28, 29, 30]) { expect(posToLoc(p)).to.equal(undefined) }
  })

  it('agrees with a brute-force MMR builder for the first 10,000 sizes', () => {
    // build sizes by the append rule: leaf, then trailingOnes(n) parents
    const valid = new Set<number>([0])
    const heights: number[] = []
    let size = 0
    for (let n = 0; n < 5100; n++) {
      expect(locToPos(n)).to.equal(size)
      heights.push(0)
      size++
      let h = 0
      let m = n
      while ((m & 1) === 1) { h++; m >>= 1; heights.push(h); size++ }
      valid.add(size)
    }
    for (let s = 0; s <= 10_000; s++) {
      expect(isValidSize(s)).to.equal(valid.has(s), `size ${s}`)
      let nearest = s
      while (!valid.has(nearest)) { nearest-- }
      expect(toNearestSize(s)).to.equal(nearest, `nearest to ${s}`)
    }
    heights.forEach((h, pos) => { expect(posToHeight(pos)).to.equal(h, `height of ${pos}`) })
  })

  it('inverts locToPos for large locations', () => {
    for (const n of [2 ** 31 - 1, 2 ** 32, 2 ** 32 + 12345, 2 ** 40 + 7, 2 ** 50 - 1, 2 ** 52]) {
      expect(posToLoc(locToPos(n))).to.equal(n)
      // the next position is a leaf only when leaf n has no parents (n even);
      // past MAX_LEAVES positions are no longer exact and are rejected
      if (n < 2 ** 52) { expect(posToLoc(locToPos(n) + 1)).to.equal(n % 2 === 0 ? n + 1 : undefined) }
    }
  })

  it('finds peaks (sizes 19 and 26)', () => {
    expect(peaks(19)).to.deep.equal([{ pos: 14, height: 3 }, { pos: 17, height: 1 }, { pos: 18, height: 0 }])
    expect(peaks(26)).to.deep.equal([{ pos: 14, height: 3 }, { pos: 21, height: 2 }, { pos: 24, height: 1 }, { pos: 25, height: 0 }])
    expect(peaks(0)).to.deep.equal([])
    // peak heights are the set bits of the leaf count, highest first
    for (let n = 1; n < 3000; n++) {
      const hs = peaks(locToPos(n)).map(p => p.height)
      const bits: number[] = []
      for (let b = 12; b >= 0; b--) { if ((n >> b) & 1) { bits.push(b) } }
      expect(hs).to.deep.equal(bits)
    }
  })

  it('heights of known positions', () => {
    expect(posToHeight(14)).to.equal(3)
    expect(posToHeight(2)).to.equal(1)
    expect(posToHeight(17)).to.equal(1)
  })

  it('nodesToPin are the peaks of MMR(loc)', () => {
    expect(nodesToPin(9)).to.deep.equal([14, 15])
    expect(nodesToPin(0)).to.deep.equal([])
    expect(nodesToPin(11)).to.deep.equal([14, 17, 18])
    for (let n = 0; n < 200; n++) { expect(nodesToPin(n).length).to.equal(popcount(n)) }
  })

  it('counts inactive peaks', () => {
    // 21 leaves: peaks cover 16, 4, 1 leaves
    expect(inactivePeaks(21, 20)).to.equal(2)
    expect(inactivePeaks(21, 16)).to.equal(1)
    expect(inactivePeaks(21, 15)).to.equal(0)
    expect(inactivePeaks(21, 21)).to.equal(3)
    expect(inactivePeaks(16, 9)).to.equal(0)
    expect(inactivePeaks(0, 0)).to.equal(0)
  })

  it('bit helpers handle values above 32 bits', () => {
    expect(popcount(2 ** 52 - 1)).to.equal(52)
    expect(trailingOnes(2 ** 40 - 1)).to.equal(40)
    expect(trailingOnes(0xffffffff)).to.equal(32)
    expect(trailingOnes(6)).to.equal(0)
    expect(bitLength(2 ** 52)).to.equal(53)
  })
})
