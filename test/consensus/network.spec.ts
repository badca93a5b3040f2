/**
 * The consensus engine over real libp2p nodes (TCP 127.0.0.1, gossipsub):
 * 4 validators finalize and agree; an observer follows the certificates;
 * a restarted validator catches up through gossip and backfill. The backfill
 * server sheds a peer that asks too often and blocks one whose request
 * breaks the protocol.
 */
import '../util/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { Writer } from '../../src/codec/index.ts'
import { ConsensusNetwork, SimplexEngine, ValidatorSet } from '../../src/consensus/index.ts'
import { frameStream } from '../../src/net/frames.ts'
import { createOutsider } from '../util/attack-net.ts'
import { HashAutomaton, until } from '../util/consensus-bus.ts'
import type { Finalization } from '../../src/consensus/index.ts'
import type { Outsider } from '../util/attack-net.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

interface Peer {
  node: Outsider
  engine: SimplexEngine
  network: ConsensusNetwork
  finalized: Finalization[]
}

async function startPeer (key: PrivateKey, set: ValidatorSet, index: number | undefined, datastore = new MemoryDatastore()): Promise<Peer> {
  const node = await createOutsider([], key)
  const network = new ConsensusNetwork({ libp2p: node, pubsub: node.services.pubsub, chainId: set.chainId })
  const finalized: Finalization[] = []
  const engine = new SimplexEngine({
    validators: set,
    automaton: new HashAutomaton(),
    reporter: { finalized: f => { finalized.push(f) } },
    transport: network,
    signer: index === undefined ? undefined : { index, sign: async m => key.sign(m) },
    datastore,
    leaderTimeoutMs: 500,
    notarizationTimeoutMs: 1000,
    retryMs: 400
  })
  await network.start(engine)
  await engine.start()
  return { node, engine, network, finalized }
}

async function stopPeer (p: Peer): Promise<void> {
  await p.engine.stop()
  await p.network.stop()
  await p.node.stop()
}

describe('consensus: over libp2p gossipsub', function () {
  this.timeout(90_000)
  const peers: Peer[] = []

  after(async () => {
    for (const p of peers) { await stopPeer(p).catch(() => {}) }
  })

  it('4 validators finalize 15 views and agree; an observer follows; a restarted validator catches up', async () => {
    const keys = await Promise.all(Array.from({ length: 4 }, async () => generateKeyPair('Ed25519')))
    const set = new ValidatorSet('net-test', keys.map(k => peerIdFromPrivateKey(k).toString()))
    const stores = keys.map(() => new MemoryDatastore())
    for (let i = 0; i < 4; i++) { peers.push(await startPeer(keys[i], set, i, stores[i])) }
    const observer = await startPeer(await generateKeyPair('Ed25519'), set, undefined)
    peers.push(observer)
    for (let i = 0; i < peers.length; i++) {
      for (let j = i + 1; j < peers.length; j++) { await peers[i].node.dial(peers[j].node.getMultiaddrs()[0]) }
    }
    await until(() => peers.slice(0, 4).every(p => p.finalized.length >= 15), '15 finalizations at every validator', 60_000)
    await until(() => observer.finalized.length >= 10, 'the observer follows', 30_000)
    const byView = new Map<number, string>()
    for (const p of peers) {
      for (const f of p.finalized) {
        const v = f.subject.proposal.view
        const h = Buffer.from(f.subject.proposal.payload).toString('hex')
        if (byView.has(v)) { expect(h).to.equal(byView.get(v)) }
        byView.set(v, h)
      }
    }
    // restart validator 3 with its datastore: it rejoins and catches up
    await stopPeer(peers[3])
    const progress = peers[0].engine.finalizedView
    await until(() => peers[0].engine.finalizedView >= progress + 3, 'progress with 3 validators', 30_000)
    peers[3] = await startPeer(keys[3], set, 3, stores[3])
    for (let i = 0; i < 3; i++) { await peers[3].node.dial(peers[i].node.getMultiaddrs()[0]) }
    const target = peers[0].engine.finalizedView + 3
    await until(() => peers[3].engine.finalizedView >= target, 'restarted validator catches up', 60_000)
  })
})

describe('consensus: the backfill server', function () {
  this.timeout(60_000)

  it('sheds a peer that asks faster than its rate and blocks one whose request breaks the protocol', async () => {
    const keys = await Promise.all(Array.from({ length: 4 }, async () => generateKeyPair('Ed25519')))
    const set = new ValidatorSet('backfill-test', keys.map(k => peerIdFromPrivateKey(k).toString()))
    const blocked = new Map<string, string>()
    const blocker = { block: (peer: PeerId, reason: string) => { blocked.set(peer.toString(), reason) }, isBlocked: (peer: PeerId) => blocked.has(peer.toString()) }
    const node = await createOutsider([], keys[0])
    const network = new ConsensusNetwork({ libp2p: node, pubsub: node.services.pubsub, chainId: set.chainId, blocker })
    const engine = new SimplexEngine({ validators: set, automaton: new HashAutomaton(), reporter: { finalized: () => {} }, transport: network, datastore: new MemoryDatastore() })
    await network.start(engine)
    const asker = await createOutsider([])
    try {
      await asker.dial(node.getMultiaddrs()[0])
      const ask = async (request: Uint8Array): Promise<'answered' | 'refused'> => {
        try {
          const signal = AbortSignal.timeout(10_000)
          const stream = await asker.dialProtocol(node.peerId, network.backfillProtocol, { signal })
          const lp = frameStream(stream, { maxDataLength: 1 << 20 })
          await lp.write(request, { signal })
          await stream.close({ signal })
          const body = await lp.read({ signal })
          // nothing was finalized: the answer is an empty list (a count of 0)
          expect([...body]).to.deep.equal([0])
          return 'answered'
        } catch {
          return 'refused'
        }
      }
      const range = new Writer(8).varint(1).varint(100).finish()
      // one request first: the connection is warm (its muxer takes many streams at once)
      expect(await ask(range)).to.equal('answered')
      const started = Date.now()
      const outcomes = await Promise.all(Array.from({ length: 60 }, async () => ask(range)))
      const seconds = (Date.now() - started) / 1000
      const answered = outcomes.filter(o => o === 'answered').length
      // 2 at a time, burst 20 plus 10 per second at most: most of a burst of 60 is shed before it is read
      expect(answered).to.be.at.most(20 + Math.ceil(10 * seconds) + 1)
      expect(blocked.size, 'asking too often is not a violation').to.equal(0)
      // and the peer is served again once its tokens are back
      await new Promise(resolve => setTimeout(resolve, 2_500))
      expect(await ask(range)).to.equal('answered')

      // a range of 300 views breaks the protocol (at most 256): the asker is blocked, then refused at once
      expect(await ask(new Writer(8).varint(10).varint(309).finish())).to.equal('refused')
      expect(blocked.get(asker.peerId.toString())).to.match(/malformed backfill request: .*bad range/)
      expect(await ask(range)).to.equal('refused')
    } finally {
      await asker.stop()
      await network.stop()
      await node.stop()
    }
  })
})
