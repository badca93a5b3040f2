/**
 * The fixed-key snapshot table (src/qmdb/key-index.ts) against a `Map`
 * model: random sets, overwrites and deletes through growth, tombstone
 * rebuilds and `reserve` (before filling and in the middle of a workload)
 * leave exactly the model's entries, `swapAt` and `deleteAt` return the
 * location they replace or remove, `clear` empties the table for reuse, and
 * `setAt` reads a key in place.
 */
import { expect } from 'aegir/chai'
import { FixedKeyIndex, MapKeyIndex } from '../../src/qmdb/key-index.ts'
import { Rng } from '../util/rng.ts'

const KEY = 12

function keyOf (i: number): Uint8Array {
  const k = new Uint8Array(KEY)
  new DataView(k.buffer).setUint32(0, i)
  new DataView(k.buffer).setUint32(8, Math.imul(i, 0x9e3779b1) >>> 0)
  return k
}

function expectSame (index: FixedKeyIndex | MapKeyIndex, model: Map<number, number>, space: number): void {
  expect(index.size).to.equal(model.size)
  for (let i = 0; i < space; i++) { expect(index.get(keyOf(i)), `key ${i}`).to.equal(model.get(i) ?? -1) }
  const seen = new Map<string, number>()
  for (const [k, loc] of index.entries()) { seen.set(Buffer.from(k).toString('hex'), loc) }
  expect(seen.size).to.equal(model.size)
  for (const [i, loc] of model) { expect(seen.get(Buffer.from(keyOf(i)).toString('hex'))).to.equal(loc) }
}

describe('qmdb: the fixed-key index', () => {
  for (const reserveAt of [undefined, 0, 1500]) {
    it(`matches a Map through growth and tombstones${reserveAt === undefined ? '' : `, reserve(5000) after ${reserveAt} steps`}`, () => {
      const rng = new Rng(reserveAt ?? 7)
      const index = new FixedKeyIndex(KEY, 4)
      const model = new Map<number, number>()
      const space = 3000
      for (let step = 0; step < 6000; step++) {
        if (step === reserveAt) { index.reserve(5000) }
        const i = rng.int(space)
        // odd steps go through the in-place forms, which also return the key's previous location
        const inPlace = (step & 1) === 1
        if (rng.int(4) === 0) {
          if (inPlace) { expect(index.deleteAt(keyOf(i), 0), `deleteAt ${i}`).to.equal(model.get(i) ?? -1) } else { index.delete(keyOf(i)) }
          model.delete(i)
        } else {
          if (inPlace) { expect(index.swapAt(keyOf(i), 0, step), `swapAt ${i}`).to.equal(model.get(i) ?? -1) } else { index.set(keyOf(i), step) }
          model.set(i, step)
        }
      }
      expectSame(index, model, space)
      // a reserve below the current size changes nothing
      index.reserve(1)
      expectSame(index, model, space)
    })
  }

  it('clear empties the table for reuse; 32-byte keys (records without padding) and 12-byte ones (padded) alike', () => {
    for (const size of [32, KEY]) {
      const index = new FixedKeyIndex(size, 4)
      const key = (i: number): Uint8Array => { const k = new Uint8Array(size); new DataView(k.buffer).setUint32(size - 4, i); return k }
      for (let i = 0; i < 100; i++) { index.set(key(i), i) }
      index.clear()
      expect(index.size).to.equal(0)
      expect(index.get(key(7))).to.equal(-1)
      expect([...index.entries()]).to.deep.equal([])
      for (let i = 50; i < 150; i++) { index.set(key(i), 2 * i) }
      expect(index.size).to.equal(100)
      expect(index.get(key(49))).to.equal(-1)
      expect(index.get(key(149))).to.equal(298)
      expect([...index.entries()].map(([k, l]) => [new DataView(k.buffer, k.byteOffset).getUint32(size - 4), l]).sort((a, b) => a[0] - b[0])[0]).to.deep.equal([50, 100])
    }
  })

  it('setAt reads the key where it sits; a wrong-size key is refused', () => {
    const index = new FixedKeyIndex(KEY)
    const bytes = new Uint8Array(3 * KEY)
    bytes.set(keyOf(5), KEY)
    index.setAt(bytes, KEY, 42)
    expect(index.get(keyOf(5))).to.equal(42)
    expect(() => { index.setAt(bytes, 2 * KEY + 1, 1) }).to.throw(RangeError)
  })
})
