/**
 * `npm run soak -- --minutes N [--sample-seconds S] [--transfers T]`: run a
 * 4-validator network of CLI node processes under a steady transfer load
 * for N minutes (default 5), print each node's applied height, RSS, V8 heap
 * and store size every S seconds (default 30), then the growth per block
 * between the end of warm-up (the first quarter) and the last sample.
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
const row = (s: SoakSample): string => `${s.t.toFixed(0).padStart(6)} ${s.node.padEnd(8)} ${String(s.height).padStart(7)} ${mb(s.rss)} ${mb(s.heapUsed)} ${mb(s.store)}`

const minutes = Number(values.minutes)
process.stdout.write(`soak: 4 validators, ${values.transfers} transfers per block, ${minutes} min, node ${process.version}\n`)
process.stdout.write('     t node      height  rss MB heap MB store MB\n')
const { growth } = await soak({
  durationMs: minutes * 60_000,
  sampleMs: Number(values['sample-seconds']) * 1000,
  transfers: Number(values.transfers),
  onSample: round => { for (const s of round) { process.stdout.write(row(s) + '\n') } }
})
process.stdout.write('\nafter warm-up → end (per node): blocks, RSS and heap change, per block\n')
for (const g of growth) {
  process.stdout.write(`${g.node.padEnd(8)} ${g.blocks} blocks: rss ${mb(g.from.rss)} → ${mb(g.to.rss)} MB (${(g.rssPerBlock / 1024).toFixed(2)} KiB/block), heap ${mb(g.from.heapUsed)} → ${mb(g.to.heapUsed)} MB (${(g.heapPerBlock / 1024).toFixed(2)} KiB/block), store ${mb(g.to.store)} MB\n`)
}
process.exit(0)
