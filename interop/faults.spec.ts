/**
 * Fault scenarios across OS processes (`npm run test:interop`): crashes
 * (SIGKILL) of a validator and of a joiner in the middle of its state sync,
 * a corrupt serving peer, a full-cluster restart, a partition that heals, and
 * a joiner that knows one validator's address only (peer discovery).
 * Every scenario ends with the same check: consensus pauses, all running
 * nodes settle on one height and report identical roots.
 */

import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { Network, leftovers } from './util/network.ts'

const BAD_NODE = fileURLToPath(new URL('./bad-node.js', import.meta.url))

describe('interop: faults', function () {
  this.timeout(180_000)
  let net: Network | undefined

  afterEach(async () => {
    await net?.close()
    net = undefined
  })

  after(async () => {
    expect(await leftovers()).to.deep.equal([])
  })

  it('a validator killed with SIGKILL restarts, catches up, and agrees on the roots', async () => {
    net = await Network.create({ validators: 4 })
    await net.startAll()
    await net.allAt(10, 60_000)
    const victim = net.nodes[3]
    await victim.kill()
    const at = net.minHeight(net.nodes.slice(0, 3))
    // three of four validators are a quorum: the chain keeps going
    await net.allAt(at + 15, 60_000, net.nodes.slice(0, 3))
    await net.start(3)
    await victim.event('ready', 60_000)
    await victim.height(net.minHeight(net.nodes.slice(0, 3)), 60_000)
    const s = await net.settle()
    expect(s.height).to.be.at.least(at + 15)
  })

  it('a joiner killed in the middle of its state sync resumes it after a restart', async () => {
    net = await Network.create({ validators: 4, joiners: 1 })
    // small batches: the sync takes many requests, so the kill lands inside it
    await net.editConfig(4, c => { c.sync = { fetchBatchSize: 32, maxOutstandingRequests: 2 } })
    await net.startAll(net.validatorNodes)
    await net.allAt(30, 60_000)
    const joiner = net.nodes[4]
    await net.start(4)
    const first = await joiner.event('progress', 60_000)
    expect(joiner.events.some(e => e.event === 'ready')).to.equal(false)
    await joiner.kill()
    expect(Number(first.synced)).to.be.lessThan(Number(first.total))

    // the restart runs with the default batch sizes (what an operator would do)
    await net.editConfig(4, c => { delete c.sync })
    await net.start(4)
    // the interrupted sync resumes (it is never replaced by a replay from genesis)
    await joiner.event('phase', 30_000, e => e.phase === 'state-sync')
    await joiner.event('ready', 90_000)
    await joiner.height(net.minHeight() + 2, 60_000)
    await net.settle()
  })

  it('a peer serving corrupt state is blocked and the joiner syncs from honest peers', async () => {
    // A fresh request goes to the best-scored peer, ties broken by peer id, so
    // the corrupt peer is asked first when its id sorts before the honest
    // peers the joiner knows — every validator, since announcements make the
    // joiner find all four: pick such a layout (identities are random).
    let bad = -1
    let honest: number[] = []
    for (let attempt = 0; bad < 0; attempt++) {
      if (attempt === 40) { throw new Error('no usable identity layout in 40 tries') }
      const candidate = await Network.create({ validators: 4, joiners: 2 })
      const ids = candidate.peerIds
      const b = [4, 5].find(i => ids.slice(0, 4).every(v => v > ids[i]))
      if (b === undefined) {
        await candidate.close()
        continue
      }
      net = candidate
      bad = b
      honest = [0, 1, 2, 3].filter(v => ids[v] > ids[b]).slice(0, 2)
    }
    if (net === undefined) { throw new Error('unreachable') }
    const n = net
    const joiner = 9 - bad
    await n.editConfig(bad, c => { c.stateSync = false })
    n.useScript(bad, BAD_NODE)
    await n.editConfig(joiner, c => { c.sync = { fetchBatchSize: 64 } })
    const first = [...n.validatorNodes, n.nodes[bad]]
    await n.startAll(first)
    await n.allAt(25, 60_000, first)
    const j = n.nodes[joiner]
    // the joiner knows the corrupt peer and two validators (f + 1 for the probe)
    await n.start(joiner, { peers: [bad, ...honest] })
    await j.event('ready', 90_000)
    await j.until('the corrupt peer to be blocked', () => j.status?.blockedPeers[n.peerIds[bad]], 30_000)
    // no honest peer was blocked
    expect(Object.keys(j.status?.blockedPeers ?? {})).to.deep.equal([n.peerIds[bad]])
    await n.settle()
  })

  it('the whole cluster stops gracefully, restarts from disk, and continues the chain', async () => {
    net = await Network.create({ validators: 4 })
    await net.startAll()
    await net.allAt(15, 60_000)
    for (const code of await Promise.all(net.nodes.map(async n => n.stop()))) {
      expect(code).to.equal(0)
    }
    const before = net.nodes.map(n => n.status?.appliedHeight ?? 0)
    await net.startAll()
    // each node reopens at (at least) the height it had applied
    for (let i = 0; i < net.nodes.length; i++) {
      await net.nodes[i].height(before[i], 30_000)
    }
    await net.allAt(Math.max(...before) + 10, 60_000)
    await net.settle()
  })

  it('a partitioned validator falls behind, and catches up when the partition heals', async () => {
    net = await Network.create({ validators: 4 })
    await net.startAll()
    await net.allAt(5, 60_000)
    const isolated = net.nodes[3]
    const others = net.nodes.slice(0, 3)
    isolated.send({ cmd: 'block', peers: net.peerIds.slice(0, 3) })
    await isolated.event('blocked', 10_000)
    // let what was in flight land
    await new Promise(resolve => setTimeout(resolve, 1500))
    const cut = isolated.status?.appliedHeight ?? 0
    await net.allAt(cut + 15, 60_000, others)
    // cut off, it cannot finalize anything new
    expect(isolated.status?.appliedHeight ?? 0).to.equal(cut)
    isolated.send({ cmd: 'unblock' })
    await isolated.height(net.minHeight(others), 60_000)
    await net.settle()
  })

  it('a joiner that knows one validator finds the rest (discovery), state-syncs and follows', async () => {
    net = await Network.create({ validators: 4, joiners: 1 })
    await net.startAll(net.validatorNodes)
    await net.allAt(15, 60_000)
    const joiner = net.nodes[4]
    await net.start(4, { peers: [2] })
    const config = JSON.parse(await readFile(joiner.configPath, 'utf8')) as { bootstrap: string[] }
    expect(config.bootstrap).to.have.lengthOf(1)
    // connected to every validator although it was given one address; the
    // probe needs finalizations from f + 1 = 2 of them
    await joiner.until('connections to 4 validators', () => (joiner.status?.peers ?? 0) >= 4, 60_000)
    await joiner.event('ready', 90_000)
    // the status line after `ready` carries the height the joiner synced to (a replay from genesis has none)
    await joiner.until('a state-sync height in the status', () => joiner.status?.syncHeight, 30_000)
    expect(joiner.status?.syncHeight, 'the joiner state-synced from a floor above genesis').to.be.greaterThan(0)
    await joiner.height(net.minHeight() + 2, 60_000)
    await net.settle()
  })
})
