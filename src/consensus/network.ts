/**
 * The libp2p transport of the consensus engine:
 * - gossipsub topics `/<prefix>/<chain>/consensus/votes/1` and `.../certs/1`;
 * each message is `varint(seq) ‖ vote-or-certificate`, the sequence number
 * making re-broadcasts (e.g. a repeated nullify) distinct gossip messages;
 * messages that do not decode are rejected at the topic validator, so the
 * sender's gossip score drops; signatures are checked by the engine;
 * - a request/response protocol `/<prefix>/<chain>/consensus/backfill/1.0.0`:
 * request `varint(from) ‖ varint(to)` (at most `MAX_BACKFILL_VIEWS` views),
 * response `Vec<certificate>` (capped), one uvarint-length-prefixed frame
 * each way, to catch up on views missed while offline or partitioned.
 */

import { TopicValidatorResult } from '@libp2p/gossipsub'
import { lpStream } from '@libp2p/utils'
import { Reader, Writer } from '../codec/index.ts'
import { decodeCertificate, decodeVote, encodeCertificate } from './types.ts'
import type { ConsensusTransport, SimplexEngine } from './engine.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'

export const MAX_BACKFILL_VIEWS = 256
const MAX_FRAME = 4 * 1024 * 1024
const MAX_REQUEST = 32

export interface ConsensusNetworkInit {
  libp2p: Libp2p
  pubsub: GossipSub
  chainId: string
  /** Protocol/topic prefix (default `qmdb`). */
  prefix?: string
  /** Per-request timeout for backfill (default 3000 ms). */
  timeoutMs?: number
  log?: Logger
}

export class ConsensusNetwork implements ConsensusTransport {
  readonly votesTopic: string
  readonly certsTopic: string
  readonly backfillProtocol: string
  private readonly init: ConsensusNetworkInit
  private engine: SimplexEngine | undefined
  private seq = 0
  private readonly onMessage = (evt: CustomEvent<Message>): void => { this.handleGossip(evt.detail) }

  constructor (init: ConsensusNetworkInit) {
    this.init = init
    const base = `/${init.prefix ?? 'qmdb'}/${init.chainId}/consensus`
    this.votesTopic = `${base}/votes/1`
    this.certsTopic = `${base}/certs/1`
    this.backfillProtocol = `${base}/backfill/1.0.0`
  }

  /** Start delivering network input to `engine` and serving backfill from it. */
  async start (engine: SimplexEngine): Promise<void> {
    this.engine = engine
    const { pubsub, libp2p } = this.init
    pubsub.topicValidators.set(this.votesTopic, (_peer, msg) => this.validate(msg, 'vote'))
    pubsub.topicValidators.set(this.certsTopic, (_peer, msg) => this.validate(msg, 'cert'))
    pubsub.addEventListener('message', this.onMessage)
    pubsub.subscribe(this.votesTopic)
    pubsub.subscribe(this.certsTopic)
    await libp2p.handle(this.backfillProtocol, async (stream) => { await this.serve(stream) }, { maxInboundStreams: 32 })
  }

  async stop (): Promise<void> {
    const { pubsub, libp2p } = this.init
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.unsubscribe(this.votesTopic)
    pubsub.unsubscribe(this.certsTopic)
    pubsub.topicValidators.delete(this.votesTopic)
    pubsub.topicValidators.delete(this.certsTopic)
    await libp2p.unhandle(this.backfillProtocol)
    this.engine = undefined
  }

  private envelope (bytes: Uint8Array): Uint8Array {
    return new Writer(bytes.length + 10).varint(this.seq++).raw(bytes).finish()
  }

  private open (data: Uint8Array): Uint8Array {
    const r = new Reader(data)
    r.varint()
    return r.raw(r.remaining)
  }

  private validate (msg: Message, kind: 'vote' | 'cert'): TopicValidatorResult {
    try {
      const body = this.open(msg.data)
      if (kind === 'vote') { decodeVote(body) } else { decodeCertificate(body) }
      return TopicValidatorResult.Accept
    } catch {
      return TopicValidatorResult.Reject
    }
  }

  private handleGossip (msg: Message): void {
    const engine = this.engine
    if (engine === undefined) { return }
    try {
      if (msg.topic === this.votesTopic) {
        void engine.receiveVote(decodeVote(this.open(msg.data)))
      } else if (msg.topic === this.certsTopic) {
        void engine.receiveCertificate(decodeCertificate(this.open(msg.data)))
      }
    } catch {
      // rejected by the validator already; nothing to do
    }
  }

  private async publish (topic: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.init.pubsub.publish(topic, this.envelope(bytes))
    } catch (err) {
      // no subscribed peer yet: the engine re-broadcasts while it is stuck
      this.init.log?.trace('publish on %s failed: %e', topic, err)
    }
  }

  async broadcastVote (bytes: Uint8Array): Promise<void> {
    await this.publish(this.votesTopic, bytes)
  }

  async broadcastCertificate (bytes: Uint8Array): Promise<void> {
    await this.publish(this.certsTopic, bytes)
  }

  // ---- backfill ----------------------------------------------------------------------

  private async serve (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(this.init.timeoutMs ?? 3000)
    const lp = lpStream(stream, { maxDataLength: MAX_REQUEST })
    try {
      const req = await lp.read({ signal })
      const r = new Reader(req.subarray())
      const from = r.varint()
      const to = r.varint()
      r.finish()
      if (to < from || to - from >= MAX_BACKFILL_VIEWS) { throw new Error('bad range') }
      const certs: Uint8Array[] = []
      for (let v = from; v <= to; v++) { certs.push(...(this.engine?.certificatesFor(v) ?? []).map(encodeCertificate)) }
      const w = new Writer(1024).length32(certs.length)
      for (const c of certs) { w.bytes(c) }
      await lp.write(w.finish(), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  private async request (peer: PeerId, from: number, to: number, signal: AbortSignal): Promise<Uint8Array[]> {
    const stream = await this.init.libp2p.dialProtocol(peer, this.backfillProtocol, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
      await lp.write(new Writer(20).varint(from).varint(to).finish(), { signal })
      const res = await lp.read({ signal })
      await stream.close({ signal })
      const r = new Reader(res.subarray())
      const out = r.vec(MAX_BACKFILL_VIEWS * 3, r => r.bytes(MAX_FRAME))
      r.finish()
      return out
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }

  /** Ask up to three connected peers for the certificates of `[from, to]`. */
  async fetchCertificates (from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]> {
    const hi = Math.min(to, from + MAX_BACKFILL_VIEWS - 1)
    const peers = this.init.libp2p.getPeers().sort(() => Math.random() - 0.5).slice(0, 3)
    const results = await Promise.allSettled(peers.map(async p => this.request(p, from, hi, options.signal)))
    return results.flatMap(r => r.status === 'fulfilled' ? r.value : [])
  }
}
