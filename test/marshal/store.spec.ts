/**
 * The block store's bounds (issue 18 finding 3): the decoded-block cache is
 * bounded by bytes as well as by count, and once a height is finalized every
 * other block stored at that height is deleted from disk and cache.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { BlockStore } from '../../src/marshal/store.ts'
import { Kv } from '../../src/storage/kv.ts'
import { blockCodec, buildChain, makeBlock } from '../util/marshal-fixtures.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'

function hex (b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}

async function storedKeys (ds: MemoryDatastore): Promise<string[]> {
  const out: string[] = []
  for await (const { key } of ds.query({})) { out.push(key.toString()) }
  return out
}

describe('marshal: block store bounds', () => {
  it('bounds the decoded-block cache by bytes: large blocks evict older ones long before the count limit', async () => {
    const store = new BlockStore<TestBlock, TestFinalization>(new Kv(new MemoryDatastore()), '/m', blockCodec, {} as never, 1024, 4096)
    const big = Array.from({ length: 20 }, (_, h) => makeBlock(h, new Uint8Array(32), new Uint8Array(1000).fill(h)))
    for (const b of big) { await store.putBlock(b) }
    // each encodes to 8 + 32 + 2 + 1000 = 1042 bytes: three fit in 4096
    expect(store.cached).to.deep.equal({ blocks: 3, bytes: 3 * 1042 })
    // a block larger than the whole budget is stored but never cached
    const tiny = new BlockStore<TestBlock, TestFinalization>(new Kv(new MemoryDatastore()), '/m', blockCodec, {} as never, 1024, 1000)
    await tiny.putBlock(big[0])
    expect(tiny.cached).to.deep.equal({ blocks: 0, bytes: 0 })
    expect((await tiny.getBlock(big[0].digest))?.height).to.equal(0)
  })

  it('deletes the other blocks stored at a height when that height is finalized', async () => {
    const ds = new MemoryDatastore()
    const store = new BlockStore<TestBlock, TestFinalization>(new Kv(ds), '/m', blockCodec, {} as never)
    const main = buildChain(6, 'main')
    const fork = buildChain(6, 'fork')
    for (const b of [...main, ...fork]) { await store.putBlock(b) }
    await store.setFinalized(main[5])
    expect(await store.getBlock(fork[5].digest)).to.equal(undefined)
    expect((await store.getBlock(main[5].digest))?.height).to.equal(5)
    const keys = await storedKeys(ds)
    expect(keys.filter(k => k.includes(hex(fork[5].digest)))).to.deep.equal([])
    // heights not finalized yet keep every candidate
    expect((await store.getBlock(fork[4].digest))?.height).to.equal(4)
  })
})
