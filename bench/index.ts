/**
 * `npm run bench`: every figure is printed next to baselines measured in the
 * same run (bare SHA-256 per call, the native SHA-256 rate, and for the
 * databases `@ethereumjs/mpt`), so ratios are comparable across machines.
 * `node dist/bench/index.js <section>` runs one section (merkle, qmdb, scale,
 * index, sync, network); `BENCH_SCALE` adds the database scaling table.
 * Every figure issue 14 sets a floor or target for says PASS or BELOW next
 * to it, and the run ends with all of them in one table (data, not a test).
 */
import { installPolyfills } from '../src/polyfill.ts'
import { benchMerkle } from './merkle.ts'
import { benchNetwork } from './network.ts'
import { benchOrderedIndex } from './ordered-index.ts'
import { benchQmdb, benchScaling } from './qmdb.ts'
import { DEFAULT_SYNC_NET_OPS, benchSyncNetProcess } from './sync-net.ts'
import { printFloors } from './util.ts'

// libp2p v3 calls Promise.withResolvers, which Node 20 lacks
installPolyfills()

process.stdout.write(`libp2p-qmdb bench — node ${process.version}, ${new Date().toISOString()}\n`)
const only = process.argv[2]
if (only === undefined || only === 'merkle') { await benchMerkle() }
if (only === undefined || only === 'qmdb') { await benchQmdb() }
if (only === undefined || only === 'qmdb' || only === 'scale') { await benchScaling() }
if (only === undefined || only === 'index') { await benchOrderedIndex() }
if (only === undefined || only === 'sync') { await benchSyncNetProcess(DEFAULT_SYNC_NET_OPS) }
if (only === undefined || only === 'network') { await benchNetwork() }
printFloors()
// libp2p keeps timers alive for a while after stop
process.exit(0)
