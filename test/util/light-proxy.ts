/**
 * A lying light-client server for tests: a libp2p node that answers the
 * proof protocol by asking an honest node the same request and passing its
 * answer through `tamper` (one field changed), so a client's rejection can be
 * attributed to exactly that field.
 */
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { decodeLightAnswer, encodeLightRequest, lightProtocolId } from '../../src/light/protocol.ts'
import { lightServer } from '../../src/light/server.ts'
import { frameStream } from '../../src/p2p/frames.ts'
import type { LightAnswer } from '../../src/light/protocol.ts'
import type { LightServer } from '../../src/light/server.ts'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export type LyingPeer = Libp2p<{ light: LightServer }>

export async function lyingPeer (honest: Multiaddr[], chain: string, databases: string[], tamper: (a: LightAnswer, db: string) => LightAnswer): Promise<LyingPeer> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
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
      return tamper(decodeLightAnswer(body, { maxBlockBytes: 4 << 20, maxFinalizationBytes: 1 << 16 }), db)
    }
  })
  return node
}
