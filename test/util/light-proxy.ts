/**
 * Light-client tests against a real node: a lying light-client server (a
 * libp2p node that answers the proof protocol by asking an honest node the
 * same request and passing its answer through `tamper`, one field changed,
 * so a client's rejection can be attributed to exactly that field), and a
 * one-validator ledger chain paused at a settled height.
 */
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { decodeLightAnswer, encodeLightRequest, lightProtocolId } from '../../src/light/protocol.ts'
import { lightServer } from '../../src/light/server.ts'
import { frameStream } from '../../src/net/frames.ts'
import { createNode } from '../../src/node/node.ts'
import { waitUntil } from './common.ts'
import type { InitializedNode } from '../../src/cli/init.ts'
import type { LightAnswer, LightRequest } from '../../src/light/protocol.ts'
import type { LightServer } from '../../src/light/server.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export type LyingPeer = Libp2p<{ light: LightServer }>

/**
 * Start a lying server for `databases` of `chain`: each answer is `honest`'s
 * answer to the same request, passed through `tamper`. Listens on
 * `options.listen` (default TCP on 127.0.0.1, port 0; `/ws` addresses for
 * browser clients).
 */
export async function lyingPeer (honest: Multiaddr[], chain: string, databases: string[], tamper: (a: LightAnswer, db: string, request: LightRequest) => LightAnswer, options: { listen?: string[] } = {}): Promise<LyingPeer> {
  const node = await createLibp2p({
    addresses: { listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { light: lightServer({ chain, databases }) }
  })
  node.services.light.attach({
    answer: async (db, request, signal) => {
      const stream = await node.dialProtocol(honest, lightProtocolId('qmdb', chain, db), { signal })
      const frames = frameStream(stream, { maxDataLength: 4 << 20 })
      await frames.write(encodeLightRequest(request), { signal })
      await stream.close({ signal })
      const body = await frames.read({ signal })
      return tamper(decodeLightAnswer(body, { maxBlockBytes: 4 << 20, maxFinalizationBytes: 1 << 16 }), db, request)
    }
  })
  return node
}

/** The tamper of an honest value: one bit of the balance inside the update operation. */
export function flipBalance (a: LightAnswer): LightAnswer {
  if (a.type !== 'answer') { return a }
  const value = a.value.slice()
  value[40] ^= 0x01
  return { ...a, value }
}

/**
 * A ledger chain of one validator in `dir` (generated transfers over
 * `accounts` accounts), run to `height`, then paused; resolves once its
 * applied height stopped moving, with that height.
 */
export async function pausedLedger (dir: string, chainId: string, accounts: number, height: number): Promise<{ node: QmdbNode, init: InitializedNode, height: number }> {
  const [init] = await initNetwork({ dir, validators: 1, joiners: 0, chainId, host: '127.0.0.1', autoTransfers: 10 })
  const node = await createNode({ ...init.config, application: undefined, consensus: { blockIntervalMs: 20 } }, ledgerApplication({ autoTransfers: 10, accountSpace: accounts }))
  await waitUntil(async () => ((await node.status()).appliedHeight ?? 0) >= height, 60_000, `the validator at height ${height}`)
  await node.pauseConsensus()
  let settled = -1
  await waitUntil(async () => {
    const h = (await node.status()).appliedHeight ?? -1
    const same = h === settled
    settled = h
    return same
  }, 30_000, 'the applied height to settle')
  return { node, init, height: settled }
}
