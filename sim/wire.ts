/**
 * The simulation's state-sync, marshal and certificate backfill exchanges
 * as bytes on streams: the requester encodes its request with the
 * protocol's codec, the serving node runs the kit's `RequestServer`
 * (`src/net/server.ts`) with the protocol's own handler (the resolver's
 * `resolverHandler`, marshal's `MarshalServer`, the consensus network's
 * `BackfillHandler`) on one end of an in-memory `streamPair()` from
 * `@libp2p/utils`, and the response frame read from the other end is what
 * the answer leg of the `SimNetwork` exchange carries back, for the
 * requester to parse with the client's parser.
 *
 * Invariants: `ask` never throws; a stream the server resets (a malformed
 * request, a deadline) yields undefined, as a reset does to a client; a pair
 * that cannot be opened is the simulator's fault, not the network's: it is
 * told to `onFault` (the run fails there) and yields undefined. The
 * pair's delay and the server's read and serve deadlines are `setTimeout`s,
 * so under the run's virtual clock they cost no real time and replay
 * exactly; the server admits every stream (the rate limiter reads the wall
 * clock, which a replay must not depend on). The streams need
 * `Promise.withResolvers` (installed here on Node 20, `src/polyfill.ts`).
 *
 * Both ends get a fixed remote address: `streamPair()`'s default is
 * `/ip4/127.0.0.1/tcp/<n>` with `n` a counter global to `@libp2p/utils`
 * (two per pair, never reset), so after 32,768 pairs in one process — about
 * 445 seeds of a sweep — `n` leaves the port range, the address no longer
 * parses and every pair after that fails to open.
 */
import '../test/util/polyfill.ts'
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { frameStream } from '../src/net/frames.ts'
import { PeerLimiter } from '../src/net/limits.ts'
import { ServiceMetrics } from '../src/net/metrics.ts'
import { RequestServer } from '../src/net/server.ts'
import { SERVICE_DEFAULTS } from '../src/net/service.ts'
import type { RequestHandler } from '../src/net/server.ts'
import type { Connection, Logger, PeerId } from '@libp2p/interface'

const UNLIMITED = { perSecond: Number.MAX_SAFE_INTEGER, burst: Number.MAX_SAFE_INTEGER }

/** The remote address both ends of every pair report (only logs read it). */
const PAIR_ADDR = { remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') }

export class WireServer {
  private readonly server: RequestServer
  private readonly onFault: (err: Error) => void

  /** `onFault`: told when the simulator itself fails to open a stream pair. */
  constructor (log: Logger, onFault: (err: Error) => void) {
    const { readTimeout, serveTimeout } = SERVICE_DEFAULTS
    this.server = new RequestServer({ readTimeout, serveTimeout }, new PeerLimiter(UNLIMITED, Number.MAX_SAFE_INTEGER), new ServiceMetrics(undefined, 'sim'), log)
    this.onFault = onFault
  }

  /**
   * `from` sends `request` on a fresh stream that `handler` serves here:
   * the response frame body, or undefined if the stream ended without one.
   */
  async ask<Req> (handler: RequestHandler<Req>, from: PeerId, request: Uint8Array, maxResponseBytes: number): Promise<Uint8Array | undefined> {
    let pair
    try {
      pair = await streamPair({ outboundConnection: PAIR_ADDR, inboundConnection: PAIR_ADDR })
    } catch (err) {
      this.onFault(err instanceof Error ? err : new Error(String(err)))
      return undefined
    }
    const [outbound, inbound] = pair
    void this.server.handle(inbound, { remotePeer: from } as unknown as Connection, handler)
    const lp = frameStream(outbound, { maxDataLength: maxResponseBytes })
    // the server's own deadlines end a stalled stream; this signal never fires
    const signal = new AbortController().signal
    try {
      await lp.write(request, { signal })
      await outbound.close({ signal })
      const body = await lp.read({ signal })
      await outbound.closeRead({ signal })
      return body
    } catch (err) {
      outbound.abort(err instanceof Error ? err : new Error(String(err)))
      return undefined
    }
  }
}
