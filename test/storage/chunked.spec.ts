/**
 * The fixed-size item store's batched read (`getMany`, the MMR's node reads
 * for proofs): the right items in the asked order (repeats allowed), copies,
 * from resident and stored chunks alike, the chunks not resident read in one
 * storage read, and a typed `StorageError` for a missing or corrupt chunk.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { FixedChunkStore } from '../../src/storage/chunked.ts'
import { StorageError } from '../../src/storage/errors.ts'
import { Kv } from '../../src/storage/kv.ts'
import { codeOf } from '../util/common.ts'

const N = 20
const SIZE = 4
/** Item `i`: its own bytes, so a wrong location shows as a wrong value. */
const item = (i: number): number[] => [i, 0xa0 ^ i, i % 3, 7]
const items = (locs: number[]): number[][] => locs.map(item)
const plain = (got: Uint8Array[]): number[][] => got.map(b => [...b])

/** Counts the storage reads the store makes (a `getMany` over a plain datastore gets each key itself: not counted as gets). */
class CountingKv extends Kv {
  gets = 0
  getManys = 0
  private inMany = 0

  async get (key: string): Promise<Uint8Array | undefined> {
    if (this.inMany === 0) { this.gets++ }
    return super.get(key)
  }

  async getMany (keys: string[]): Promise<Array<Uint8Array | undefined>> {
    this.getManys++
    this.inMany++
    try {
      return await super.getMany(keys)
    } finally {
      this.inMany--
    }
  }
}

/** A persisted store of N items in chunks of 4 (two resident at most), reopened so that nothing is resident. */
async function stored (): Promise<{ store: FixedChunkStore, kv: CountingKv, ds: MemoryDatastore }> {
  const ds = new MemoryDatastore()
  const kv = new CountingKv(ds)
  const store = new FixedChunkStore({ kv, prefix: '/n', itemSize: SIZE, chunkItems: 4, cacheChunks: 2 })
  const bytes = new Uint8Array(items(Array.from({ length: N }, (_, i) => i)).flat())
  store.append(bytes, N)
  const batch = kv.batch()
  const staged = store.stage(batch)
  await batch.commit()
  store.markClean(staged)
  store.open(N, 0)
  return { store, kv, ds }
}

describe('storage: FixedChunkStore.getMany', () => {
  it('returns the items at the asked locations, in order, repeats included, reading the missing chunks at once', async () => {
    const { store, kv } = await stored()
    const locs = [17, 2, 9, 2, 0, 13, 19, 6]
    expect(plain(await store.getMany(locs))).to.deep.equal(items(locs))
    expect(kv.getManys).to.equal(1)
    expect(kv.gets).to.equal(0)
  })

  it('mixes resident chunks with stored ones, and hands out copies', async () => {
    const { store, kv } = await stored()
    await store.get(5) // chunk 1 resident
    kv.gets = 0
    const got = await store.getMany([4, 5, 16, 7])
    expect(plain(got)).to.deep.equal(items([4, 5, 16, 7]))
    expect(kv.getManys).to.equal(1)
    got[1].fill(0xff)
    expect(plain(await store.getMany([5]))).to.deep.equal(items([5]))
    // everything asked is resident now or read again; nothing went through single gets
    expect(kv.gets).to.equal(0)
  })

  it('a missing chunk is MissingItem, a corrupt one DataCorrupted', async () => {
    const missing = await stored()
    await missing.ds.delete(new Key('/n/' + (3).toString(16).padStart(16, '0')))
    expect(await codeOf(missing.store.getMany([1, 13]), StorageError)).to.equal('MissingItem')

    const corrupt = await stored()
    await corrupt.ds.put(new Key('/n/' + (2).toString(16).padStart(16, '0')), new Uint8Array(5))
    expect(await codeOf(corrupt.store.getMany([9]), StorageError)).to.equal('DataCorrupted')
  })
})
