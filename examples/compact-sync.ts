/**
 * Example: compact sync. A compact database keeps only its tip (the last
 * commit, its proof and the pinned nodes before it), so it is served by the
 * compact resolver through a `CompactSource` and synced by fetching that tip.
 * One `DatabaseRegistry` is shared by both resolvers: `serve()` picks the
 * right source for each database and serves it on every resolver that can
 * answer it. Prints both roots; exits 0 when they match.
 */
/* eslint-disable no-console -- a program that reports what it did */
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { AnyDb, CompactKeylessDb, DatabaseRegistry, compactResolver, compactSync, installPolyfills, standardResolver, syncDatabase } from 'libp2p-qmdb'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import type { QmdbResolver } from 'libp2p-qmdb'

installPolyfills()

async function start (registry: DatabaseRegistry): Promise<Libp2p<{ identify: Identify, standard: QmdbResolver, compact: QmdbResolver }>> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      standard: standardResolver({ chain: 'example', databases: registry }),
      compact: compactResolver({ chain: 'example', databases: registry })
    }
  })
}

const serving = new DatabaseRegistry(['accounts', 'receipts'])
const syncing = new DatabaseRegistry(['accounts', 'receipts'])
const server = await start(serving)
const client = await start(syncing)
try {
  // a compact keyless database (values of 32 bytes by default) and a full `any` database
  const receipts = await CompactKeylessDb.open()
  const batch = receipts.newBatch()
  for (let i = 1; i <= 100; i++) { batch.append(new Uint8Array(32).fill(i)) }
  await receipts.apply(await batch.merkleize())
  await receipts.commit()
  serving.serve('receipts', receipts) // a CompactSource, answered by the compact resolver only
  serving.serve('accounts', await AnyDb.open()) // a LocalSource, answered by both resolvers

  // the syncing node opens an empty compact database and takes the tip
  const local = await CompactKeylessDb.open()
  await client.dial(server.getMultiaddrs())
  const synced = await syncDatabase({
    kind: compactSync(local),
    target: receipts.syncTarget(), // a CompactTarget { root, size } is taken as it is
    source: client.services.compact.source('receipts'),
    signal: AbortSignal.timeout(30_000)
  })

  console.log('served root', Buffer.from(receipts.root).toString('hex'), 'size', receipts.size)
  console.log('synced root', Buffer.from(synced.root).toString('hex'), 'size', synced.size)
  console.log('the standard resolver does not serve the compact database:', !server.services.standard.isAttached('receipts'))
  if (Buffer.compare(receipts.root, synced.root) !== 0 || synced.size !== receipts.size) { process.exitCode = 1 }
} finally {
  await client.stop()
  await server.stop()
}
