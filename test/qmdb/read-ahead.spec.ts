/**
 * The floor read-ahead of `any` batches (`any.ts`): a new batch starts
 * reading the committed operations its floor raise will move, so its
 * merkleize reads nothing more from storage; a read-ahead that fails is
 * dropped and the merkleize reads (and reports) for itself. Roots never
 * depend on it: each is checked against the same operations on an
 * in-memory database, which reads nothing.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { AnyDb } from '../../src/qmdb/index.ts'
import type { Key } from 'interface-datastore'

/** Counts (and on demand fails) reads of stored operation chunks. */
class OpReads extends MemoryDatastore {
  reads = 0
  failing = false

  async get (key: Key, options?: Parameters<MemoryDatastore['get']>[1]): Promise<Uint8Array> {
    if (key.toString().startsWith('/ra/ops')) {
      this.reads++
      if (this.failing) { throw new Error('read failed') }
    }
    return super.get(key, options)
  }
}

const k = (i: number): Uint8Array => new Uint8Array(32).fill(i & 0xff).fill(i >> 8, 0, 1)
const v = (i: number, r: number): Uint8Array => new Uint8Array(32).fill(r).fill(i & 0xff, 0, 1)

/** Until `store` has seen no new read for a few turns of the event loop (bounded). */
async function settled (store: OpReads): Promise<void> {
  let quiet = 0
  for (let turn = 0; turn < 1000 && quiet < 5; turn++) {
    const before = store.reads
    await new Promise(resolve => setImmediate(resolve))
    quiet = store.reads === before ? quiet + 1 : 0
  }
}

/** 2,000 creates in batches of 200 (the floor stays near the start), then updates of 300 of them (moving 301 operations). */
async function build (db: AnyDb): Promise<void> {
  for (let s = 0; s < 2000; s += 200) {
    const b = db.newBatch()
    for (let i = s; i < s + 200; i++) { b.update(k(i), v(i, 1)) }
    await db.apply(await b.merkleize())
    await db.commit()
  }
  const b = db.newBatch()
  for (let i = 0; i < 300; i++) { b.update(k(i * 6), v(i, 2)) }
  await db.apply(await b.merkleize())
  await db.commit()
}

async function fixture (): Promise<{ db: AnyDb, store: OpReads, reference: AnyDb }> {
  const store = new OpReads()
  // a small operation cache (16 chunks of 64), so the chunks past the floor are not resident when a batch opens
  const db = await AnyDb.open({ datastore: store, prefix: '/ra', opCacheChunks: 16 })
  const reference = await AnyDb.open()
  await build(db)
  await build(reference)
  return { db, store, reference }
}

/** Updates of 300 keys, merkleized on `db` (opened as `batch`) and on `reference`; the roots. */
async function updateBoth (batch: ReturnType<AnyDb['newBatch']>, reference: AnyDb): Promise<[Uint8Array, Uint8Array]> {
  const r = reference.newBatch()
  for (let i = 0; i < 300; i++) {
    batch.update(k(1000 + i * 3), v(i, 3))
    r.update(k(1000 + i * 3), v(i, 3))
  }
  const m = await batch.merkleize()
  return [m.root, (await r.merkleize()).root]
}

describe('qmdb: any floor read-ahead', () => {
  it('a new batch reads ahead what its floor raise moves: its merkleize reads nothing more', async () => {
    const { db, store, reference } = await fixture()
    const readsBefore = store.reads
    const batch = db.newBatch()
    await settled(store)
    // the read-ahead read the chunks at the floor
    expect(store.reads).to.be.greaterThan(readsBefore)
    const readsAhead = store.reads
    const [root, expected] = await updateBoth(batch, reference)
    expect(store.reads).to.equal(readsAhead)
    expect(root).to.deep.equal(expected)
    await db.close()
  })

  it('a failed read-ahead is dropped: the merkleize reads for itself, with the same root', async () => {
    const { db, store, reference } = await fixture()
    store.failing = true
    const batch = db.newBatch()
    await settled(store)
    store.failing = false
    const readsBefore = store.reads
    const [root, expected] = await updateBoth(batch, reference)
    expect(store.reads).to.be.greaterThan(readsBefore)
    expect(root).to.deep.equal(expected)
    await db.close()
  })

  it('a merkleize whose reads fail reports it (the read-ahead swallowed its own failure only)', async () => {
    const { db, store } = await fixture()
    store.failing = true
    const batch = db.newBatch()
    for (let i = 0; i < 300; i++) { batch.update(k(1000 + i * 3), v(i, 3)) }
    const err = await batch.merkleize().then(() => undefined, (e: unknown) => e)
    expect(err).to.be.instanceOf(Error)
    store.failing = false
    await db.close()
  })
})
