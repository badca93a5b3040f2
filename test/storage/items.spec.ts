/**
 * The item log's batched reads (`getMany`, `range`): the right items in the
 * asked order (repeats allowed) from resident and stored chunks alike, stored
 * chunks read through without entering the cache, and a typed
 * `StorageError` for a missing or corrupt chunk or a location outside the
 * log — never an undefined item.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { StorageError } from '../../src/storage/errors.ts'
import { ItemLog } from '../../src/storage/items.ts'
import { Kv } from '../../src/storage/kv.ts'

const N = 20
/** Item `i`: its own bytes, so a wrong location shows as a wrong value. */
const item = (i: number): Uint8Array => Uint8Array.of(i, 0xa0 ^ i, i % 3)
const items = (locs: number[]): number[][] => locs.map(i => [...item(i)])
const plain = (got: Uint8Array[]): number[][] => got.map(b => [...b])

/** A persisted log of N items in chunks of 4, reopened so that nothing is resident. */
async function stored (): Promise<{ log: ItemLog, ds: MemoryDatastore }> {
  const ds = new MemoryDatastore()
  const kv = new Kv(ds)
  const log = new ItemLog({ kv, prefix: '/ops', chunkItems: 4, cacheChunks: 2, maxItemBytes: 64 })
  log.append(Array.from({ length: N }, (_, i) => item(i)))
  const batch = kv.batch()
  const staged = log.stage(batch)
  await batch.commit()
  log.markClean(staged)
  log.open(N, 0)
  return { log, ds }
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).to.be.instanceOf(StorageError)
  return (err as StorageError).code
}

describe('storage: item log batched reads', () => {
  it('getMany returns the items at the asked locations, in order, repeats included', async () => {
    const { log } = await stored()
    const locs = [13, 2, 13, 19, 0, 7, 6, 2]
    expect(plain(await log.getMany(locs))).to.deep.equal(items(locs))
  })

  it('getMany mixes resident chunks with stored ones', async () => {
    const { log } = await stored()
    await log.ensure(5) // chunk 1 resident
    expect(log.getSync(5)).to.not.equal(undefined)
    const locs = [4, 9, 5, 17, 7]
    expect(plain(await log.getMany(locs))).to.deep.equal(items(locs))
  })

  it('range returns [start, end) across resident and stored chunks', async () => {
    const { log } = await stored()
    await log.ensure(8)
    const locs = Array.from({ length: 14 }, (_, k) => 3 + k)
    expect(plain(await log.range(3, 17))).to.deep.equal(items(locs))
    expect(await log.range(5, 5)).to.deep.equal([])
  })

  it('stored chunks are read through: getMany and range leave the cache as it was', async () => {
    const { log } = await stored()
    await log.getMany([1, 10, 18])
    await log.range(0, N)
    for (let i = 0; i < N; i++) { expect(log.getSync(i), `item ${i}`).to.equal(undefined) }
    // whereas get loads the chunk
    await log.get(10)
    expect(log.getSync(11)).to.deep.equal(item(11))
  })

  it('a missing chunk is MissingItem, a corrupt one DataCorrupted, a location outside the log OutOfRange', async () => {
    const { log, ds } = await stored()
    const chunk2 = new Key('/ops/0000000000000002') // items 8..11
    const saved = await ds.get(chunk2)
    await ds.delete(chunk2)
    expect(await codeOf(log.getMany([1, 9]))).to.equal('MissingItem')
    expect(await codeOf(log.range(6, 12))).to.equal('MissingItem')
    await ds.put(chunk2, Uint8Array.of(0xff, 0xff, 0xff))
    expect(await codeOf(log.getMany([9]))).to.equal('DataCorrupted')
    expect(await codeOf(log.range(8, 9))).to.equal('DataCorrupted')
    await ds.put(chunk2, saved)
    expect(plain(await log.getMany([9]))).to.deep.equal(items([9]))
    expect(await codeOf(log.getMany([3, N]))).to.equal('OutOfRange')
    expect(await codeOf(log.range(N - 1, N + 1))).to.equal('OutOfRange')
  })

  it('an in-memory log answers from its chunks', async () => {
    const log = new ItemLog({ chunkItems: 4 })
    log.append(Array.from({ length: N }, (_, i) => item(i)))
    expect(plain(await log.getMany([17, 3, 3]))).to.deep.equal(items([17, 3, 3]))
    expect(plain(await log.range(2, 7))).to.deep.equal(items([2, 3, 4, 5, 6]))
  })
})
