/**
 * The pending writes of an `any` batch (`mutations.ts`): one slot per key in
 * first-write order, the latest write winning, fixed-size fields copied at
 * write time (so the caller may reuse its arrays), variable-size ones kept.
 */
import { expect } from 'aegir/chai'
import { AnyDb } from '../../src/qmdb/index.ts'
import { Mutations } from '../../src/qmdb/mutations.ts'
import { varField } from '../../src/qmdb/ops.ts'

const k = (b: number): Uint8Array => new Uint8Array(32).fill(b)
const v = (b: number): Uint8Array => new Uint8Array(32).fill(0x80 + b)

describe('qmdb: batch mutations', () => {
  it('keeps one slot per key in first-write order; the latest write (or delete) wins', () => {
    const m = new Mutations(32, 32)
    m.set(k(1), v(1))
    m.set(k(2), v(2))
    m.set(k(1), null)
    m.set(k(3), v(3))
    m.set(k(2), v(5))
    // enough writes to grow every arena
    for (let i = 10; i < 200; i++) { m.set(k(i), v(i & 0x7f)) }
    m.set(k(1), v(9))
    expect(m.size).to.equal(3 + 190)
    expect([m.slotOf(k(1)), m.slotOf(k(2)), m.slotOf(k(3)), m.slotOf(k(4))]).to.deep.equal([0, 1, 2, -1])
    expect(m.keyOf(2)).to.deep.equal(k(3))
    expect(m.valueOf(0)).to.deep.equal(v(9))
    expect(m.valueOf(1)).to.deep.equal(v(5))
    expect(m.keyOf(192)).to.deep.equal(k(199))
    m.set(k(3), null)
    expect(m.valueOf(2)).to.equal(null)
    expect(m.deleted[2]).to.equal(1)
    expect(m.deleted[0]).to.equal(0)
  })

  it('rejects fields of the wrong size', () => {
    const m = new Mutations(32, 32)
    expect(() => { m.set(new Uint8Array(31), v(1)) }).to.throw(RangeError)
    expect(() => { m.set(k(1), new Uint8Array(33)) }).to.throw(RangeError)
    expect(m.size).to.equal(0)
  })

  it('keeps variable-size fields as given', () => {
    const m = new Mutations(undefined, undefined)
    const key = new Uint8Array([1, 2, 3])
    m.set(key, new Uint8Array([9]))
    m.set(new Uint8Array([1, 2, 3]), new Uint8Array([7, 7]))
    m.set(new Uint8Array([4]), null)
    expect(m.size).to.equal(2)
    expect(m.keyOf(0)).to.equal(key)
    expect(m.valueOf(0)).to.deep.equal(new Uint8Array([7, 7]))
    expect(m.valueOf(1)).to.equal(null)
  })

  it('a batch copies fixed-size keys and values when written: the caller may reuse its arrays', async () => {
    const db = await AnyDb.open()
    const key = k(1)
    const value = v(1)
    const b = db.newBatch().update(key, value)
    key.fill(2)
    value.fill(0)
    expect(await b.get(k(1))).to.deep.equal(v(1))
    await db.apply(await b.merkleize())
    expect(await db.get(k(1))).to.deep.equal(v(1))
    expect(await db.get(k(2))).to.equal(undefined)
  })

  it('variable-size fields merkleize through the same batch', async () => {
    const db = await AnyDb.open({ key: varField(64), value: varField(64), encoding: 'variable' })
    const m = await db.newBatch().update(new Uint8Array([3]), new Uint8Array([1, 2])).update(new Uint8Array([1]), new Uint8Array([5])).delete(new Uint8Array([2])).merkleize()
    await db.apply(m)
    expect(await db.get(new Uint8Array([3]))).to.deep.equal(new Uint8Array([1, 2]))
    expect(await db.get(new Uint8Array([1]))).to.deep.equal(new Uint8Array([5]))
    expect(db.activeKeys).to.equal(2)
  })
})
