/**
 * The serving process of `bench/sync-net.ts`: builds an `any` database from
 * a seeded workload (random 32-byte keys and values, batches of 10k updates)
 * until the range a state sync must fetch (`[floor, size)`) holds at least
 * `--ops` operations, then serves it with the standard resolver on TCP
 * 127.0.0.1.
 *
 * ```
 * node dist/bench/sync-net-server.js --ops 100000 [--seed 1] [--level]
 * ```
 *
 * stdout, one JSON line each: `{"ready": true, addr, root, start, end, size,
 * buildMs, buildRssBytes}` once serving; `{"stopped": true, peakRssBytes,
 * served}` after a `stop` line on stdin (or stdin closing), then it exits.
 * `--level` stores the database in a temporary LevelDB (removed on exit)
 * instead of memory.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p } from 'libp2p'
import { sha256 } from '../src/merkle/index.ts'
import { standardResolver } from '../src/p2p/index.ts'
import { installPolyfills } from '../src/polyfill.ts'
import { AnyDb } from '../src/qmdb/index.ts'
import { LocalSource } from '../src/sync/local-source.ts'
import type { Request } from '../src/sync/messages.ts'
import type { Served, ServeOptions, Source } from '../src/sync/source.ts'

// libp2p v3 calls Promise.withResolvers, which Node 20 lacks
installPolyfills()

export const SYNC_NET_DB = 'any'
/** Updates per batch of the workload. */
const BATCH = 10_000

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

/** 32 bytes derived from (i, tag): sha256(u32be(i) ‖ u32be(tag)). */
function derive (i: number, tag: number): Uint8Array {
  const b = new Uint8Array(8)
  const v = new DataView(b.buffer)
  v.setUint32(0, i)
  v.setUint32(4, tag)
  return sha256(b)
}

/** xorshift32, seeded: the workload is the same for a given seed. */
function rng (seed: number): () => number {
  let x = (seed * 0x9e3779b1) >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/**
 * Build an `any` database whose sync range `[floor, size)` holds at least
 * `ops` operations: batches of 10k updates, 70% of them creating a key and
 * 30% overwriting a random existing one (so the floor moves and the range
 * mixes live and dead operations, as in a real chain).
 */
export async function buildWorkload (db: AnyDb, ops: number, seed: number): Promise<void> {
  const next = rng(seed)
  let keys = 0
  let round = 0
  while (db.size - db.syncBoundary < ops) {
    if (db.size > 20 * ops + 100_000) { throw new Error(`the workload does not converge (size ${db.size}, range ${db.size - db.syncBoundary})`) }
    round++
    const b = db.newBatch()
    for (let i = 0; i < BATCH; i++) {
      const k = keys === 0 || next() % 10 < 7 ? keys++ : next() % keys
      b.update(derive(k, 0), derive(k, round))
    }
    await db.apply(await b.merkleize())
    await db.commit()
  }
}

class CountingSource implements Source {
  served = 0
  readonly inner: Source

  constructor (inner: Source) {
    this.inner = inner
  }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    this.served++
    return this.inner.serve(request, options)
  }
}

async function main (): Promise<void> {
  const ops = Number(arg('ops') ?? 1_000_000)
  const seed = Number(arg('seed') ?? 1)
  const level = process.argv.includes('--level')
  let dir: string | undefined
  let ds: LevelDatastore | undefined
  if (level) {
    dir = await mkdtemp(join(tmpdir(), 'qmdb-sync-net-server-'))
    ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
  }
  const started = performance.now()
  const db = await AnyDb.open(ds === undefined ? {} : { datastore: ds, prefix: '/bench' })
  await buildWorkload(db, ops, seed)
  const buildMs = performance.now() - started
  const source = new CountingSource(new LocalSource(db))
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      standard: standardResolver({
        databases: [SYNC_NET_DB],
        maxServeOps: 16_384,
        maxResponseBytes: 16 * 1024 * 1024,
        inbound: { maxConcurrent: 256, rate: { perSecond: 1e6, burst: 1e6 } },
        maxInboundStreams: 1024
      })
    }
  })
  await node.services.standard.attach(SYNC_NET_DB, source)
  const target = db.syncTarget()
  const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
  out({
    ready: true,
    addr: node.getMultiaddrs()[0].toString(),
    root: Buffer.from(target.root).toString('hex'),
    start: target.range.start,
    end: target.range.end,
    size: db.size,
    buildMs,
    buildRssBytes: process.resourceUsage().maxRSS * 1024
  })
  let stopping = false
  const stop = async (): Promise<void> => {
    if (stopping) { return }
    stopping = true
    await node.stop()
    await db.close()
    await ds?.close()
    if (dir !== undefined) { await rm(dir, { recursive: true, force: true }) }
    out({ stopped: true, peakRssBytes: process.resourceUsage().maxRSS * 1024, served: source.served })
    process.exit(0)
  }
  const lines = createInterface({ input: process.stdin })
  lines.on('line', line => { if (line.trim() === 'stop') { void stop() } })
  lines.on('close', () => { void stop() })
  process.on('SIGTERM', () => { void stop() })
}

// run only as a script (the bench imports `buildWorkload` from here too)
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main()
}
