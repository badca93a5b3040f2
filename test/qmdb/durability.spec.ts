/**
 * Durable before acknowledged: the flush that precedes a marshal
 * acknowledgement (`ManagedDb.finalize`, for every database kind) and
 * marshal's processed height are written with a LevelDB *sync* write
 * (fsync), while speculative and non-acknowledged work is not written at
 * all. The LevelDB instance under the datastore is observed directly, so the
 * test sees the options LevelDB itself receives.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { LevelDatastore } from 'datastore-level'
import { BlockStore } from '../../src/marshal/store.ts'
import { AnyDb, CompactImmutableDb, CompactKeylessDb, CurrentDb, DatabaseSet, ImmutableDb, KeylessDb } from '../../src/qmdb/index.ts'
import { Kv } from '../../src/storage/kv.ts'
import { key } from '../util/workloads.ts'

interface Write { sync: boolean, ops: number }

/** Record every `batch()` LevelDB receives, with its `sync` option. */
function observe (ds: LevelDatastore): Write[] {
  const writes: Write[] = []
  const level = ds.db as unknown as { batch(ops: unknown[], options?: { sync?: boolean }): Promise<void> }
  const original = level.batch.bind(level)
  level.batch = async (ops, options) => {
    writes.push({ sync: options?.sync === true, ops: ops.length })
    await original(ops, options)
  }
  return writes
}

const value = (i: number): Uint8Array => key(i + 1_000_000)

describe('qmdb: durable before acknowledged (fsync)', function () {
  this.timeout(60_000)
  let dir: string
  let ds: LevelDatastore
  let writes: Write[]

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmdb-durability-'))
    ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
    writes = observe(ds)
  })

  afterEach(async () => {
    await ds.close()
    await rm(dir, { recursive: true, force: true })
  })

  const kinds = {
    any: async () => {
      const db = await AnyDb.open({ datastore: ds, prefix: '/a' })
      return { db, merkleized: await db.newBatch().update(key(1), value(1)).merkleize() }
    },
    current: async () => {
      const db = await CurrentDb.open({ datastore: ds, prefix: '/c' })
      return { db, merkleized: await db.newBatch().update(key(1), value(1)).merkleize() }
    },
    immutable: async () => {
      const db = await ImmutableDb.open({ datastore: ds, prefix: '/i' })
      return { db, merkleized: await db.newBatch().set(key(1), value(1)).merkleize() }
    },
    keyless: async () => {
      const db = await KeylessDb.open({ datastore: ds, prefix: '/k' })
      return { db, merkleized: await db.newBatch().append(value(1)).merkleize() }
    },
    'compact immutable': async () => {
      const db = await CompactImmutableDb.open({ datastore: ds, prefix: '/ci' })
      return { db, merkleized: await db.newBatch().set(key(1), value(1)).merkleize() }
    },
    'compact keyless': async () => {
      const db = await CompactKeylessDb.open({ datastore: ds, prefix: '/ck' })
      return { db, merkleized: await db.newBatch().append(value(1)).merkleize() }
    }
  }

  const finalizeIsSynced = async (open: () => Promise<{ db: { apply(m: never): Promise<unknown>, finalize(): Promise<void>, close(): Promise<void> }, merkleized: unknown }>): Promise<void> => {
    const { db, merkleized } = await open()
    writes.length = 0
    await db.apply(merkleized as never)
    expect(writes, 'apply is speculative until finalize').to.deep.equal([])
    await db.finalize()
    expect(writes).to.have.length(1)
    expect(writes[0].sync, 'the flush before an ack must fsync').to.equal(true)
    expect(writes[0].ops).to.be.greaterThan(0)
    await db.close()
  }

  for (const [name, open] of Object.entries(kinds)) {
    it(`${name}: apply writes nothing; finalize writes once, with sync`, async () => {
      await finalizeIsSynced(open)
    })
  }

  it('DatabaseSet.finalize: every member is flushed with sync before the barrier resolves', async () => {
    const accounts = await AnyDb.open({ datastore: ds, prefix: '/a' })
    const receipts = await CompactKeylessDb.open({ datastore: ds, prefix: '/r' })
    const set = new DatabaseSet({ accounts, receipts })
    const batches = set.newBatches()
    batches.accounts.update(key(7), value(7))
    batches.receipts.append(value(7))
    await set.apply({ accounts: await batches.accounts.merkleize(), receipts: await batches.receipts.merkleize() })
    writes.length = 0
    await set.finalize().durable()
    expect(writes.map(w => w.sync)).to.deep.equal([true, true])
  })

  it("marshal's processed height is written with sync", async () => {
    const store = new BlockStore(new Kv(ds), '/marshal', { encode: () => new Uint8Array(0), decode: () => { throw new Error('unused') } } as never, {} as never)
    writes.length = 0
    await store.setProcessed(5, { epoch: 0, view: 9 })
    expect(writes).to.deep.equal([{ sync: true, ops: 1 }])
    expect(await store.getProcessed()).to.deep.equal({ height: 5, round: { epoch: 0, view: 9 } })
  })
})
