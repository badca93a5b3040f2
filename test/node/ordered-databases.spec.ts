/**
 * The node's database constructors for the ordered kinds: what `createNode`
 * opens, serves and state-syncs for `orderedAnyDatabase` and
 * `orderedCurrentDatabase` (with a non-default chunk size) — a database
 * opened from the spec, served by the spec's source and rebuilt by the spec's
 * sync member ends with the server's roots, next keys and chunk size.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { orderedAnyDatabase, orderedCurrentDatabase } from '../../src/node/index.ts'
import { syncDatabase } from '../../src/sync/index.ts'
import { key, val } from '../util/workloads.ts'
import type { NodeDatabase } from '../../src/node/index.ts'
import type { OrderedAnyDb, OrderedCurrentDb } from '../../src/qmdb/index.ts'

/** Open from `spec`, fill, serve with `spec.serve`, state-sync with `spec.syncMember`: the same database comes out. */
async function roundTrip<D extends OrderedAnyDb | OrderedCurrentDb> (spec: NodeDatabase<D>): Promise<void> {
  const server = await spec.open({ datastore: new MemoryDatastore(), prefix: '/state' })
  for (let j = 0; j < 120; j++) {
    const b = server.newBatch()
    for (let i = 0; i < 6; i++) { b.update(key((j * 7 + i) % 40), val(i, j)) }
    if (j % 5 === 0) { b.delete(key(j % 40)) }
    await server.apply(await b.merkleize())
  }
  await server.commit()
  expect(spec.protocol).to.equal('standard')
  // the spec's codec decodes the served operations (ordered: 97-byte fixed operations)
  expect(spec.codec.decode(await server.readOpBytes(server.size - 2))).to.have.property('type')
  expect(spec.codec.fixedSize).to.equal(97)
  const target = server.syncTarget()
  expect(target.range.start).to.be.greaterThan(0)
  const member = await spec.syncMember({ datastore: new MemoryDatastore(), prefix: '/state' }, spec.serve(server))
  const synced = await syncDatabase({ kind: member.kind, target, source: member.source, fetchBatchSize: 32 })
  expect(synced.opsRoot).to.deep.equal(server.opsRoot)
  expect(synced.root).to.deep.equal(server.root)
  for (let i = 0; i < 40; i++) { expect(await synced.getAll(key(i))).to.deep.equal(await server.getAll(key(i))) }
}

describe('node: ordered database specs', function () {
  this.timeout(60_000)

  it('orderedAnyDatabase: open, serve, state-sync into another datastore', async () => {
    await roundTrip(orderedAnyDatabase())
  })

  it('orderedCurrentDatabase (N = 64): open, serve, state-sync into another datastore', async () => {
    await roundTrip(orderedCurrentDatabase({ chunkBytes: 64 }))
  })
})
