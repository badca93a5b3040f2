/**
 * A soak run: a 4-validator network of CLI node processes under a steady
 * transfer load (every block carries `transfers` generated transfers),
 * sampled every `sampleMs` for each node's applied height, resident set,
 * V8 heap in use and on-disk store size. `growth` compares a sample taken
 * after warm-up with the last one, per block, which is what "flat memory"
 * is judged on (docs/PROTOCOLS.md "Storage and memory bounds").
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
  heapUsed: number
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

export async function soak (opts: SoakOptions): Promise<{ samples: SoakSample[][], growth: SoakGrowth[] }> {
  const net = await Network.create({ validators: 4, transfers: opts.transfers ?? 50 })
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
        round.push({ t, node: net.nodes[i].name, height: s.appliedHeight ?? 0, rss: s.memory.rss, heapUsed: s.memory.heapUsed, store: await diskUsage(dataDirs[i]) })
      }
      rounds.push(round)
      opts.onSample?.(round)
    }
  } finally {
    await net.close()
  }
  const first = rounds[Math.min(rounds.length - 1, Math.floor(rounds.length * (opts.warmup ?? 0.25)))] ?? []
  const last = rounds[rounds.length - 1] ?? []
  const growth = first.flatMap(from => {
    const to = last.find(s => s.node === from.node)
    if (to === undefined) { return [] }
    const blocks = Math.max(1, to.height - from.height)
    return [{ node: from.node, blocks, from, to, rssPerBlock: (to.rss - from.rss) / blocks, heapPerBlock: (to.heapUsed - from.heapUsed) / blocks }]
  })
  return { samples: rounds, growth }
}
