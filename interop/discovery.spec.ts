/**
 * Peer discovery across OS processes (`npm run test:interop`): a joiner
 * whose configuration names one validator's address only (its bootstrap
 * list) finds the other validators through the peers announced on the
 * chain's gossip topic, connects to all of them, state-syncs (the probe
 * needs answers from f + 1 validators, more than the one it was told about)
 * and follows the chain to the same roots.
 */

import { readFile } from 'node:fs/promises'
import { expect } from 'aegir/chai'
import { Network, leftovers } from './util/network.ts'

describe('interop: discovery', function () {
  this.timeout(180_000)
  let net: Network | undefined

  afterEach(async () => {
    await net?.close()
    net = undefined
  })

  after(async () => {
    expect(await leftovers()).to.deep.equal([])
  })

  it('a joiner that knows one validator finds the rest, state-syncs and follows', async () => {
    net = await Network.create({ validators: 4, joiners: 1 })
    await net.startAll(net.validatorNodes)
    await net.allAt(15, 60_000)
    const joiner = net.nodes[4]
    await net.start(4, { peers: [2] })
    const config = JSON.parse(await readFile(joiner.configPath, 'utf8')) as { bootstrap: string[] }
    expect(config.bootstrap).to.have.lengthOf(1)
    // connected to every validator although it was given one address
    await joiner.until('connections to 4 validators', () => (joiner.status?.peers ?? 0) >= 4, 60_000)
    await joiner.event('ready', 90_000)
    expect(joiner.status?.syncHeight, 'the joiner state-synced from a floor above genesis').to.be.greaterThan(0)
    await joiner.height(net.minHeight() + 2, 60_000)
    const s = await net.settle()
    expect(s.height).to.be.at.least(15)
  })
})
