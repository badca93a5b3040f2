/**
 * Child process for the kill-and-resume sync test: syncs a `keyless`
 * database into LevelDB (`dir`, prefix `/synced`) toward a target given on
 * the command line, fetching through IPC from the parent, which serves from
 * its real database and may SIGKILL this process at any moment.
 *
 * Messages to the parent: `start` (the journal's resume point, from the
 * engine's first progress report), `request` (one per fetch), `reached`
 * (the journal holds the whole target; the database is being built),
 * `done` (the synced database's root and size). The parent answers each
 * request with the encoded response bytes; the child decodes them with the
 * database's codec, as a network source would.
 */
import { LevelDatastore } from 'datastore-level'
import { Channel, ServeError, decodeResponse, keylessSync, syncDatabase } from '../../src/sync/index.ts'
import type { Request, Served, Source } from '../../src/sync/index.ts'

interface Config { start: number, end: number, root: string, batch: number, outstanding: number }

const [dir, json] = process.argv.slice(2)
const cfg = JSON.parse(json) as Config
const send = (msg: unknown): void => { process.send?.(msg) }

const ds = new LevelDatastore(dir)
await ds.open()
const kind = keylessSync({ datastore: ds, prefix: '/synced' })

const pending = new Map<number, { request: Request, resolve(s: Served): void, reject(e: unknown): void }>()
let nextId = 0
process.on('message', (m: { id: number, bytes: Uint8Array }) => {
  const p = pending.get(m.id)
  if (p === undefined) { return }
  pending.delete(m.id)
  try {
    p.resolve({ response: decodeResponse(m.bytes, p.request, kind.codec) })
  } catch (err) {
    p.reject(err)
  }
})

const source: Source = {
  async serve (request, options) {
    return new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, { request, resolve, reject })
      options.signal?.addEventListener('abort', () => {
        pending.delete(id)
        reject(new ServeError('Aborted'))
      }, { once: true })
      send({ type: 'request', id, request })
    })
  }
}

const reached = new Channel<unknown>()
void reached.recv().then(t => { if (t !== undefined) { send({ type: 'reached' }) } })

let started = false
const db = await syncDatabase({
  kind,
  target: { root: new Uint8Array(Buffer.from(cfg.root, 'hex')), range: { start: cfg.start, end: cfg.end } },
  source,
  fetchBatchSize: cfg.batch,
  maxOutstandingRequests: cfg.outstanding,
  reached: reached as Channel<any>,
  onProgress: p => {
    if (!started) {
      started = true
      send({ type: 'start', resumeAt: p.target.range.start + p.synced })
    }
  }
})
await new Promise(resolve => { process.send?.({ type: 'done', root: Buffer.from(db.opsRoot).toString('hex'), size: db.size }, resolve) })
await db.close()
await ds.close()
process.disconnect()
