/**
 * Example: serve an `any` database from one plain libp2p node and state-sync
 * it into another. Run with `node dist/examples/serve-and-sync.js` after
 * `npm run build`; it prints both roots and exits 0 when they match.
 * The README's library section quotes this file (test/examples/examples.spec.ts
 * checks that every quoted block is still in it).
 */
/* eslint-disable no-console -- a program that reports what it did */
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { AnyDb, LocalSource, anySync, installPolyfills, standardResolver, syncDatabase } from 'libp2p-qmdb'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import type { QmdbResolver } from 'libp2p-qmdb'

installPolyfills() // Node 20 only: libp2p calls Promise.withResolvers (a no-op on Node 22+)

/** A plain libp2p node with a standard resolver for the `accounts` database of chain `example`. */
async function createNode (): Promise<Libp2p<{ identify: Identify, qmdb: QmdbResolver }>> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(), // lets a source find the peers that serve a database
      qmdb: standardResolver({ chain: 'example', databases: ['accounts'] })
    }
  })
}

// the default AnyDb stores 32-byte keys and 32-byte values (AnyDb.open({ key, value }) for others)
function bytes32 (n: number): Uint8Array {
  const b = new Uint8Array(32)
  new DataView(b.buffer).setUint32(28, n)
  return b
}

const server = await createNode()
const client = await createNode()
try {
  // serving side: 10k accounts in one batch, then serve them
  const accounts = await AnyDb.open() // in memory; pass { datastore, prefix } to persist
  const batch = accounts.newBatch()
  for (let i = 0; i < 10_000; i++) { batch.update(bytes32(i), bytes32(i * 7)) }
  await accounts.apply(await batch.merkleize())
  await accounts.commit()
  await server.services.qmdb.attach('accounts', new LocalSource(accounts))

  // syncing side: the target (root and range) comes from something trusted, e.g. a finalized block
  const target = accounts.syncTarget()
  await client.dial(server.getMultiaddrs())
  const source = client.services.qmdb.source('accounts') // peers: every connected peer that serves it
  source.addEventListener('stall', (e) => { console.error('sync stalled:', e.detail.message) })
  const synced = await syncDatabase({
    kind: anySync(), // the kind carries the codec: same key/value options as the served database
    target,
    source,
    signal: AbortSignal.timeout(30_000)
  })

  console.log('served root', Buffer.from(accounts.opsRoot).toString('hex'))
  console.log('synced root', Buffer.from(synced.opsRoot).toString('hex'))
  console.log('value of key 42 is 42 * 7:', new DataView((await synced.get(bytes32(42)))!.buffer).getUint32(28) === 294)
  if (Buffer.compare(accounts.opsRoot, synced.opsRoot) !== 0) { process.exitCode = 1 }
} finally {
  await client.stop()
  await server.stop()
}
