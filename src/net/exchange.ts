/**
 * One request/response exchange with a peer over a fresh libp2p stream:
 * open, write one length-prefixed request frame, close the write side, read
 * one response frame (capped before allocation), close. Every client of a
 * node (resolvers, marshal, probe) exchanges through this.
 *
 * Invariants: never throws; every outcome is a value, and a failed stream is
 * aborted so nothing lingers. The bytes of every frame written and read are
 * reported with `frameSize` (prefix included).
 */

import { frameSize, frameStream, isOversized } from './frames.ts'
import { linked } from './signals.ts'
import { openStream } from './streams.ts'
import type { ServeMetrics } from './metrics.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export type ExchangeResult =
  | { type: 'frame', body: Uint8Array, latency: number }
  | { type: 'timeout' | 'failure' | 'aborted' | 'unsupported' | 'oversized', reason?: string, unreachable?: boolean }

export interface ExchangeOptions {
  /** Aborts the exchange (the caller gave up or the service stopped). */
  signal: AbortSignal
  /** Deadline for the whole exchange (dial, write, read) in ms. */
  timeout: number
  /** Largest response frame body accepted. */
  maxResponseBytes: number
  runOnLimitedConnection?: boolean
  /** Told the bytes of the request frame sent and the response frame received. */
  metrics?: Pick<ServeMetrics, 'bytesIn' | 'bytesOut'>
}

/** Send `request` to `peer` on `protocol` and read one response frame. */
export async function exchange (connectionManager: ConnectionManager, peer: PeerId, protocol: string, request: Uint8Array, options: ExchangeOptions): Promise<ExchangeResult> {
  const link = linked([options.signal], options.timeout)
  const started = performance.now()
  try {
    let stream: Stream
    try {
      stream = await openStream(connectionManager, peer, protocol, {
        signal: link.signal,
        runOnLimitedConnection: options.runOnLimitedConnection ?? false
      })
    } catch (err) {
      if (options.signal.aborted) { return { type: 'aborted' } }
      if ((err as Error)?.name === 'UnsupportedProtocolError') { return { type: 'unsupported', reason: (err as Error).message } }
      // no stream: the peer is unreachable (dial, connection or negotiation failed), which says nothing of what it serves
      return { type: link.timedOut() ? 'timeout' : 'failure', reason: (err as Error)?.message, unreachable: true }
    }
    try {
      const lp = frameStream(stream, { maxDataLength: options.maxResponseBytes })
      await lp.write(request, { signal: link.signal })
      options.metrics?.bytesOut(frameSize(request.length))
      await stream.close({ signal: link.signal })
      const body = await lp.read({ signal: link.signal })
      options.metrics?.bytesIn(frameSize(body.length))
      await stream.closeRead()
      return { type: 'frame', body, latency: performance.now() - started }
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      if (options.signal.aborted) { return { type: 'aborted' } }
      if (link.timedOut()) { return { type: 'timeout' } }
      if (isOversized(err)) { return { type: 'oversized', reason: (err as Error).message } }
      return { type: 'failure', reason: (err as Error)?.message }
    }
  } finally {
    link.dispose()
  }
}
