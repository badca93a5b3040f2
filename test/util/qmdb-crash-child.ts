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
// each database is committed by its own atomic write, so one may be a batch
// behind the other after a kill: continue each from its own durable batch
const nextOf = (db: AnyDb): number => {
  const meta = db.metadata
  return meta === undefined ? 0 : new DataView(meta.buffer, meta.byteOffset).getUint32(28) + 1
}

const send = async (msg: unknown): Promise<void> => new Promise(resolve => { process.send?.(msg, () => { resolve() }) })
await send({ type: 'ready', next: nextOf(any) })

async function applyBatch (db: AnyDb, j: number): Promise<string> {
  const metadata = new Uint8Array(32)
  new DataView(metadata.buffer).setUint32(28, j)
  const b = db.newBatch().withMetadata(metadata)
  for (const [k, v] of crashBatchWrites(j)) { b.write(k, v) }
  await db.apply(await b.merkleize())
  return Buffer.from(db.root).toString('hex')
}

// catch the lagging database up (its batch was applied before the kill, but not made durable)
while (nextOf(current) < nextOf(any)) {
  await applyBatch(current, nextOf(current))
  await current.commit()
}
while (nextOf(any) < nextOf(current)) {
  await applyBatch(any, nextOf(any))
  await any.commit()
}

for (let j = nextOf(any); ; j++) {
  const roots = [await applyBatch(any, j), await applyBatch(current, j)]
  await send({ type: 'applied', batch: j, roots })
  // one durable write per database; both must land for the batch to count as durable
  await Promise.all([any.commit(), current.commit()])
  await send({ type: 'durable', batch: j })
}
