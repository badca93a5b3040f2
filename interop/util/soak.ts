/**
 * A soak run: a 4-validator network of CLI node processes under a steady
 * transfer load (every block carries `transfers` generated transfers),
 * sampled every `sampleMs` for each node's applied height, resident set
 * (split, on Linux, into anonymous memory and mapped files), V8 heap in
 * use and live (right after a full collection the harness asks for, see
 * live-heap.ts), memory outside the heap (`external`, `arrayBuffers`) and on-disk
 * store size. `growth` compares a sample taken after warm-up with the last
 * one, and fits the growth per block through the last half of the run,
 * which is what "flat memory" is judged on (docs/PROTOCOLS.md "Storage and
 * memory bounds").
 *
 * The split matters because LevelDB reads its table files through mmap:
 * pages of the store it has read count in the resident set as mapped files
 * (`rssFile`), growing with the store; they are page cache the kernel takes
 * back under pressure, not memory the node holds (`rssAnon`).
 */

import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Network } from './network.ts'
import type { NodeConfig } from '../../src/node/config.ts'

export interface SoakSample {
  /** Seconds since the network started. */
  t: number
  node: string
  height: number
  rss: number
  /** Anonymous and file-mapped parts of `rss` (`/proc/<pid>/status`; -1 where unavailable). */
  rssAnon: number
  rssFile: number
  heapTotal: number
  heapUsed: number
  /** V8 heap in use right after a full collection (what the node holds; -1 if it did not answer). */
  heapLive: number
  external: number
  arrayBuffers: number
  /** LevelDB's block cache and memtables. */
  leveldb: number
  store: number
}

export interface SoakGrowth {
  node: string
  blocks: number
  from: SoakSample
  to: SoakSample
  /** Bytes per block between `from` and `to`. */
  rssPerBlock: number
  heapPerBlock: number
  /** Least-squares bytes per block through the samples of the last half of the run. */
  slope: { blocks: number, rss: number, rssAnon: number, heapLive: number, external: number }
}

export interface SoakOptions {
  durationMs: number
  sampleMs: number
  /** Generated transfers per block (default 50). */
  transfers?: number
  /** Fraction of the run treated as warm-up (default 0.25). */
  warmup?: number
  onSample?(samples: SoakSample[]): void
}

/** Least-squares slope of `y` over `x` (0 for fewer than two distinct x). */
export function slope (x: number[], y: number[]): number {
  const mx = x.reduce((a, b) => a + b, 0) / x.length
  const my = y.reduce((a, b) => a + b, 0) / y.length
  let num = 0
  let den = 0
  for (let i = 0; i < x.length; i++) {
    num += (x[i] - mx) * (y[i] - my)
    den += (x[i] - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

/** Bytes under `dir`. LevelDB compacts while we walk, so a file (or directory) that vanishes in between counts as 0. */
async function diskUsage (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(vanished([]))) {
    const p = join(dir, entry.name)
    total += entry.isDirectory() ? await diskUsage(p) : (await stat(p).catch(vanished({ size: 0 }))).size
  }
  return total
}

function vanished<T> (fallback: T): (err: NodeJS.ErrnoException) => T {
  return err => {
    if (err.code === 'ENOENT') { return fallback }
    throw err
  }
}

/** RssAnon and RssFile of process `pid` in bytes (-1 each off Linux or once it exited). */
async function residentSplit (pid: number | undefined): Promise<{ rssAnon: number, rssFile: number }> {
  const text = pid === undefined ? '' : await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kib = (field: string): number => {
    const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))
    return m === null ? -1 : Number(m[1]) * 1024
  }
  return { rssAnon: kib('RssAnon'), rssFile: kib('RssFile') }
}

function growthOf (rounds: SoakSample[][], warmup: number): SoakGrowth[] {
  const first = rounds[Math.min(rounds.length - 1, Math.floor(rounds.length * warmup))] ?? []
  const last = rounds[rounds.length - 1] ?? []
  const secondHalf = rounds.slice(Math.floor(rounds.length / 2)).flat()
  return first.flatMap(from => {
    const to = last.find(s => s.node === from.node)
    if (to === undefined) { return [] }
    const blocks = Math.max(1, to.height - from.height)
    const half = secondHalf.filter(s => s.node === from.node)
    const heights = half.map(s => s.height)
    const fit = (f: (s: SoakSample) => number): number => slope(heights, half.map(f))
    return [{
      node: from.node,
      blocks,
      from,
      to,
      rssPerBlock: (to.rss - from.rss) / blocks,
      heapPerBlock: (to.heapLive - from.heapLive) / blocks,
      slope: {
        blocks: half.length === 0 ? 0 : half[half.length - 1].height - half[0].height,
        rss: fit(s => s.rss),
        rssAnon: fit(s => s.rssAnon),
        heapLive: fit(s => s.heapLive),
        external: fit(s => s.external)
      }
    }]
  })
}

export async function soak (opts: SoakOptions): Promise<{ samples: SoakSample[][], growth: SoakGrowth[] }> {
  const net = await Network.create({ validators: 4, transfers: opts.transfers ?? 50, liveHeap: true })
  const rounds: SoakSample[][] = []
  try {
    const dataDirs = await Promise.all(net.nodes.map(async n => (JSON.parse(await readFile(n.configPath, 'utf8')) as NodeConfig).dataDir))
    await net.startAll()
    const started = Date.now()
    while (Date.now() - started < opts.durationMs) {
      await new Promise(resolve => setTimeout(resolve, opts.sampleMs))
      const t = (Date.now() - started) / 1000
      const round: SoakSample[] = []
      for (let i = 0; i < net.nodes.length; i++) {
        const s = net.nodes[i].status
        if (s?.memory === undefined) { continue }
        round.push({
          t,
          node: net.nodes[i].name,
          height: s.appliedHeight ?? 0,
          rss: s.memory.rss,
          ...await residentSplit(net.nodes[i].proc?.pid),
          heapTotal: s.memory.heapTotal,
          heapUsed: s.memory.heapUsed,
          heapLive: await net.nodes[i].liveHeap() ?? -1,
          external: s.memory.external,
          arrayBuffers: s.memory.arrayBuffers,
          leveldb: s.memory.leveldb,
          store: await diskUsage(dataDirs[i])
        })
      }
      rounds.push(round)
      opts.onSample?.(round)
    }
  } finally {
    await net.close()
  }
  return { samples: rounds, growth: growthOf(rounds, opts.warmup ?? 0.25) }
}
