/**
 * The proof protocol between real libp2p nodes: a ledger validator
 * (`createNode`, one validator) serves `accounts`; a plain libp2p node with
 * `lightClient` reads accounts at the node's latest height, or at an
 * explicit height, and checks what it gets against the ledger's own rule
 * (transfers conserve the total balance, computed here, not read from the
 * node). A key never written cannot be proven absent (`accounts` is
 * unordered); another height than the node's is `HeightUnavailable`; a lying
 * peer's tampered value is rejected (`Proof`) while the honest node's
 * answer for the same key verifies; a malformed request resets the stream
 * and the node keeps answering; stopping a light server ends the answers it
 * is still producing (not at its serve deadline).
 */
import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { accountId, decodeAccount } from '../../src/examples/ledger/index.ts'
import { LightError } from '../../src/light/errors.ts'
import { lightClient, lightServer } from '../../src/light/index.ts'
import { frameStream } from '../../src/net/frames.ts'
import { codeOf } from '../util/common.ts'
import { flipBalance, lyingPeer, pausedLedger } from '../util/light-proxy.ts'
import { tcpBase } from '../util/p2p-nodes.ts'
import type { LightClient } from '../../src/light/index.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { LyingPeer } from '../util/light-proxy.ts'
import type { Libp2p } from '@libp2p/interface'

const ACCOUNTS = 30
const INITIAL = 1_000_000n

describe('light: proofs between libp2p nodes', function () {
  this.timeout(180_000)
  let dir: string
  let node: QmdbNode
  let client: Libp2p
  let light: LightClient
  let liar: LyingPeer | undefined
  let height: number
  let validators: string[]
  /** Accounts with a value (read in the first test). */
  const written: number[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmdb-light-'))
    const chain = await pausedLedger(dir, 'light', ACCOUNTS, 6)
    node = chain.node
    height = chain.height
    const v = chain.init
    client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    validators = v.config.validators
    light = lightClient(client, { validators, chain: 'light', application: ledgerApplication() })
  })

  after(async () => {
    await liar?.stop()
    await client?.stop()
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('reads every account verified at one height; balances sum to the initial supply', async () => {
    const peer = node.libp2p.getMultiaddrs()[0]
    let total = 0n
    for (let i = 0; i < ACCOUNTS; i++) {
      const v = await light.get(peer, 'accounts', accountId(i), { signal: AbortSignal.timeout(20_000) }).catch(err => {
        // an account never written holds the initial balance; the unordered database cannot prove it
        if (err instanceof LightError && err.code === 'Unprovable') { return undefined }
        throw err
      })
      if (v === undefined) {
        total += INITIAL
        continue
      }
      expect(v.height).to.equal(height)
      if (v.absent) { throw new Error('an unordered database never answers absent') }
      total += decodeAccount(v.value, INITIAL).balance
      written.push(i)
    }
    expect(total).to.equal(INITIAL * BigInt(ACCOUNTS))
    expect(written.length, 'transfers happened').to.be.greaterThan(1)
    const status = await node.status()
    expect((await light.get(peer, 'accounts', accountId(written[0]), { height })).blockDigest).to.deep.equal(Uint8Array.from(Buffer.from(status.digest ?? '', 'hex')))
  })

  it('a key never written: Unprovable; another height: HeightUnavailable; an unknown database: Unsupported', async () => {
    const peer = node.libp2p.getMultiaddrs()[0]
    expect(await codeOf(light.get(peer, 'accounts', accountId(ACCOUNTS + 1000)), LightError)).to.equal('Unprovable')
    expect(await codeOf(light.get(peer, 'accounts', accountId(written[0]), { height: height - 1 }), LightError)).to.equal('HeightUnavailable')
    expect(await codeOf(light.get(peer, 'receipts', accountId(1)), LightError)).to.equal('Unsupported')
  })

  it('a lying peer: its tampered value is rejected (Proof), the honest answer verifies', async () => {
    liar = await lyingPeer(node.libp2p.getMultiaddrs(), 'light', ['accounts'], flipBalance)
    const bad = liar.getMultiaddrs()[0]
    const err = await light.get(bad, 'accounts', accountId(written[0])).catch(e => e as LightError)
    expect(err).to.be.instanceOf(LightError)
    expect((err as LightError).code).to.equal('Proof')
    const good = await light.get(node.libp2p.getMultiaddrs()[0], 'accounts', accountId(written[0]))
    expect(good.absent).to.equal(false)
  })

  it('a malformed request resets the stream; the node keeps answering', async () => {
    const peer = node.libp2p.getMultiaddrs()[0]
    const stream = await client.dialProtocol(peer, light.protocol('accounts'))
    const frames = frameStream(stream, { maxDataLength: 1 << 20 })
    await frames.write(new Uint8Array([0x07, 0x07, 0x07]), { signal: AbortSignal.timeout(5000) })
    await stream.close().catch(() => {})
    expect(await codeOf(frames.read({ signal: AbortSignal.timeout(10_000) }))).to.not.equal('ok')
    expect((await light.get(peer, 'accounts', accountId(written[1]))).absent).to.equal(false)
  })

  it('stopping the light server ends an answer still in flight, not at its serve deadline', async () => {
    const server = await createLibp2p({
      ...tcpBase(),
      services: { light: lightServer({ chain: 'light', databases: ['accounts'], serveTimeout: 600_000 }) }
    })
    let entered!: () => void
    const answering = new Promise<void>(resolve => { entered = resolve })
    let backendSignal: AbortSignal | undefined
    server.services.light.attach({
      answer: async (_db, _request, signal) => {
        backendSignal = signal
        entered()
        // a backend that never answers on its own: only the signal ends it
        return new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
      }
    })
    try {
      const slow = lightClient(client, { validators, chain: 'light', application: ledgerApplication(), timeout: 600_000 })
      const outcome = slow.get(server.getMultiaddrs()[0], 'accounts', accountId(0)).then(() => 'answered', (err: Error) => `ended: ${err.name}`)
      await Promise.race([answering, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the request never reached the backend')) }, 30_000))])
      await server.services.light.stop()
      expect(backendSignal?.aborted).to.equal(true)
      const settled = await Promise.race([outcome, new Promise(resolve => setTimeout(() => { resolve('still waiting after 60 s') }, 60_000))])
      expect(settled).to.match(/^ended: /)
    } finally {
      await server.stop()
    }
  })
})
