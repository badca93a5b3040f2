import { peerIdFromString } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { PeerLimiter, TokenBucket } from '../../src/net/limits.ts'
import { Notifier, PeerBook } from '../../src/net/peers.ts'
import {
  NO_DATA_BODY, ProtocolViolation, parseResponseFrame, protocolId, requestShapeProblem, responseBody, responseShapeProblem
} from '../../src/p2p/index.ts'
import { KeylessOpCodec, fixedField } from '../../src/qmdb/index.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import type { Request, Response } from '../../src/sync/messages.ts'

const codec = new KeylessOpCodec(fixedField(8), 'fixed')
const op = (i: number): Uint8Array => codec.encode({ type: 'append', value: new Uint8Array(8).fill(i) })
const d = (i: number): Uint8Array => new Uint8Array(32).fill(i)

const PEERS = [
  '12D3KooWCFeu2NYs9rmjfRM3dH4UXZhvYxC3qHGo7GvzySVXtsja',
  '12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDMp4F83ZzjhZh9FSzQ',
  '12D3KooWRqX9GBcbDeJgGaTDhxeyT6U8GgBfaCAkrSBXxqbEn9Zr'
].map(s => peerIdFromString(s))

function violation (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolViolation)
    return (err as Error).message
  }
  throw new Error('expected a ProtocolViolation')
}

describe('p2p: protocol ids and request shapes', () => {
  it('builds one namespace per chain and database under a configurable prefix', () => {
    expect(protocolId('qmdb', 'main', 'accounts', 'standard')).to.equal('/qmdb/main/accounts/sync/standard/1.0.0')
    expect(protocolId('mychain/v2', 'main', 'receipts', 'compact')).to.equal('/mychain/v2/main/receipts/sync/compact/1.0.0')
    for (const bad of ['', 'a/b', 'a b', 'x'.repeat(65), '/x']) {
      expect(() => protocolId('qmdb', 'main', bad, 'standard')).to.throw(RangeError)
      expect(() => protocolId('qmdb', bad, 'db', 'standard')).to.throw(RangeError)
    }
    expect(() => protocolId('', 'main', 'db', 'standard')).to.throw(RangeError)
    expect(() => protocolId('/qmdb', 'main', 'db', 'standard')).to.throw(RangeError)
  })

  it('standard takes every valid request; compact only tips (and the genesis operations request)', () => {
    const reqs: Request[] = [
      { type: 'operations', size: 10, start: 3, maxOps: 5 },
      { type: 'boundary', size: 10, start: 3 }
    ]
    for (const r of reqs) { expect(requestShapeProblem('standard', r)).to.equal(undefined) }
    expect(requestShapeProblem('compact', { type: 'boundary', size: 10, start: 9 })).to.equal(undefined)
    expect(requestShapeProblem('compact', { type: 'boundary', size: 1, start: 0 })).to.equal(undefined)
    expect(requestShapeProblem('compact', { type: 'operations', size: 1, start: 0, maxOps: 1 })).to.equal(undefined)
    expect(requestShapeProblem('compact', { type: 'boundary', size: 10, start: 3 })).to.be.a('string')
    expect(requestShapeProblem('compact', { type: 'operations', size: 10, start: 9, maxOps: 1 })).to.be.a('string')
    expect(requestShapeProblem('compact', { type: 'operations', size: 1, start: 0, maxOps: 2 })).to.be.a('string')
  })
})

describe('p2p: response frames', () => {
  const opsReq: Request = { type: 'operations', size: 10, start: 7, maxOps: 5 }
  const bReq: Request = { type: 'boundary', size: 10, start: 6 } // popcount(6) = 2 pins
  const goodOps: Response = { type: 'operations', proof: { leaves: 10, inactivePeaks: 0, digests: [d(1)] }, ops: [op(7), op(8), op(9)] }
  const goodB: Response = { type: 'boundary', proof: { leaves: 10, inactivePeaks: 0, digests: [d(1)] }, op: op(6), pinnedNodes: [d(2), d(3)] }

  it('round-trips responses and no-data', () => {
    expect(parseResponseFrame(responseBody(goodOps), opsReq, codec)).to.deep.equal({ type: 'response', response: goodOps })
    expect(parseResponseFrame(responseBody(goodB), bReq, codec)).to.deep.equal({ type: 'response', response: goodB })
    expect(parseResponseFrame(NO_DATA_BODY, opsReq, codec)).to.deep.equal({ type: 'no-data' })
    expect(responseBody(goodOps)[0]).to.equal(0x01)
  })

  it('rejects frames an honest server never sends', () => {
    violation(() => parseResponseFrame(new Uint8Array(), opsReq, codec))
    violation(() => parseResponseFrame(Uint8Array.from([0x02, 0x00]), opsReq, codec))
    violation(() => parseResponseFrame(Uint8Array.from([0x00]), opsReq, codec))
    violation(() => parseResponseFrame(Uint8Array.from([0x03, ...responseBody(goodOps).subarray(1)]), opsReq, codec))
    violation(() => parseResponseFrame(Uint8Array.from([0x01, 0x00]), opsReq, codec))
    violation(() => parseResponseFrame(Uint8Array.from([...responseBody(goodOps), 0x00]), opsReq, codec))
    // decodes, but does not answer the request
    expect(violation(() => parseResponseFrame(responseBody(goodB), opsReq, codec))).to.match(/boundary response/)
    expect(violation(() => parseResponseFrame(responseBody({ ...goodOps, proof: { ...goodOps.proof, leaves: 11 } }), opsReq, codec))).to.match(/11 leaves/)
    expect(violation(() => parseResponseFrame(responseBody({ ...goodOps, ops: [] }), opsReq, codec))).to.match(/0 operations/)
    // more ops than the range [start, size) holds, though fewer than maxOps
    expect(violation(() => parseResponseFrame(responseBody({ ...goodOps, ops: [op(1), op(2), op(3), op(4)] }), opsReq, codec))).to.match(/4 operations/)
    expect(violation(() => parseResponseFrame(responseBody({ ...goodB, pinnedNodes: [d(2)] }), bReq, codec))).to.match(/pinned/)
    expect(responseShapeProblem(bReq, goodB)).to.equal(undefined)
  })

  it('fuzz: parsing random and mutated frames only ever throws ProtocolViolation', () => {
    const valid = [responseBody(goodOps), responseBody(goodB), NO_DATA_BODY]
    const r1 = fuzzDecoder(b => parseResponseFrame(b, opsReq, codec), valid, 20_000, 3, [ProtocolViolation])
    const r2 = fuzzDecoder(b => parseResponseFrame(b, bReq, codec), valid, 20_000, 4, [ProtocolViolation])
    expect(r1.ok + r2.ok).to.be.greaterThan(0)
    expect(r1.rejected).to.be.greaterThan(0)
  })
})

describe('p2p: limits, scores, notifications', () => {
  it('token bucket: a burst, then one token per 1/rate seconds', () => {
    const b = new TokenBucket({ perSecond: 10, burst: 3 }, 0)
    expect([b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)]).to.deep.equal([true, true, true, false])
    expect(b.msUntilToken(0)).to.equal(100)
    expect(b.tryTake(50)).to.equal(false)
    expect(b.msUntilToken(50)).to.equal(50)
    expect(b.tryTake(100)).to.equal(true)
    expect(b.isFull(10_000)).to.equal(true)
    expect(() => new TokenBucket({ perSecond: 0, burst: 1 })).to.throw(RangeError)
  })

  it('peer limiter: per-peer concurrency and rate, independent across peers', () => {
    const l = new PeerLimiter({ perSecond: 1, burst: 2 }, 2)
    expect(l.tryAcquire('a', 0)).to.deep.equal({ ok: true })
    expect(l.tryAcquire('a', 0)).to.deep.equal({ ok: true })
    expect(l.tryAcquire('a', 0)).to.deep.equal({ ok: false, reason: 'concurrency', retryInMs: 0 })
    expect(l.tryAcquire('b', 0).ok).to.equal(true)
    l.release('a')
    expect(l.inFlight('a')).to.equal(1)
    const limited = l.tryAcquire('a', 0)
    expect(limited).to.deep.equal({ ok: false, reason: 'rate', retryInMs: 1000 })
    expect(l.tryAcquire('a', 1000).ok).to.equal(true)
    l.release('a')
    l.release('a')
    l.release('a')
    expect(l.inFlight('a')).to.equal(0)
  })

  it('peer limiter: a total cap over all peers; releasing a slot frees it for anyone', () => {
    const l = new PeerLimiter({ perSecond: 1000, burst: 1000 }, 2, 3)
    expect(l.tryAcquire('a', 0).ok).to.equal(true)
    expect(l.tryAcquire('a', 0).ok).to.equal(true)
    expect(l.tryAcquire('b', 0).ok).to.equal(true)
    expect(l.tryAcquire('c', 0)).to.deep.equal({ ok: false, reason: 'total', retryInMs: 0 })
    expect(l.total).to.equal(3)
    l.release('a')
    expect(l.tryAcquire('c', 0).ok).to.equal(true)
    l.release('nobody') // a release without a slot changes nothing
    expect(l.total).to.equal(3)
    expect(() => new PeerLimiter({ perSecond: 1, burst: 1 }, 1, 0)).to.throw(RangeError)
  })

  it('peer book: moving-average scores, best first for fresh requests, shuffled with the failed peer last for retries', () => {
    const book = new PeerBook({ initialLatency: 1000 })
    const [a, b, c] = PEERS
    book.record(b.toString(), 20) // (1000 + 20) / 2
    expect(book.score(b.toString())).to.equal(510)
    book.record(b.toString(), 10)
    expect(book.score(b.toString())).to.equal(260)
    book.record(c.toString(), 5000) // penalised
    expect(book.order([a, b, c], true).map(p => p.toString())).to.deep.equal([b, a, c].map(p => p.toString()))
    // ties are broken by peer id
    const tie = new PeerBook({ initialLatency: 1 })
    const sorted = [...PEERS].sort((x, y) => x.toString() < y.toString() ? -1 : 1)
    expect(tie.order([PEERS[2], PEERS[0], PEERS[1]], true)).to.deep.equal(sorted)
    // retries: random order, the last failed peer goes to the end
    let seed = 1
    const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
    for (let i = 0; i < 20; i++) {
      const order = book.order([a, b, c], false, b.toString(), random)
      expect(order).to.have.lengthOf(3)
      expect(order[2].equals(b)).to.equal(true)
    }
    expect(book.block(a.toString(), 'bad data')).to.equal(true)
    expect(book.block(a.toString(), 'again')).to.equal(false)
    expect(book.order([a, b, c], true).some(p => p.equals(a))).to.equal(false)
    expect(book.blocked().get(a.toString())).to.equal('bad data')
    expect(book.blockedCount).to.equal(1)
  })

  it('notifier: wakes waiters, times out, and honours abort', async () => {
    const n = new Notifier()
    let woke = false
    const p = n.wait(10_000).then(() => { woke = true })
    n.notify()
    await p
    expect(woke).to.equal(true)
    const t0 = Date.now()
    await n.wait(5)
    expect(Date.now() - t0).to.be.lessThan(5000)
    const ac = new AbortController()
    const q = n.wait(10_000, ac.signal)
    ac.abort()
    await q
    await n.wait(10_000, ac.signal) // already aborted: returns at once
  })
})
