/**
 * A closed handle is closed: after `close()` every database kind, full and
 * compact, refuses new work with `QmdbError('Closed')` (a handle used after
 * its store was handed on would write behind the new owner's back), while
 * what was committed before the close is there when the store is reopened.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { AnyDb, CompactImmutableDb, CompactKeylessDb, ImmutableDb, KeylessDb, QmdbError } from '../../src/qmdb/index.ts'
import { key } from '../util/workloads.ts'

async function closedCode (fn: () => unknown): Promise<string | undefined> {
  try {
    await fn()
  } catch (err) {
    return err instanceof QmdbError ? err.code : `not a QmdbError: ${String(err)}`
  }
  return undefined
}

describe('qmdb: a closed handle refuses work', () => {
  it('full databases: any, immutable, keyless', async () => {
    const ds = new MemoryDatastore()
    const any = await AnyDb.open({ datastore: ds, prefix: '/a' })
    const b = any.newBatch().update(key(1), key(2))
    await any.apply(await b.merkleize())
    await any.commit()
    const root = any.root
    await any.close()
    expect(await closedCode(() => any.newBatch())).to.equal('Closed')
    expect(await closedCode(async () => { await any.commit() })).to.equal('Closed')
    const again = await AnyDb.open({ datastore: ds, prefix: '/a' })
    expect(again.root).to.deep.equal(root)
    expect(await again.get(key(1))).to.deep.equal(key(2))
    await again.close()

    const imm = await ImmutableDb.open({ datastore: ds, prefix: '/i' })
    await imm.close()
    expect(await closedCode(() => imm.newBatch())).to.equal('Closed')
    const kl = await KeylessDb.open({ datastore: ds, prefix: '/k' })
    await kl.close()
    expect(await closedCode(() => kl.newBatch())).to.equal('Closed')
  })

  it('compact databases: immutable and keyless', async () => {
    const ds = new MemoryDatastore()
    const ci = await CompactImmutableDb.open({ datastore: ds, prefix: '/ci' })
    await ci.apply(await ci.newBatch().set(key(1), key(2)).merkleize())
    await ci.commit()
    const root = ci.root
    await ci.close()
    expect(await closedCode(() => ci.newBatch())).to.equal('Closed')
    expect(await closedCode(async () => { await ci.commit() })).to.equal('Closed')
    expect(await closedCode(async () => { await ci.tipProof() })).to.equal('Closed')
    expect(await closedCode(async () => { await ci.prune(1) })).to.equal('Closed')
    const again = await CompactImmutableDb.open({ datastore: ds, prefix: '/ci' })
    expect(again.root).to.deep.equal(root)
    await again.close()

    const ck = await CompactKeylessDb.open({ datastore: ds, prefix: '/ck' })
    await ck.close()
    expect(await closedCode(() => ck.newBatch())).to.equal('Closed')
  })
})
