/**
 * A node as an operator sees it: a fatal application failure stops the
 * process with exit code 1 and a message naming the block and the phase;
 * `/status` tells a state-sync client everything it needs (protocol id,
 * target, how far back the node serves), enough to sync a database from a
 * plain libp2p node without decoding any block.
 */
import '../util/polyfill.ts'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { expect } from 'aegir/chai'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import { syncDatabase } from '../../src/sync/engine.ts'
import { anySync } from '../../src/sync/kinds.ts'
import { fromHex } from '../util/bytes.ts'
import { createTestNode, stopAll, waitUntil } from '../util/p2p-nodes.ts'
import type { QmdbNode } from '../../src/node/node.ts'

const FAULTY = fileURLToPath(new URL('../util/faulty-node.js', import.meta.url))

describe('node: lifecycle and status', function () {
  this.timeout(120_000)
  let dir: string

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-node-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('an application that throws stops the node: a fatal line naming the phase and block, one stderr line, exit code 1', async () => {
    const [n] = await initNetwork({ dir, validators: 1, joiners: 0, chainId: 'qmdb-fatal', host: '127.0.0.1', autoTransfers: 5 })
    const child = spawn(process.execPath, [FAULTY, '--config', n.configPath, '--fail-at', '4'], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const events: Array<Record<string, unknown>> = []
    createInterface({ input: child.stdout }).on('line', line => { events.push(JSON.parse(line)) })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 90_000)
    const code = await new Promise<number | null>(resolve => { child.once('close', c => { resolve(c) }) })
    clearTimeout(timer)
    expect(code, stderr).to.equal(1)
    const fatal = events.find(e => e.event === 'fatal')
    expect(fatal, JSON.stringify(events)).to.not.equal(undefined)
    expect(fatal?.code).to.equal('ApplicationFailed')
    expect(fatal?.phase).to.equal('propose')
    expect(fatal?.digest).to.match(/^[0-9a-f]{64}$/)
    expect(fatal?.height).to.be.a('number')
    expect(String(fatal?.message)).to.include('injected failure at view 4')
    // stopped cleanly before exiting
    expect(events.map(e => e.event)).to.include('stopped')
    expect(stderr).to.match(/^libp2p-qmdb: the node stopped on a fatal error while processing: .*injected failure/m)
  })

  it('/status gives each database its protocol, sync target and oldest servable size; a client syncs from that alone', async () => {
    const [n] = await initNetwork({ dir, validators: 1, joiners: 0, chainId: 'qmdb-status', host: '127.0.0.1', autoTransfers: 20 })
    let node: QmdbNode | undefined
    const client = await createTestNode({ standard: { chain: 'qmdb-status', databases: ['accounts'] } })
    try {
      node = await createNode({ ...n.config, consensus: { blockIntervalMs: 20 } }, ledgerApplication({ autoTransfers: 20 }))
      const running = node
      await waitUntil(async () => ((await running.status()).appliedHeight ?? 0) >= 5, 60_000, 'five blocks')
      await node.pauseConsensus()
      const status = await node.status()
      const accounts = status.databases?.accounts
      const receipts = status.databases?.receipts
      expect(accounts?.kind).to.equal('current')
      expect(accounts?.protocol).to.equal('/qmdb/qmdb-status/accounts/sync/standard/1.0.0')
      expect(receipts?.kind).to.equal('keyless-compact')
      expect(receipts?.protocol).to.equal('/qmdb/qmdb-status/receipts/sync/compact/1.0.0')
      if (accounts === undefined || !('start' in accounts.target)) { throw new Error('no accounts range') }
      expect(accounts.target.root).to.equal(status.roots?.accounts)
      expect(accounts.target.end).to.be.greaterThan(accounts.target.start)
      // nothing pruned: the whole history is servable, back to the genesis commit
      expect(accounts.oldestServableSize).to.equal(1)
      if (receipts === undefined || !('size' in receipts.target)) { throw new Error('no receipts size') }
      expect(receipts.target.root).to.equal(status.roots?.receipts)
      expect(receipts.oldestServableSize).to.equal(receipts.target.size)

      // a plain libp2p node syncs `accounts` knowing only the status JSON
      await client.dial(node.libp2p.getMultiaddrs()[0])
      const source = client.services.standard.source('accounts', { peers: [node.libp2p.peerId] }) // the codec comes from the kind
      const target = { root: fromHex(accounts.target.root), range: { start: accounts.target.start, end: accounts.target.end } }
      const synced = await syncDatabase({ kind: anySync(), target, source, signal: AbortSignal.timeout(60_000) })
      expect(Buffer.from(synced.opsRoot).toString('hex')).to.equal(accounts.target.root)
    } finally {
      await node?.stop()
      await stopAll([client])
    }
  })
})
