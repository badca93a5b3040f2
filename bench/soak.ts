/**
 * `npm run soak -- --minutes N [--sample-seconds S] [--transfers T]`: run a
 * 4-validator network of CLI node processes under a steady transfer load
 * for N minutes (default 5), print each node's applied height, resident set
 * (anonymous memory and mapped files apart), V8 heap (in use, and live
 * after a full collection), memory outside the
 * heap and store size every S seconds (default 30), then per node the change
 * between the end of warm-up (the first quarter) and the last sample, and
 * the least-squares growth per block through the last half of the run.
 */
import '../src/polyfill.ts'
import { parseArgs } from 'node:util'
import { soak } from '../interop/util/soak.ts'
import type { SoakSample } from '../interop/util/soak.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    'sample-seconds': { type: 'string', default: '30' },
    transfers: { type: 'string', default: '50' }
  }
})
const mb = (n: number): string => (n / 1024 / 1024).toFixed(1).padStart(7)
const kib = (n: number): string => (n / 1024).toFixed(2)
const row = (s: SoakSample): string => `${s.t.toFixed(0).padStart(6)} ${s.node.padEnd(8)} ${String(s.height).padStart(7)} ${mb(s.rss)} ${mb(s.rssAnon)} ${mb(s.rssFile)} ${mb(s.heapTotal)} ${mb(s.heapUsed)} ${mb(s.heapLive)} ${mb(s.external)} ${mb(s.arrayBuffers)} ${mb(s.leveldb)} ${mb(s.store)}`

const minutes = Number(values.minutes)
process.stdout.write(`soak: 4 validators, ${values.transfers} transfers per block, ${minutes} min, node ${process.version}\n`)
process.stdout.write(`     t node      height${['rss', 'anon', 'file', 'heapT', 'heap', 'live', 'ext', 'abuf', 'ldb', 'store'].map(c => ` ${c} MB`.padStart(8)).join('')}\n`)
const { growth } = await soak({
  durationMs: minutes * 60_000,
  sampleMs: Number(values['sample-seconds']) * 1000,
  transfers: Number(values.transfers),
  onSample: round => { for (const s of round) { process.stdout.write(row(s) + '\n') } }
})
process.stdout.write('\nafter warm-up → end (per node): blocks, RSS (anonymous) and heap change, store\n')
for (const g of growth) {
  const rate = g.blocks / Math.max(1, g.to.t - g.from.t)
  process.stdout.write(`${g.node.padEnd(8)} ${g.blocks} blocks (${rate.toFixed(1)}/s): rss ${mb(g.from.rss)} → ${mb(g.to.rss)} MB (${kib(g.rssPerBlock)} KiB/block), anon ${mb(g.from.rssAnon)} → ${mb(g.to.rssAnon)} MB, live heap ${mb(g.from.heapLive)} → ${mb(g.to.heapLive)} MB (${kib(g.heapPerBlock)} KiB/block), store ${mb(g.from.store)} → ${mb(g.to.store)} MB\n`)
}
process.stdout.write('\nslope per block through the last half (least squares)\n')
for (const g of growth) {
  const s = g.slope
  process.stdout.write(`${g.node.padEnd(8)} ${s.blocks} blocks: rss ${kib(s.rss)} KiB, anon ${kib(s.rssAnon)} KiB, live heap ${kib(s.heapLive)} KiB, external ${kib(s.external)} KiB\n`)
}
process.exit(0)
