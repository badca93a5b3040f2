/**
 * PeerBlocker, the blocking shared by the resolvers, the marshal service and
 * the probe: a peer is blocked once (later calls change nothing), tagged in
 * the peer store, disconnected only when configured, counted, and every
 * subscriber hears of it even if another subscriber throws; a strike-out is
 * told with its length and neither tags nor disconnects. The peer book's
 * strike rule: bounded blocks for peers that keep having nothing. The
 * blocked-peers gauge reads the book at each scrape.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { PeerBlocker } from '../../src/net/blocking.ts'
import { ServiceMetrics } from '../../src/net/metrics.ts'
import { PeerBook, StrikeTally } from '../../src/net/peers.ts'
import type { Logger, Metrics, PeerId, PeerStore } from '@libp2p/interface'
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
  it('blocks once: records the reason, tags and notifies each subscriber once', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const book = new PeerBook({ initialLatency: 1000 })
    const f = fakes()
    const blocker = new PeerBlocker({ book, components: f.components, tag: 'test-blocked', log: silentLog() })
    const heard: string[] = []
    blocker.onBlock(() => { throw new Error('a broken subscriber') })
    const off = blocker.onBlock((p, why) => heard.push(`${p.toString()}:${why}`))

    expect(blocker.block(peer, 'bad proof')).to.equal(true)
    expect(blocker.block(peer, 'again')).to.equal(false)
    await Promise.resolve()
    expect(book.isBlocked(peer.toString())).to.equal(true)
    expect(book.blocked().get(peer.toString())).to.equal('bad proof')
    expect(heard).to.deep.equal([`${peer.toString()}:bad proof`])
    expect(f.merged).to.deep.equal([{ peer: peer.toString(), tags: { 'test-blocked': { value: 0 } } }])
    expect(f.closed).to.deep.equal([])

    off()
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    blocker.block(other, 'garbage')
    expect(heard).to.have.length(1)
    expect(book.blockedCount).to.equal(2)
  })

  it('tells a strike-out to the subscribers with its length, without tagging or disconnecting the peer', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const f = fakes()
    const blocker = new PeerBlocker({ book: new PeerBook({ initialLatency: 0 }), components: f.components, tag: 't', disconnect: true, log: silentLog() })
    const heard: Array<[string, string, number | undefined]> = []
    blocker.onBlock((p, why, ms) => heard.push([p.toString(), why, ms]))
    blocker.struck(peer, 'timeout for r', 30_000)
    blocker.block(peer, 'lied')
    await Promise.resolve()
    expect(heard).to.deep.equal([[peer.toString(), 'timeout for r', 30_000], [peer.toString(), 'lied', undefined]])
    expect(f.merged.map(m => m.peer)).to.deep.equal([peer.toString()])
    expect(f.closed).to.deep.equal([peer.toString()])
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

describe('net: blocked_peers gauge', () => {
  it('is read from the book at each scrape: permanent blocks and struck-out peers while their block lasts', async () => {
    const gauges = new Map<string, () => number | Promise<number>>()
    const noop = { increment: () => {}, update: () => {}, observe: () => {} }
    const metrics = {
      registerMetric: (name: string, opts: { calculate?(): number | Promise<number> }) => {
        if (opts.calculate !== undefined) { gauges.set(name, opts.calculate) }
        return noop
      },
      registerCounterGroup: () => noop,
      registerHistogram: () => noop
    } as unknown as Metrics
    let now = 0
    const book = new PeerBook({ initialLatency: 0, strikes: { limit: 1, blockMs: 100, maxBlockMs: 100, noData: true, recheckMs: 0, maxRechecks: 0 }, now: () => now })
    const m = new ServiceMetrics(metrics, 'test')
    m.countBlocked(() => book.blockedCount)
    const read = async (): Promise<number> => (gauges.get('libp2p_qmdb_test_blocked_peers') ?? (() => -1))()
    expect(await read()).to.equal(0)
    book.block('liar', 'bad proof')
    expect(book.strike('slow', 'timeout for r')).to.equal(100)
    expect(await read()).to.equal(2)
    now = 100
    expect(await read()).to.equal(1)
  })
})

describe('net: PeerBook strike rule', () => {
  const rule = { limit: 3, blockMs: 1000, maxBlockMs: 3000, noData: true, recheckMs: 0, maxRechecks: 0 }

  it('blocks at the limit-th strike in a row, for a bounded time that doubles per strike-out up to the cap', () => {
    let now = 0
    const book = new PeerBook({ initialLatency: 0, strikes: rule, now: () => now })
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.isBlocked('p')).to.equal(false)
    expect(book.strike('p', 'timeout for r')).to.equal(1000)
    expect(book.isBlocked('p')).to.equal(true)
    expect(book.blockedCount).to.equal(1)
    expect(book.blocked().get('p')).to.equal('timeout for r (3 requests in a row that other peers answered)')
    // strikes while blocked change nothing
    now = 999
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.isBlocked('p')).to.equal(true)
    now = 1000
    expect(book.isBlocked('p')).to.equal(false)
    expect(book.blockedCount).to.equal(0)
    // on probation: the next strike blocks again, twice as long, then the cap
    expect(book.strike('p', 'x')).to.equal(2000)
    now = 3000
    expect(book.strike('p', 'x')).to.equal(3000)
    expect(book.strikeOuts('p')).to.equal(3)
    now = 6000
    expect(book.isBlocked('p')).to.equal(false)
  })

  it('a data answer clears the strikes and the back-off; a permanent block is not shortened', () => {
    let now = 0
    const book = new PeerBook({ initialLatency: 0, strikes: rule, now: () => now })
    book.strike('p', 'x')
    book.strike('p', 'x')
    book.answered('p')
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.strike('p', 'x')).to.equal(1000)
    now = 1000
    book.answered('p')
    expect(book.strikeOuts('p')).to.equal(0)
    // back to three strikes and the first block length
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.strike('p', 'x')).to.equal(undefined)
    expect(book.strike('p', 'x')).to.equal(1000)

    book.block('q', 'lied')
    expect(book.strike('q', 'x')).to.equal(undefined)
    now = 1e9
    expect(book.isBlocked('q')).to.equal(true)
    expect([...book.blocked().keys()]).to.deep.equal(['q'])
  })

  it('misses of requests asked at the same time are one occasion: one strike, not one per request', () => {
    let now = 0
    const book = new PeerBook({ initialLatency: 0, strikes: rule, now: () => now })
    // four requests in flight at once, all missing at t=5, answered elsewhere at t=10..13
    const tallies = Array.from({ length: 4 }, (_, i) => new StrikeTally(book, `r${i}`))
    now = 5
    for (const t of tallies) { t.miss('p', 'no-data') }
    for (const t of tallies) {
      now++
      t.answered('q')
    }
    expect(book.isBlocked('p')).to.equal(false)
    // two later occasions, each after the last strike: the third strike blocks
    for (let i = 0; i < 2; i++) {
      const t = new StrikeTally(book, `later${i}`)
      now += 10
      t.miss('p', 'no-data')
      now += 10
      t.answered('q')
    }
    expect(book.isBlocked('p')).to.equal(true)
  })

  it('is off with limit 0', () => {
    const book = new PeerBook({ initialLatency: 0, strikes: { ...rule, limit: 0 } })
    for (let i = 0; i < 10; i++) { expect(book.strike('p', 'x')).to.equal(undefined) }
    expect(book.isBlocked('p')).to.equal(false)
  })

  it('a request answered by another peer strikes those that had nothing once each; no-data only where the rule counts it', () => {
    const counting = new PeerBook({ initialLatency: 0, strikes: rule })
    const timeoutsOnly = new PeerBook({ initialLatency: 0, strikes: { ...rule, noData: false } })
    const outs = new Map<PeerBook, Array<{ peer: string, ms: number, reason: string }>>()
    for (const book of [counting, timeoutsOnly]) {
      for (let i = 0; i < 3; i++) {
        const tally = new StrikeTally(book, `r${i}`)
        tally.miss('slow', 'timeout')
        tally.miss('slow', 'timeout')
        tally.miss('empty', 'no-data')
        outs.set(book, tally.answered('good'))
      }
    }
    // the third answer reports the peers it struck out, with the block's length and the book's reason
    const why = (what: string): string => `${what} for r2 (3 requests in a row that other peers answered)`
    expect(outs.get(counting)).to.deep.equal([{ peer: 'slow', ms: 1000, reason: why('timeout') }, { peer: 'empty', ms: 1000, reason: why('no-data') }])
    expect(outs.get(timeoutsOnly)).to.deep.equal([{ peer: 'slow', ms: 1000, reason: why('timeout') }])
    expect(counting.isBlocked('slow')).to.equal(true)
    expect(counting.isBlocked('empty')).to.equal(true)
    expect(timeoutsOnly.isBlocked('slow')).to.equal(true)
    expect(timeoutsOnly.isBlocked('empty')).to.equal(false)
    expect(counting.isBlocked('good')).to.equal(false)
  })
})
