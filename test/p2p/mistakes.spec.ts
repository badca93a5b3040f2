import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { standardResolver } from '../../src/p2p/index.ts'
import { DatabaseRegistry } from '../../src/p2p/registry.ts'
import { AnyDb, CompactKeylessDb, KeylessDb } from '../../src/qmdb/index.ts'
import { fixedField } from '../../src/qmdb/ops.ts'
import { CompactSource } from '../../src/sync/compact-source.ts'
import { syncDatabase } from '../../src/sync/engine.ts'
import { ConfigurationError, SyncError } from '../../src/sync/errors.ts'
import { anySync } from '../../src/sync/kinds.ts'
import { LocalSource } from '../../src/sync/local-source.ts'
import { ServeError } from '../../src/sync/source.ts'
import { createTestNode, stopAll, tcpBase } from '../util/p2p-nodes.ts'
import type { StallInfo } from '../../src/p2p/index.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

/**
 * Each local mistake a library user can make, made on purpose: it must fail
 * within 5 s with a typed error whose message names the fix, and must not
 * blame (block) the honest peer it talked to.
 */

const FAST = 5000

function key (i: number): Uint8Array {
  const k = new Uint8Array(32)
  new DataView(k.buffer).setUint32(28, i)
  return k
}

/** An `any` database of `n` keys with 32-byte values, committed in batches of 500. */
async function anyDb (n: number): Promise<AnyDb> {
  const db = await AnyDb.open()
  for (let i = 0; i < n; i += 500) {
    const b = db.newBatch()
    for (let j = i; j < Math.min(n, i + 500); j++) { b.update(key(j), key(j + 1_000_000)) }
    await db.apply(await b.merkleize())
  }
  await db.commit()
  return db
}

/** Resolve with `p`'s rejection, failing if it settles otherwise or takes more than FAST ms. */
async function rejection (p: Promise<unknown>): Promise<Error> {
  const started = Date.now()
  const err = await p.then(() => { throw new Error('expected a rejection') }, (e: Error) => e)
  expect(Date.now() - started).to.be.below(FAST)
  return err
}

describe('p2p: local mistakes fail fast, locally, with the fix in the message', function () {
  this.timeout(30_000)
  let server: TestNode
  let client: TestNode
  let db: AnyDb

  before(async () => {
    db = await anyDb(3000)
    server = await createTestNode({ standard: { databases: ['accounts', 'empty'], maxServeOps: 1024 } })
    client = await createTestNode({ standard: { databases: ['accounts', 'empty', 'nowhere'], stallInterval: 200, stallTimeout: 1500 } })
    await server.services.standard.attach('accounts', new LocalSource(db))
    await client.dial(server.getMultiaddrs()[0])
  })

  after(async () => { await stopAll([client, server]) })

  it('an undeclared (misspelled) database name throws UnknownDatabase at once', () => {
    const err = (() => { try { client.services.standard.source('acounts'); return undefined } catch (e) { return e as Error } })()
    expect(err).to.be.instanceOf(ConfigurationError)
    expect((err as ConfigurationError).code).to.equal('UnknownDatabase')
    expect(err?.message).to.include('databases').and.include('accounts')
  })

  it('a source type that cannot serve the database throws WrongSource, naming the right one', async () => {
    const compact = await CompactKeylessDb.open()
    const full = await KeylessDb.open()
    for (const [make, fix] of [
      [() => new LocalSource(compact as never), 'CompactSource'],
      [() => new CompactSource(full as never), 'LocalSource'],
      [() => { new LocalSource().attach(compact as never) }, 'CompactSource']
    ] as const) {
      const err = (() => { try { make(); return undefined } catch (e) { return e as Error } })()
      expect(err).to.be.instanceOf(ConfigurationError)
      expect((err as ConfigurationError).code).to.equal('WrongSource')
      expect(err?.message).to.include(fix)
    }
    await expect(client.services.standard.attach('accounts', new CompactSource(compact))).to.eventually.be.rejectedWith(ConfigurationError, /compact resolver/)
  })

  it('a registry serves a compact database on the compact resolver only', async () => {
    const registry = new DatabaseRegistry(['receipts'])
    const compact = await CompactKeylessDb.open()
    await compact.apply(await compact.newBatch().append(key(1)).merkleize())
    const node = await createTestNode({ standard: { databases: registry }, compact: { databases: registry } })
    try {
      expect(registry.serve('receipts', compact)).to.be.instanceOf(CompactSource)
      expect(node.services.compact.isAttached('receipts')).to.equal(true)
      expect(node.services.standard.isAttached('receipts')).to.equal(false)
      // a name declared later is registered on both resolvers
      registry.serve('accounts', db)
      expect(node.services.standard.isAttached('accounts')).to.equal(true)
      expect(node.services.compact.isAttached('accounts')).to.equal(true)
    } finally {
      await stopAll([node])
    }
  })

  it("peers: 'connected' without identify throws MissingIdentify; a peer list needs no identify", async () => {
    const bare = await createLibp2p({
      ...tcpBase(),
      services: { standard: standardResolver({ databases: ['accounts'] }) }
    })
    try {
      const err = (() => { try { bare.services.standard.source('accounts'); return undefined } catch (e) { return e as Error } })()
      expect(err).to.be.instanceOf(ConfigurationError)
      expect((err as ConfigurationError).code).to.equal('MissingIdentify')
      expect(err?.message).to.include('identify()').and.include('peers: [')
      await bare.dial(server.getMultiaddrs()[0])
      const synced = await syncDatabase({ kind: anySync(), target: db.syncTarget(), source: bare.services.standard.source('accounts', { peers: [server.peerId] }), signal: AbortSignal.timeout(20_000) })
      expect(synced.opsRoot).to.deep.equal(db.opsRoot)
    } finally {
      await stopAll([bare])
    }
  })

  it('serving with no codec throws MissingCodec at once', async () => {
    const source = client.services.standard.source('accounts', { peers: [server.peerId] })
    const err = await rejection(source.serve({ type: 'boundary', size: db.size, start: 1 }, {}))
    expect(err).to.be.instanceOf(ConfigurationError)
    expect((err as ConfigurationError).code).to.equal('MissingCodec')
    expect(err.message).to.include('syncDatabase')
    source.close()
  })

  it('a codec that cannot be right fails with CodecMismatch and blames no one; the same peer then serves the right kind', async () => {
    // the server's values are 32 bytes; this kind says 8
    const wrong = anySync({ value: fixedField(8) })
    const err = await rejection(syncDatabase({ kind: wrong, target: db.syncTarget(), source: client.services.standard.source('accounts'), signal: AbortSignal.timeout(20_000) }))
    expect(err).to.be.instanceOf(ConfigurationError)
    expect((err as ConfigurationError).code).to.equal('CodecMismatch')
    expect(err.message).to.include('key, value, encoding')
    expect(client.services.standard.isBlocked(server.peerId)).to.equal(false)
    expect(client.services.standard.blockedPeers().size).to.equal(0)
    const synced = await syncDatabase({ kind: anySync(), target: db.syncTarget(), source: client.services.standard.source('accounts'), signal: AbortSignal.timeout(20_000) })
    expect(synced.opsRoot).to.deep.equal(db.opsRoot)
    expect(client.services.standard.blockedPeers().size).to.equal(0)
  })

  it('a batch above the server\'s maxServeOps is served capped: the sync completes', async () => {
    // 2000 per request against a server limit of 1024 (the numbers)
    const synced = await syncDatabase({ kind: anySync(), target: db.syncTarget(), source: client.services.standard.source('accounts'), fetchBatchSize: 2000, signal: AbortSignal.timeout(20_000) })
    expect(synced.opsRoot).to.deep.equal(db.opsRoot)
    expect(await synced.get(key(2999))).to.deep.equal(key(1_002_999))
  })

  it('no peer speaking the protocol: stall events say so, then the sync fails with Stalled', async () => {
    const source = client.services.standard.source('nowhere')
    const stalls: StallInfo[] = []
    source.addEventListener('stall', (e) => { stalls.push(e.detail) })
    const err = await rejection(syncDatabase({ kind: anySync(), target: db.syncTarget(), source }))
    expect(err).to.be.instanceOf(SyncError)
    expect((err as SyncError).cause).to.be.instanceOf(ServeError)
    expect(((err as SyncError).cause as ServeError).code).to.equal('Stalled')
    expect(err.message).to.include('no peer to ask speaks').and.include('/nowhere/sync/standard/1.0.0')
    expect(stalls.length).to.be.at.least(1)
    expect(stalls.every(s => s.reason === 'no-peers' && s.database === 'nowhere')).to.equal(true)
  })

  it('every peer answering no-data: the stall says no-data, and the honest peer is not blocked', async () => {
    const source = client.services.standard.source('empty')
    const stalls: StallInfo[] = []
    source.addEventListener('stall', (e) => { stalls.push(e.detail) })
    const err = await rejection(syncDatabase({ kind: anySync(), target: db.syncTarget(), source }))
    expect(err.message).to.include('no-data')
    expect(stalls.some(s => s.reason === 'no-data')).to.equal(true)
    expect(client.services.standard.isBlocked(server.peerId)).to.equal(false)
  })
})
