/**
 * A 4-validator network of real nodes attacked by an outside peer speaking
 * the node's own protocols (issue 18): endless length prefixes on every
 * request/response protocol, garbage and implausible blocks on the blocks
 * topic, forged votes and certificates, a flood that must end with the
 * attacker graylisted. A second outside peer (no validation, no scoring)
 * watches what node-0 relays.
 */
import '../../src/polyfill.ts'
import { randomBytes } from 'node:crypto'
import { expect } from 'aegir/chai'
import { Writer } from '../../src/codec/index.ts'
import { consensusNames, encodeCertificate, encodeVote } from '../../src/consensus/index.ts'
import { makeBlock } from '../../src/examples/ledger/block.ts'
import { GRAYLIST_THRESHOLD } from '../../src/node/gossip.ts'
import { createOutsider, record, startNetwork } from '../util/attack-net.ts'
import { waitUntil } from '../util/p2p-nodes.ts'
import type { Certificate, Vote } from '../../src/consensus/index.ts'
import type { LedgerBlock } from '../../src/examples/ledger/block.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { Outsider, TestNetwork } from '../util/attack-net.ts'

const CHAIN = 'qmdb-attack'
const BLOCKS = `/qmdb/${CHAIN}/blocks/1`
const { votesTopic, certsTopic } = consensusNames(CHAIN)

interface ScoredGossip { getScore(peer: string): number, getMeshPeers(topic: string): string[] }

function scoring (node: QmdbNode): ScoredGossip {
  return node.libp2p.services.pubsub as unknown as ScoredGossip
}

function hex (b: Uint8Array): string {
  return Buffer.from(b).toString('hex')
}

let seq = 0
/** The consensus topics' envelope: varint(seq) ‖ body. */
function envelope (body: Uint8Array): Uint8Array {
  return new Writer(body.length + 10).varint(1_000_000 + seq++).raw(body).finish()
}

const FLOOD_LIMIT = 2 * 1024 * 1024

/**
 * Send 0xff (a length prefix that never ends) on a new `protocol` stream
 * until the node resets it or FLOOD_LIMIT bytes went out, 16 KiB at a time in
 * lock-step: the next only once the node took the last in and had a few turns to act
 * on it (a tight loop would queue megabytes before any reset could come
 * back). `status` is the node's `status()` asked while the prefix arrives.
 */
async function endlessPrefix (node: QmdbNode, attacker: Outsider, protocol: string): Promise<{ received: number, sent: number, status: unknown }> {
  const stream = await attacker.dialProtocol(node.libp2p.getMultiaddrs()[0], protocol, { signal: AbortSignal.timeout(10_000) })
  // what the node's side of the stream takes in (its handler is waiting for the request frame)
  const inbound = node.libp2p.getConnections(attacker.peerId).flatMap(c => c.streams).find(s => s.protocol === protocol && s.direction === 'inbound' && s.status === 'open')
  const counts = { received: 0, sent: 0 }
  inbound?.addEventListener('message', evt => { counts.received += evt.data.byteLength })
  const chunk = new Uint8Array(16 * 1024).fill(0xff)
  let status: Promise<unknown> | undefined
  while (counts.sent < FLOOD_LIMIT && stream.status === 'open' && stream.writeStatus === 'writable') {
    try {
      if (!stream.send(chunk)) { await stream.onDrain({ signal: AbortSignal.timeout(10_000) }) }
    } catch {
      break
    }
    counts.sent += chunk.length
    await waitUntil(() => counts.received >= counts.sent || inbound?.status !== 'open', 10_000, 'the node takes the chunk in')
    await new Promise(resolve => setTimeout(resolve, 20))
    status ??= node.status()
  }
  await waitUntil(() => stream.status !== 'open', 10_000, `${protocol}: the node resets the stream`)
  return { ...counts, status: await status }
}

describe('node: gossip and protocols under attack (issue 18)', function () {
  this.timeout(240_000)
  let net: TestNetwork
  let outsiders: Outsider[] = []

  /** An outside peer subscribed to `topics`, connected to `node` only, once each side sees the other's subscriptions (else a publish reaches nobody). */
  async function join (node: QmdbNode, topics: string[]): Promise<Outsider> {
    const o = await createOutsider(topics)
    outsiders.push(o)
    await o.dial(node.libp2p.getMultiaddrs()[0])
    const id = o.peerId.toString()
    await waitUntil(() => topics.every(t => node.libp2p.services.pubsub.getSubscribers(t).some(p => p.toString() === id) &&
      o.services.pubsub.getSubscribers(t).some(p => p.toString() === node.peerId)), 20_000, 'both sides see the subscriptions')
    return o
  }

  before(async () => {
    net = await startNetwork({ validators: 4, chainId: CHAIN })
    const node = net.nodes[0]
    await waitUntil(async () => ((await node.status()).height ?? 0) >= 3, 120_000, 'three blocks processed')
  })

  afterEach(async () => {
    await Promise.all(outsiders.map(async o => o.stop()))
    outsiders = []
  })

  after(async () => {
    await net?.stop()
  })

  it('an endless length prefix on every protocol is reset early; /status answers meanwhile; a backfill violation blocks the peer (finding 1)', async () => {
    const node = net.nodes[0]
    const attacker = await join(node, [])
    const protocols = node.libp2p.getProtocols().filter(p => p.includes(CHAIN))
    expect(protocols.some(p => p.includes('/consensus/backfill/'))).to.equal(true)
    expect(protocols.length).to.be.at.least(4)
    for (const protocol of protocols) {
      const { received, sent, status } = await endlessPrefix(node, attacker, protocol)
      // the old backfill reader took in hundreds of KiB one byte and one await at a time until its timeout reset it
      expect(received, `${protocol}: bytes taken in before the reset`).to.be.below(128 * 1024)
      expect(sent, `${protocol}: bytes sent before the reset`).to.be.below(FLOOD_LIMIT)
      expect(status).to.have.property('peerId', node.peerId)
    }
    const blocked = (await node.status()).blockedPeers
    expect(Object.keys(blocked)).to.include(attacker.peerId.toString())
  })

  it('garbage, implausible and unlinked blocks are neither relayed nor stored (findings 2 and 3)', async () => {
    const node = net.nodes[0]
    const spy = await join(node, [BLOCKS])
    const seen = record(spy)
    const attacker = await join(node, [BLOCKS])
    await waitUntil(() => seen.size >= 2, 30_000, 'honest blocks reach the spy through node-0')
    const real = await node.libp2p.services.marshal.marshal.getFinalizedBlock(1) as LedgerBlock
    // far above the tip, and at a plausible height (well inside the 64-height window) linking to a random parent
    const plausible = node.libp2p.services.marshal.marshal.finalizedTip + 40
    const junk = [
      ...Array.from({ length: 10 }, (_, i) => makeBlock(2 ** 40 + i, real.context, real.transfers, real.targets, real.accountsRoot)),
      ...Array.from({ length: 5 }, (_, i) => makeBlock(plausible + i, { ...real.context, parent: { view: real.context.parent.view, digest: randomBytes(32) } }, real.transfers, real.targets, real.accountsRoot))
    ]
    const garbage = [...Array.from({ length: 50 }, (_, i) => randomBytes(1 + i * 80)), randomBytes(512 * 1024)]
    // decodable junk first (ignored, no penalty), then garbage (rejected)
    for (const b of junk) { await attacker.services.pubsub.publish(BLOCKS, b.bytes) }
    for (const g of garbage) { await attacker.services.pubsub.publish(BLOCKS, g) }
    const attackerId = attacker.peerId.toString()
    const sent = new Set([...junk.map(b => hex(b.bytes)), ...garbage.map(hex)])
    const relayed = (): string[] => [...seen].filter(m => sent.has(m))
    // node-0 has judged the flood once it penalised it (or, on a node without validation, relayed it)
    await waitUntil(() => scoring(node).getScore(attackerId) < 0 || relayed().length > 0, 20_000, 'node-0 judges the flood')
    // later honest traffic reached the spy: anything relayed from the flood would have too
    const settled = seen.size
    await waitUntil(() => seen.size >= settled + 2, 30_000, 'more honest blocks')
    expect(relayed()).to.have.lengthOf(0)
    for (const n of net.nodes) {
      for (const b of junk) { expect(await n.libp2p.services.marshal.marshal.getBlock(b.digest), 'junk block stored').to.equal(undefined) }
    }
  })

  it('forged votes and certificates are not relayed; the flooding peer is graylisted and pruned (findings 4 and 5)', async () => {
    const node = net.nodes[0]
    const spy = await join(node, [votesTopic, certsTopic])
    const seen = record(spy)
    const attacker = await join(node, [votesTopic, certsTopic])
    await waitUntil(() => seen.size >= 4, 30_000, 'honest votes reach the spy through node-0')
    const view = (await node.status()).view
    const proposal = { view: view + 1, parent: view, payload: randomBytes(32) }
    const votes: Vote[] = [
      ...[0, 1, 2, 3].map(signer => ({ subject: { kind: 'notarize' as const, proposal }, signer, signature: randomBytes(64) })),
      { subject: { kind: 'nullify', view: view + 1 }, signer: 9, signature: randomBytes(64) }
    ]
    const certs: Certificate[] = [
      { subject: { kind: 'notarize', proposal }, signers: [0, 1, 2], signatures: [randomBytes(64), randomBytes(64), randomBytes(64)] },
      { subject: { kind: 'finalize', proposal }, signers: Array.from({ length: 1024 }, (_, i) => i), signatures: Array.from({ length: 1024 }, () => randomBytes(64)) }
    ]
    const messages: Array<[string, Uint8Array]> = [
      ...votes.map(v => [votesTopic, envelope(encodeVote(v))] as [string, Uint8Array]),
      ...certs.map(c => [certsTopic, envelope(encodeCertificate(c))] as [string, Uint8Array])
    ]
    for (let i = 0; i < 100; i++) {
      messages.push([votesTopic, envelope(encodeVote({ subject: { kind: 'nullify', view: view + 1 + i }, signer: i % 4, signature: randomBytes(64) }))])
    }
    for (const [topic, data] of messages) { await attacker.services.pubsub.publish(topic, data) }
    const attackerId = attacker.peerId.toString()
    const sent = new Set(messages.map(([, data]) => hex(data)))
    const relayed = (): string[] => [...seen].filter(m => sent.has(m))
    await waitUntil(() => scoring(node).getScore(attackerId) < GRAYLIST_THRESHOLD || relayed().length > 0, 30_000, 'node-0 judges the flood')
    const settled = seen.size
    await waitUntil(() => seen.size >= settled + 4, 30_000, 'more honest votes')
    expect(relayed()).to.have.lengthOf(0)
    // graylisted (everything it sends is now dropped unread) and out of every mesh
    expect(scoring(node).getScore(attackerId)).to.be.below(GRAYLIST_THRESHOLD)
    await waitUntil(() => [votesTopic, certsTopic].every(t => !scoring(node).getMeshPeers(t).includes(attackerId)), 10_000, 'the attacker pruned from the mesh')
  })
})
