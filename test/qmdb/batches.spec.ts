/**
 * Speculative batches: forks, chains, read-through, staleness and floor
 * validation (commonware `storage/src/qmdb/mod.rs`, `storage/src/qmdb/batch_chain.rs`; the batch examples of commonware's `any` docs).
 */
import { expect } from 'aegir/chai'
import { AnyDb, CurrentDb, ImmutableDb, KeylessDb, CompactImmutableDb, CompactKeylessDb, OrderedAnyDb, OrderedCurrentDb, QmdbError } from '../../src/qmdb/index.ts'
import { hex } from '../util/bytes.ts'
import { codeOf as codeOfAny } from '../util/common.ts'
import { key, val } from '../util/workloads.ts'
import type { AnyBatch, CompactBatch, CompactDb, MerkleizedAnyBatch } from '../../src/qmdb/index.ts'

const codeOf = async (p: Promise<unknown> | (() => unknown)): Promise<string> => codeOfAny(p, QmdbError)

type KeyedDb = AnyDb | CurrentDb

/** Build a chain of `n` merkleized batches; batch i writes key(base + i) → val(i, tag). */
async function chain (db: KeyedDb, n: number, base: number, tag: number, from?: MerkleizedAnyBatch): Promise<MerkleizedAnyBatch[]> {
  const out: MerkleizedAnyBatch[] = []
  let parent = from
  for (let i = 0; i < n; i++) {
    const b: AnyBatch = parent === undefined ? db.newBatch() : parent.newBatch()
    b.update(key(base + i), val(i, tag))
    b.update(key(0), val(base + i, tag)) // a key both chains touch
    parent = await b.merkleize()
    out.push(parent)
  }
  return out
}

for (const [name, open] of [['any', AnyDb.open], ['current', CurrentDb.open], ['any-ordered', OrderedAnyDb.open], ['current-ordered', OrderedCurrentDb.open]] as const) {
  describe(`qmdb: speculative batches (${name})`, () => {
    let db: KeyedDb

    beforeEach(async () => {
      db = await open()
      const b = db.newBatch()
      for (let i = 0; i < 20; i++) { b.update(key(i), val(i, 0)) }
      await db.apply(await b.merkleize())
      await db.commit()
    })

    it('two competing chains of 3: reads see only their own chain; applying one makes the other stale', async () => {
      const committedRoot = db.root
      const a = await chain(db, 3, 100, 1)
      const b = await chain(db, 3, 200, 2)
      // the database is untouched by speculation
      expect(db.root).to.deep.equal(committedRoot)
      expect(await db.get(key(100))).to.equal(undefined)
      // reads through each chain
      expect(await a[2].get(key(100))).to.deep.equal(val(0, 1))
      expect(await a[2].get(key(102))).to.deep.equal(val(2, 1))
      expect(await a[2].get(key(200))).to.equal(undefined)
      expect(await b[2].get(key(201))).to.deep.equal(val(1, 2))
      expect(await b[2].get(key(100))).to.equal(undefined)
      expect(await a[1].get(key(0))).to.deep.equal(val(101, 1))
      expect(await b[1].get(key(0))).to.deep.equal(val(201, 2))
      // an unrelated read falls through to the database
      expect(await a[2].get(key(5))).to.deep.equal(val(5, 0))
      // apply chain a (the tip applies its unapplied ancestors)
      await db.apply(a[2])
      expect(db.root).to.deep.equal(a[2].root)
      expect(await db.get(key(102))).to.deep.equal(val(2, 1))
      for (const m of b) { expect(await codeOf(db.apply(m))).to.equal('StaleBatch') }
      expect(await codeOf(db.apply(a[0]))).to.equal('StaleBatch') // an ancestor applied after its child
      expect(await codeOf(() => b[2].newBatch().merkleize())).to.equal('StaleBatch')
    })

    it('sibling batches never see each other\'s writes', async () => {
      const parent = (await chain(db, 1, 300, 3))[0]
      const s1 = parent.newBatch().update(key(301), val(1, 31))
      const s2 = parent.newBatch().update(key(302), val(2, 32))
      const m1 = await s1.merkleize()
      const m2 = await s2.merkleize()
      expect(await m1.get(key(302))).to.equal(undefined)
      expect(await m2.get(key(301))).to.equal(undefined)
      expect(await m1.get(key(300))).to.deep.equal(val(0, 3))
      expect(m1.root).to.not.deep.equal(m2.root)
      await db.apply(m2)
      expect(await codeOf(db.apply(m1))).to.equal('StaleBatch')
      expect(await db.get(key(301))).to.equal(undefined)
    })

    it('applying the parent then the child equals applying the child directly, and equals sequential batches', async () => {
      const twin = await open()
      const seq = await open()
      for (const d of [twin, seq]) {
        const b = d.newBatch()
        for (let i = 0; i < 20; i++) { b.update(key(i), val(i, 0)) }
        await d.apply(await b.merkleize())
      }
      const [p, c] = await chain(db, 2, 400, 4)
      const [tp, tc] = await chain(twin, 2, 400, 4)
      await db.apply(p)
      await db.apply(c)
      await twin.apply(tc) // applies tp with it
      expect(await codeOf(twin.apply(tp))).to.equal('StaleBatch')
      for (let i = 0; i < 2; i++) {
        await seq.apply(await seq.newBatch().update(key(400 + i), val(i, 4)).update(key(0), val(400 + i, 4)).merkleize())
      }
      expect(hex(db.root)).to.equal(hex(twin.root))
      expect(hex(db.root)).to.equal(hex(seq.root))
      expect(hex(c.root)).to.equal(hex(seq.root))
    })

    it('an unmerkleized batch holds no snapshot: it reads the newly applied state', async () => {
      const pending = db.newBatch()
      await db.apply(await db.newBatch().update(key(7), val(7, 9)).merkleize())
      expect(await pending.get(key(7))).to.deep.equal(val(7, 9))
      // and merkleizes against the current state
      const m = await pending.update(key(8), val(8, 9)).merkleize()
      await db.apply(m)
      expect(await db.get(key(7))).to.deep.equal(val(7, 9))
    })

    it('a child of an applied batch keeps working and its root matches sequential application', async () => {
      const [p] = await chain(db, 1, 500, 5)
      await db.apply(p)
      const c = await p.newBatch().delete(key(3)).merkleize()
      await db.apply(c)
      expect(await db.get(key(3))).to.equal(undefined)
      expect(db.root).to.deep.equal(c.root)
    })

    it('deleting absent keys emits nothing; an empty batch still moves one active op', async () => {
      const before = db.size
      const m = await db.newBatch().delete(key(9999)).merkleize()
      // one moved op + commit
      expect(m.size - before).to.equal(2)
      await db.apply(m)
      expect(db.activeKeys).to.equal(20)
    })
  })
}

describe('qmdb: floors chosen by the application', () => {
  it('immutable/keyless reject a regressing floor and a floor beyond the commit', async () => {
    const imm = await ImmutableDb.open()
    await imm.apply(await imm.newBatch().set(key(1), val(1, 1)).withInactivityFloor(1).merkleize())
    expect(await codeOf(imm.apply(await imm.newBatch().set(key(2), val(2, 1)).merkleize()))).to.equal('FloorRegressed')
    const imm2 = await ImmutableDb.open()
    expect(await codeOf(imm2.apply(await imm2.newBatch().withInactivityFloor(5).merkleize()))).to.equal('FloorBeyondSize')
    const kl = await KeylessDb.open()
    await kl.apply(await kl.newBatch().append(val(0, 0)).withInactivityFloor(2).merkleize())
    const regress = await kl.newBatch().withInactivityFloor(1).merkleize()
    expect(() => { kl.validateBatch(regress) }).to.throw(QmdbError).with.property('code', 'FloorRegressed')
  })

  it('a chain is validated before anything is applied', async () => {
    const kl = await KeylessDb.open()
    const a = await kl.newBatch().append(val(1, 1)).withInactivityFloor(1).merkleize()
    const b = await a.newBatch().append(val(2, 2)).withInactivityFloor(0).merkleize() // regresses against a
    const root = kl.root
    expect(await codeOf(kl.apply(b))).to.equal('FloorRegressed')
    expect(kl.root).to.deep.equal(root)
    expect(kl.size).to.equal(1)
  })

  it('immutable reads through chains; keys below the floor are forgotten after reopen semantics (rebuild from floor)', async () => {
    const imm = await ImmutableDb.open()
    const a = await imm.newBatch().set(key(1), val(1, 1)).set(key(2), val(2, 1)).merkleize()
    const b = await a.newBatch().set(key(3), val(3, 1)).withInactivityFloor(a.size).merkleize()
    expect(await b.get(key(1))).to.deep.equal(val(1, 1))
    expect(await b.get(key(3))).to.deep.equal(val(3, 1))
    await imm.apply(b)
    await imm.rewind(imm.size) // no-op
    expect(await imm.get(key(3))).to.deep.equal(val(3, 1))
  })

  it('a compact batch offers only its variant\'s operation (misuse does not compile)', async () => {
    const imm = (await CompactImmutableDb.open()).newBatch()
    const kl = (await CompactKeylessDb.open()).newBatch()
    // @ts-expect-error an immutable batch sets keys; it has no append()
    expect(imm.append).to.equal(undefined)
    // @ts-expect-error a keyless batch appends values; it has no set()
    expect(kl.set).to.equal(undefined)
    expect(imm.set).to.be.a('function')
    expect(kl.append).to.be.a('function')
  })

  it('compact databases follow the same chain rules', async () => {
    const check = async <Op extends { type: string }, B extends CompactBatch<Op>>(db: CompactDb<Op, B>, mk: (b: B, i: number) => B): Promise<void> => {
      const a1 = await mk(db.newBatch(), 1).merkleize()
      const a2 = await mk(a1.newBatch(), 2).merkleize()
      const b1 = await mk(db.newBatch(), 3).merkleize()
      await db.apply(a2)
      expect(db.root).to.deep.equal(a2.root)
      expect(await codeOf(db.apply(b1))).to.equal('StaleBatch')
      expect(await codeOf(db.apply(a1))).to.equal('StaleBatch')
    }
    await check(await CompactImmutableDb.open(), (b, i) => b.set(key(i), val(i, 0)))
    await check(await CompactKeylessDb.open(), (b, i) => b.append(val(i, 0)))
  })
})

describe('qmdb: compact rewind checkpoints without a datastore', () => {
  const check = async <Op extends { type: string }, B extends CompactBatch<Op>>(db: CompactDb<Op, B>, write: (b: B, i: number) => B): Promise<void> => {
    const genesis = db.syncTarget()
    await db.apply(await write(db.newBatch(), 1).merkleize())
    await db.commit()
    const one = db.syncTarget()
    await db.apply(await write(db.newBatch(), 2).merkleize())
    await db.commit()
    expect(db.size).to.be.greaterThan(one.size)
    await db.rewindToTarget(one)
    expect(db.syncTarget()).to.deep.equal(one)
    await db.rewind(1)
    expect(db.syncTarget()).to.deep.equal(genesis)
    // pruned checkpoints are gone, in memory as on disk
    await db.apply(await write(db.newBatch(), 3).merkleize())
    await db.prune(db.size)
    expect(await codeOf(db.rewind(1))).to.equal('RewindBeyondHistory')
  }

  it('compact keyless: checkpoints survive commit() in memory, as with a datastore', async () => {
    await check(await CompactKeylessDb.open(), (b, i) => b.append(val(i, 0)))
  })

  it('compact immutable: checkpoints survive commit() in memory, as with a datastore', async () => {
    await check(await CompactImmutableDb.open(), (b, i) => b.set(key(i), val(i, 0)))
  })
})
