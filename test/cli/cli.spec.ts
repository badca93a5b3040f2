/**
 * The `libp2p-qmdb` command line, run as a child process from the compiled
 * output: usage errors (exit 2), `init` (keys and configs of a local network),
 * `status` (a node's `/status` as one JSON line) and the end-to-end `demo`.
 */

import { access, mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { Registry } from 'prom-client'
import { progressBar } from '../../src/cli/output.ts'
import { loadConfig } from '../../src/node/config.ts'
import { loadOrCreateKey } from '../../src/node/identity.ts'
import { startMetricsServer } from '../../src/node/metrics-server.ts'
import { cli } from '../util/cli-run.ts'
import type { NodeConfig } from '../../src/node/config.ts'
import type { Run } from '../util/cli-run.ts'

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

/** A TCP port on 127.0.0.1 nothing listens on (bound, then released). */
/** A TCP server that drops every connection at once (the status request fails without an answer). */
async function droppingServer (): Promise<{ port: number, close(): Promise<void> }> {
  const server = createServer(socket => { socket.destroy() })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', () => { resolve() }) })
  const address = server.address()
  if (address === null || typeof address === 'string') { throw new Error('no port') }
  return { port: address.port, close: async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }) }) } }
}

describe('cli: usage', function () {
  this.timeout(60_000)

  it('--help exits 0 and prints the usage on stdout', async () => {
    const r = await cli(['--help'])
    expect(r.code).to.equal(0)
    expect(r.stdout).to.match(/^usage: libp2p-qmdb <command>/)
    for (const command of ['demo', 'init', 'node', 'status']) {
      expect(r.stdout).to.match(new RegExp(`^ {2}${command} `, 'm'))
    }
    expect(r.stderr).to.equal('')
  })

  it('no command prints the usage and exits 0', async () => {
    const r = await cli([])
    expect(r.code).to.equal(0)
    expect(r.stdout).to.match(/^usage: libp2p-qmdb/)
  })

  it('an unknown command exits 2 with a message and the usage on stderr', async () => {
    const r = await cli(['frobnicate'])
    expect(r.code).to.equal(2)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.match(/^libp2p-qmdb: unknown command frobnicate\n/)
    expect(r.stderr).to.include('usage: libp2p-qmdb')
  })

  it('an unknown option exits 2', async () => {
    const r = await cli(['demo', '--validatorz', '4'])
    expect(r.code).to.equal(2)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.match(/^libp2p-qmdb: .*validatorz/)
  })

  it('an extra argument exits 2', async () => {
    const r = await cli(['status', 'http://127.0.0.1:1'])
    expect(r.code).to.equal(2)
    expect(r.stderr).to.match(/^libp2p-qmdb: unexpected argument http:\/\/127\.0\.0\.1:1\n/)
  })

  it('bad demo option values exit 2 before anything starts', async () => {
    const notInt = await cli(['demo', '--validators', 'x'])
    expect(notInt.code).to.equal(2)
    expect(notInt.stdout).to.equal('')
    expect(notInt.stderr).to.match(/^libp2p-qmdb: --validators must be a non-negative integer \(got x\)/)

    const negative = await cli(['demo', '--blocks=-3'])
    expect(negative.code).to.equal(2)
    expect(negative.stdout).to.equal('')
    expect(negative.stderr).to.match(/^libp2p-qmdb: --blocks must be a non-negative integer \(got -3\)/)

    const zero = await cli(['demo', '--validators', '0'])
    expect(zero.code).to.equal(2)
    expect(zero.stderr).to.match(/^libp2p-qmdb: --validators must be in \[1, 64\] \(got 0\)/)

    const fraction = await cli(['demo', '--timeout', '1.5'])
    expect(fraction.code).to.equal(2)
    expect(fraction.stderr).to.include('--timeout')
  })

  it('init without --dir exits 2; init with a bad value writes nothing', async () => {
    const r = await cli(['init'])
    expect(r.code).to.equal(2)
    expect(r.stdout).to.equal('')
    expect(r.stderr).to.match(/^libp2p-qmdb: --dir is required\n/)

    const parent = await mkdtemp(join(tmpdir(), 'libp2p-qmdb-cli-'))
    try {
      const dir = join(parent, 'net')
      const bad = await cli(['init', '--dir', dir, '--base-port', '70000'])
      expect(bad.code).to.equal(2)
      expect(bad.stderr).to.match(/^libp2p-qmdb: --base-port must be in \[1, 65000\] \(got 70000\)/)
      expect(await exists(dir)).to.be.false()
    } finally {
      await rm(parent, { recursive: true, force: true })
    }
  })

  it('node without --config exits 2', async () => {
    const r = await cli(['node'])
    expect(r.code).to.equal(2)
    expect(r.stderr).to.match(/^libp2p-qmdb: --config is required\n/)
  })

  it('node with a missing config file exits 1 with one line naming the file', async () => {
    const path = join(tmpdir(), `libp2p-qmdb-no-such-config-${process.pid}.json`)
    const r = await cli(['node', '--config', path])
    expect(r.code).to.equal(1)
    expect(r.stdout).to.equal('')
    expect(r.stderr.startsWith(`libp2p-qmdb: cannot read ${path}: ENOENT`)).to.be.true()
    expect(r.stderr.trimEnd().split('\n')).to.have.lengthOf(1)
  })
})

describe('cli: init', function () {
  this.timeout(60_000)
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'libp2p-qmdb-cli-init-'))
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  interface Line { name: string, peerId: string, config: string, validator: boolean }

  function lines (r: Run): Line[] {
    expect(r.code, r.stderr).to.equal(0)
    expect(r.stdout.endsWith('\n')).to.be.true()
    return r.stdout.trimEnd().split('\n').map(l => JSON.parse(l))
  }

  it('writes keys and configs of 3 validators and 1 joiner', async () => {
    const r = await cli(['init', '--dir', dir, '--validators', '3', '--joiners', '1', '--base-port', '41000'])
    const out = lines(r)
    expect(out).to.have.lengthOf(4)
    expect(out.map(l => l.name)).to.deep.equal(['node-0', 'node-1', 'node-2', 'node-3'])
    expect(out.map(l => l.validator)).to.deep.equal([true, true, true, false])
    expect(out.map(l => l.config)).to.deep.equal([0, 1, 2, 3].map(i => join(dir, `node-${i}.json`)))
    const ids = out.map(l => l.peerId)
    for (const id of ids) { expect(id).to.match(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/) }
    expect(new Set(ids).size).to.equal(4)
    expect((await readdir(dir)).sort()).to.deep.equal(['node-0', 'node-0.json', 'node-1', 'node-1.json', 'node-2', 'node-2.json', 'node-3', 'node-3.json'])

    const validators = ids.slice(0, 3)
    const configs: NodeConfig[] = []
    for (let i = 0; i < 4; i++) {
      const c = await loadConfig(join(dir, `node-${i}.json`))
      configs.push(c)
      // the printed peer id is the one of the key in the node's data directory
      const key = await loadOrCreateKey(join(dir, `node-${i}`, 'peer.key'))
      expect(peerIdFromPrivateKey(key).toString()).to.equal(ids[i])

      expect(c.dataDir).to.equal(join(dir, `node-${i}`))
      expect(c.chainId).to.equal('qmdb-local')
      expect(c.validators).to.deep.equal(validators)
      expect(c.listen).to.deep.equal([`/ip4/127.0.0.1/tcp/${41000 + i}`])
      expect(c.application).to.deep.equal({ autoTransfers: 100 })
      expect(c.metricsPort).to.be.undefined()
      expect(c.stateSync).to.equal(i === 3 ? true : undefined)

      const bootstrap = c.bootstrap ?? []
      for (const addr of bootstrap) {
        const v = validators.findIndex(id => addr.endsWith(`/p2p/${id}`))
        expect(v, `${addr} does not end with /p2p/<validator id>`).to.be.at.least(0)
        expect(addr).to.equal(`/ip4/127.0.0.1/tcp/${41000 + v}/p2p/${validators[v]}`)
        expect(addr.endsWith(`/p2p/${ids[i]}`), `node-${i} bootstraps to itself`).to.be.false()
      }
      // every validator other than itself, each once
      const expected = validators.filter(id => id !== ids[i])
      expect(bootstrap).to.have.lengthOf(expected.length)
      expect(bootstrap.map(a => a.slice(a.lastIndexOf('/') + 1)).sort()).to.deep.equal([...expected].sort())
    }
    expect(configs[3].bootstrap).to.have.lengthOf(3)
  })

  it('keeps the peer ids when run again, applying the new options', async () => {
    const first = lines(await cli(['init', '--dir', dir, '--validators', '3', '--joiners', '1', '--base-port', '41000']))
    const second = lines(await cli(['init', '--dir', dir, '--validators', '3', '--joiners', '1', '--base-port', '41100', '--metrics-base-port', '42000', '--ws-base-port', '43000', '--chain-id', 'other-chain', '--transfers', '7']))
    expect(second.map(l => l.peerId)).to.deep.equal(first.map(l => l.peerId))
    for (let i = 0; i < 4; i++) {
      const c = await loadConfig(join(dir, `node-${i}.json`))
      expect(c.validators).to.deep.equal(first.slice(0, 3).map(l => l.peerId))
      expect(c.metricsPort).to.equal(42000 + i)
      expect(c.chainId).to.equal('other-chain')
      expect(c.listen).to.deep.equal([`/ip4/127.0.0.1/tcp/${41100 + i}`, `/ip4/127.0.0.1/tcp/${43000 + i}/ws`])
      expect(c.application).to.deep.equal({ autoTransfers: 7 })
    }
  })
})

describe('cli: status', function () {
  this.timeout(30_000)

  it('prints the /status JSON of a metrics server', async () => {
    const server = await startMetricsServer(new Registry(), 0, async () => ({ x: 1 }))
    try {
      expect(server.port).to.be.greaterThan(0)
      const r = await cli(['status', '--url', `http://127.0.0.1:${server.port}`])
      expect(r.code, r.stderr).to.equal(0)
      expect(r.stdout).to.equal('{"x":1}\n')
      // a trailing slash or an explicit /status mean the same
      const slash = await cli(['status', '--url', `http://127.0.0.1:${server.port}/status/`])
      expect(slash.code, slash.stderr).to.equal(0)
      expect(JSON.parse(slash.stdout)).to.deep.equal({ x: 1 })
    } finally {
      await server.close()
    }
  })

  it('exits 1 with one line on stderr when the connection fails', async () => {
    const server = await droppingServer()
    try {
      const r = await cli(['status', '--url', `http://127.0.0.1:${server.port}`])
      expect(r.code, JSON.stringify(r)).to.equal(1)
      expect(r.stdout).to.equal('')
      expect(r.stderr).to.match(/^libp2p-qmdb: .+\n$/)
      expect(r.stderr).to.not.include('usage:')
    } finally {
      await server.close()
    }
  })

  it('exits 1 when the endpoint answers an HTTP error', async () => {
    const server = await startMetricsServer(new Registry(), 0, async () => { throw new Error('broken') })
    try {
      const r = await cli(['status', '--url', `http://127.0.0.1:${server.port}`])
      expect(r.code).to.equal(1)
      expect(r.stdout).to.equal('')
      expect(r.stderr).to.equal(`libp2p-qmdb: http://127.0.0.1:${server.port}/status answered HTTP 500\n`)
    } finally {
      await server.close()
    }
  })
})

describe('cli: demo (end to end)', function () {
  this.timeout(120_000)

  it('validators finalize, a joiner state-syncs, and all 5 nodes agree', async () => {
    const r = await cli(['demo', '--validators', '4', '--blocks', '8', '--follow', '3', '--transfers', '20', '--json', '--timeout', '100'], 115_000)
    expect(r.code, r.stderr).to.equal(0)
    const out = r.stdout.trimEnd().split('\n')
    expect(out, 'stdout must be one JSON line').to.have.lengthOf(1)
    const report = JSON.parse(out[0])
    expect(report.ok).to.equal(true)
    expect(report.nodes).to.have.lengthOf(5)

    const roles = report.nodes.map((n: { role: string }) => n.role)
    expect(roles).to.deep.equal(['validator', 'validator', 'validator', 'validator', 'joiner'])
    expect(new Set(report.nodes.map((n: { peerId: string }) => n.peerId)).size).to.equal(5)

    const [first] = report.nodes
    expect(first.height).to.be.a('number')
    expect(first.height).to.be.at.least(8)
    expect(report.height).to.equal(first.height)
    expect(first.roots.accounts).to.match(/^[0-9a-f]{64}$/)
    expect(first.roots.receipts).to.match(/^[0-9a-f]{64}$/)
    expect(first.roots.accounts).to.not.equal(first.roots.receipts)
    for (const n of report.nodes) {
      expect(n.height, n.name).to.equal(first.height)
      expect(n.roots, n.name).to.deep.equal(first.roots)
    }

    expect(report.anchor).to.be.a('number')
    expect(report.anchor).to.be.at.least(1)
    // the joiner followed 3 blocks past its hand-off (at or above the anchor)
    expect(first.height).to.be.at.least(report.anchor + 3)
    expect(report.elapsedMs).to.be.a('number').and.to.be.greaterThan(0)
  })
})

describe('cli: progress bar', () => {
  it('fills in proportion to the work done, with the percentage and the counts', () => {
    const hashes = (s: string): number => (s.match(/#/g) ?? []).length
    expect(hashes(progressBar(0, 1232))).to.equal(0)
    expect(progressBar(0, 1232)).to.include('  0%').and.include('0/1,232')
    expect(hashes(progressBar(616, 1232))).to.equal(12)
    expect(progressBar(616, 1232)).to.include(' 50%')
    expect(hashes(progressBar(1232, 1232))).to.equal(24)
    expect(progressBar(1232, 1232)).to.include('100%')
    // nothing to do counts as done; overshoot is clamped
    expect(progressBar(0, 0)).to.include('100%')
    expect(hashes(progressBar(20, 10, 10))).to.equal(10)
  })
})
