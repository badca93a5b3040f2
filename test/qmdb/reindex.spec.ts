/**
 * The snapshot index and activity bitmap rebuilt when a database is opened
 * from storage (`indexStored`: fixed encodings index the stored bytes without
 * decoding them, variable ones decode) must equal what a handle that was
 * never closed built batch by batch (`applyIndex`). A twin database in memory
 * takes the same batches; after the reopen both take one more, whose floor
 * raise reads the bitmap, so a wrong bit or location changes its root.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { AnyDb, CurrentDb } from '../../src/qmdb/index.ts'
import { key, val } from '../util/workloads.ts'
import type { AnyDbOptions } from '../../src/qmdb/index.ts'

type Open = (options: AnyDbOptions) => Promise<AnyDb>

/** Keys touched: more than the rounds move past the floor, so superseded operations stay above it. */
const SPACE = 400

/** Round `round`: 60 updates (some re-create deleted keys, some overwrite recent ones) and 10 deletes. */
async function workload (db: AnyDb, round: number): Promise<void> {
  const b = db.newBatch()
  for (let i = 0; i < 60; i++) { b.update(key((round * 37 + i * 7) % SPACE), val(i, round)) }
  for (let i = 0; i < 10; i++) { b.delete(key((round * 11 + i * 13) % SPACE)) }
  await db.apply(await b.merkleize())
}

async function expectSameState (got: AnyDb, want: AnyDb): Promise<void> {
  expect(got.activeKeys).to.equal(want.activeKeys)
  expect(got.size).to.equal(want.size)
  expect(got.inactivityFloor).to.equal(want.inactivityFloor)
  expect(got.root).to.deep.equal(want.root)
  for (let i = 0; i < SPACE; i++) { expect(await got.get(key(i)), `key ${i}`).to.deep.equal(await want.get(key(i))) }
}

describe('qmdb: the index rebuilt on open equals the one built by applying batches', () => {
  const kinds: Array<[string, Open, AnyDbOptions]> = [
    ['any, fixed encoding (stored bytes indexed in place)', async o => AnyDb.open(o), {}],
    ['any, variable encoding (decoded)', async o => AnyDb.open(o), { encoding: 'variable' }],
    ['current, fixed encoding (its root commits to the bitmap)', async o => CurrentDb.open(o), {}]
  ]
  for (const [name, open, options] of kinds) {
    it(name, async () => {
      const ds = new MemoryDatastore()
      let stored = await open({ ...options, datastore: ds, prefix: '/r' })
      const twin = await open({ ...options })
      for (let round = 1; round <= 12; round++) {
        await workload(stored, round)
        await workload(twin, round)
      }
      await stored.commit()
      await stored.close()
      stored = await open({ ...options, datastore: ds, prefix: '/r' })
      await expectSameState(stored, twin)
      await workload(stored, 13)
      await workload(twin, 13)
      await expectSameState(stored, twin)
      await stored.close()
      await twin.close()
    })
  }
})
