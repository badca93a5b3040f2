/**
 * What the marshal service serves: the request handler of
 * `/<prefix>/<chain>/marshal/1.0.0`, run by the kit's one-request server
 * (`net/server.ts`: limits, framing, deadlines, metrics). Answers come from
 * local marshal data only (never from the network).
 *
 * A request is a frame of at most 80 bytes that decodes strictly (else the
 * stream is reset, no reply); the answer is one frame:
 * - block by digest: any stored block, else no data;
 * - finalized range `[from, to]`: the longest run of finalized blocks ending
 * at `to` that is within the range, at most `maxServeBlocks` long and fits
 * `maxResponseBytes`, oldest first, each with its certificate when stored;
 * no data when `to` itself is not finalized here;
 * - latest: the newest stored finalization and its height, else no data.
 *
 * Invariant: `answer` never throws; a failing read is answered with no data.
 */

import {
  MARSHAL_NO_DATA, MAX_MARSHAL_REQUEST_FRAME, blockBody, decodeMarshalRequest, finalizedBody, latestBody, marshalRequestKey, rangeEntrySize
} from './protocol.ts'
import type { MarshalRequest, RangeEntry } from './protocol.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { RequestHandler } from '../net/server.ts'
import type { Logger } from '@libp2p/interface'

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
}

export class MarshalServer<B extends MarshalBlock, F> implements RequestHandler<MarshalRequest> {
  readonly maxRequestBytes = MAX_MARSHAL_REQUEST_FRAME
  private readonly config: MarshalServerConfig<B, F>
  private readonly log: Logger
  private reader: MarshalReader<B, F> | undefined

  constructor (config: MarshalServerConfig<B, F>, log: Logger) {
    this.config = config
    this.log = log
  }

  /** Serve from `reader` (undefined: answer no data to everything). */
  attach (reader: MarshalReader<B, F> | undefined): void {
    this.reader = reader
  }

  decode (frame: Uint8Array): MarshalRequest {
    return decodeMarshalRequest(frame)
  }

  isNoData (body: Uint8Array): boolean {
    return body === MARSHAL_NO_DATA
  }

  /**
   * The frame body answering `request`: data or no-data (never throws). A
   * range read stops between blocks once `signal` aborts (the deadline
   * passed or the service stopped: nobody will read the answer).
   */
  async answer (request: MarshalRequest, peer: string, signal: AbortSignal): Promise<Uint8Array> {
    const reader = this.reader
    if (reader === undefined) { return MARSHAL_NO_DATA }
    try {
      const body = await this.bodyFor(reader, request, signal)
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

  private async bodyFor (reader: MarshalReader<B, F>, request: MarshalRequest, signal: AbortSignal): Promise<Uint8Array> {
    switch (request.type) {
      case 'block': {
        const block = await reader.getBlock(request.digest)
        return block === undefined ? MARSHAL_NO_DATA : blockBody(this.config.codec.encode(block))
      }
      case 'finalized': {
        const entries = await this.range(reader, request.from, request.to, signal)
        return entries.length === 0 ? MARSHAL_NO_DATA : finalizedBody(entries)
      }
      default: {
        const latest = await reader.latestFinalization()
        return latest === undefined ? MARSHAL_NO_DATA : latestBody(latest.height, this.config.scheme.encode(latest.finalization))
      }
    }
  }

  /** Finalized blocks from `to` down, while present and within the caps; returned oldest first. */
  private async range (reader: MarshalReader<B, F>, from: number, to: number, signal: AbortSignal): Promise<RangeEntry[]> {
    const out: RangeEntry[] = []
    let budget = this.config.maxResponseBytes - 16
    const low = Math.max(from, to - this.config.maxServeBlocks + 1)
    for (let h = to; h >= low; h--) {
      signal.throwIfAborted()
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
