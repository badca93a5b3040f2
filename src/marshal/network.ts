/**
 * The block store's libp2p protocol `/<prefix>/<chain>/marshal/1.0.0`: serve
 * blocks to peers and fetch missing ones from them (the `BlockFetcher` of
 * `Marshal`).
 *
 * One stream per request, one uvarint-length-prefixed frame each way:
 * - request `0x00 ‖ digest(32)`: the block with that digest;
 * - request `0x01 ‖ varint(from) ‖ varint(to)`: finalized blocks `[from, to]`
 * (at most `MAX_RANGE`), each with its finalization certificate if stored;
 * - response `0x01 ‖ body` (found) or `0x02` (not available):
 * block body = `bytes(block)`; range body = `Vec<bytes(block) ‖ Option<bytes(cert)>>`.
 * Request frames are at most 64 bytes and response frames are capped before
 * allocation; a malformed request resets the stream.
 *
 * The client asks the best-scored peer first, rotates through the others
 * with back-off, never fails a caller on transient errors (it retries until
 * the caller aborts), and blocks for good a peer whose data did not validate
 * (`feedback(false)` from `Marshal`).
 */

import { lpStream } from '@libp2p/utils'
import { Reader, Writer } from '../codec/index.ts'
import { PeerBook } from '../p2p/peers.ts'
import { linked } from '../p2p/signals.ts'
import type { BlockFetcher, BlockMarshal } from './marshal.ts'
import type { MarshalBlock } from './types.ts'
import type { Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'

export const MAX_RANGE = 128
const MAX_REQUEST = 64
const STATUS_FOUND = 0x01
const STATUS_NONE = 0x02

export interface MarshalNetworkInit {
  libp2p: Libp2p
  chainId: string
  prefix?: string
  /** Largest response frame accepted (default 8 MiB). */
  maxResponseBytes?: number
  /** Per-request timeout (default 3000 ms). */
  timeoutMs?: number
  log?: Logger
}

export class MarshalProtocolError extends Error {
  readonly name = 'MarshalProtocolError'
}

type Body = { kind: 'block', digest: Uint8Array } | { kind: 'range', from: number, to: number }

function decodeRequest (bytes: Uint8Array): Body {
  const r = new Reader(bytes)
  const tag = r.u8()
  let body: Body
  if (tag === 0) {
    body = { kind: 'block', digest: r.raw(32) }
  } else if (tag === 1) {
    const from = r.varint()
    const to = r.varint()
    if (to < from || to - from >= MAX_RANGE) { throw new MarshalProtocolError(`bad range [${from}, ${to}]`) }
    body = { kind: 'range', from, to }
  } else {
    throw new MarshalProtocolError(`unknown request tag ${tag}`)
  }
  r.finish()
  return body
}

export class MarshalNetwork<B extends MarshalBlock, F> implements BlockFetcher {
  readonly protocol: string
  private readonly init: MarshalNetworkInit
  private marshal: BlockMarshal<B, F> | undefined
  private readonly peers = new PeerBook({ initialLatency: 1000 })

  constructor (init: MarshalNetworkInit) {
    this.init = init
    this.protocol = `/${init.prefix ?? 'qmdb'}/${init.chainId}/marshal/1.0.0`
  }

  /** Serve `marshal`'s blocks to peers. */
  async start (marshal: BlockMarshal<B, F>): Promise<void> {
    this.marshal = marshal
    await this.init.libp2p.handle(this.protocol, async (stream) => { await this.serve(stream) }, { maxInboundStreams: 64 })
  }

  async stop (): Promise<void> {
    this.marshal = undefined
    await this.init.libp2p.unhandle(this.protocol)
  }

  /** Peers blocked for serving invalid data. */
  blocked (): Map<string, string> {
    return this.peers.blocked()
  }

  // ---- server -------------------------------------------------------------------------

  private async serve (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(this.init.timeoutMs ?? 3000)
    const lp = lpStream(stream, { maxDataLength: MAX_REQUEST })
    try {
      const req = decodeRequest((await lp.read({ signal })).subarray())
      const body = await this.answer(req)
      await lp.write(body === undefined ? new Uint8Array([STATUS_NONE]) : body, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  private async answer (req: Body): Promise<Uint8Array | undefined> {
    const marshal = this.marshal
    if (marshal === undefined) { return undefined }
    if (req.kind === 'block') {
      const bytes = await marshal.getBlockBytes(req.digest)
      return bytes === undefined ? undefined : new Writer(bytes.length + 8).u8(STATUS_FOUND).bytes(bytes).finish()
    }
    const items: Array<{ block: Uint8Array, cert?: Uint8Array }> = []
    for (let h = req.from; h <= req.to; h++) {
      const block = await marshal.getFinalizedBlockBytes(h)
      if (block === undefined) { break }
      items.push({ block, cert: await marshal.getFinalizationBytes(h) })
    }
    if (items.length === 0) { return undefined }
    const w = new Writer(1024).u8(STATUS_FOUND).length32(items.length)
    for (const it of items) { w.bytes(it.block).option(it.cert, (w, c) => { w.bytes(c) }) }
    return w.finish()
  }

  // ---- client ---------------------------------------------------------------------------

  private async request (peer: PeerId, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
    const link = linked([signal], this.init.timeoutMs ?? 3000)
    const both = link.signal
    const started = Date.now()
    let stream: Stream
    try {
      stream = await this.init.libp2p.dialProtocol(peer, this.protocol, { signal: both })
    } catch (err) {
      link.dispose()
      throw err
    }
    try {
      const lp = lpStream(stream, { maxDataLength: this.init.maxResponseBytes ?? 8 * 1024 * 1024 })
      await lp.write(body, { signal: both })
      const res = (await lp.read({ signal: both })).subarray()
      await stream.close({ signal: both })
      this.peers.record(peer.toString(), Date.now() - started)
      if (res.length === 1 && res[0] === STATUS_NONE) { return undefined }
      if (res[0] !== STATUS_FOUND) { throw new MarshalProtocolError(`bad status ${res[0]}`) }
      return res.subarray(1)
    } catch (err) {
      stream.abort(err as Error)
      throw err
    } finally {
      link.dispose()
    }
  }

  /** Try connected peers (best first) until one answers; back off and retry until `signal` aborts. */
  private async ask (body: Uint8Array, signal: AbortSignal): Promise<{ bytes: Uint8Array, peer: string }> {
    let backoff = 100
    for (;;) {
      signal.throwIfAborted()
      const candidates = this.init.libp2p.getPeers().filter(p => !this.peers.isBlocked(p.toString()))
      candidates.sort((a, b) => this.peers.score(a.toString()) - this.peers.score(b.toString()))
      for (const peer of candidates) {
        try {
          const bytes = await this.request(peer, body, signal)
          if (bytes !== undefined) { return { bytes, peer: peer.toString() } }
        } catch (err) {
          signal.throwIfAborted()
          if (err instanceof MarshalProtocolError) { this.peers.block(peer.toString(), err.message) } else { this.peers.record(peer.toString(), this.init.timeoutMs ?? 3000) }
        }
      }
      await sleep(backoff, signal)
      backoff = Math.min(backoff * 2, 2000)
    }
  }

  private feedbackFor (peer: string): (valid: boolean) => void {
    return valid => {
      if (!valid && this.peers.block(peer, 'served invalid block data')) { this.init.log?.('blocked %s for invalid block data', peer) }
    }
  }

  async fetchBlock (digest: Uint8Array, options: { height?: number, signal: AbortSignal }): Promise<{ bytes: Uint8Array, feedback?(valid: boolean): void }> {
    const { bytes, peer } = await this.ask(new Writer(40).u8(0).raw(digest).finish(), options.signal)
    const r = new Reader(bytes)
    try {
      const block = r.bytes(this.init.maxResponseBytes ?? 8 * 1024 * 1024)
      r.finish()
      return { bytes: block, feedback: this.feedbackFor(peer) }
    } catch {
      this.peers.block(peer, 'malformed block response')
      return this.fetchBlock(digest, options)
    }
  }

  async fetchFinalized (from: number, to: number, options: { signal: AbortSignal }): Promise<{ blocks: Array<{ block: Uint8Array, finalization?: Uint8Array }>, feedback?(valid: boolean): void }> {
    const hi = Math.min(to, from + MAX_RANGE - 1)
    const { bytes, peer } = await this.ask(new Writer(24).u8(1).varint(from).varint(hi).finish(), options.signal)
    try {
      const r = new Reader(bytes)
      const max = this.init.maxResponseBytes ?? 8 * 1024 * 1024
      const blocks = r.vec(MAX_RANGE, r => ({ block: r.bytes(max), finalization: r.option(r => r.bytes(max)) }))
      r.finish()
      if (blocks.length > hi - from + 1) { throw new MarshalProtocolError('too many blocks') }
      return { blocks, feedback: this.feedbackFor(peer) }
    } catch {
      this.peers.block(peer, 'malformed range response')
      return this.fetchFinalized(from, to, options)
    }
  }
}

async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t)
      reject(signal.reason)
    }
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
