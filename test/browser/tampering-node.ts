/**
 * A bad node for `npm run test:browser`: it serves the light-client proof
 * protocol on WebSockets like any node, but each answer is an honest node's
 * answer (fetched over TCP) with one field forged, chosen by the key asked
 * for. A light client must reject every one of them, with the error code
 * naming what failed (src/light/errors.ts): that is what the page shows.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { hex } from '../../src/codec/index.ts'
import { lyingPeer } from '../util/light-proxy.ts'
import type { LightAnswer } from '../../src/light/protocol.ts'
import type { LyingPeer } from '../util/light-proxy.ts'

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
  /** TCP multiaddr (with `/p2p/`) of the honest node whose answers are forged. */
  honest: string
  /** Which forgery each key (hex) gets; other keys are answered honestly. */
  forgeries: Map<string, Forgery>
}

/** Start the bad node (listening on 127.0.0.1 WebSockets, port 0). */
export async function startTamperingNode (init: TamperingNodeInit): Promise<LyingPeer> {
  return lyingPeer([multiaddr(init.honest)], init.chain, [init.db], (answer, _db, request) => {
    const forgery = init.forgeries.get(hex(request.key))
    return forgery === undefined ? answer : forge(answer, forgery)
  }, { listen: ['/ip4/127.0.0.1/tcp/0/ws'] })
}
