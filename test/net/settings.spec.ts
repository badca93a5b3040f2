/**
 * The service shell's option handling and peer providers (src/net/service.ts
 * `resolveSettings`, src/net/providers.ts): options merge over defaults one
 * by one, values that cannot work are refused at construction, and the
 * providers a service swaps on restart answer and wake their waiters.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { peerProvider, StaticPeers, SwitchablePeers } from '../../src/net/providers.ts'
import { SERVICE_DEFAULTS, resolveSettings } from '../../src/net/service.ts'
import type { ConnectedPeersComponents } from '../../src/net/providers.ts'
import type { ServiceInit } from '../../src/net/service.ts'
import type { PeerId } from '@libp2p/interface'

const log = defaultLogger().forComponent('test:net:settings')

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** Resolves true if `p` settles within `ms` of real time, false otherwise. */
async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, ms) })
  try {
    return await Promise.race([p.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

describe('net/service resolveSettings', () => {
  it('keeps every default when nothing is set, and an undefined option keeps its default', () => {
    expect(resolveSettings({}, SERVICE_DEFAULTS)).to.deep.equal(SERVICE_DEFAULTS)
    expect(resolveSettings({ timeout: undefined, inbound: { maxConcurrent: undefined } }, SERVICE_DEFAULTS)).to.deep.equal(SERVICE_DEFAULTS)
  })

  it('overrides option by option, nested limits field by field', () => {
    const s = resolveSettings({ timeout: 750, inbound: { maxConcurrent: 3 }, outbound: { rate: { perSecond: 5, burst: 7 } } }, SERVICE_DEFAULTS)
    expect(s.timeout).to.equal(750)
    expect(s.inbound).to.deep.equal({ maxConcurrent: 3, maxTotal: Infinity, rate: { perSecond: 200, burst: 400 } })
    expect(s.outbound).to.deep.equal({ maxConcurrent: 8, rate: { perSecond: 5, burst: 7 } })
    expect(resolveSettings({ strikes: { limit: 0 } }, SERVICE_DEFAULTS).strikes).to.deep.equal({ limit: 0, blockMs: 30_000, maxBlockMs: 600_000, noData: true, recheckMs: 10_000, maxRechecks: 2 })
    expect(s.readTimeout).to.equal(5000)
  })

  it('ignores keys that are not options of the service', () => {
    const init = { timeout: 900, chain: 'x', codec: {} } as unknown as ServiceInit
    const s = resolveSettings(init, SERVICE_DEFAULTS) as unknown as Record<string, unknown>
    expect(s.timeout).to.equal(900)
    expect(s).to.not.have.property('chain')
    expect(s).to.not.have.property('codec')
  })

  const refused: Array<[string, ServiceInit, RegExp]> = [
    ['a zero poll interval (would spin)', { pollInterval: 0 }, /pollInterval/],
    ['a negative timeout', { timeout: -1 }, /timeout/],
    ['a NaN read timeout', { readTimeout: Number.NaN }, /readTimeout/],
    ['an infinite serve timeout', { serveTimeout: Infinity }, /serveTimeout/],
    ['a zero retry delay', { retryDelay: 0 }, /retryDelay/],
    ['a cap below the first retry delay', { retryDelay: 500, maxRetryDelay: 100 }, /maxRetryDelay/],
    ['a fractional response cap', { maxResponseBytes: 10.5 }, /maxResponseBytes/],
    ['a zero response cap', { maxResponseBytes: 0 }, /maxResponseBytes/],
    ['zero inbound streams', { maxInboundStreams: 0 }, /maxInboundStreams/],
    ['a negative initial latency', { initialLatency: -5 }, /initialLatency/],
    ['a timeout given as a string', { timeout: '100' as unknown as number }, /timeout/],
    ['a fractional strike limit', { strikes: { limit: 2.5 } }, /strikes\.limit/],
    ['a strike block cap below its first block', { strikes: { blockMs: 1000, maxBlockMs: 10 } }, /strikes\.blockMs/]
  ]
  for (const [what, init, names] of refused) {
    it(`refuses ${what} with a RangeError naming the option`, () => {
      expect(() => resolveSettings(init, SERVICE_DEFAULTS)).to.throw(RangeError, names)
    })
  }

  it('accepts the edge values that do work', () => {
    const s = resolveSettings({ initialLatency: 0, retryDelay: 1, maxRetryDelay: 1, maxResponseBytes: 1 }, SERVICE_DEFAULTS)
    expect(s.initialLatency).to.equal(0)
    expect(s.maxRetryDelay).to.equal(1)
  })
})

describe('net/providers', () => {
  const noComponents = {} as unknown as ConnectedPeersComponents

  it('peerProvider: a list is a replaceable static list, a function is asked on every call', async () => {
    const [a, b, c] = [await peer(), await peer(), await peer()]
    const fixed = peerProvider([a, b], '/t/1.0.0', noComponents, log)
    expect(fixed.peers().map(String)).to.deep.equal([a, b].map(String))
    fixed.set?.([c])
    expect(fixed.peers().map(String)).to.deep.equal([c.toString()])

    let calls = 0
    const dynamic = peerProvider(() => { calls++; return calls === 1 ? [a] : [b, c] }, '/t/1.0.0', noComponents, log)
    expect(dynamic.peers().map(String)).to.deep.equal([a.toString()])
    expect(dynamic.peers().map(String)).to.deep.equal([b, c].map(String))
    expect(dynamic.set).to.equal(undefined)
  })

  it('a static list wakes a waiter when it is replaced, not before', async () => {
    const list = new StaticPeers([])
    const controller = new AbortController()
    const waiting = list.changed(60_000, controller.signal)
    expect(await settlesWithin(waiting, 50)).to.equal(false)
    list.set([await peer()])
    expect(await settlesWithin(waiting, 5_000)).to.equal(true)
    controller.abort()
  })

  it('SwitchablePeers: empty and idle until a provider is set; answers through the current one; close wakes waiters', async () => {
    const [a, b] = [await peer(), await peer()]
    const sw = new SwitchablePeers()
    expect(sw.peers()).to.deep.equal([])
    expect(() => { sw.set([a]) }).to.throw(TypeError)

    const controller = new AbortController()
    const idle = sw.changed(60_000, controller.signal)
    expect(await settlesWithin(idle, 50)).to.equal(false)
    sw.close()
    expect(await settlesWithin(idle, 5_000)).to.equal(true)

    sw.current = new StaticPeers([a])
    expect(sw.peers().map(String)).to.deep.equal([a.toString()])
    const waiting = sw.changed(60_000, controller.signal)
    sw.set([b])
    expect(await settlesWithin(waiting, 5_000)).to.equal(true)
    expect(sw.peers().map(String)).to.deep.equal([b.toString()])

    // a provider that discovers its peers has no list to replace
    sw.current = peerProvider(() => [a], '/t/1.0.0', noComponents, log)
    expect(() => { sw.set([b]) }).to.throw(TypeError, /discovers its peers/)

    sw.close()
    expect(sw.current).to.equal(undefined)
    expect(sw.peers()).to.deep.equal([])
    controller.abort()
  })

  it('an aborted wait returns at once', async () => {
    const sw = new SwitchablePeers()
    sw.current = new StaticPeers([])
    const controller = new AbortController()
    controller.abort()
    expect(await settlesWithin(sw.changed(60_000, controller.signal), 5_000)).to.equal(true)
  })
})
