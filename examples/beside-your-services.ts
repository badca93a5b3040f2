/**
 * Example: mount the QMDB resolvers on a libp2p node that already runs the
 * application's own services (here ping and an echo protocol), then sync a
 * `current` database from a peer named explicitly. The resolvers register
 * only `/qmdb/<chain>/<db>/sync/<kind>/1.0.0` protocols and touch nothing
 * else of the node. Set `DEBUG=libp2p:qmdb:*` to see the resolvers' logs.
 */
/* eslint-disable no-console -- a program that reports what it did */
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { CurrentDb, LocalSource, compactResolver, currentSync, installPolyfills, standardResolver, syncDatabase } from 'libp2p-qmdb'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, Stream } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { QmdbResolver } from 'libp2p-qmdb'

installPolyfills()

const ECHO = '/myapp/echo/1.0.0'

/** The application's node: its own services first, the resolvers beside them. */
async function appNode (): Promise<Libp2p<{ identify: Identify, ping: Ping, standard: QmdbResolver, compact: QmdbResolver }>> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      standard: standardResolver({ chain: 'myapp', databases: ['state'] }),
      compact: compactResolver({ chain: 'myapp', databases: ['state'] })
    }
  })
  await node.handle(ECHO, async (stream: Stream) => {
    for await (const chunk of stream) { stream.send(chunk) }
    await stream.close()
  })
  return node
}

const a = await appNode()
const b = await appNode()
try {
  console.log('protocols:', a.getProtocols().sort().join(' '))

  // the application's own services keep working
  const rtt = await b.services.ping.ping(a.getMultiaddrs())
  console.log('ping ok:', rtt >= 0)
  const echo = await b.dialProtocol(a.peerId, ECHO)
  echo.send(new TextEncoder().encode('hello'))
  await echo.close()
  const answer: Uint8Array[] = []
  for await (const chunk of echo) { answer.push(chunk.subarray()) }
  console.log('echo:', new TextDecoder().decode(Buffer.concat(answer)))

  // `a` serves its `current` database on both resolvers (a full database answers the compact protocol too)
  const state = await CurrentDb.open()
  const batch = state.newBatch()
  for (let i = 0; i < 1000; i++) { batch.update(new Uint8Array(32).fill(i % 256).fill(i >> 8, 0, 1), new Uint8Array(32).fill(1)) }
  await state.apply(await batch.merkleize())
  await state.commit()
  const source = new LocalSource(state)
  await a.services.standard.attach('state', source)
  await a.services.compact.attach('state', source)

  // `b` asks `a` by peer id (a fixed peer list needs no identify)
  const synced = await syncDatabase({
    kind: currentSync(), // chunkBytes must match the served database's (default 32)
    target: state.syncTarget(), // a current database's sync target is its ops root
    source: b.services.standard.source('state', { peers: [a.peerId] }),
    signal: AbortSignal.timeout(30_000)
  })
  console.log('canonical roots match:', Buffer.compare(state.root, synced.root) === 0)
  if (Buffer.compare(state.root, synced.root) !== 0) { process.exitCode = 1 }
} finally {
  await b.stop()
  await a.stop()
}
