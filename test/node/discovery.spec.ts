/**
 * Peer discovery in one process: four ledger validators that know each
 * other, and a joiner configured with one validator's address only. It
 * finds the other three through the chain's gossip announcements, connects
 * to them, and state-syncs — which needs finalizations from f + 1 = 2
 * validators, more than the one it was told about. And the announcement
 * decoder under random and mutated input, and the admission rules.
 */
import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { admitAnnouncement, decodeAnnouncement, encodeAnnouncement } from '../../src/node/announce.ts'
import { createNode } from '../../src/node/node.ts'
import { waitUntil } from '../util/common.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
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

  it('announcements: round trip, admission by age, 100k fuzzed inputs decode or throw CodecError', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const addrs = [multiaddr('/ip4/10.0.0.1/tcp/4001'), multiaddr(`/ip4/127.0.0.1/tcp/4002/p2p/${id.toString()}`)]
    const bytes = encodeAnnouncement(1_000_000, id, addrs)
    const back = decodeAnnouncement(bytes)
    expect(back.time).to.equal(1_000_000)
    expect(back.peerId.equals(id)).to.equal(true)
    expect(back.addrs.map(String)).to.deep.equal(addrs.map(String))
    expect(admitAnnouncement(bytes, 1_000_000 + 60_000, 300_000).admission).to.equal('accept')
    expect(admitAnnouncement(bytes, 1_000_000 + 301_000, 300_000).admission).to.equal('ignore')
    expect(admitAnnouncement(bytes.subarray(0, bytes.length - 1), 1_000_000, 300_000).admission).to.equal('reject')
    const res = fuzzDecoder(decodeAnnouncement, [bytes], 100_000, 21)
    expect(res.rejected).to.be.greaterThan(0)
  })
})
