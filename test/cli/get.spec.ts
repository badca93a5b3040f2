/**
 * `libp2p-qmdb get` as a child process against a running ledger validator
 * (in this process): it prints the account's value and the height and
 * block it is verified at (compared with what a light client in this
 * process verified and with the node's status), exits 1 naming `Proof` when
 * the peer tampers with the value, 1 naming `Unprovable` for an account
 * never written, and 2 on usage mistakes.
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
import { hex } from '../../src/codec/index.ts'
import { accountId } from '../../src/examples/ledger/index.ts'
import { lightClient } from '../../src/light/index.ts'
import { cli } from '../util/cli-run.ts'
import { flipBalance, lyingPeer, pausedLedger } from '../util/light-proxy.ts'
import type { LightValue } from '../../src/light/index.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { LyingPeer } from '../util/light-proxy.ts'

describe('cli: get', function () {
  this.timeout(180_000)
  let dir: string
  let node: QmdbNode
  let liar: LyingPeer
  let configPath: string
  let written: { key: Uint8Array, value: LightValue }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmdb-cli-get-'))
    const chain = await pausedLedger(dir, 'cli-get', 20, 4)
    node = chain.node
    configPath = chain.init.configPath
    const v = chain.init
    // an account with a value, verified in this process
    const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    const light = lightClient(client, { validators: v.config.validators, chain: 'cli-get', application: ledgerApplication() })
    for (let i = 0; written === undefined; i++) {
      const value = await light.get(node.libp2p.getMultiaddrs()[0], 'accounts', accountId(i)).catch(() => undefined)
      if (value !== undefined) { written = { key: accountId(i), value } }
    }
    await client.stop()
    liar = await lyingPeer(node.libp2p.getMultiaddrs(), 'cli-get', ['accounts'], flipBalance)
  })

  after(async () => {
    await liar?.stop()
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('prints the verified value and "verified at height H (block <digest>)"', async () => {
    const status = await node.status()
    const r = await cli(['get', '--config', configPath, '--peer', node.libp2p.getMultiaddrs()[0].toString(), '--db', 'accounts', hex(written.key)])
    expect(r.code, r.stderr).to.equal(0)
    if (written.value.absent) { throw new Error('expected a value') }
    expect(r.stdout).to.equal(`${hex(written.value.value)}\nverified at height ${status.appliedHeight} (block ${status.digest})\n`)
  })

  it('exits 1 naming what failed: a tampered value (Proof), an account never written (Unprovable)', async () => {
    const tampered = await cli(['get', '--config', configPath, '--peer', liar.getMultiaddrs()[0].toString(), hex(written.key)])
    expect(tampered.code).to.equal(1)
    expect(tampered.stdout).to.equal('')
    expect(tampered.stderr).to.match(/^libp2p-qmdb: Proof: /)
    const never = await cli(['get', '--config', configPath, '--peer', node.libp2p.getMultiaddrs()[0].toString(), hex(accountId(100_000))])
    expect(never.code).to.equal(1)
    expect(never.stderr).to.match(/^libp2p-qmdb: Unprovable: /)
  })

  it('usage mistakes exit 2: no --config, no key, a key that is not hex, a peer without /p2p', async () => {
    const peer = node.libp2p.getMultiaddrs()[0].toString()
    expect((await cli(['get', '--peer', peer, 'aa'])).code).to.equal(2)
    expect((await cli(['get', '--config', configPath, '--peer', peer])).code).to.equal(2)
    expect((await cli(['get', '--config', configPath, '--peer', peer, 'xyz'])).code).to.equal(2)
    expect((await cli(['get', '--config', configPath, '--peer', '/ip4/127.0.0.1/tcp/1', 'aa'])).code).to.equal(2)
  })
})
