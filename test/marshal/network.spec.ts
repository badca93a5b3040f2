import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { LevelDatastore } from 'datastore-level'
import { MarshalError } from '../../src/marshal/index.ts'
import { Validators, blockCodec, buildChain, makeBlock, sameFinalization } from '../util/marshal-fixtures.ts'
import { RecordingReporter, connectAll, createMarshalNode, delay, seedChain, stopAll, waitUntil } from '../util/marshal-nodes.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'
import type { MarshalNode, MarshalNodeInit } from '../util/marshal-nodes.ts'
import type { PeerId } from '@libp2p/interface'

const TIP = 100

interface Env {
  validators: Validators
  chain: TestBlock[]
  honest: MarshalNode[]
  nodes: MarshalNode[]
}

async function honestServer (env: Env): Promise<MarshalNode> {
  const node = await createMarshalNode(env.validators, blockCodec)
  env.nodes.push(node)
  await seedChain(node.services.marshal.store as any, env.chain, env.validators, TIP)
  await node.services.marshal.marshal.start({ genesis: env.chain[0] })
  return node
}

async function client (env: Env, init: MarshalNodeInit = {}): Promise<MarshalNode> {
  const node = await createMarshalNode(env.validators, blockCodec, init)
  env.nodes.push(node)
  return node
}

function tipCert (env: Env, height = TIP): TestFinalization {
  return env.validators.finalize(height, env.chain[height].digest)
}

/** A peer list the test changes while the client runs. */
function mutablePeers (initial: PeerId[]): { list: PeerId[], fn(): PeerId[] } {
  const holder = { list: initial, fn: () => holder.list }
  return holder
}

async function backfillAll (env: Env, node: MarshalNode, reporter: RecordingReporter): Promise<void> {
  const { marshal } = node.services.marshal
  await marshal.start({ genesis: env.chain[0] })
  marshal.attach(reporter)
  await marshal.finalized(tipCert(env))
  await waitUntil(() => reporter.heights.length >= TIP + 1, 20_000, 'all blocks delivered')
}

describe('marshal network: backfill, bad peers, lookups', function () {
  this.timeout(60_000)
  const env: Env = { validators: undefined as any, chain: [], honest: [], nodes: [] }

  before(async () => {
    env.validators = await Validators.create(4)
    env.chain = buildChain(TIP + 1)
    env.honest = [await honestServer(env), await honestServer(env), await honestServer(env)]
  })

  after(async () => {
    await stopAll(env.nodes)
  })

  it('a node missing 100 finalized blocks gets them from peers, in order, with acks', async () => {
    const node = await client(env)
    await connectAll(node, env.honest)
    const reporter = new RecordingReporter()
    await backfillAll(env, node, reporter)
    expect(reporter.deliveredInOrder(0, TIP)).to.equal(true)
    await node.services.marshal.marshal.flush()
    expect(await node.services.marshal.marshal.getProcessedHeight()).to.equal(TIP)
    for (let h = 1; h <= TIP; h++) {
      const b = await node.services.marshal.marshal.getFinalizedBlock(h)
      expect(b?.digest).to.deep.equal(env.chain[h].digest)
    }
    // the certificates travelled with the blocks
    expect(sameFinalization(await node.services.marshal.marshal.getFinalization(50), env.validators.finalize(50, env.chain[50].digest))).to.equal(true)
    expect(node.services.marshal.blockedPeers().size).to.equal(0)
  })

  it('blocks a peer whose certificates do not verify and completes from honest peers', async () => {
    const foreign = await Validators.create(4, 99)
    const bad = await createMarshalNode(env.validators, blockCodec)
    env.nodes.push(bad)
    // the right blocks, with certificates signed by another validator set
    for (let h = 0; h <= TIP; h++) { await bad.services.marshal.store?.setFinalized(env.chain[h], foreign.finalize(h, env.chain[h].digest)) }
    const peers = mutablePeers([bad.peerId])
    const node = await client(env, { peers: peers.fn })
    await connectAll(node, [bad, ...env.honest])
    const reporter = new RecordingReporter()
    const done = backfillAll(env, node, reporter)
    await waitUntil(() => node.services.marshal.isBlocked(bad.peerId), 10_000, 'the forging peer to be blocked')
    peers.list = [bad.peerId, ...env.honest.map(n => n.peerId)]
    await done
    expect(reporter.deliveredInOrder(0, TIP)).to.equal(true)
    expect(node.services.marshal.blockedPeers().get(bad.peerId.toString())).to.match(/does not verify/)
    expect(node.services.marshal.blockedPeers().size).to.equal(1)
  })

  it('blocks a peer whose range does not chain to the certified tip and completes from honest peers', async () => {
    const fork = await createMarshalNode(env.validators, blockCodec)
    env.nodes.push(fork)
    // a self-consistent chain without certificates: only the parent link of the certified tip exposes it
    const other = buildChain(TIP + 1, 'fork')
    for (let h = 0; h <= TIP; h++) { await fork.services.marshal.store?.setFinalized(other[h]) }
    const peers = mutablePeers([fork.peerId])
    const node = await client(env, { peers: peers.fn })
    await connectAll(node, [fork, ...env.honest])
    // the certified tip arrives by gossip; its ancestors must come from peers
    expect((await node.services.marshal.onBlock(blockCodec.encode(env.chain[TIP])))?.height).to.equal(TIP)
    const reporter = new RecordingReporter()
    const done = backfillAll(env, node, reporter)
    await waitUntil(() => node.services.marshal.isBlocked(fork.peerId), 10_000, 'the forking peer to be blocked')
    peers.list = [fork.peerId, ...env.honest.map(n => n.peerId)]
    await done
    expect(reporter.deliveredInOrder(0, TIP)).to.equal(true)
    expect(node.services.marshal.blockedPeers().get(fork.peerId.toString())).to.match(/failed validation/)
  })

  it('fetches a block by digest, finalized or not; waits for an unknown one until aborted', async () => {
    const node = await client(env, { peers: env.honest.map(n => n.peerId) })
    await connectAll(node, env.honest)
    const side = makeBlock(7, env.chain[6].digest, new TextEncoder().encode('not finalized'))
    await env.honest[1].services.marshal.marshal.receiveBlock(blockCodec.encode(side))
    const { fetcher } = node.services.marshal
    const got = await fetcher.fetchBlock(side.digest, { signal: AbortSignal.timeout(10_000) })
    expect(got.bytes).to.deep.equal(blockCodec.encode(side))
    const fin = await fetcher.fetchBlock(env.chain[42].digest, { height: 42, signal: AbortSignal.timeout(10_000) })
    expect(blockCodec.decode(fin.bytes).digest).to.deep.equal(env.chain[42].digest)
    const unknown = makeBlock(1, new Uint8Array(32), new TextEncoder().encode('nobody has it'))
    const controller = new AbortController()
    const pending = fetcher.fetchBlock(unknown.digest, { signal: controller.signal })
    // every peer answers no data, gets a worse score, and the fetch moves on to the next
    await waitUntil(() => env.honest.every(n => node.services.marshal.score(n.peerId) > 1000), 10_000, 'every peer asked')
    controller.abort(new Error('gave up'))
    await expect(pending).to.eventually.be.rejectedWith('gave up')
    // no data is not misbehaviour
    expect(node.services.marshal.blockedPeers().size).to.equal(0)
  })

  it('a block subscription resolved by gossip stops fetching; an aborted one rejects', async () => {
    const node = await client(env, { peers: env.honest.map(n => n.peerId) })
    await connectAll(node, env.honest)
    const { marshal } = node.services.marshal
    await marshal.start({ genesis: env.chain[0] })
    const gossiped = makeBlock(3, env.chain[2].digest, new TextEncoder().encode('gossip only'))
    const pending = marshal.subscribeBlock(gossiped.digest, { height: 3 })
    await waitUntil(() => env.honest.every(n => node.services.marshal.score(n.peerId) > 1000), 10_000, 'every peer asked')
    await node.services.marshal.onBlock(blockCodec.encode(gossiped))
    expect((await pending)?.digest).to.deep.equal(gossiped.digest)
    const scores = env.honest.map(n => node.services.marshal.score(n.peerId))
    await delay(300)
    expect(env.honest.map(n => node.services.marshal.score(n.peerId))).to.deep.equal(scores)
    const controller = new AbortController()
    const missing = marshal.subscribeBlock(new Uint8Array(32).fill(9), { signal: controller.signal })
    controller.abort(new Error('caller left'))
    await expect(missing).to.eventually.be.rejectedWith('caller left')
  })

  it('hands disseminated blocks to the broadcast hook; a peer fed them by gossip serves them', async () => {
    const sent: Uint8Array[] = []
    const proposer = await client(env, { peers: [], broadcast: bytes => { sent.push(bytes) } })
    const listener = await client(env, { peers: [] })
    const asker = await client(env, { peers: [listener.peerId] })
    await connectAll(asker, [listener])
    const proposal = makeBlock(TIP + 1, env.chain[TIP].digest, new TextEncoder().encode('proposal'))
    await proposer.services.marshal.marshal.disseminate(proposal)
    expect(sent).to.deep.equal([blockCodec.encode(proposal)])
    // a gossip layer would deliver the bytes; oversized or undecodable bytes are dropped
    expect(await listener.services.marshal.onBlock(new Uint8Array(blockCodec.maxBytes + 1))).to.equal(undefined)
    expect(await listener.services.marshal.onBlock(new Uint8Array([1, 2, 3]))).to.equal(undefined)
    await listener.services.marshal.onBlock(sent[0])
    const got = await asker.services.marshal.fetcher.fetchBlock(proposal.digest, { signal: AbortSignal.timeout(10_000) })
    expect(got.bytes).to.deep.equal(sent[0])
  })

  it('fetches the latest finalization', async () => {
    const node = await client(env, { peers: [env.honest[0].peerId] })
    await connectAll(node, [env.honest[0]])
    const latest = await node.services.marshal.fetchLatest({ signal: AbortSignal.timeout(10_000) })
    expect(latest.value.height).to.equal(TIP)
    expect(sameFinalization(latest.value.finalization, tipCert(env))).to.equal(true)
    expect(env.validators.scheme.verify(latest.value.finalization)).to.equal(true)
  })

  it('starts from a floor whose block is fetched from peers, then follows the tip', async () => {
    const node = await client(env)
    await connectAll(node, env.honest)
    const { marshal } = node.services.marshal
    const start = await marshal.start({ floor: tipCert(env, 60) })
    expect(start.processedHeight).to.equal(59)
    const reporter = new RecordingReporter()
    marshal.attach(reporter)
    await marshal.finalized(tipCert(env))
    await waitUntil(() => reporter.heights.length >= TIP - 60 + 1, 20_000, 'blocks from the floor up')
    expect(reporter.deliveredInOrder(60, TIP)).to.equal(true)
    expect(await marshal.getFinalizedBlock(59)).to.equal(undefined)
  })

  it('a fetch on a stopped service fails with Stopped instead of hanging', async () => {
    const node = await client(env)
    await node.stop()
    const err = await node.services.marshal.fetcher.fetchBlock(env.chain[1].digest, { signal: AbortSignal.timeout(5000) }).catch(e => e)
    expect(err).to.be.instanceOf(MarshalError)
    expect((err as MarshalError).code).to.equal('Stopped')
  })
})

describe('marshal network: restart with a LevelDB store', function () {
  this.timeout(60_000)
  let dir: string
  const env: Env = { validators: undefined as any, chain: [], honest: [], nodes: [] }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'marshal-restart-'))
    env.validators = await Validators.create(4)
    env.chain = buildChain(TIP + 1)
    env.honest = [await honestServer(env), await honestServer(env)]
  })

  after(async () => {
    await stopAll(env.nodes)
    await rm(dir, { recursive: true, force: true })
  })

  it('redelivers from processed + 1 after a restart, from local storage', async () => {
    const path = join(dir, 'db')
    let ds = new LevelDatastore(path)
    await ds.open()
    const first = await client(env, { datastore: ds })
    await connectAll(first, env.honest)
    const held = new RecordingReporter(h => h > 50)
    const { marshal } = first.services.marshal
    await marshal.start({ genesis: env.chain[0] })
    marshal.attach(held)
    await marshal.finalized(tipCert(env))
    await waitUntil(() => held.heights.length >= 51 + marshal.maxPendingAcks, 20_000, 'the ack window to fill')
    await marshal.flush()
    expect(await marshal.getProcessedHeight()).to.equal(50)
    expect(held.heights).to.deep.equal([...Array(51 + marshal.maxPendingAcks).keys()])
    await first.stop()
    await ds.close()

    ds = new LevelDatastore(path)
    await ds.open()
    try {
      const second = await client(env, { datastore: ds, peers: [] })
      const again = second.services.marshal.marshal
      const start = await again.start({ genesis: env.chain[0] })
      expect(start.processedHeight).to.equal(50)
      const reporter = new RecordingReporter()
      again.attach(reporter)
      await waitUntil(() => reporter.heights.length >= TIP - 50, 20_000, 'redelivery')
      expect(reporter.deliveredInOrder(51, TIP)).to.equal(true)
      await again.flush()
      expect(await again.getProcessedHeight()).to.equal(TIP)
      await second.stop()
    } finally {
      await ds.close()
    }
  })
})
