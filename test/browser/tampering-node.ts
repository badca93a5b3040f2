/**
 * A bad node for `npm run test:browser`: it serves the light-client proof
 * protocol on WebSockets like any node, but each answer is an honest node's
 * answer (fetched over TCP) with one field forged, chosen by the key asked
 * for. A light client must reject every one of them, with the error code
 * naming what failed (src/light/errors.ts): that is what the page shows.
 */
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { hex } from '../../src/codec/index.ts'
import { maxFinalizationBytes } from '../../src/light/index.ts'
import { DEFAULT_MAX_LIGHT_RESPONSE, decodeLightAnswer, encodeLightRequest, lightProtocolId } from '../../src/light/protocol.ts'
import { lightServer } from '../../src/light/server.ts'
import { frameStream } from '../../src/net/frames.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../../src/net/protocol.ts'
import type { LightAnswer, LightRequest } from '../../src/light/protocol.ts'
import type { LightServer } from '../../src/light/server.ts'
import type { Libp2p } from '@libp2p/interface'

/** The forgeries, each with the code a client must reject it with. */
export const FORGERIES = {
  /** The account's bytes changed: the operation proof no longer verifies. */
  value: 'Proof',
  /** A root the block does not commit to. */
  root: 'RootCommitment',
  /** One validator signature of the finalization corrupted. */
  certificate: 'Certificate'
} as const

export type Forgery = keyof typeof FORGERIES

function flipLast (b: Uint8Array): Uint8Array {
  const c = b.slice()
  c[c.length - 1] ^= 1
  return c
}

function forge (a: LightAnswer, forgery: Forgery): LightAnswer {
  if (a.type !== 'answer') { return a }
  if (forgery === 'value') { return { ...a, value: flipLast(a.value) } }
  if (forgery === 'root') { return { ...a, root: flipLast(a.root) } }
  // a finalization ends with its last signature
  return { ...a, finalization: flipLast(a.finalization) }
}

export interface TamperingNodeInit {
  chain: string
  db: string
  validators: number
  maxBlockBytes: number
  /** TCP multiaddr (with `/p2p/`) of the honest node whose answers are forged. */
  honest: string
  /** Which forgery each key (hex) gets; other keys are answered honestly. */
  forgeries: Map<string, Forgery>
}

/** Start the bad node (listening on 127.0.0.1 WebSockets, port 0). */
export async function startTamperingNode (init: TamperingNodeInit): Promise<Libp2p<{ light: LightServer }>> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { light: lightServer({ chain: init.chain, databases: [init.db] }) }
  })
  const protocol = lightProtocolId(DEFAULT_PROTOCOL_PREFIX, init.chain, init.db)
  const honestAnswer = async (request: LightRequest, signal: AbortSignal): Promise<LightAnswer> => {
    const stream = await node.dialProtocol(multiaddr(init.honest), protocol, { signal })
    const frames = frameStream(stream, { maxDataLength: DEFAULT_MAX_LIGHT_RESPONSE })
    await frames.write(encodeLightRequest(request), { signal })
    await stream.close({ signal })
    const body = await frames.read({ signal })
    return decodeLightAnswer(body, { maxBlockBytes: init.maxBlockBytes, maxFinalizationBytes: maxFinalizationBytes(init.validators) })
  }
  node.services.light.attach({
    answer: async (_db, request, signal) => {
      const answer = await honestAnswer(request, signal)
      const forgery = init.forgeries.get(hex(request.key))
      return forgery === undefined ? answer : forge(answer, forgery)
    }
  })
  return node
}
