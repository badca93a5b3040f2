/**
 * Durability under SIGKILL: a child process commits batches to LevelDB and is
 * killed at random moments. Every reopen must land exactly on a state the
 * child produced, no earlier than the last commit it reported durable, with
 * every key holding the value the model says.
 */
import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { LevelDatastore } from 'datastore-level'
import { AnyDb, CurrentDb } from '../../src/qmdb/index.ts'
import { crashModel } from '../util/qmdb-crash-model.ts'
import { Rng } from '../util/rng.ts'
import { key } from '../util/workloads.ts'

const here = dirname(fileURLToPath(import.meta.url))

interface Msg { type: 'ready' | 'applied' | 'durable', next?: number, batch?: number, roots?: string[] }

async function runAndKill (dir: string, rng: Rng, roots: Map<number, string[]>): Promise<{ durable: number }> {
  const child = fork(join(here, '..', 'util', 'qmdb-crash-child.js'), [dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } })
  let durable = -1
  let commits = 0
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const target = 1 + rng.int(4) // kill after 1-4 durable commits (plus a random delay)
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: Msg) => {
      if (m.type === 'applied') { roots.set(m.batch as number, m.roots as string[]) }
      if (m.type === 'durable') {
        durable = m.batch as number
        if (++commits === target) {
          setTimeout(() => { child.kill('SIGKILL'); resolve() }, rng.int(40))
        }
      }
    })
    child.once('exit', code => { if (commits < target) { reject(new Error(`child exited early (${code})`)) } })
  })
  await exited
  return { durable }
}

describe('qmdb: durability under SIGKILL', function () {
  this.timeout(300_000)
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-crash-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('20 random kills: every reopen is a committed state at or after the last reported durable batch', async () => {
    const rng = new Rng(2024)
    const roots = new Map<number, string[]>()
    let lastDurable = -1
    for (let kill = 0; kill < 20; kill++) {
      const { durable } = await runAndKill(dir, rng, roots)
      lastDurable = Math.max(lastDurable, durable)
      const ds = new LevelDatastore(dir)
      await ds.open()
      const any = await AnyDb.open({ datastore: ds, prefix: '/any' })
      const current = await CurrentDb.open({ datastore: ds, prefix: '/current' })
      // each database is committed by its own atomic write: check each on its own
      const batchOf = (m: Uint8Array | undefined): number => new DataView((m as Uint8Array).buffer, (m as Uint8Array).byteOffset).getUint32(28)
      const batch = batchOf(any.metadata)
      const currentBatch = batchOf(current.metadata)
      // the state is exactly one the child produced, not older than what it reported durable
      expect(batch).to.be.at.least(lastDurable)
      expect(currentBatch).to.be.at.least(lastDurable)
      expect(roots.get(batch)?.[0]).to.equal(Buffer.from(any.root).toString('hex'))
      expect(roots.get(currentBatch)?.[1]).to.equal(Buffer.from(current.root).toString('hex'))
      // every key holds the model's value after batches 0..batch
      const model = crashModel(batch)
      for (let k = 0; k < 3000; k += 7) {
        const want = model.get(Buffer.from(key(k)).toString('hex'))
        const got = await any.get(key(k))
        expect(got === undefined ? null : Buffer.from(got).toString('hex')).to.equal(want == null ? null : Buffer.from(want).toString('hex'))
        if (currentBatch === batch) { expect(await current.get(key(k))).to.deep.equal(got) }
      }
      await ds.close()
    }
  })
})
