/**
 * PeerBlocker, the blocking shared by the resolvers, the marshal service and
 * the probe: a peer is blocked once (later calls change nothing), tagged in
 * the peer store, disconnected only when configured, counted, and every
 * subscriber hears of it even if another subscriber throws.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { PeerBlocker } from '../../src/net/blocking.ts'
import { PeerBook } from '../../src/net/peers.ts'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

function silentLog (): Logger {
  const log = (() => {}) as unknown as Logger
  Object.assign(log, { error: () => {}, trace: () => {}, enabled: false })
  return log
}

function fakes (): { merged: Array<{ peer: string, tags: unknown }>, closed: string[], components: { peerStore: PeerStore, connectionManager: ConnectionManager } } {
  const merged: Array<{ peer: string, tags: unknown }> = []
  const closed: string[] = []
  const peerStore = { merge: async (peer: PeerId, data: { tags: unknown }) => { merged.push({ peer: peer.toString(), tags: data.tags }) } } as unknown as PeerStore
  const connectionManager = { closeConnections: async (peer: PeerId) => { closed.push(peer.toString()) } } as unknown as ConnectionManager
  return { merged, closed, components: { peerStore, connectionManager } }
}

describe('net: PeerBlocker', () => {
  it('blocks once: records the reason, tags, counts and notifies each subscriber once', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const book = new PeerBook({ initialLatency: 1000 })
    const f = fakes()
    const counts: number[] = []
    const blocker = new PeerBlocker({ book, components: f.components, tag: 'test-blocked', onCount: n => counts.push(n), log: silentLog() })
    const heard: string[] = []
    blocker.onBlock(() => { throw new Error('a broken subscriber') })
    const off = blocker.onBlock((p, why) => heard.push(`${p.toString()}:${why}`))

    expect(blocker.block(peer, 'bad proof')).to.equal(true)
    expect(blocker.block(peer, 'again')).to.equal(false)
    await Promise.resolve()
    expect(book.isBlocked(peer.toString())).to.equal(true)
    expect(book.blocked().get(peer.toString())).to.equal('bad proof')
    expect(counts).to.deep.equal([1])
    expect(heard).to.deep.equal([`${peer.toString()}:bad proof`])
    expect(f.merged).to.deep.equal([{ peer: peer.toString(), tags: { 'test-blocked': { value: 0 } } }])
    expect(f.closed).to.deep.equal([])

    off()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    blocker.block(other, 'garbage')
    expect(heard).to.have.length(1)
    expect(counts).to.deep.equal([1, 2])
  })

  it('closes the connections of a blocked peer only when configured to', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const f = fakes()
    const blocker = new PeerBlocker({ book: new PeerBook({ initialLatency: 0 }), components: f.components, tag: 't', disconnect: true, log: silentLog() })
    blocker.block(peer, 'violation')
    await Promise.resolve()
    expect(f.closed).to.deep.equal([peer.toString()])
  })
})
