/**
 * Peer discovery in one process: four ledger validators that know each
 * other, and a joiner configured with one validator's address only. It
 * finds the other three through the chain's gossip announcements, connects
 * to them, and state-syncs — which needs finalizations from f + 1 = 2
 * validators, more than the one it was told about.
 */
import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import { waitUntil } from '../util/common.ts'
import type { QmdbNode } from '../../src/node/node.ts'

describe('node: peer discovery', function () {
  this.timeout(180_000)
  let dir: string
  const nodes: QmdbNode[] = []

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-discovery-')) })
  after(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  })

  it('a joiner given one validator address connects to all four and state-syncs', async () => {
    const configs = await initNetwork({ dir, validators: 4, joiners: 1, chainId: 'discovery', host: '127.0.0.1', autoTransfers: 5 })
    const application = ledgerApplication({ autoTransfers: 5 })
    const validators: QmdbNode[] = []
    for (const c of configs.slice(0, 4)) {
      // each validator knows the addresses of the ones started before it (port 0: known only once listening)
      const known = validators.flatMap(v => v.libp2p.getMultiaddrs().map(String))
      const v = await createNode({ ...c.config, application: undefined, bootstrap: known, consensus: { blockIntervalMs: 50 } }, application)
      validators.push(v)
      nodes.push(v)
    }
    await waitUntil(async () => ((await validators[0].status()).appliedHeight ?? 0) >= 5, 90_000, 'the chain at height 5')
    const one = validators[2].libp2p.getMultiaddrs().map(String).slice(0, 1)
    const joiner = await createNode({ ...configs[4].config, application: undefined, bootstrap: one }, application)
    nodes.push(joiner)
    const ids = validators.map(v => v.peerId)
    const connected = (): Set<string> => new Set(joiner.libp2p.getPeers().map(String))
    await waitUntil(() => ids.every(id => connected().has(id)), 60_000, 'connections to every validator')
    await joiner.ready
    expect((await joiner.status()).syncHeight).to.be.greaterThan(0)
  })
})
