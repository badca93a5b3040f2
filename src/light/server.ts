/**
 * The serving half of the light-client proof protocol as a libp2p service
 * (`lightServer({ chain, databases })`, in the style of `@libp2p/ping`): one
 * handler per declared database on `/<prefix>/<chain>/<db>/proof/1.0.0`,
 * answering from the `LightBackend` attached by the host (a node attaches
 * its applied state and block store, `src/node/light.ts`).
 *
 * Per stream, as the sync resolvers (docs/PROTOCOLS.md, "Server
 * behaviour"): admit the peer (a concurrency slot and a rate token per peer,
 * a cap over all peers, else reset before reading), read one request frame
 * with the bounded reader (`src/net/frames.ts`) within `readTimeout`, decode
 * it strictly (else reset, no reply), answer with one frame within
 * `serveTimeout`, close.
 *
 * Invariant: nothing a peer sends throws out of the handler; a backend
 * failure or an answer above `maxResponseBytes` is answered "unavailable".
 */

import { serviceCapabilities } from '@libp2p/interface'
import { frameStream } from '../net/frames.ts'
import { PeerLimiter } from '../net/limits.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../net/protocol.ts'
import { linked } from '../net/signals.ts'
import { LightError } from './errors.ts'
import { DEFAULT_MAX_LIGHT_RESPONSE, MAX_LIGHT_REQUEST_FRAME, decodeLightRequest, encodeLightAnswer, lightProtocolId } from './protocol.ts'
import type { LightAnswer, LightRequest } from './protocol.ts'
import type { RateLimit } from '../net/limits.ts'
import type { ComponentLogger, Connection, Logger, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

/** What answers requests: the host's applied state and finalized blocks. */
export interface LightBackend {
  /** The answer to `request` on database `db`; throwing is answered "unavailable". */
  answer(db: string, request: LightRequest, signal: AbortSignal): Promise<LightAnswer>
}

export interface LightServerInit {
  chain: string
  /** Databases served (each gets its protocol id). */
  databases: readonly string[]
  protocolPrefix?: string
  /** Per-peer inbound limits. Defaults: 4 concurrent, 20/s, burst 40. */
  inbound?: { maxConcurrent?: number, rate?: RateLimit, maxTotal?: number }
  /** Time a peer has to send its request (ms). Default 2000. */
  readTimeout?: number
  /** Time to produce and write an answer (ms). Default 10000. */
  serveTimeout?: number
  /** Largest answer sent. Default 4 MiB. */
  maxResponseBytes?: number
  maxInboundStreams?: number
}

export interface LightServerComponents {
  registrar: Registrar
  logger: ComponentLogger
}

export class LightServer implements Startable {
  private readonly components: LightServerComponents
  private readonly init: LightServerInit
  private readonly log: Logger
  private readonly limiter: PeerLimiter
  private readonly protocols: Map<string, string>
  private backend: LightBackend | undefined
  private controller: AbortController | undefined
  private answered = 0

  constructor (components: LightServerComponents, init: LightServerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('libp2p:qmdb:light')
    this.limiter = new PeerLimiter(init.inbound?.rate ?? { perSecond: 20, burst: 40 }, init.inbound?.maxConcurrent ?? 4, init.inbound?.maxTotal ?? 64)
    const prefix = init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX
    this.protocols = new Map(init.databases.map(db => [db, lightProtocolId(prefix, init.chain, db)]))
  }

  readonly [Symbol.toStringTag] = '@libp2p-qmdb/light-server'
  readonly [serviceCapabilities]: string[] = ['@libp2p-qmdb/light-server']

  /** The protocol id of database `db`. */
  protocol (db: string): string {
    const id = this.protocols.get(db)
    if (id === undefined) { throw new RangeError(`${db} is not served by this light server`) }
    return id
  }

  /** Requests answered with a proof so far. */
  get served (): number {
    return this.answered
  }

  /** Answer from `backend` (until then every request is answered "unavailable"). */
  attach (backend: LightBackend): void {
    this.backend = backend
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    this.controller = new AbortController()
    for (const [db, id] of this.protocols) {
      await this.components.registrar.handle(id, async (stream, connection) => {
        await this.serve(db, stream, connection)
      }, { maxInboundStreams: this.init.maxInboundStreams ?? 32, maxOutboundStreams: 1 })
    }
  }

  async stop (): Promise<void> {
    this.controller?.abort()
    this.controller = undefined
    for (const id of this.protocols.values()) { await this.components.registrar.unhandle(id) }
  }

  /** Answer one inbound request. Never throws. */
  private async serve (db: string, stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const admitted = this.limiter.tryAcquire(peer)
    if (!admitted.ok) {
      stream.abort(new LightError('NoAnswer', `too many requests (${admitted.reason})`))
      return
    }
    try {
      const frames = frameStream(stream, { maxDataLength: MAX_LIGHT_REQUEST_FRAME })
      let request: LightRequest
      const read = linked([], this.init.readTimeout ?? 2000)
      try {
        request = decodeLightRequest(await frames.read({ signal: read.signal }))
        await stream.closeRead()
      } catch (err) {
        this.log.trace('malformed light request from %s: %s', peer, (err as Error)?.message)
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      } finally {
        read.dispose()
      }
      const write = linked(this.controller === undefined ? [] : [this.controller.signal], this.init.serveTimeout ?? 10_000)
      try {
        let body = await this.answer(db, request, write.signal)
        if (body.length > (this.init.maxResponseBytes ?? DEFAULT_MAX_LIGHT_RESPONSE)) { body = encodeLightAnswer({ type: 'unavailable', latest: undefined }) }
        await frames.write(body, { signal: write.signal })
        await stream.close({ signal: write.signal })
      } finally {
        write.dispose()
      }
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.limiter.release(peer)
    }
  }

  private async answer (db: string, request: LightRequest, signal: AbortSignal): Promise<Uint8Array> {
    if (this.backend === undefined) { return encodeLightAnswer({ type: 'unavailable', latest: undefined }) }
    try {
      const a = await this.backend.answer(db, request, signal)
      if (a.type === 'answer') { this.answered++ }
      return encodeLightAnswer(a)
    } catch (err) {
      this.log('cannot answer a light request on %s: %s', db, (err as Error)?.message)
      return encodeLightAnswer({ type: 'unavailable', latest: undefined })
    }
  }
}

/** The light-client proof server as a libp2p service. */
export function lightServer (init: LightServerInit): (components: LightServerComponents) => LightServer {
  return (components) => new LightServer(components, init)
}
