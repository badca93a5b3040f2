/**
 * The network end to end across OS processes (the quick interop scenario,
 * part of `npm test`; the fault scenarios are in interop/): four validator
 * processes run by the real CLI finalize 50 blocks over TCP, then a late
 * joiner state-syncs from them, hands off and follows the chain, and every
 * node ends on the same roots at the same height.
 */

import { expect } from 'aegir/chai'
import { Network, leftovers } from '../../interop/util/network.ts'

describe('interop: four validator processes and a state-syncing joiner', function () {
  this.timeout(150_000)
  let net: Network

  before(async () => {
    net = await Network.create({ validators: 4, joiners: 1, transfers: 50 })
  })

  after(async () => {
    await net?.close()
    expect(await leftovers()).to.deep.equal([])
  })

  it('finalizes 50 blocks; the joiner state-syncs, follows, and every node agrees on the roots', async () => {
    await net.startAll(net.validatorNodes)
    await net.allAt(50, 90_000)

    const joiner = net.nodes[4]
    await net.start(4)
    await joiner.event('ready', 60_000)
    const phases = joiner.events.filter(e => e.event === 'phase').map(e => e.phase)
    expect(phases).to.include.members(['probing', 'state-sync', 'processing'])
    expect(phases.indexOf('state-sync')).to.be.lessThan(phases.indexOf('processing'))
    const anchors = joiner.events.filter(e => e.event === 'anchor').map(e => Number(e.height))
    // the anchor is a finalized block at or above the height reached before the joiner started
    expect(anchors).to.not.be.empty()
    expect(Math.max(...anchors)).to.be.at.least(50)

    // it follows the chain after the hand-off
    const handoff = await joiner.height(1, 30_000)
    await joiner.height(handoff + 5, 30_000)
    // processed height strictly above the height the state sync started from
    const st = joiner.status
    expect(st?.syncHeight).to.be.a('number')
    expect(st?.height).to.be.greaterThan(Number(st?.syncHeight))

    const settled = await net.settle()
    expect(settled.height).to.be.at.least(handoff + 5)
    expect(settled.roots.accounts).to.match(/^[0-9a-f]{64}$/)
    expect(settled.digest).to.match(/^[0-9a-f]{64}$/)

    // a graceful stop exits 0
    for (const code of await Promise.all(net.nodes.map(async n => n.stop()))) {
      expect(code).to.equal(0)
    }
  })
})
