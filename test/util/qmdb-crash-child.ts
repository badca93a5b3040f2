/**
 * Child process for the SIGKILL durability test: opens an `any` and a
 * `current` database in one LevelDB, then commits deterministic batches
 * forever, reporting over IPC the root of every batch before its commit
 * starts and every batch whose commit completed. The batch index is stored
 * in the commit metadata so a restarted child continues where the durable
 * state ends.
 */
import { LevelDatastore } from 'datastore-level'
import { AnyDb, CurrentDb } from '../../src/qmdb/index.ts'
import { crashBatchWrites } from './qmdb-crash-model.ts'

const dir = process.argv[2]
const ds = new LevelDatastore(dir)
await ds.open()
const any = await AnyDb.open({ datastore: ds, prefix: '/any' })
const current = await CurrentDb.open({ datastore: ds, prefix: '/current' })
const meta = any.metadata
let next = meta === undefined ? 0 : new DataView(meta.buffer, meta.byteOffset).getUint32(28) + 1

const send = async (msg: unknown): Promise<void> => new Promise(resolve => { process.send?.(msg, () => { resolve() }) })
await send({ type: 'ready', next })

for (;;) {
  const j = next++
  const metadata = new Uint8Array(32)
  new DataView(metadata.buffer).setUint32(28, j)
  const roots: string[] = []
  for (const db of [any, current]) {
    const b = db.newBatch().withMetadata(metadata)
    for (const [k, v] of crashBatchWrites(j)) { b.write(k, v) }
    const m = await b.merkleize()
    await db.apply(m)
    roots.push(Buffer.from(db.root).toString('hex'))
  }
  await send({ type: 'applied', batch: j, roots })
  // one durable write per database; both must land for the batch to count as durable
  await Promise.all([any.commit(), current.commit()])
  await send({ type: 'durable', batch: j })
}
