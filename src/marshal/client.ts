/**
 * The fetching half of the marshal service: a `BlockFetcher` (the interface
 * `Marshal` fills gaps and resolves digests through) that asks peers over
 * `/<prefix>/<chain>/marshal/1.0.0` through the kit's client loop
 * (`net/client.ts`: best-scored peer first, back-off and retry elsewhere,
 * per-peer limits). It never rejects on a transient failure: only the
 * caller's signal or the service stopping end a request (rejecting with
 * `MarshalError('Stopped')` or the signal's reason).
 *
 * A peer whose answer breaks the protocol (see `protocol.ts`: undecodable,
 * wrong digest, broken range, certificate that does not verify, oversized
 * frame) is blocked at once and the request retried elsewhere; so is a peer
 * whose data the caller rejects through `feedback(false)` (e.g. a range that
 * does not chain to the certified tip). Blocking is permanent for the
 * service's lifetime; a verdict never given blames no one.
 */

import { linked } from '../net/signals.ts'
import { encodeMarshalRequest, marshalRequestKey, parseBlockResponse, parseFinalizedResponse, parseLatestResponse } from './protocol.ts'
import { MarshalError } from './types.ts'
import type { BlockFetcher } from './marshal.ts'
import type { MarshalRequest, RangeEntry } from './protocol.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock } from './types.ts'
import type { RequestClient } from '../net/client.ts'
import type { Parsed } from '../net/protocol.ts'
import type { Feedback } from '../sync/source.ts'
import type { PeerId } from '@libp2p/interface'

export interface MarshalClientOptions<B extends MarshalBlock, F> {
  codec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  /** Largest range asked for in one request (longer ranges are cut to their top). */
  maxBlocksPerRequest: number
}

/** A fetched value and the verdict hook for it: `feedback(false)` blocks the peer that sent it. */
export interface Fetched<T> {
  value: T
  peer: PeerId
  feedback: Feedback
}

export interface LatestFinalization<F> {
  height: number
  finalization: F
  /** The certificate as received. */
  bytes: Uint8Array
}

export class MarshalClient<B extends MarshalBlock, F> implements BlockFetcher {
  private readonly client: RequestClient
  private readonly options: MarshalClientOptions<B, F>

  constructor (client: RequestClient, options: MarshalClientOptions<B, F>) {
    this.client = client
    this.options = options
  }

  get protocol (): string {
    return this.client.protocol
  }

  /** Replace the peers asked (clients built with a fixed peer list only). */
  setPeers (peers: PeerId[]): void {
    this.client.setPeers(peers)
  }

  close (): void {
    this.client.close()
  }

  async fetchBlock (digest: Uint8Array, options: { height?: number, signal: AbortSignal }): Promise<{ bytes: Uint8Array, feedback?(valid: boolean): void }> {
    const got = await this.request({ type: 'block', digest }, body => parseBlockResponse(body, digest, this.options.codec), options.signal)
    return { bytes: got.value, feedback: got.feedback }
  }

  async fetchFinalized (from: number, to: number, options: { signal: AbortSignal }): Promise<{ blocks: RangeEntry[], feedback?(valid: boolean): void }> {
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from <= to)) {
      throw new RangeError(`invalid height range [${from}, ${to}]`)
    }
    const low = Math.max(from, to - this.options.maxBlocksPerRequest + 1)
    const got = await this.request({ type: 'finalized', from: low, to },
      body => parseFinalizedResponse(body, low, to, this.options.codec, this.options.scheme), options.signal)
    return { blocks: got.value, feedback: got.feedback }
  }

  /** Some peer's latest finalization (verified; not necessarily the network's newest). */
  async fetchLatest (options: { signal: AbortSignal }): Promise<Fetched<LatestFinalization<F>>> {
    return this.request({ type: 'latest' }, body => parseLatestResponse(body, this.options.scheme), options.signal)
  }

  /** Ask peers until one answers `req` with data that parses, or `signal` aborts. */
  private async request<T> (req: MarshalRequest, parse: (body: Uint8Array) => Parsed<T>, signal: AbortSignal): Promise<Fetched<T>> {
    const shutdown = this.client.ctx.shutdown()
    if (shutdown === undefined || shutdown.aborted) { throw new MarshalError('Stopped', 'the marshal service is not running') }
    signal.throwIfAborted()
    const key = marshalRequestKey(req)
    const link = linked([signal, shutdown])
    try {
      const got = await this.client.fetch({ bytes: encodeMarshalRequest(req), key, parse }, link.signal)
      if (got !== undefined) {
        let decided = false
        const feedback: Feedback = (valid) => {
          if (decided) { return }
          decided = true
          this.client.verdict(got.peer, valid, got.latency, `its answer to ${key} failed validation`)
        }
        return { value: got.value, peer: got.peer, feedback }
      }
    } finally {
      link.dispose()
    }
    if (signal.aborted) { throw signal.reason ?? new MarshalError('Stopped', 'aborted') }
    throw new MarshalError('Stopped', 'the marshal service stopped')
  }
}
