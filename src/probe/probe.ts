/**
 * Floor discovery for state sync (stateful.md §16): find a recent,
 * trustworthy finalization to sync from, without trusting any single peer.
 *
 * Discovery asks every connected validator for its latest finalization and
 * adopts the highest valid one among the replies of at least `f + 1`
 * distinct validators: at least one of them is honest, so the floor is at
 * least as recent as an honest node's view; a Byzantine validator can only
 * push it higher with another valid (hence real) finalization. A reply that
 * does not decode, does not verify, or comes from a non-validator gets its
 * sender blocked (its replies are never counted). Each round starts with an
 * empty sample; rounds repeat every `retryMs` until enough validators answer.
 *
 * Service: once the node has finalized blocks it answers others with its
 * latest finalization (from its block store).
 *
 * Protocol `/<prefix>/<chain>/probe/1.0.0`, one uvarint-length-prefixed frame
 * each way: request `0x00`; response `0x01 ‖ finalization` or `0x02` (none).
 */

import { lpStream } from '@libp2p/utils'
import { compareRounds } from '../marshal/types.ts'
import { linked } from '../p2p/signals.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'

const REQUEST = 0x00
const RESPONSE = 0x01
const NONE = 0x02

export interface ProbeInit<F> {
  libp2p: Libp2p
  chainId: string
  prefix?: string
  scheme: FinalizationScheme<F>
  /** Validator peer ids (the solicited committee). */
  validators: readonly string[]
  /** Interval between request rounds (default 1000 ms). */
  retryMs?: number
  /** Per-request timeout (default 2000 ms). */
  timeoutMs?: number
  log?: Logger
}

export class ProbeProtocolError extends Error {
  readonly name = 'ProbeProtocolError'
}

export class Probe<F> {
  readonly protocol: string
  private readonly init: ProbeInit<F>
  private latest: (() => Promise<F | undefined>) | undefined
  private readonly blockedPeers = new Map<string, string>()
  private floor: F | undefined

  constructor (init: ProbeInit<F>) {
    this.init = init
    this.protocol = `/${init.prefix ?? 'qmdb'}/${init.chainId}/probe/1.0.0`
  }

  /** Fault tolerance of the committee: `f = ⌊(n - 1) / 3⌋`. */
  get f (): number {
    return Math.floor((this.init.validators.length - 1) / 3)
  }

  async start (): Promise<void> {
    await this.init.libp2p.handle(this.protocol, async (stream) => { await this.serve(stream) }, { maxInboundStreams: 32 })
  }

  async stop (): Promise<void> {
    await this.init.libp2p.unhandle(this.protocol)
  }

  /** Serve our latest finalization from now on. */
  attach (latest: () => Promise<F | undefined>): void {
    this.latest = latest
  }

  blocked (): Map<string, string> {
    return new Map(this.blockedPeers)
  }

  private block (peer: string, reason: string): void {
    if (this.blockedPeers.has(peer)) { return }
    this.blockedPeers.set(peer, reason)
    this.init.log?.('probe: blocked %s: %s', peer, reason)
  }

  private async serve (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(this.init.timeoutMs ?? 2000)
    const lp = lpStream(stream, { maxDataLength: 8 })
    try {
      const req = (await lp.read({ signal })).subarray()
      if (req.length !== 1 || req[0] !== REQUEST) { throw new ProbeProtocolError('malformed probe request') }
      const f = await this.latest?.()
      const body = f === undefined ? new Uint8Array([NONE]) : concat(RESPONSE, this.init.scheme.encode(f))
      await lp.write(body, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** One peer's latest finalization, verified; throws `ProbeProtocolError` for a reply that must block it. */
  private async ask (peer: PeerId, signal: AbortSignal): Promise<F | undefined> {
    const link = linked([signal], this.init.timeoutMs ?? 2000)
    try {
      const stream = await this.init.libp2p.dialProtocol(peer, this.protocol, { signal: link.signal })
      try {
        const lp = lpStream(stream, { maxDataLength: this.init.scheme.maxBytes + 1 })
        await lp.write(new Uint8Array([REQUEST]), { signal: link.signal })
        const res = (await lp.read({ signal: link.signal })).subarray()
        await stream.close({ signal: link.signal })
        if (res.length === 1 && res[0] === NONE) { return undefined }
        if (res[0] !== RESPONSE) { throw new ProbeProtocolError(`unknown probe tag ${res[0]}`) }
        let f: F
        try {
          f = this.init.scheme.decode(res.subarray(1))
        } catch (err) {
          throw new ProbeProtocolError(`malformed finalization: ${(err as Error).message}`)
        }
        if (!this.init.scheme.verify(f)) { throw new ProbeProtocolError('invalid finalization') }
        return f
      } catch (err) {
        stream.abort(err as Error)
        throw err
      }
    } finally {
      link.dispose()
    }
  }

  /**
   * Discover the floor: the highest verified finalization among replies of
   * at least `f + 1` distinct validators. Retries until `signal` aborts.
   */
  async subscribe (options: { signal?: AbortSignal } = {}): Promise<F> {
    if (this.floor !== undefined) { return this.floor }
    const signal = options.signal ?? new AbortController().signal
    const committee = new Set(this.init.validators)
    for (;;) {
      signal.throwIfAborted()
      const peers = this.init.libp2p.getPeers().filter(p => committee.has(p.toString()) && !this.blockedPeers.has(p.toString()))
      const replies = new Map<string, F>()
      await Promise.all(peers.map(async p => {
        try {
          const f = await this.ask(p, signal)
          if (f !== undefined && !replies.has(p.toString())) { replies.set(p.toString(), f) }
        } catch (err) {
          if (err instanceof ProbeProtocolError) { this.block(p.toString(), err.message) }
        }
      }))
      const floor = this.select(replies)
      if (floor !== undefined) {
        this.floor = floor
        return floor
      }
      this.init.log?.('probe: %d of %d needed replies, re-requesting', replies.size, this.f + 1)
      await sleep(this.init.retryMs ?? 1000, signal)
    }
  }

  /** The highest-round reply, if at least `f + 1` validators replied. */
  select (replies: ReadonlyMap<string, F>): F | undefined {
    if (replies.size < this.f + 1) { return undefined }
    let best: F | undefined
    for (const f of replies.values()) {
      if (best === undefined || compareRounds(this.init.scheme.round(f), this.init.scheme.round(best)) > 0) { best = f }
    }
    return best
  }
}

function concat (tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1)
  out[0] = tag
  out.set(body, 1)
  return out
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(t)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
