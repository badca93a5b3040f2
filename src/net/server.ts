/**
 * The serving half of every request/response service (resolvers, marshal,
 * probe): one request per inbound stream, one answer.
 *
 * Per stream: admit the peer (concurrency slot + rate token, else reset with
 * `RateLimitedError` before reading anything), read one frame of at most
 * the handler's `maxRequestBytes` within `readTimeout`, decode it with the protocol's
 * strict decoder (else reset, no reply), discard anything more the peer
 * sends, then produce, write and close the answer within `serveTimeout`.
 *
 * Invariant: nothing a peer sends can throw out of `handle`; every failure
 * ends that one stream and the node keeps serving everyone else. Frame bytes
 * are counted with `frameSize`; every stream ends as exactly one of the
 * outcomes response, no_data, malformed, limited or error.
 */

import { frameSize, frameStream } from './frames.ts'
import { RateLimitedError } from './protocol.ts'
import { withDeadline } from './signals.ts'
import type { PeerLimiter } from './limits.ts'
import type { ServeMetrics } from './metrics.ts'
import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'

export interface ServerLimits {
  /** Time allowed for the request frame to arrive (ms). */
  readTimeout: number
  /** Time allowed to produce and write the answer (ms). */
  serveTimeout: number
}

/** What a protocol adds to the server: how its requests decode and what answers them. */
export interface RequestHandler<Req> {
  /** Largest request frame body accepted. */
  maxRequestBytes: number
  /** Decode one request frame strictly; throwing resets the stream without a reply. */
  decode(frame: Uint8Array): Req
  /** The response frame body for `request` (`peer` for logs); throwing resets the stream. */
  answer(request: Req, peer: string, signal: AbortSignal): Promise<Uint8Array>
  /** Whether `body` is the protocol's no-data answer (for the metrics). */
  isNoData(body: Uint8Array): boolean
  /**
   * Told why a request from `peer` was refused before it was answered (bytes
   * that break the protocol, or none in time): a protocol that blocks peers
   * for violations decides here which of these are violations.
   */
  malformed?(peer: PeerId, err: Error): void
}

export class RequestServer {
  private readonly limits: ServerLimits
  private readonly limiter: PeerLimiter
  private readonly metrics: ServeMetrics
  private readonly log: Logger

  constructor (limits: ServerLimits, limiter: PeerLimiter, metrics: ServeMetrics, log: Logger) {
    this.limits = limits
    this.limiter = limiter
    this.metrics = metrics
    this.log = log
  }

  /**
   * Handle one inbound stream with `handler`; true iff an answer was sent.
   * Never throws. `shutdown` (the service's) ends the read and the answer
   * early when the service stops, instead of at their deadlines.
   */
  async handle<Req> (stream: Stream, connection: Connection, handler: RequestHandler<Req>, shutdown?: AbortSignal): Promise<boolean> {
    const peer = connection.remotePeer.toString()
    const admitted = this.limiter.tryAcquire(peer)
    if (!admitted.ok) {
      this.metrics.serve('limited')
      this.log.trace('shedding a %s stream from %s (%s)', stream.protocol, peer, admitted.reason)
      stream.abort(new RateLimitedError(`too many requests (${admitted.reason})`))
      return false
    }
    const started = performance.now()
    try {
      return await this.answer(stream, connection.remotePeer, handler, started, shutdown === undefined ? [] : [shutdown])
    } catch (err) {
      this.metrics.serve('error')
      this.log.trace('%s stream from %s failed: %s', stream.protocol, peer, (err as Error)?.message)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return false
    } finally {
      this.limiter.release(peer)
    }
  }

  private async answer<Req> (stream: Stream, remote: PeerId, handler: RequestHandler<Req>, started: number, parents: AbortSignal[]): Promise<boolean> {
    const { readTimeout, serveTimeout } = this.limits
    const peer = remote.toString()
    const { maxRequestBytes } = handler
    const lp = frameStream(stream, { maxDataLength: maxRequestBytes, maxBufferSize: 4 * maxRequestBytes })
    let request: Req
    try {
      const frame = await withDeadline(readTimeout, async signal => lp.read({ signal }), parents)
      this.metrics.bytesIn(frameSize(frame.byteLength))
      request = handler.decode(frame)
      // one request per stream: anything more the peer sends is discarded
      await stream.closeRead()
    } catch (err) {
      // undecodable, oversized, wrong shape, or never sent: reset, no reply
      this.metrics.serve('malformed')
      this.log.trace('malformed %s request from %s: %s', stream.protocol, peer, (err as Error)?.message)
      const error = err instanceof Error ? err : new Error(String(err))
      stream.abort(error)
      handler.malformed?.(remote, error)
      return false
    }
    const body = await withDeadline(serveTimeout, async signal => {
      const body = await handler.answer(request, peer, signal)
      await lp.write(body, { signal })
      await stream.close({ signal })
      return body
    }, parents)
    this.metrics.bytesOut(frameSize(body.length))
    this.metrics.serve(handler.isNoData(body) ? 'no_data' : 'response', (performance.now() - started) / 1000)
    return true
  }
}
