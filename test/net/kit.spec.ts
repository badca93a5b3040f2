/**
 * The request/response kit (src/net): the one byte count of a frame, the
 * one-request server (limits, rate limiting, malformed requests, metrics)
 * and the client loop (retries, blocking, timeouts, waiting for peers),
 * over in-memory stream pairs.
 */
import '../util/polyfill.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { expect } from 'aegir/chai'
import { RequestClient, Undecodable } from '../../src/net/client.ts'
import { frameSize, frameStream } from '../../src/net/frames.ts'
import { PeerLimiter } from '../../src/net/limits.ts'
import { ServiceMetrics } from '../../src/net/metrics.ts'
import { DEFAULT_STRIKES, Notifier, PeerBook } from '../../src/net/peers.ts'
import { payloadOf } from '../../src/net/protocol.ts'
import { StaticPeers } from '../../src/net/providers.ts'
import { Rechecks } from '../../src/net/recheck.ts'
import { RequestServer } from '../../src/net/server.ts'
import { waitUntil } from '../util/common.ts'
import type { Attempt } from '../../src/net/client.ts'
import type { FetchOutcome, ServeOutcome } from '../../src/net/metrics.ts'
import type { StrikeRule } from '../../src/net/peers.ts'
import type { RequestHandler } from '../../src/net/server.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const log = defaultLogger().forComponent('test:net')

class CountingMetrics extends ServiceMetrics {
  readonly outcomes: ServeOutcome[] = []
  readonly fetched: FetchOutcome[] = []
  readonly judged: boolean[] = []
  readonly counted = { in: 0, out: 0 }

  constructor () {
    super(undefined, 'test')
  }

  serve (outcome: ServeOutcome): void { this.outcomes.push(outcome) }
  fetch (outcome: FetchOutcome): void { this.fetched.push(outcome) }
  verdict (valid: boolean): void { this.judged.push(valid) }
  bytesIn (n: number): void { this.counted.in += n }
  bytesOut (n: number): void { this.counted.out += n }
}

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

function connectionFrom (peer: PeerId): Connection {
  return { remotePeer: peer } as unknown as Connection
}

const LIMITS = { readTimeout: 2000, serveTimeout: 2000 }
const OPEN = { perSecond: 1000, burst: 1000 }

/** A handler answering every request with `size` bytes of 7s; counts its calls. */
function fixedAnswer (size: number, maxRequestBytes = 64): RequestHandler<Uint8Array> & { decoded: number, answered: number } {
  const h = {
    maxRequestBytes,
    decoded: 0,
    answered: 0,
    decode: (frame: Uint8Array) => {
      h.decoded++
      return frame
    },
    answer: async () => {
      h.answered++
      return new Uint8Array(size).fill(7)
    },
    isNoData: () => false
  }
  return h
}

/** Send one request frame on `stream` and read the answer's body (undefined when the stream is reset or closed without one). */
async function ask (stream: Stream, request: Uint8Array): Promise<Uint8Array | undefined> {
  const lp = frameStream(stream, { maxDataLength: 1 << 20 })
  const signal = AbortSignal.timeout(5000)
  try {
    await lp.write(request, { signal })
    await stream.close({ signal })
    return await lp.read({ signal })
  } catch {
    return undefined
  }
}

describe('net: frameSize, the one byte count of a frame', () => {
  it('adds the uvarint length prefix: one byte below 128, two from 128, three from 16384', () => {
    expect(frameSize(0)).to.equal(1)
    expect(frameSize(127)).to.equal(128)
    expect(frameSize(128)).to.equal(130)
    expect(frameSize(16_383)).to.equal(16_385)
    expect(frameSize(16_384)).to.equal(16_387)
  })
})

describe('net: RequestServer', function () {
  this.timeout(20_000)

  it('answers one request per stream and counts every frame with its length prefix', async () => {
    const metrics = new CountingMetrics()
    const server = new RequestServer(LIMITS, new PeerLimiter(OPEN, 4), metrics, log)
    const peer = await newPeer()
    for (const size of [10, 200, 20_000]) {
      const [outbound, inbound] = await streamPair()
      const handled = server.handle(inbound, connectionFrom(peer), fixedAnswer(size, 256))
      const body = await ask(outbound, new Uint8Array(130))
      expect(body?.length).to.equal(size)
      expect(await handled).to.equal(true)
    }
    // requests: 3 × (130 + 2); answers: (10 + 1) + (200 + 2) + (20000 + 3)
    expect(metrics.counted.in).to.equal(396)
    expect(metrics.counted.out).to.equal(20_216)
    expect(metrics.outcomes).to.deep.equal(['response', 'response', 'response'])
  })

  it('sheds a peer\'s stream beyond its concurrency before reading it, and frees the slot after', async () => {
    const metrics = new CountingMetrics()
    const limiter = new PeerLimiter(OPEN, 1)
    const server = new RequestServer({ readTimeout: 300, serveTimeout: 2000 }, limiter, metrics, log)
    const peer = await newPeer()
    const handler = fixedAnswer(4)
    const [, silentIn] = await streamPair()
    const silent = server.handle(silentIn, connectionFrom(peer), handler) // never sends its request
    const [secondOut, secondIn] = await streamPair()
    const second = server.handle(secondIn, connectionFrom(peer), handler)
    expect(await ask(secondOut, new Uint8Array(1))).to.equal(undefined)
    expect(await second).to.equal(false)
    expect(await silent).to.equal(false) // its read deadline passed
    expect(metrics.outcomes).to.deep.equal(['limited', 'malformed'])
    expect(handler.decoded).to.equal(0)
    expect(limiter.inFlight(peer.toString())).to.equal(0)
    // the slot is free again: the next stream is answered
    const [thirdOut, thirdIn] = await streamPair()
    const third = server.handle(thirdIn, connectionFrom(peer), handler)
    expect((await ask(thirdOut, new Uint8Array(1)))?.length).to.equal(4)
    expect(await third).to.equal(true)
  })

  it('sheds a peer over its rate while other peers are served', async () => {
    const metrics = new CountingMetrics()
    const server = new RequestServer(LIMITS, new PeerLimiter({ perSecond: 0.001, burst: 1 }, 8), metrics, log)
    const [greedy, other] = [await newPeer(), await newPeer()]
    const outcomes: boolean[] = []
    for (const peer of [greedy, greedy, other]) {
      const [out, inb] = await streamPair()
      const handled = server.handle(inb, connectionFrom(peer), fixedAnswer(4))
      await ask(out, new Uint8Array(1))
      outcomes.push(await handled)
    }
    expect(outcomes).to.deep.equal([true, false, true])
    expect(metrics.outcomes).to.deep.equal(['response', 'limited', 'response'])
  })

  it('resets a stream whose request is oversized or undecodable without answering', async () => {
    const metrics = new CountingMetrics()
    const server = new RequestServer(LIMITS, new PeerLimiter(OPEN, 4), metrics, log)
    const peer = await newPeer()
    const small = fixedAnswer(4, 8)
    const [out1, in1] = await streamPair()
    const oversized = server.handle(in1, connectionFrom(peer), small)
    expect(await ask(out1, new Uint8Array(9))).to.equal(undefined)
    expect(await oversized).to.equal(false)
    expect(small.decoded).to.equal(0)

    const refusing: RequestHandler<never> = {
      maxRequestBytes: 8,
      decode: () => { throw new Error('not a request') },
      answer: async () => { throw new Error('never asked') },
      isNoData: () => false
    }
    const [out2, in2] = await streamPair()
    const undecodable = server.handle(in2, connectionFrom(peer), refusing)
    expect(await ask(out2, new Uint8Array(3))).to.equal(undefined)
    expect(await undecodable).to.equal(false)
    expect(small.answered).to.equal(0)
    expect(metrics.outcomes).to.deep.equal(['malformed', 'malformed'])
  })
})

/** How a fake peer answers the n-th request it gets (0-based): a body, or 'silent' (never answers). */
type Script = (n: number) => Uint8Array | 'silent'

/** A connection manager whose peers answer through in-memory streams as `scripts` say. */
function fakeNetwork (scripts: Map<string, Script>, unreachable: ReadonlySet<string> = new Set()): { connectionManager: ConnectionManager, asked: string[] } {
  const asked: string[] = []
  const counts = new Map<string, number>()
  const connections = new Map<string, Connection>()
  const connectionManager = {
    openConnection: async (peer: PeerId, options: { signal: AbortSignal }) => {
      const id = peer.toString()
      if (unreachable.has(id)) {
        // a dial that never completes: it ends when the request's deadline aborts it
        asked.push(id)
        await new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(new Error('dial aborted')) }, { once: true }) })
      }
      let conn = connections.get(id)
      if (conn === undefined) {
        conn = {
          newStream: async () => {
            const [out, inb] = await streamPair()
            const n = counts.get(id) ?? 0
            counts.set(id, n + 1)
            asked.push(id)
            void respond(inb, scripts.get(id)?.(n) ?? 'silent')
            return out
          }
        } as unknown as Connection
        connections.set(id, conn)
      }
      return conn
    }
  } as unknown as ConnectionManager
  return { connectionManager, asked }
}

async function respond (stream: Stream, answer: Uint8Array | 'silent'): Promise<void> {
  const lp = frameStream(stream, { maxDataLength: 64 })
  const signal = AbortSignal.timeout(5000)
  try {
    await lp.read({ signal })
    if (answer === 'silent') { return }
    await lp.write(answer, { signal })
    await stream.close({ signal })
  } catch {
    stream.abort(new Error('test peer gave up'))
  }
}

const DATA = (v: number): Uint8Array => new Uint8Array([0x01, v])
const NO_DATA = new Uint8Array([0x02])

interface Harness {
  client: RequestClient
  book: PeerBook
  metrics: CountingMetrics
  blocked: Map<string, string>
  /** Strike-outs the client reported: peer → how long and why. */
  struck: Map<string, { ms: number, reason: string }>
  asked: string[]
  provider: StaticPeers
  shutdown: AbortController
  rechecks?: Rechecks<PeerId>
}

/** A client over `scripts`' peers; with `recheck`, stallers are asked again under that strike rule. */
async function harness (scripts: Map<string, Script>, peers: PeerId[], timeout = 2000, unreachable?: ReadonlySet<string>, recheck?: StrikeRule): Promise<Harness> {
  const { connectionManager, asked } = fakeNetwork(scripts, unreachable)
  const book = new PeerBook({ initialLatency: 1000, strikes: recheck })
  const metrics = new CountingMetrics()
  const blocked = new Map<string, string>()
  const struck = new Map<string, { ms: number, reason: string }>()
  const rechecks = recheck === undefined ? undefined : new Rechecks<PeerId>(book, recheck, (peer, reason, ms) => { struck.set(peer.toString(), { ms, reason }) })
  const provider = new StaticPeers(peers)
  const shutdown = new AbortController()
  const client = new RequestClient({
    self: await newPeer(),
    connectionManager,
    book,
    outbound: new PeerLimiter(OPEN, 4),
    slots: new Notifier(),
    metrics,
    log,
    shutdown: () => shutdown.signal,
    block: (peer, reason) => {
      book.block(peer.toString(), reason)
      blocked.set(peer.toString(), reason)
    },
    struck: (peer, reason, ms) => { struck.set(peer.toString(), { ms, reason }) },
    rechecks,
    runOnLimitedConnection: false,
    pollInterval: 50
  }, { protocol: '/test/1.0.0', provider, timeout, retryDelay: 1, maxRetryDelay: 5, maxResponseBytes: 64 })
  return { client, book, metrics, blocked, struck, asked, provider, shutdown, rechecks }
}

const parseByte = (body: Uint8Array): ReturnType<typeof payloadOf> => payloadOf(body)

describe('net: RequestClient', function () {
  this.timeout(20_000)

  it('retries after no data and scores the peer; a verdict records the round trip or blocks', async () => {
    const peer = await newPeer()
    const h = await harness(new Map([[peer.toString(), (n: number) => n < 2 ? NO_DATA : DATA(9)]]), [peer])
    const got = await h.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, AbortSignal.timeout(10_000))
    expect(got?.value).to.deep.equal(new Uint8Array([9]))
    expect(got?.peer.equals(peer)).to.equal(true)
    expect(h.metrics.fetched).to.deep.equal(['no_data', 'no_data', 'response'])
    // two no-data answers each fold the timeout into the score: (1000 + 2000) / 2, then (1500 + 2000) / 2
    expect(h.book.score(peer.toString())).to.equal(1750)
    expect(h.metrics.counted.out).to.equal(3 * 2)
    expect(h.metrics.counted.in).to.equal(2 * 2 + 3)
    h.client.verdict(peer, true, 50, 'unused')
    expect(h.book.score(peer.toString())).to.equal(900)
    h.client.verdict(peer, false, undefined, 'its answer failed validation')
    expect(h.blocked.get(peer.toString())).to.equal('its answer failed validation')
    expect(h.metrics.judged).to.deep.equal([true, false])
  })

  it('blocks a peer whose answer breaks the protocol and gets the data from another', async () => {
    const [liar, honest] = [await newPeer(), await newPeer()]
    const h = await harness(new Map<string, Script>([
      [liar.toString(), () => new Uint8Array([0x09])],
      [honest.toString(), () => DATA(5)]
    ]), [liar, honest])
    h.book.record(honest.toString(), 100_000) // the liar is asked first
    const got = await h.client.fetch({ bytes: new Uint8Array([1]), key: 'req-1', parse: parseByte }, AbortSignal.timeout(10_000))
    expect(got?.peer.equals(honest)).to.equal(true)
    expect(h.asked).to.deep.equal([liar.toString(), honest.toString()])
    expect(h.blocked.get(liar.toString())).to.match(/^req-1: unknown status 0x9/)
    expect(h.metrics.fetched).to.deep.equal(['invalid', 'response'])
    // a blocked peer is never asked again
    await h.client.fetch({ bytes: new Uint8Array([2]), key: 'req-2', parse: parseByte }, AbortSignal.timeout(10_000))
    expect(h.asked.filter(id => id === liar.toString())).to.have.length(1)
  })

  it('an Undecodable answer blames no one and is told to the request', async () => {
    const [odd, honest] = [await newPeer(), await newPeer()]
    const h = await harness(new Map<string, Script>([
      [odd.toString(), () => DATA(1)],
      [honest.toString(), () => DATA(2)]
    ]), [odd, honest])
    h.book.record(honest.toString(), 100_000)
    const failures: Array<Attempt<number>['type']> = []
    const got = await h.client.fetch<number>({
      bytes: new Uint8Array([1]),
      key: 'k',
      parse: (body, peer) => {
        if (peer.equals(odd)) { throw new Undecodable('cannot read it') }
        const p = payloadOf(body)
        return p.type === 'no-data' ? p : { type: 'data', value: p.value[0] }
      },
      failed: async (_peer, attempt) => {
        failures.push(attempt.type)
        return false
      }
    }, AbortSignal.timeout(10_000))
    expect(got?.value).to.equal(2)
    expect(failures).to.deep.equal(['undecodable'])
    expect(h.blocked.size).to.equal(0)
  })

  it('a peer that does not answer within the timeout is penalised and the request goes elsewhere', async () => {
    const [slow, fast] = [await newPeer(), await newPeer()]
    const h = await harness(new Map<string, Script>([
      [slow.toString(), () => 'silent'],
      [fast.toString(), () => DATA(3)]
    ]), [slow, fast], 200)
    h.book.record(fast.toString(), 100_000)
    const got = await h.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, AbortSignal.timeout(10_000))
    expect(got?.peer.equals(fast)).to.equal(true)
    expect(h.metrics.fetched).to.deep.equal(['timeout', 'response'])
    expect(h.book.score(slow.toString())).to.equal((1000 + 200) / 2)
    expect(h.blocked.size).to.equal(0)
  })

  it('strikes out a peer that stalls or has no data on requests another peer answers; unreachable peers and unanswered requests strike no one', async () => {
    const [staller, empty, far, honest] = [await newPeer(), await newPeer(), await newPeer(), await newPeer()]
    let served = 0
    const h = await harness(new Map<string, Script>([
      [staller.toString(), () => 'silent'],
      [empty.toString(), () => NO_DATA],
      [honest.toString(), () => DATA(served++)]
    ]), [], 100, new Set([far.toString()]))
    h.book.record(honest.toString(), 100_000) // each fresh request asks the other peer first, then honest
    const asks = (peer: PeerId): number => h.asked.filter(id => id === peer.toString()).length
    const fetchOnce = async (key: string): Promise<void> => {
      const got = await h.client.fetch({ bytes: new Uint8Array([1]), key, parse: parseByte }, AbortSignal.timeout(10_000))
      expect(got?.peer.equals(honest)).to.equal(true)
    }
    for (const bad of [staller, empty, far]) {
      h.provider.set([bad, honest])
      for (let i = 1; i <= 3; i++) {
        await fetchOnce(`${bad.toString()}-${i}`)
        expect(asks(bad)).to.equal(i)
        // blocked at the third strike in a row, and not before
        expect(h.book.isBlocked(bad.toString())).to.equal(bad !== far && i === 3)
      }
      await fetchOnce(`${bad.toString()}-4`)
      expect(asks(bad)).to.equal(bad === far ? 4 : 3)
    }
    expect(h.book.blocked().get(staller.toString())).to.match(/^timeout for .* \(3 requests in a row that other peers answered\)$/)
    expect(h.book.blocked().get(empty.toString())).to.match(/^no-data for /)
    // a struck-out peer is not blocked for good: the blocker (permanent blocks) was never called
    expect(h.blocked.size).to.equal(0)
    // each strike-out is reported once, with the default rule's first block (30 s) and the book's reason
    expect([...h.struck.keys()].sort()).to.deep.equal([staller.toString(), empty.toString()].sort())
    for (const peer of [staller, empty]) {
      expect(h.struck.get(peer.toString())).to.deep.equal({ ms: 30_000, reason: h.book.blocked().get(peer.toString()) })
    }

    // nobody has the data: no one to compare with, so no strike however often it is asked
    const alone = await newPeer()
    const none = await harness(new Map([[alone.toString(), () => NO_DATA]]), [alone], 100)
    expect(await none.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, AbortSignal.timeout(500))).to.equal(undefined)
    expect(none.asked.length).to.be.greaterThan(3)
    expect(none.book.isBlocked(alone.toString())).to.equal(false)
  })

  it('asks a staller again in the background until the strike rule blocks it; a peer that answers when asked again, even with no data, is let go', async () => {
    const [staller, slowOnce, honest] = [await newPeer(), await newPeer(), await newPeer()]
    const h = await harness(new Map<string, Script>([
      [staller.toString(), () => 'silent'],
      // sits on its first request, then answers no data (an honest peer behind looks like this)
      [slowOnce.toString(), n => n === 0 ? 'silent' : NO_DATA],
      [honest.toString(), () => DATA(1)]
    ]), [], 100, undefined, { ...DEFAULT_STRIKES, recheckMs: 20, maxRechecks: 1 })
    h.book.record(honest.toString(), 100_000) // a fresh request asks the other peer first, then honest
    const asks = (peer: PeerId): number => h.asked.filter(id => id === peer.toString()).length
    // one request each, which the peer sat on and honest answered: one strike each, nothing more is fetched
    for (const other of [staller, slowOnce]) {
      h.provider.set([other, honest])
      const got = await h.client.fetch({ bytes: new Uint8Array([1]), key: `k-${other.toString()}`, parse: parseByte }, AbortSignal.timeout(10_000))
      expect(got?.peer.equals(honest)).to.equal(true)
    }
    // asked twice more in the background, timing out each time: the third strike in a row blocks it
    await waitUntil(() => h.struck.has(staller.toString()), 5000, 'the staller struck out')
    expect(asks(staller)).to.equal(3)
    expect(h.book.isBlocked(staller.toString())).to.equal(true)
    expect(h.book.blocked().get(staller.toString())).to.match(/^timeout when asked again .* \(3 requests in a row that other peers answered\)$/)
    // answered when asked again: no strike, not asked any more
    await waitUntil(() => asks(slowOnce) === 2 && h.rechecks?.pending === 0, 5000, 'the slow peer asked again')
    expect(h.book.isBlocked(slowOnce.toString())).to.equal(false)
    expect(h.struck.has(slowOnce.toString())).to.equal(false)
    expect(h.blocked.size).to.equal(0)
    h.rechecks?.stop()
  })

  it('a re-ask answered with data is judged when the request can judge it: false blocks, undefined counts as no answer', async () => {
    for (const verdict of [false, undefined]) {
      const [staller, honest] = [await newPeer(), await newPeer()]
      // sits on its first request, then answers data to every re-ask
      const h = await harness(new Map<string, Script>([[staller.toString(), n => n === 0 ? 'silent' : DATA(7)], [honest.toString(), () => DATA(1)]]),
        [staller, honest], 100, undefined, { ...DEFAULT_STRIKES, recheckMs: 20, maxRechecks: 1 })
      h.book.record(honest.toString(), 100_000)
      const judged: number[] = []
      const judge = (v: Uint8Array): boolean | undefined => { judged.push(v[0]); return verdict }
      const got = await h.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte, judge }, AbortSignal.timeout(10_000))
      expect(got?.peer.equals(honest)).to.equal(true)
      if (verdict === false) {
        await waitUntil(() => h.blocked.has(staller.toString()), 5000, 'the staller blocked')
        expect(h.blocked.get(staller.toString())).to.equal('its answer to k, asked again, contradicts the data another peer served')
        expect(h.rechecks?.pending).to.equal(0)
      } else {
        // nothing to judge by: asked again later, never blocked nor let go
        await waitUntil(() => judged.length >= 3, 5000, 'the staller asked again three times')
        expect(h.blocked.size).to.equal(0)
        expect(h.rechecks?.pending).to.equal(1)
      }
      expect(judged.every(v => v === 7)).to.equal(true)
      h.rechecks?.stop()
    }
  })

  it('asks nobody again once stopped, nor with re-asking turned off', async () => {
    for (const rule of [{ ...DEFAULT_STRIKES, recheckMs: 20, maxRechecks: 1 }, { ...DEFAULT_STRIKES, recheckMs: 0 }]) {
      const [staller, honest] = [await newPeer(), await newPeer()]
      const h = await harness(new Map<string, Script>([[staller.toString(), () => 'silent'], [honest.toString(), () => DATA(1)]]), [staller, honest], 50, undefined, rule)
      h.book.record(honest.toString(), 100_000)
      await h.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, AbortSignal.timeout(10_000))
      if (rule.recheckMs > 0) { h.rechecks?.stop() }
      expect(h.rechecks?.pending).to.equal(0)
      await new Promise(resolve => setTimeout(resolve, 200))
      expect(h.asked.filter(id => id === staller.toString()).length).to.equal(1)
    }
  })

  it('waits for a peer to appear, and gives up only when its signal aborts', async () => {
    const peer = await newPeer()
    const h = await harness(new Map([[peer.toString(), () => DATA(4)]]), [])
    const waiting = h.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, AbortSignal.timeout(10_000))
    setTimeout(() => { h.provider.set([peer]) }, 100)
    expect((await waiting)?.peer.equals(peer)).to.equal(true)

    const none = await harness(new Map(), [])
    const controller = new AbortController()
    const abandoned = none.client.fetch({ bytes: new Uint8Array([1]), key: 'k', parse: parseByte }, controller.signal)
    setTimeout(() => { controller.abort() }, 100)
    expect(await abandoned).to.equal(undefined)
    expect(none.metrics.fetched).to.deep.equal([])
  })
})
