/**
 * The serving half of the marshal service: answers one request per inbound
 * stream from local marshal data (never from the network).
 *
 * Per stream: admit the peer (concurrency slot + rate token, else reset),
 * read one frame of at most 80 bytes within `readTimeout`, decode it strictly
 * (else reset, no reply), answer with one frame and close.
 *
 * - block by digest: any stored block, else no data;
 * - finalized range `[from, to]`: the longest run of finalized blocks ending
 * at `to` that is within the range, at most `maxServeBlocks` long and fits
 * `maxResponseBytes`, oldest first, each with its certificate when stored;
 * no data when `to` itself is not finalized here;
 * - latest: the newest stored finalization and its height, else no data.
 *
 * Invariant: nothing a peer sends can throw out of `handle`; every failure
 * ends that one stream and the node keeps serving everyone else.
 */

import { frameStream } from '../p2p/frames.ts'
import { RateLimitedError } from '../p2p/server.ts'
import { linked } from '../p2p/signals.ts'
import {
  MARSHAL_NO_DATA, MAX_MARSHAL_REQUEST_FRAME, blockBody, decodeMarshalRequest, finalizedBody, latestBody, marshalRequestKey, rangeEntrySize
} from './protocol.ts'
import type { MarshalRequest, RangeEntry } from './protocol.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { PeerLimiter } from '../p2p/limits.ts'
import type { ResolverMetrics } from '../p2p/metrics.ts'
import type { Connection, Logger, Stream } from '@libp2p/interface'

/** The local reads a marshal server needs (`Marshal` provides them). */
export interface MarshalReader<B extends MarshalBlock, F> {
  /** A stored block (finalized or not), local only. */
  getBlock(digest: Uint8Array): Promise<B | undefined>
  getFinalizedBlock(height: number): Promise<B | undefined>
  getFinalization(height: number): Promise<F | undefined>
  latestFinalization(): Promise<{ height: number, finalization: F } | undefined>
}

export interface MarshalServerConfig<B extends MarshalBlock, F> {
  codec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  maxServeBlocks: number
  maxResponseBytes: number
  readTimeout: number
  serveTimeout: number
}

async function withDeadline<T> (ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const link = linked([], ms)
  try {
    return await fn(link.signal)
  } finally {
    link.dispose()
  }
}

export class MarshalServer<B extends MarshalBlock, F> {
  private readonly config: MarshalServerConfig<B, F>
  private readonly limiter: PeerLimiter
  private readonly metrics: ResolverMetrics
  private readonly log: Logger
  private reader: MarshalReader<B, F> | undefined

  constructor (config: MarshalServerConfig<B, F>, limiter: PeerLimiter, metrics: ResolverMetrics, log: Logger) {
    this.config = config
    this.limiter = limiter
    this.metrics = metrics
    this.log = log
  }

  /** Serve from `reader` (undefined: answer no data to everything). */
  attach (reader: MarshalReader<B, F> | undefined): void {
    this.reader = reader
  }

  /** Handle one inbound stream. Never throws. */
  async handle (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const admitted = this.limiter.tryAcquire(peer)
    if (!admitted.ok) {
      this.metrics.serve('limited')
      this.log.trace('shedding a stream from %s (%s)', peer, admitted.reason)
      stream.abort(new RateLimitedError(`too many requests (${admitted.reason})`))
      return
    }
    const started = performance.now()
    try {
      await this.answer(stream, peer, started)
    } catch (err) {
      this.metrics.serve('error')
      this.log.trace('stream from %s failed: %s', peer, (err as Error)?.message)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      this.limiter.release(peer)
    }
  }

  private async answer (stream: Stream, peer: string, started: number): Promise<void> {
    const lp = frameStream(stream, { maxDataLength: MAX_MARSHAL_REQUEST_FRAME, maxBufferSize: 4 * MAX_MARSHAL_REQUEST_FRAME })
    let request: MarshalRequest
    try {
      const frame = await withDeadline(this.config.readTimeout, async signal => lp.read({ signal }))
      this.metrics.bytesIn(frame.byteLength + 1)
      request = decodeMarshalRequest(frame)
      // one request per stream: anything more the peer sends is discarded
      await stream.closeRead()
    } catch (err) {
      this.metrics.serve('malformed')
      this.log.trace('malformed request from %s: %s', peer, (err as Error)?.message)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    const body = await withDeadline(this.config.serveTimeout, async signal => {
      const body = await this.produce(request, peer)
      await lp.write(body, { signal })
      await stream.close({ signal })
      return body
    })
    this.metrics.bytesOut(body.length + 1)
    this.metrics.serve(body === MARSHAL_NO_DATA ? 'no_data' : 'response', (performance.now() - started) / 1000)
  }

  /** The frame body answering `request`: data or no-data (never throws). */
  private async produce (request: MarshalRequest, peer: string): Promise<Uint8Array> {
    const reader = this.reader
    if (reader === undefined) { return MARSHAL_NO_DATA }
    try {
      const body = await this.bodyFor(reader, request)
      if (body.length > this.config.maxResponseBytes) {
        this.log('no data for %s: %s answer of %d bytes above %d', peer, marshalRequestKey(request), body.length, this.config.maxResponseBytes)
        return MARSHAL_NO_DATA
      }
      return body
    } catch (err) {
      this.log.trace('no data for %s: %s failed: %s', peer, marshalRequestKey(request), (err as Error)?.message)
      return MARSHAL_NO_DATA
    }
  }

  private async bodyFor (reader: MarshalReader<B, F>, request: MarshalRequest): Promise<Uint8Array> {
    switch (request.type) {
      case 'block': {
        const block = await reader.getBlock(request.digest)
        return block === undefined ? MARSHAL_NO_DATA : blockBody(this.config.codec.encode(block))
      }
      case 'finalized': {
        const entries = await this.range(reader, request.from, request.to)
        return entries.length === 0 ? MARSHAL_NO_DATA : finalizedBody(entries)
      }
      default: {
        const latest = await reader.latestFinalization()
        return latest === undefined ? MARSHAL_NO_DATA : latestBody(latest.height, this.config.scheme.encode(latest.finalization))
      }
    }
  }

  /** Finalized blocks from `to` down, while present and within the caps; returned oldest first. */
  private async range (reader: MarshalReader<B, F>, from: number, to: number): Promise<RangeEntry[]> {
    const out: RangeEntry[] = []
    let budget = this.config.maxResponseBytes - 16
    const low = Math.max(from, to - this.config.maxServeBlocks + 1)
    for (let h = to; h >= low; h--) {
      const block = await reader.getFinalizedBlock(h)
      if (block === undefined) { break }
      const cert = await reader.getFinalization(h)
      const entry: RangeEntry = cert === undefined
        ? { block: this.config.codec.encode(block) }
        : { block: this.config.codec.encode(block), finalization: this.config.scheme.encode(cert) }
      budget -= rangeEntrySize(entry)
      if (budget < 0) { break }
      out.push(entry)
    }
    return out.reverse()
  }
}
