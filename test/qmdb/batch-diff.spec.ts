/**
 * The key changes a merkleized `any` batch records (`batch-diff.ts`), derived
 * by hand from the emission and floor-raise rules of commonware `storage/src/qmdb/any` for a tiny
 * in-memory database: new locations, parent-state locations, and entries
 * that carry the operation that set them (moves, and with fixed-size keys
 * the batch's own writes) instead of a value, which still read as their value.
 */
import { expect } from 'aegir/chai'
import { AnyDb } from '../../src/qmdb/index.ts'
import type { DiffEntry } from '../../src/qmdb/index.ts'

const k = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const v = (b: number): Uint8Array => new Uint8Array(32).fill(0x80 + b)

function summary (e: DiffEntry): [number, number, number, string] {
  let what = 'none'
  if (e.op !== undefined) { what = `op ${e.op[0].toString(16)}` } else if (e.value !== undefined) { what = `value ${e.value[0] - 0x80}` }
  return [e.key[0], e.loc, e.prev, what]
}

describe('qmdb: batch diff', () => {
  it('records creates, updates, deletes and floor-raise moves with their parent-state locations', async () => {
    const db = await AnyDb.open()
    // size 1 (bootstrap commit at 0, floor 0): creates a, b, c at 1, 2, 3; the raise skips the commit at 0
    // and moves a (1 -> 4); commit at 5 with floor 2
    const b1 = await db.newBatch().update(k(1), v(1)).update(k(2), v(2)).update(k(3), v(3)).merkleize()
    expect([...b1.diff.entries()].map(summary)).to.deep.equal([
      [1, 4, -1, 'op d2'],
      [2, 2, -1, 'op d2'],
      [3, 3, -1, 'op d2']
    ])
    expect([b1.size, b1.floor]).to.deep.equal([6, 2])
    // the batch's writes read as their values
    expect(await b1.get(k(2))).to.deep.equal(v(2))
    expect(await b1.get(k(3))).to.deep.equal(v(3))
    await db.apply(b1)

    // update b (at 2) -> 6, delete c (at 3) -> 7; 2 user steps, so the raise may move 3 operations
    // but scans only below the tip it started from (8): skips 2 and 3 (superseded), moves a (4 -> 8),
    // skips the commit at 5, moves b again (6 -> 9), skips the delete at 7; commit at 10 with floor 8
    const b2 = await db.newBatch().update(k(2), v(4)).delete(k(3)).merkleize()
    expect([...b2.diff.entries()].map(summary)).to.deep.equal([
      [2, 9, 2, 'op d2'],
      [3, -1, 3, 'op d1'],
      [1, 8, 4, 'op d2']
    ])
    expect([b2.size, b2.floor]).to.deep.equal([11, 8])
    // a moved operation still reads as its value
    expect(await b2.get(k(2))).to.deep.equal(v(4))
    expect(await b2.get(k(1))).to.deep.equal(v(1))
    expect(await b2.get(k(3))).to.equal(undefined)
    await db.apply(b2)
    expect([db.locationOf(k(1)), db.locationOf(k(2)), db.locationOf(k(3))]).to.deep.equal([8, 9, -1])
  })
})
