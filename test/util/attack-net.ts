/**
 * A small in-process network of ledger nodes (`createNode`, full mesh over
 * TCP on 127.0.0.1, ports picked by the system) and the outside peers that
 * attack or watch it: plain libp2p nodes with gossipsub, no topic validators
 * and no scoring, so they relay and record whatever reaches them.
 */
import '../../src/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export type Outsider = Libp2p<{ identify: Identify, pubsub: GossipSub }>

export interface TestNetwork {
  dir: string
  chainId: string
  nodes: QmdbNode[]
  stop(): Promise<void>
}

export interface TestNetworkOptions {
  validators: number
  chainId: string
  autoTransfers?: number
  blockIntervalMs?: number
}

export async function startNetwork (opts: TestNetworkOptions): Promise<TestNetwork> {
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-attack-'))
  const init = await initNetwork({ dir, validators: opts.validators, joiners: 0, chainId: opts.chainId, host: '127.0.0.1', autoTransfers: opts.autoTransfers ?? 5 })
  const nodes: QmdbNode[] = []
  const stop = async (): Promise<void> => {
    for (const n of nodes) { await n.stop().catch(() => {}) }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const n of init) {
      nodes.push(await createNode({ ...n.config, consensus: { blockIntervalMs: opts.blockIntervalMs ?? 100 } }, ledgerApplication({ autoTransfers: opts.autoTransfers ?? 5 })))
    }
    const addrs = nodes.map(n => n.libp2p.getMultiaddrs()[0].toString())
    for (let i = 0; i < nodes.length; i++) { await nodes[i].addPeers(addrs.filter((_, j) => j !== i)) }
  } catch (err) {
    await stop()
    throw err
  }
  return { dir, chainId: opts.chainId, nodes, stop }
}

/** A plain gossipsub peer subscribed to `topics` (validates and scores nothing). */
export async function createOutsider (topics: string[], privateKey?: PrivateKey): Promise<Outsider> {
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ globalSignaturePolicy: StrictNoSign, allowPublishToZeroTopicPeers: true, heartbeatInterval: 200 })
    }
  })
  for (const t of topics) { node.services.pubsub.subscribe(t) }
  return node
}

/** Every message data `outsider` receives on `topics`, as hex. */
export function record (outsider: Outsider): Set<string> {
  const seen = new Set<string>()
  outsider.services.pubsub.addEventListener('message', evt => { seen.add(Buffer.from(evt.detail.data).toString('hex')) })
  return seen
}
