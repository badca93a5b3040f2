/**
 * A node listens on WebSockets besides TCP (what a browser light client
 * dials, README "Browser light client"): `init` writes a `/ws` listen address,
 * the node binds it on port 0 and reports the real one, and a peer that has
 * only the WebSockets transport connects (Noise, Yamux) and is answered.
 */
import '../util/polyfill.ts'
import '../util/websocket.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'aegir/chai'
import { createLibp2p } from 'libp2p'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import type { QmdbNode } from '../../src/node/node.ts'

describe('node: WebSockets listening', function () {
  this.timeout(60_000)
  let dir: string

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-ws-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('listens on a /ws address on port 0 next to TCP; a WebSockets-only peer connects and pings it', async () => {
    const [n] = await initNetwork({ dir, validators: 1, joiners: 0, chainId: 'qmdb-ws', host: '127.0.0.1', autoTransfers: 0, wsBasePort: 0 })
    expect(n.config.listen).to.deep.equal(['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
    let node: QmdbNode | undefined
    const client = await createLibp2p({
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { ping: ping() }
    })
    try {
      node = await createNode(n.config, ledgerApplication())
      const addresses = (await node.status()).addresses
      const ws = addresses.filter(a => a.includes('/ws/'))
      const tcp = addresses.filter(a => !a.includes('/ws/'))
      expect(ws, addresses.join(' ')).to.have.lengthOf(1)
      expect(tcp, addresses.join(' ')).to.have.lengthOf(1)
      // both bound to real (distinct) ports, each advertised with the node's peer id
      const port = (a: string): number => Number(multiaddr(a).getComponents().find(c => c.name === 'tcp')?.value)
      expect(port(ws[0])).to.be.greaterThan(0)
      expect(port(tcp[0])).to.be.greaterThan(0)
      expect(port(ws[0])).to.not.equal(port(tcp[0]))
      expect(ws[0]).to.equal(`/ip4/127.0.0.1/tcp/${port(ws[0])}/ws/p2p/${node.peerId}`)

      const rtt = await client.services.ping.ping(multiaddr(ws[0]), { signal: AbortSignal.timeout(20_000) })
      expect(rtt).to.be.a('number')
      const conns = client.getConnections()
      expect(conns).to.have.lengthOf(1)
      expect(conns[0].remotePeer.toString()).to.equal(node.peerId)
      expect(conns[0].remoteAddr.toString()).to.include('/ws')
    } finally {
      await client.stop()
      await node?.stop()
    }
  })
})
