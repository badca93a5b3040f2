/**
 * The serving half of a resolver: answers one request per inbound stream
 * from the `Source` attached for the stream's database (commonware `glue/src/stateful/db/p2p`).
 *
 * Per stream: admit the peer (concurrency slot + rate token, else reset),
 * read one frame of at most 64 bytes, decode the request strictly and check
 * its shape for the protocol (else reset, no reply), then answer with one
 * frame: `0x01 ‖ Response` or `0x02` (no data) and close.
 *
 * An operations request for more than `maxServeOps` is served capped at
 * `maxServeOps` (as commonware's sources cap `max_ops`): fewer operations are
 * a valid answer, and the client asks for the rest.
 *
 * No data when: no source is attached for the database; the source fails
 * (out of range, pruned, missing, ...); the encoded response would exceed
 * `maxResponseBytes`.
 *
 * Invariant: nothing a peer sends can throw out of `handle`; every failure
 * ends that one stream and the node keeps serving everyone else.
 */

import { varintSize } from '../codec/writer.ts'
import { decodeRequest, requestMaxOps } from '../sync/messages.ts'
import { frameStream } from './frames.ts'
import { MAX_REQUEST_FRAME, NO_DATA_BODY, ProtocolViolation, requestShapeProblem, responseBody } from './protocol.ts'
import { linked } from './signals.ts'
import type { PeerLimiter } from './limits.ts'
import type { ResolverMetrics } from './metrics.ts'
import type { ResolverKind } from './protocol.ts'
import type { Request } from '../sync/messages.ts'
import type { Source } from '../sync/source.ts'
import type { Connection, Logger, Stream } from '@libp2p/interface'

export interface ServerConfig {
  kind: ResolverKind
  maxServeOps: number
  maxResponseBytes: number
  /** Time allowed for the request frame to arrive. */
  readTimeout: number
  /** Time allowed to produce and write the answer. */
  serveTimeout: number
}

export class RateLimitedError extends Error {
  static readonly name = 'RateLimitedError'
  readonly name = 'RateLimitedError'
}

/** Run `fn` with a signal that aborts after `ms` (its timer is cleared when `fn` settles). */
async function withDeadline<T> (ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const link = linked([], ms)
  try {
    return await fn(link.signal)
  } finally {
    link.dispose()
  }
}

export class ResolverServer {
  private readonly sources: (db: string) => Source | undefined
  private readonly config: ServerConfig
  private readonly limiter: PeerLimiter
  private readonly metrics: ResolverMetrics
  private readonly log: Logger

  /** `sources` gives the source attached for a database, looked up per request. */
  constructor (config: ServerConfig, sources: (db: string) => Source | undefined, limiter: PeerLimiter, metrics: ResolverMetrics, log: Logger) {
    this.sources = sources
    this.config = config
    this.limiter = limiter
    this.metrics = metrics
    this.log = log
  }

  /** Handle one inbound stream for database `db`. Never throws. */
  async handle (db: string, stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const admitted = this.limiter.tryAcquire(peer)
    if (!admitted.ok) {
      this.metrics.serve('limited')
      this.log.trace('shedding a %s stream from %s (%s)', db, peer, admitted.reason)
      stream.abort(new RateLimitedError(`too many requests (${admitted.reason})`))
      return
    }
    const started = performance.now()
    try {
      await this.answer(db, stream, peer, started)
    } catch (err) {
      this.metrics.serve('error')
      this.log.trace('stream from %s failed: %s', peer, (err as Error)?.message)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.limiter.release(peer)
    }
  }

  private async answer (db: string, stream: Stream, peer: string, started: number): Promise<void> {
    const lp = frameStream(stream, { maxDataLength: MAX_REQUEST_FRAME, maxBufferSize: 4 * MAX_REQUEST_FRAME })
    let request: Request
    try {
      const frame = await withDeadline(this.config.readTimeout, async signal => lp.read({ signal }))
      this.metrics.bytesIn(frame.byteLength + varintSize(frame.byteLength))
      request = decodeRequest(frame)
      const problem = requestShapeProblem(this.config.kind, request)
      if (problem !== undefined) { throw new ProtocolViolation(problem) }
      // one request per stream: anything more the peer sends is discarded
      await stream.closeRead()
    } catch (err) {
      // undecodable, oversized, wrong shape, or never sent: reset, no reply
      this.metrics.serve('malformed')
      this.log.trace('malformed request from %s on %s: %s', peer, db, (err as Error)?.message)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    const body = await withDeadline(this.config.serveTimeout, async signal => {
      const body = await this.produce(db, request, peer, signal)
      await lp.write(body, { signal })
      await stream.close({ signal })
      return body
    })
    this.metrics.bytesOut(body.length + varintSize(body.length))
    this.metrics.serve(body === NO_DATA_BODY ? 'no_data' : 'response', (performance.now() - started) / 1000)
  }

  /** The frame body answering `request`: a response or no-data. */
  private async produce (db: string, request: Request, peer: string, signal: AbortSignal): Promise<Uint8Array> {
    const source = this.sources(db)
    if (source === undefined) {
      this.log.trace('no-data for %s: %s is not attached', peer, db)
      return NO_DATA_BODY
    }
    const capped: Request = request.type === 'operations' && requestMaxOps(request) > this.config.maxServeOps
      ? { ...request, maxOps: this.config.maxServeOps }
      : request
    let body: Uint8Array
    try {
      const { response } = await source.serve(capped, { signal })
      if (response.type !== request.type) {
        this.log.error('source for %s answered a %s request with %s', db, request.type, response.type)
        return NO_DATA_BODY
      }
      body = responseBody(response)
    } catch (err) {
      this.log.trace('no-data for %s on %s: %s', peer, db, (err as Error)?.message)
      return NO_DATA_BODY
    }
    if (body.length > this.config.maxResponseBytes) {
      this.log('no-data for %s on %s: response of %d bytes above the limit %d', peer, db, body.length, this.config.maxResponseBytes)
      return NO_DATA_BODY
    }
    return body
  }
}
