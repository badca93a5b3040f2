/**
 * Ordered databases (`OrderedAnyDb`, `OrderedCurrentDb`) and their index:
 * - a hand-derived operation sequence (emission order, next keys, predecessor
 * rewrite, floor raise) from the rules of commonware's ordered merkleize;
 * - against an independent model (a sorted key list): after every batch of
 * random creates, updates and deletes — applied one by one, or as chains of
 * unapplied batches — every active key's next key is its cyclic successor,
 * spans cover absent keys, `entries(from, to)` is the model's range; the same
 * after a LevelDB reopen and a rewind;
 * - `OrderedKeyIndex` (fixed and variable keys) against a sorted array under
 * random inserts, overwrites and deletes (leaf splits and merges).
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { OrderedAnyDb, OrderedCurrentDb, OrderedKeyIndex, QmdbError, compareBytes, spanContains, varField } from '../../src/qmdb/index.ts'
import { hex } from '../util/bytes.ts'
import { Rng } from '../util/rng.ts'
import type { AnyOp, MerkleizedAnyBatch } from '../../src/qmdb/index.ts'

type OrderedDb = OrderedAnyDb | OrderedCurrentDb

/** A 32-byte key whose first byte is `b` (so key order is easy to read). */
function k (b: number, tail = 0): Uint8Array {
  const out = new Uint8Array(32)
  out[0] = b
  out[31] = tail
  return out
}

function v (i: number): Uint8Array {
  return new Uint8Array(32).fill(i)
}

/** The reference: active keys → values, ordered by sorting on demand. */
class Model {
  readonly map = new Map<string, { key: Uint8Array, value: Uint8Array }>()

  write (key: Uint8Array, value: Uint8Array | null): void {
    if (value === null) { this.map.delete(hex(key)) } else { this.map.set(hex(key), { key, value }) }
  }

  sorted (): Array<{ key: Uint8Array, value: Uint8Array }> {
    return [...this.map.values()].sort((a, b) => compareBytes(a.key, b.key))
  }

  /** Cyclic successor of an active key. */
  successor (key: Uint8Array): Uint8Array {
    const s = this.sorted()
    const i = s.findIndex(e => compareBytes(e.key, key) > 0)
    return (i < 0 ? s[0] : s[i]).key
  }

  /** The active key whose span holds `key` (the greatest key <= it, cyclically). */
  spanStart (key: Uint8Array): Uint8Array | undefined {
    const s = this.sorted()
    if (s.length === 0) { return undefined }
    const below = s.filter(e => compareBytes(e.key, key) <= 0)
    return (below.length > 0 ? below[below.length - 1] : s[s.length - 1]).key
  }
}

async function collect (it: AsyncIterable<{ key: Uint8Array, value: Uint8Array }>): Promise<string[]> {
  const out: string[] = []
  for await (const e of it) { out.push(`${hex(e.key)}=${hex(e.value)}`) }
  return out
}

/** Every read of `db` agrees with `model`. */
async function expectMatches (db: OrderedDb, model: Model, space: Uint8Array[], rng: Rng): Promise<void> {
  const sorted = model.sorted()
  expect(db.activeKeys).to.equal(sorted.length)
  for (const e of sorted) {
    const got = await db.getAll(e.key)
    expect(got, `key ${hex(e.key)}`).to.not.equal(undefined)
    expect(hex(got?.value as Uint8Array)).to.equal(hex(e.value))
    expect(hex(got?.nextKey as Uint8Array)).to.equal(hex(model.successor(e.key)), `next key of ${hex(e.key)}`)
    // the stored operation says the same
    const op = await db.readOp(got?.loc as number) as AnyOp
    expect(op.type === 'update' && hex(op.nextKey as Uint8Array)).to.equal(hex(model.successor(e.key)))
  }
  for (const key of space) {
    const span = await db.getSpan(key)
    const start = model.spanStart(key)
    if (start === undefined) {
      expect(span).to.equal(undefined)
      continue
    }
    expect(hex(span?.key as Uint8Array)).to.equal(hex(start))
    expect(spanContains(span?.key as Uint8Array, span?.nextKey as Uint8Array, key)).to.equal(true)
    if (!model.map.has(hex(key))) { expect(await db.get(key)).to.equal(undefined) }
  }
  const a = space[rng.int(space.length)]
  const b = space[rng.int(space.length)]
  const [from, to] = compareBytes(a, b) <= 0 ? [a, b] : [b, a]
  const want = sorted.filter(e => compareBytes(e.key, from) >= 0 && compareBytes(e.key, to) < 0).map(e => `${hex(e.key)}=${hex(e.value)}`)
  expect(await collect(db.entries(from, to))).to.deep.equal(want)
  expect(await collect(db.entries(from))).to.deep.equal(sorted.filter(e => compareBytes(e.key, from) >= 0).map(e => `${hex(e.key)}=${hex(e.value)}`))
}

function randomWrites (rng: Rng, space: Uint8Array[], n: number, j: number): Array<[Uint8Array, Uint8Array | null]> {
  const out: Array<[Uint8Array, Uint8Array | null]> = []
  for (let i = 0; i < n; i++) {
    const key = space[rng.int(space.length)]
    out.push([key, rng.int(3) === 0 ? null : v((j * 7 + i) & 0xff)])
  }
  return out
}

describe('qmdb: ordered databases', function () {
  this.timeout(120_000)

  it('hand-derived: creates link in key order, a delete rewrites its predecessor, the floor raise copies ops verbatim', async () => {
    const db = await OrderedAnyDb.open()
    const [a, b, c] = [k(1), k(2), k(3)]
    // created out of order: emitted in key order
    await db.apply(await db.newBatch().update(c, v(3)).update(a, v(1)).update(b, v(2)).merkleize())
    await db.apply(await db.newBatch().delete(b).merkleize())
    const names = new Map([[hex(a), 'a'], [hex(b), 'b'], [hex(c), 'c']])
    const summary: string[] = []
    const name = (key: Uint8Array | undefined): string => names.get(hex(key ?? new Uint8Array())) ?? '?'
    for (let l = 0; l < db.size; l++) {
      const op = await db.readOp(l)
      if (op.type === 'commit') {
        summary.push(`C${op.floor}`)
      } else {
        summary.push(op.type === 'delete' ? `D${name(op.key)}` : `U${name(op.key)}>${name(op.nextKey)}`)
      }
    }
    // batch 1: three creates (no user steps), the raise moves one op (a, from 1) and stops: floor 2
    // batch 2: delete b, rewrite a (now → c); 2 user steps + 1 = 3 moves wanted: 2 (b, deleted) no,
    // 3 (c) moved, 4 (old a) no, 5 commit, 6 (delete) no, 7 (new a) moved, then the raise reaches its own tip: floor 8
    expect(summary).to.deep.equal(['C0', 'Ua>b', 'Ub>c', 'Uc>a', 'Ua>b', 'C2', 'Db', 'Ua>c', 'Uc>a', 'Ua>c', 'C8'])
    expect(db.activeKeys).to.equal(2)
  })

  it('hand-derived: a batch that creates and deletes rewrites the creates\' predecessors first, then the deletes\'', async () => {
    const db = await OrderedAnyDb.open()
    const [a, b, c, e] = [k(1), k(2), k(3), k(5)]
    await db.apply(await db.newBatch().update(a, v(1)).update(c, v(3)).update(e, v(5)).merkleize())
    await db.apply(await db.newBatch().update(b, v(2)).delete(e).merkleize())
    const names = new Map([[hex(a), 'a'], [hex(b), 'b'], [hex(c), 'c'], [hex(e), 'e']])
    const name = (key: Uint8Array | undefined): string => names.get(hex(key ?? new Uint8Array())) ?? '?'
    const summary: string[] = []
    for (let l = 0; l < db.size; l++) {
      const op = await db.readOp(l)
      if (op.type === 'commit') {
        summary.push(`C${op.floor}`)
      } else {
        summary.push(op.type === 'delete' ? `D${name(op.key)}` : `U${name(op.key)}>${name(op.nextKey)}`)
      }
    }
    // batch 2: delete e, create b (→ c); rewrite b's predecessor a (→ b), then e's predecessor c (→ a, wrapping);
    // 3 user steps + 1 = 4 moves wanted: 2..6 are inactive or a commit or the delete, 7, 8, 9 move, then the tip: floor 10
    expect(summary).to.deep.equal([
      'C0', 'Ua>c', 'Uc>e', 'Ue>a', 'Ua>c', 'C2',
      'De', 'Ub>c', 'Ua>b', 'Uc>a', 'Ub>c', 'Ua>b', 'Uc>a', 'C10'
    ])
  })

  it('a lone key points to itself; deleting every key empties the spans', async () => {
    const db = await OrderedCurrentDb.open()
    await db.apply(await db.newBatch().update(k(9), v(1)).merkleize())
    expect(hex((await db.getAll(k(9)))?.nextKey as Uint8Array)).to.equal(hex(k(9)))
    expect(hex((await db.getSpan(k(1)))?.key as Uint8Array)).to.equal(hex(k(9))) // wraps
    await db.apply(await db.newBatch().delete(k(9)).merkleize())
    expect(await db.getSpan(k(1))).to.equal(undefined)
    expect(db.inactivityFloor).to.equal(db.size - 1)
  })

  for (const [name, open] of [['any', OrderedAnyDb.open], ['current', OrderedCurrentDb.open]] as const) {
    it(`${name}: random batches keep every next key equal to the model's successor (applied one by one)`, async () => {
      const rng = new Rng(name.length * 31)
      const db = await open()
      const model = new Model()
      // few first bytes: many keys share a prefix (the layout colliding translators stress)
      const space = Array.from({ length: 40 }, (_, i) => k(i % 5, i))
      for (let j = 0; j < 60; j++) {
        const writes = randomWrites(rng, space, 1 + rng.int(8), j)
        const b = db.newBatch()
        for (const [key, value] of writes) {
          b.write(key, value)
        }
        for (const [key, value] of writes) { model.write(key, value) }
        await db.apply(await b.merkleize())
        await expectMatches(db, model, space, rng)
      }
    })

    it(`${name}: a chain of unapplied batches gives the same operations and root as applying them one by one`, async () => {
      const rng = new Rng(name.length * 97)
      const chained = await open()
      const serial = await open()
      const model = new Model()
      const space = Array.from({ length: 24 }, (_, i) => k(i % 3, i))
      for (let round = 0; round < 8; round++) {
        let parent: MerkleizedAnyBatch | undefined
        const tips: MerkleizedAnyBatch[] = []
        for (let depth = 0; depth < 4; depth++) {
          const writes = randomWrites(rng, space, 1 + rng.int(6), round * 10 + depth)
          const b = parent === undefined ? chained.newBatch() : parent.newBatch()
          const s = serial.newBatch()
          for (const [key, value] of writes) {
            b.write(key, value)
            s.write(key, value)
            model.write(key, value)
          }
          parent = await b.merkleize()
          tips.push(parent)
          await serial.apply(await s.merkleize())
          expect(hex(parent.root)).to.equal(hex(serial.root), `round ${round} depth ${depth}`)
          // the chain reads through its ancestors
          for (const key of space) { expect(await parent.get(key)).to.deep.equal(model.map.get(hex(key))?.value) }
        }
        await chained.apply(tips[tips.length - 1])
        expect(hex(chained.root)).to.equal(hex(serial.root))
        await expectMatches(chained, model, space, rng)
      }
      for (let l = 0; l < serial.size; l++) { expect(await chained.readOpBytes(l)).to.deep.equal(await serial.readOpBytes(l)) }
    })

    it(`${name}: a sibling of an applied batch is stale`, async () => {
      const db = await open()
      await db.apply(await db.newBatch().update(k(1), v(1)).merkleize())
      const x = await db.newBatch().update(k(2), v(2)).merkleize()
      const y = await db.newBatch().update(k(3), v(3)).merkleize()
      await db.apply(x)
      const err = await db.apply(y).then(() => undefined, (e: unknown) => e)
      expect(err).to.be.instanceOf(QmdbError)
      expect((err as QmdbError).code).to.equal('StaleBatch')
    })

    it(`${name}: after a reopen (nothing cached) a batch's rewrites read their predecessors from storage`, async () => {
      const rng = new Rng(name.length * 17)
      const datastore = new MemoryDatastore()
      let db: OrderedDb = await open({ datastore, prefix: '/r' })
      const model = new Model()
      // predecessors spread over many log chunks; every other key left absent for the next batch to create
      const space = Array.from({ length: 400 }, (_, i) => k(i >> 1, i & 1))
      const b = db.newBatch()
      for (let i = 0; i < space.length; i += 2) {
        b.write(space[i], v(i & 0xff))
        model.write(space[i], v(i & 0xff))
      }
      await db.apply(await b.merkleize())
      await db.commit()
      await db.close()
      db = await open({ datastore, prefix: '/r' })
      const c = db.newBatch()
      for (const [key, value] of randomWrites(rng, space, 60, 3)) {
        c.write(key, value)
        model.write(key, value)
      }
      await db.apply(await c.merkleize())
      await expectMatches(db, model, space, rng)
    })

    it(`${name}: reopen from the datastore, prune, rewind: the index and spans follow`, async () => {
      const rng = new Rng(name.length * 13)
      const datastore = new MemoryDatastore()
      let db: OrderedDb = await open({ datastore, prefix: '/o' })
      const model = new Model()
      const space = Array.from({ length: 30 }, (_, i) => k(i % 4, i))
      const history: Array<{ size: number, floor: number, root: string, snapshot: Array<[Uint8Array, Uint8Array]> }> = []
      for (let j = 0; j < 80; j++) {
        const b = db.newBatch()
        for (const [key, value] of randomWrites(rng, space, 1 + rng.int(6), j)) {
          b.write(key, value)
          model.write(key, value)
        }
        await db.apply(await b.merkleize())
        history.push({ size: db.size, floor: db.inactivityFloor, root: hex(db.root), snapshot: model.sorted().map(e => [e.key, e.value]) })
      }
      await db.commit()
      await db.close()
      db = await open({ datastore, prefix: '/o' })
      expect(hex(db.root)).to.equal(history[history.length - 1].root)
      await expectMatches(db, model, space, rng)
      // prune up to the floor of a state a few batches back, then rewind to it
      const back = history[history.length - 6]
      await db.prune(Math.min(db.syncBoundary, back.floor))
      expect(db.pruningBoundary).to.be.greaterThan(0)
      await expectMatches(db, model, space, rng)
      await db.rewind(back.size)
      const rewound = new Model()
      for (const [key, value] of back.snapshot) { rewound.write(key, value) }
      expect(hex(db.root)).to.equal(back.root)
      await expectMatches(db, rewound, space, rng)
    })
  }

  it('variable-size keys: ordered by bytes (a prefix sorts first)', async () => {
    const db = await OrderedAnyDb.open({ key: varField(64), encoding: 'variable' })
    const keys = [new Uint8Array([2]), new Uint8Array([1, 0]), new Uint8Array([1]), new Uint8Array([])]
    const b = db.newBatch()
    keys.forEach((key, i) => b.update(key, v(i)))
    await db.apply(await b.merkleize())
    const order = (await collect(db.entries(new Uint8Array([])))).map(s => s.split('=')[0])
    expect(order).to.deep.equal(['', '01', '0100', '02'])
    expect(hex((await db.getAll(new Uint8Array([2])))?.nextKey as Uint8Array)).to.equal('')
  })
})

const keyOf = (e: { key: Uint8Array } | undefined): string | undefined => e === undefined ? undefined : hex(e.key)

/** Every query on `index` for `probe` agrees with the sorted reference `s` (hex key, location). */
function expectSameQueries (index: OrderedKeyIndex, s: Array<[string, number]>, probe: Uint8Array): void {
  const h = hex(probe)
  const ref = new Map(s)
  expect(index.get(probe)).to.equal(ref.get(h) ?? -1)
  const below = s.filter(([kk]) => compareBytes(Buffer.from(kk, 'hex'), probe) < 0)
  const above = s.filter(([kk]) => compareBytes(Buffer.from(kk, 'hex'), probe) > 0)
  const at = s.filter(([kk]) => kk === h)
  expect(keyOf(index.lower(probe))).to.equal(below[below.length - 1]?.[0])
  expect(keyOf(index.higher(probe))).to.equal(above[0]?.[0])
  expect(keyOf(index.floor(probe))).to.equal((at[0] ?? below[below.length - 1])?.[0])
  expect(keyOf(index.ceiling(probe))).to.equal((at[0] ?? above[0])?.[0])
  expect([...index.from(probe)].map(([kk]) => hex(kk))).to.deep.equal([...at, ...above].map(([kk]) => kk))
}

describe('qmdb: OrderedKeyIndex', () => {
  for (const keySize of [8, undefined]) {
    it(`${keySize === undefined ? 'variable' : 'fixed'} keys: random inserts, overwrites and deletes match a sorted array`, () => {
      const rng = new Rng(keySize ?? 3)
      const index = new OrderedKeyIndex(keySize)
      const ref = new Map<string, number>()
      const mk = (): Uint8Array => {
        const n = keySize ?? rng.int(7)
        const out = new Uint8Array(n)
        // a narrow alphabet: duplicates and shared prefixes
        for (let i = 0; i < n; i++) { out[i] = rng.int(4) * 60 }
        return out
      }
      const sortedRef = (): Array<[string, number]> => [...ref.entries()].sort((a, b) => compareBytes(Buffer.from(a[0], 'hex'), Buffer.from(b[0], 'hex')))
      for (let step = 0; step < 6000; step++) {
        const key = mk()
        // grow first, then shrink, so leaves split and merge
        if (rng.int(10) < (step < 3500 ? 8 : 2)) {
          index.set(key, step)
          ref.set(hex(key), step)
        } else {
          index.delete(key)
          ref.delete(hex(key))
        }
        if (step % 500 !== 0 && step !== 5999) { continue }
        const s = sortedRef()
        expect(index.size).to.equal(s.length)
        expect([...index.entries()].map(([kk, l]) => `${hex(kk)}:${l}`)).to.deep.equal(s.map(([kk, l]) => `${kk}:${l}`))
        for (let q = 0; q < 100; q++) { expectSameQueries(index, s, mk()) }
        expect(keyOf(index.first())).to.equal(s[0]?.[0])
        expect(keyOf(index.last())).to.equal(s[s.length - 1]?.[0])
      }
    })
  }

  it('stores copies: a caller reusing its key buffer does not change the index', () => {
    const index = new OrderedKeyIndex(4)
    const buf = new Uint8Array([1, 2, 3, 4])
    index.set(buf, 7)
    buf[0] = 9
    expect(index.get(new Uint8Array([1, 2, 3, 4]))).to.equal(7)
    expect(index.get(buf)).to.equal(-1)
    expect(() => { index.set(new Uint8Array(3), 1) }).to.throw(RangeError)
  })
})
