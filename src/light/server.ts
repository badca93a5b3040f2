/**
 * The serving half of the light-client proof protocol as a libp2p service
 * (`lightServer({ chain, databases })`, in the style of `@libp2p/ping`): one
 * handler per declared database on `/<prefix>/<chain>/<db>/proof/1.0.0`,
 * answering from the `LightBackend` attached by the host (a node attaches
 * its applied state and block store, `src/node/light.ts`).
 *
 * Per stream: the request/response kit's server (`src/net/server.ts`, as
 * the sync resolvers: a concurrency slot and a rate token per peer and a cap
 * over all peers, else reset before reading; one bounded request frame
 * within `readTimeout`, decoded strictly, else reset without reply; one
 * answer within `serveTimeout`). Metrics: the kit's serving series under
 * `libp2p_qmdb_light_*`.
 *
 * Invariant: nothing a peer sends throws out of the handler; a backend
 * failure or an answer above `maxResponseBytes` is answered "unavailable".
 */

import { serviceCapabilities, setMaxListeners } from '@libp2p/interface'
import { PeerLimiter } from '../net/limits.ts'
import { ServiceMetrics } from '../net/metrics.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../net/protocol.ts'
import { RequestServer } from '../net/server.ts'
import { DEFAULT_MAX_LIGHT_RESPONSE, MAX_LIGHT_REQUEST_FRAME, decodeLightRequest, encodeLightAnswer, isAnswerUnavailable, lightProtocolId } from './protocol.ts'
import type { LightAnswer, LightRequest } from './protocol.ts'
import type { RateLimit } from '../net/limits.ts'
import type { RequestHandler } from '../net/server.ts'
import type { ComponentLogger, Logger, Metrics, Startable } from '@libp2p/interface'
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
  metrics?: Metrics
}

const UNAVAILABLE = encodeLightAnswer({ type: 'unavailable', latest: undefined })

export class LightServer implements Startable {
  private readonly components: LightServerComponents
  private readonly init: LightServerInit
  private readonly log: Logger
  private readonly server: RequestServer
  private readonly protocols: Map<string, string>
  private backend: LightBackend | undefined
  /** Aborted at `stop`: answers in flight end then, not at `serveTimeout`. */
  private controller: AbortController | undefined

  constructor (components: LightServerComponents, init: LightServerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('libp2p:qmdb:light')
    const limiter = new PeerLimiter(init.inbound?.rate ?? { perSecond: 20, burst: 40 }, init.inbound?.maxConcurrent ?? 4, init.inbound?.maxTotal ?? 64)
    const limits = { readTimeout: init.readTimeout ?? 2000, serveTimeout: init.serveTimeout ?? 10_000 }
    this.server = new RequestServer(limits, limiter, new ServiceMetrics(components.metrics, 'light', { client: false }), this.log)
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

  /** Answer from `backend` (until then every request is answered "unavailable"). */
  attach (backend: LightBackend): void {
    this.backend = backend
  }

  isStarted (): boolean {
    return this.controller !== undefined
  }

  async start (): Promise<void> {
    if (this.controller !== undefined) { return }
    const controller = new AbortController()
    setMaxListeners(Infinity, controller.signal)
    this.controller = controller
    for (const [db, id] of this.protocols) {
      const handler = this.handler(db)
      await this.components.registrar.handle(id, async (stream, connection) => {
        await this.server.handle(stream, connection, handler, controller.signal)
      }, { maxInboundStreams: this.init.maxInboundStreams ?? 32, maxOutboundStreams: 1 })
    }
  }

  async stop (): Promise<void> {
    this.controller?.abort()
    this.controller = undefined
    for (const id of this.protocols.values()) { await this.components.registrar.unhandle(id) }
  }

  /** The proof protocol of database `db` for the kit's server. */
  private handler (db: string): RequestHandler<LightRequest> {
    const maxResponseBytes = this.init.maxResponseBytes ?? DEFAULT_MAX_LIGHT_RESPONSE
    return {
      maxRequestBytes: MAX_LIGHT_REQUEST_FRAME,
      decode: decodeLightRequest,
      answer: async (request, _peer, signal) => {
        const body = await this.answer(db, request, signal)
        return body.length > maxResponseBytes ? UNAVAILABLE : body
      },
      isNoData: isAnswerUnavailable
    }
  }

  private async answer (db: string, request: LightRequest, signal: AbortSignal): Promise<Uint8Array> {
    if (this.backend === undefined) { return UNAVAILABLE }
    try {
      return encodeLightAnswer(await this.backend.answer(db, request, signal))
    } catch (err) {
      this.log('cannot answer a light request on %s: %s', db, (err as Error)?.message)
      return UNAVAILABLE
    }
  }
}

/** The light-client proof server as a libp2p service. */
export function lightServer (init: LightServerInit): (components: LightServerComponents) => LightServer {
  return (components) => new LightServer(components, init)
}
