/**
 * Network state sync benchmark: a fresh node state-syncs an `any` database
 * of N operations from a second node PROCESS over TCP loopback (Noise,
 * Yamux, the standard resolver), into a temporary LevelDB.
 *
 * Reported:
 * - ops/s: operations of the sync range `[floor, size)` verified, journaled
 * and rebuilt into a database with the target root, per second of sync;
 * - bytes on the wire per op: TCP payload bytes in both directions (Noise
 * and Yamux framing included, from libp2p's prometheus metrics), and the
 * resolver's own frame bytes;
 * - peak RSS of the syncing process: sampled every 20 ms during the sync
 * (the process's lifetime maximum is printed too; `npm run bench` runs this
 * section in a process of its own, so both are the sync's), and the serving
 * process's peak;
 * - next to them, the local `merkleize` rate of the same workload on the
 * same machine (operations appended per second of `merkleize`, in memory),
 * and the ratio sync / merkleize.
 *
 * ```
 * npm run build && node dist/bench/sync-net.js --ops 100000
 * ```
 * Options: `--ops N` (default 1,000,000), `--batch N` (operations per
 * request, default 4096), `--outstanding N` (concurrent requests, default
 * 8), `--server-level` (the server keeps its database in LevelDB instead of
 * memory).
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { noise } from '@libp2p/noise'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { LevelDatastore } from 'datastore-level'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { digestEquals } from '../src/merkle/index.ts'
import { standardResolver } from '../src/p2p/index.ts'
import { installPolyfills } from '../src/polyfill.ts'
import { AnyDb } from '../src/qmdb/index.ts'
import { anySync, syncDatabase } from '../src/sync/index.ts'
import { SYNC_NET_DB, buildWorkload } from './sync-net-server.ts'
import { floors, fmt, header, judge, line, now } from './util.ts'
import type { Target } from '../src/qmdb/index.ts'
import type { Interface } from 'node:readline'

// libp2p v3 calls Promise.withResolvers, which Node 20 lacks
installPolyfills()

export const DEFAULT_SYNC_NET_OPS = 1_000_000

export interface SyncNetOptions {
  /** Operations in the sync range (the server builds at least this many). */
  ops: number
  /** Operations per request (default 4096; the server serves up to 16384). */
  fetchBatchSize?: number
  /** Concurrent requests (default 8). */
  maxOutstandingRequests?: number
  /** Server database in LevelDB instead of memory (default false). */
  serverLevel?: boolean
  /** Print the report (default true). */
  print?: boolean
}

export interface SyncNetResult {
  /** Operations synced: the target range's length. */
  ops: number
  seconds: number
  opsPerSec: number
  /** TCP payload bytes, both directions, per op (Noise and Yamux included). */
  wireBytesPerOp: number
  /** Resolver frame bytes (requests and responses) per op. */
  frameBytesPerOp: number
  /** Requests the server answered. */
  requests: number
  /** RSS before the sync and the peak sampled during it (syncing process). */
  rssBeforeBytes: number
  peakRssBytes: number
  /** The syncing process's lifetime peak RSS. */
  processMaxRssBytes: number
  /** The serving process's lifetime peak RSS (database build included). */
  serverPeakRssBytes: number
  serverBuildSeconds: number
  /** Local merkleize rate of the same workload (operations appended per second). */
  merkleizeOpsPerSec: number
  /** opsPerSec / merkleizeOpsPerSec. */
  ratio: number
}

type ServerLine = Record<string, unknown>

/** The server's stdout as JSON lines, in order; `next()` fails if the server exits first. */
class ServerLines {
  private readonly queue: string[] = []
  private waiter: (() => void) | undefined
  private ended = false
  readonly exited: Promise<number | null>

  constructor (lines: Interface, exited: Promise<number | null>) {
    this.exited = exited
    lines.on('line', l => {
      this.queue.push(l)
      this.waiter?.()
    })
    lines.on('close', () => {
      this.ended = true
      this.waiter?.()
    })
    void exited.then(() => {
      this.ended = true
      this.waiter?.()
    })
  }

  async next (): Promise<ServerLine> {
    while (this.queue.length === 0) {
      if (this.ended) { throw new Error(`the sync-net server exited (code ${String(await this.exited)}) before answering`) }
      await new Promise<void>(resolve => { this.waiter = resolve })
      this.waiter = undefined
    }
    return JSON.parse(this.queue.shift() as string) as ServerLine
  }
}

/** Sum of a prometheus counter group's values whose label is one of `labels`. */
async function counter (registry: Registry, name: string, labels: string[]): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) { return 0 }
  const { values } = await metric.get()
  return values.filter(v => Object.values(v.labels).some(l => labels.includes(String(l)))).reduce((s, v) => s + v.value, 0)
}

/** Operations appended per second of `merkleize` on the bench workload (in memory). */
async function merkleizeRate (ops: number): Promise<number> {
  const db = await AnyDb.open()
  // a database of the same shape as the synced one (capped, to keep it quick), then 5 timed batches
  await buildWorkload(db, Math.min(ops, 200_000), 99)
  let ms = 0
  let appended = 0
  let x = 12345
  for (let r = 0; r < 5; r++) {
    const b = db.newBatch()
    for (let i = 0; i < 10_000; i++) {
      x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6b43a9b5) >>> 0
      const k = new Uint8Array(32)
      new DataView(k.buffer).setUint32(0, x)
      b.update(k, k)
    }
    const t = now()
    const m = await b.merkleize()
    ms += now() - t
    appended += m.size - m.baseSize
    await db.apply(m)
  }
  await db.close()
  return appended / (ms / 1000)
}

export async function benchSyncNet (opts: SyncNetOptions): Promise<SyncNetResult> {
  const ops = opts.ops
  const fetchBatchSize = opts.fetchBatchSize ?? 4096
  const outstanding = opts.maxOutstandingRequests ?? 8
  const print = opts.print ?? true
  if (print) { header(`sync-net: state sync of an \`any\` database (${fmt(ops)} ops) between two processes over TCP loopback`) }

  const script = fileURLToPath(new URL('./sync-net-server.js', import.meta.url))
  const child = spawn(process.execPath, [script, '--ops', String(ops), ...(opts.serverLevel === true ? ['--level'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
  const lines = createInterface({ input: child.stdout })
  const server = new ServerLines(lines, exited)
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-sync-net-'))
  const ds = new LevelDatastore(join(dir, 'db'))
  await ds.open()
  const registry = new Registry()
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }),
    services: {
      standard: standardResolver({
        databases: [SYNC_NET_DB],
        timeout: 60_000,
        maxResponseBytes: 16 * 1024 * 1024,
        outbound: { maxConcurrent: Math.max(8, outstanding), rate: { perSecond: 1e6, burst: 1e6 } }
      })
    }
  })
  try {
    const ready = await server.next()
    const target: Target = {
      root: Uint8Array.from(Buffer.from(String(ready.root), 'hex')),
      range: { start: Number(ready.start), end: Number(ready.end) }
    }
    const synced = target.range.end - target.range.start
    const serverBuildSeconds = Number(ready.buildMs) / 1000
    if (print) { line('server: build the database (child process)', `${fmt(serverBuildSeconds, 1)} s`, `size ${fmt(Number(ready.size))}, sync range ${fmt(synced)} ops`) }
    const connection = await node.dial(multiaddr(String(ready.addr)))
    const source = node.services.standard.source(SYNC_NET_DB, { codec: anySync().codec, peers: [connection.remotePeer] })
    // reset the transfer counters (they count from the last read)
    await counter(registry, 'libp2p_data_transfer_bytes_total', ['global sent', 'global received'])

    const rssBefore = process.memoryUsage.rss()
    let peakRss = rssBefore
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 20)
    const t = now()
    let db
    try {
      db = await syncDatabase({
        kind: anySync({ datastore: ds, prefix: '/sync' }),
        target,
        source,
        fetchBatchSize,
        maxOutstandingRequests: outstanding
      })
    } finally {
      clearInterval(sampler)
      source.close()
    }
    const seconds = (now() - t) / 1000
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
    const processMaxRss = process.resourceUsage().maxRSS * 1024
    if (!digestEquals(db.opsRoot, target.root)) { throw new Error('the synced database does not have the target root') }
    await db.close()

    const wire = await counter(registry, 'libp2p_data_transfer_bytes_total', ['global sent', 'global received'])
    const frames = await counter(registry, 'libp2p_qmdb_standard_bytes_total', ['in', 'out'])
    await node.stop()
    child.stdin.write('stop\n')
    const stopped = await server.next()
    const opsPerSec = synced / seconds
    const merkleizeOpsPerSec = await merkleizeRate(ops)
    const result: SyncNetResult = {
      ops: synced,
      seconds,
      opsPerSec,
      wireBytesPerOp: wire / synced,
      frameBytesPerOp: frames / synced,
      requests: Number(stopped.served),
      rssBeforeBytes: rssBefore,
      peakRssBytes: peakRss,
      processMaxRssBytes: processMaxRss,
      serverPeakRssBytes: Number(stopped.peakRssBytes),
      serverBuildSeconds,
      merkleizeOpsPerSec,
      ratio: opsPerSec / merkleizeOpsPerSec
    }
    if (print) {
      const mib = (n: number): string => `${fmt(n / 1024 / 1024, 1)} MiB`
      line('sync over TCP (verify + journal + rebuild, LevelDB)', `${fmt(opsPerSec)} ops/s`, `${fmt(seconds, 2)} s; ${fmt(result.requests)} requests of up to ${fmt(fetchBatchSize)} ops, ${outstanding} outstanding`)
      line('bytes on the wire per op (TCP payload, both directions)', `${fmt(result.wireBytesPerOp, 1)} B/op`, `resolver frames ${fmt(result.frameBytesPerOp, 1)} B/op; total ${mib(wire)}`)
      line('peak RSS of the syncing process (sampled during the sync)', mib(peakRss), `before ${mib(rssBefore)}; process max ${mib(processMaxRss)}; server max ${mib(result.serverPeakRssBytes)}; ${judge({ name: `sync peak RSS (${fmt(synced)} ops)`, value: peakRss / 1024 / 1024, limit: 400, kind: 'max', level: 'floor', unit: ' MiB' })}`)
      line('local merkleize rate (same workload, in memory)', `${fmt(merkleizeOpsPerSec)} ops/s`)
      line('sync / merkleize', `${fmt(result.ratio, 2)}`, judge({ name: 'state sync / local merkleize', value: result.ratio, limit: 0.5, kind: 'min', level: 'floor' }))
    }
    return result
  } finally {
    if (node.status !== 'stopped') { await node.stop() }
    if (child.exitCode === null) { child.kill('SIGTERM') }
    await exited
    lines.close()
    await ds.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * `npm run bench` runs the sync in a process of its own, so the peak RSS is
 * the syncing process's and not the earlier sections' heap: its lines pass
 * through, its floors come back as one `#floors <json>` line.
 */
export async function benchSyncNetProcess (ops: number): Promise<void> {
  const script = fileURLToPath(new URL('./sync-net.js', import.meta.url))
  const child = spawn(process.execPath, [script, '--ops', String(ops), '--report-floors', '--quiet-title'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
  for await (const l of createInterface({ input: child.stdout })) {
    if (l.startsWith('#floors ')) {
      floors.push(...JSON.parse(l.slice('#floors '.length)))
    } else {
      process.stdout.write(l + '\n')
    }
  }
  const code = await exited
  if (code !== 0) { throw new Error(`the sync bench process exited with code ${String(code)}`) }
}

// standalone: node dist/bench/sync-net.js --ops 100000
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`)
    return i >= 0 ? process.argv[i + 1] : undefined
  }
  if (!process.argv.includes('--quiet-title')) { process.stdout.write(`libp2p-qmdb bench — node ${process.version}, ${new Date().toISOString()}\n`) }
  await benchSyncNet({
    ops: Number(arg('ops') ?? DEFAULT_SYNC_NET_OPS),
    fetchBatchSize: arg('batch') === undefined ? undefined : Number(arg('batch')),
    maxOutstandingRequests: arg('outstanding') === undefined ? undefined : Number(arg('outstanding')),
    serverLevel: process.argv.includes('--server-level')
  })
  if (process.argv.includes('--report-floors')) { process.stdout.write(`#floors ${JSON.stringify(floors)}\n`) }
  // libp2p keeps timers alive for a while after stop
  process.exit(0)
}
