/**
 * A state sync interrupted for long enough that every peer has pruned its
 * floor: on restart the node probes for a newer floor (never an older one)
 * and completes from there, instead of waiting forever for history nobody
 * serves any more.
 */
import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import { waitUntil } from '../util/p2p-nodes.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { Source } from '../../src/sync/source.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('node: a resumed state sync refreshes its floor', function () {
  this.timeout(240_000)
  let dir: string
  const nodes: QmdbNode[] = []

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-resync-')) })
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  })

  it('the persisted floor is pruned on the only server: the restarted joiner takes a newer floor and finishes', async () => {
    const [v, j] = await initNetwork({ dir, validators: 1, joiners: 1, chainId: 'qmdb-resync', host: '127.0.0.1', autoTransfers: 30 })
    const application = ledgerApplication({ autoTransfers: 30 })
    // the server keeps only a few blocks of history, and serves slowly until told otherwise
    const slow = { on: true }
    const serving = (_db: string, source: Source): Source => ({
      async serve (request, options) {
        if (slow.on) { await sleep(100) }
        return source.serve(request, options)
      }
    })
    const validator = await createNode({ ...v.config, consensus: { blockIntervalMs: 20 }, prune: { maintenanceInterval: 4, retainedMarshalBlocks: 4, retainedQmdbBlocks: 4 } }, application, { serving })
    nodes.push(validator)
    const height = async (n: QmdbNode): Promise<number> => (await n.status()).appliedHeight ?? 0
    await waitUntil(async () => await height(validator) >= 12, 60_000, 'the validator at height 12')

    const joinerConfig = { ...j.config, bootstrap: validator.libp2p.getMultiaddrs().map(String), sync: { fetchBatchSize: 16, maxOutstandingRequests: 1 } }
    const anchors: number[] = []
    let progressed = false
    const first = await createNode(joinerConfig, application, {
      onAnchor: a => { anchors.push(a.height) },
      onProgress: () => { progressed = true }
    })
    await waitUntil(() => progressed && anchors.length > 0, 60_000, 'state-sync progress')
    await first.stop()
    expect(anchors).to.not.be.empty()
    const floor = Math.min(...anchors)

    // long downtime: the server moves on and prunes everything at and around the old floor
    await waitUntil(async () => await height(validator) >= floor + 40, 120_000, 'the chain to move 40 blocks past the old floor')
    // the chain stops (a server keeping 4 blocks of history outruns any
    // syncing node while it runs); the server keeps serving
    await validator.pauseConsensus()
    slow.on = false

    const resumed: number[] = []
    const joiner = await createNode(joinerConfig, application, { onAnchor: a => { resumed.push(a.height) } })
    nodes.push(joiner)
    await Promise.race([joiner.ready, sleep(90_000).then(() => { throw new Error('the resumed sync did not finish') })])
    expect(Math.min(...resumed), 'a newer floor, never the old one').to.be.greaterThan(floor + 4)
    let a = -1
    let b = -2
    await waitUntil(async () => {
      a = await height(validator)
      b = await height(joiner)
      return a === b
    }, 60_000, 'the joiner to reach the validator')
    expect((await joiner.status()).roots).to.deep.equal((await validator.status()).roots)
  })
})
