/**
 * The libp2p transport of the consensus engine:
 * - gossipsub topics `/<prefix>/<chain>/consensus/votes/1` and `.../certs/1`;
 * each message is `varint(seq) ‖ vote-or-certificate`, the sequence number
 * making re-broadcasts (e.g. a repeated nullify) distinct gossip messages;
 * the topic validator decodes, signature-checks and age-checks every message
 * (`gossip.ts`: the engine's `admitVote` / `admitCertificate`) before
 * gossipsub relays it, so an invalid one stops at the first honest node and lowers its
 * sender's score (docs/PROTOCOLS.md "Gossip validation and peer scoring");
 * - a request/response protocol `/<prefix>/<chain>/consensus/backfill/1.0.0`:
 * request `varint(from) ‖ varint(to)` (at most `MAX_BACKFILL_VIEWS` views),
 * response `Vec<certificate>` (capped), one uvarint-length-prefixed frame
 * each way (`src/net/frames.ts`, under a deadline), to catch up on views
 * missed while offline or partitioned; a peer whose bytes break the
 * protocol goes to the `blocker`. Served by the kit's one-request server
 * (`src/net/server.ts`): per-peer concurrency and rate limits, read and
 * answer deadlines, and the `libp2p_qmdb_backfill_*` serving metrics.
 */

import { TopicValidatorResult } from '@libp2p/gossipsub'
import { Reader, Writer } from '../codec/index.ts'
import { topicResult } from '../net/admission.ts'
import { deadline, frameStream } from '../net/frames.ts'
import { PeerLimiter } from '../net/limits.ts'
import { ServiceMetrics } from '../net/metrics.ts'
import { RequestServer } from '../net/server.ts'
import { admitGossip, deliverGossip, sealGossip } from './gossip.ts'
import { encodeCertificate } from './types.ts'
import type { ConsensusTransport, SimplexEngine } from './engine.ts'
import type { GossipAdmission, GossipKind } from './gossip.ts'
import type { RequestHandler } from '../net/server.ts'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'

export const MAX_BACKFILL_VIEWS = 256
/** Largest backfill response frame accepted (and served). */
export const MAX_BACKFILL_RESPONSE_BYTES = 4 * 1024 * 1024
const MAX_REQUEST = 32
/**
 * Inbound backfill per peer: an honest engine has one backfill in flight and
 * asks three peers, so a peer is asked at most once at a time; the rate
 * leaves room for restarts and catching up, while a peer asking for 256
 * views of certificates in a loop is shed before its request is read.
 */
const BACKFILL_INBOUND = { maxConcurrent: 2, maxTotal: 32, rate: { perSecond: 10, burst: 20 } }

export interface BackfillBlocker {
  block(peer: PeerId, reason: string): void
  isBlocked(peer: PeerId): boolean
}

class BackfillViolation extends Error {
  readonly name = 'BackfillViolation'
}

/** Errors that only bytes breaking the protocol cause (never a timeout, a reset or a closed connection). */
const VIOLATIONS = new Set(['BackfillViolation', 'CodecError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'StreamBufferError'])

function isViolation (err: unknown): boolean {
  return VIOLATIONS.has((err as Error)?.name)
}

export interface ConsensusNetworkInit {
  libp2p: Libp2p
  pubsub: GossipSub
  chainId: string
  /** Protocol/topic prefix (default `qmdb`). */
  prefix?: string
  /**
   * Deadline of one backfill exchange, served or asked (default 3000 ms):
   * the stream is aborted when it passes, even while bytes still arrive.
   */
  timeoutMs?: number
  /** Where backfill protocol violations go (the node passes the marshal service's `PeerBlocker`). */
  blocker?: BackfillBlocker
  log?: Logger
}

/** The gossip topics and backfill protocol id of chain `chainId` (known before the network exists, e.g. for scoring). */
export function consensusNames (chainId: string, prefix = 'qmdb'): { votesTopic: string, certsTopic: string, backfillProtocol: string } {
  const base = `/${prefix}/${chainId}/consensus`
  return { votesTopic: `${base}/votes/1`, certsTopic: `${base}/certs/1`, backfillProtocol: `${base}/backfill/1.0.0` }
}

export class ConsensusNetwork implements ConsensusTransport {
  readonly votesTopic: string
  readonly certsTopic: string
  readonly backfillProtocol: string
  private readonly init: ConsensusNetworkInit
  private engine: SimplexEngine | undefined
  private seq = 0
  private readonly server: RequestServer
  private readonly backfill: BackfillHandler
  private shutdown: AbortController | undefined
  /** Messages accepted by the validator, decoded, until gossipsub delivers them (weak: a dropped message leaves nothing behind). */
  private readonly admitted = new WeakMap<Uint8Array, Extract<GossipAdmission, { admission: 'accept' }>>()
  private readonly onMessage = (evt: CustomEvent<Message>): void => { this.handleGossip(evt.detail) }

  constructor (init: ConsensusNetworkInit) {
    this.init = init
    const names = consensusNames(init.chainId, init.prefix)
    this.votesTopic = names.votesTopic
    this.certsTopic = names.certsTopic
    this.backfillProtocol = names.backfillProtocol
    const timeout = init.timeoutMs ?? 3000
    const { maxConcurrent, maxTotal, rate } = BACKFILL_INBOUND
    this.server = new RequestServer(
      { readTimeout: timeout, serveTimeout: timeout },
      new PeerLimiter(rate, maxConcurrent, maxTotal),
      new ServiceMetrics(init.libp2p.metrics, 'backfill', { client: false }),
      init.libp2p.logger.forComponent('libp2p:qmdb:backfill')
    )
    this.backfill = new BackfillHandler(() => this.engine, (peer, reason) => { this.violation(peer, reason) })
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
    this.shutdown = new AbortController()
    const shutdown = this.shutdown.signal
    await libp2p.handle(this.backfillProtocol, async (stream, connection) => {
      if (this.init.blocker?.isBlocked(connection.remotePeer) === true) {
        stream.abort(new BackfillViolation('peer blocked'))
        return
      }
      await this.server.handle(stream, connection, this.backfill, shutdown)
    }, { maxInboundStreams: 32 })
  }

  async stop (): Promise<void> {
    const { pubsub, libp2p } = this.init
    pubsub.removeEventListener('message', this.onMessage)
    pubsub.unsubscribe(this.votesTopic)
    pubsub.unsubscribe(this.certsTopic)
    pubsub.topicValidators.delete(this.votesTopic)
    pubsub.topicValidators.delete(this.certsTopic)
    await libp2p.unhandle(this.backfillProtocol)
    this.shutdown?.abort()
    this.shutdown = undefined
    this.engine = undefined
  }

  /**
   * The topic validator: runs before gossipsub relays anything, so an
   * invalid vote or certificate stops at the first honest node and its
   * sender's score drops (reject); stale or duplicate ones are dropped
   * without penalty (ignore) — `admitGossip` (`gossip.ts`). Accepted
   * messages are delivered to the engine as decoded here (`admitted`), so
   * nothing is decoded or verified twice.
   */
  private validate (msg: Message, kind: GossipKind): TopicValidatorResult {
    const engine = this.engine
    if (engine === undefined) { return TopicValidatorResult.Ignore }
    const result = admitGossip(engine, kind, msg.data)
    if (result.admission === 'accept') { this.admitted.set(msg.data, result) }
    return topicResult(result.admission)
  }

  private handleGossip (msg: Message): void {
    const engine = this.engine
    const admitted = this.admitted.get(msg.data)
    if (engine === undefined || admitted === undefined) { return }
    this.admitted.delete(msg.data)
    // a vote arrives on the votes topic, a certificate on the certs topic: the validator of the topic decoded it
    if (msg.topic === (admitted.kind === 'vote' ? this.votesTopic : this.certsTopic)) { void deliverGossip(engine, admitted) }
  }

  private async publish (topic: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.init.pubsub.publish(topic, sealGossip(this.seq++, bytes))
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

  private violation (peer: PeerId, reason: string): void {
    this.init.log?.('backfill protocol violation by %p: %s', peer, reason)
    this.init.blocker?.block(peer, reason)
  }

  private async request (peer: PeerId, from: number, to: number, signal: AbortSignal): Promise<Uint8Array[]> {
    const stream = await this.init.libp2p.dialProtocol(peer, this.backfillProtocol, { signal })
    const link = deadline(stream, this.init.timeoutMs ?? 3000, [signal])
    try {
      const lp = frameStream(stream, { maxDataLength: MAX_BACKFILL_RESPONSE_BYTES })
      await lp.write(encodeBackfillRequest(from, to), { signal: link.signal })
      await stream.close({ signal: link.signal })
      let res: Uint8Array
      try {
        res = await lp.read({ signal: link.signal })
      } catch (err) {
        if (isViolation(err)) { this.violation(peer, `oversized backfill response: ${(err as Error).message}`) }
        throw err
      }
      try {
        return decodeBackfillResponse(res)
      } catch (err) {
        this.violation(peer, `malformed backfill response: ${(err as Error).message}`)
        throw err
      }
    } catch (err) {
      stream.abort(err as Error)
      throw err
    } finally {
      link.dispose()
    }
  }

  /** Ask up to three connected peers for the certificates of `[from, to]`. */
  async fetchCertificates (from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]> {
    const hi = Math.min(to, from + MAX_BACKFILL_VIEWS - 1)
    const blocker = this.init.blocker
    const peers = this.init.libp2p.getPeers().filter(p => blocker?.isBlocked(p) !== true).sort(() => Math.random() - 0.5).slice(0, 3)
    const results = await Promise.allSettled(peers.map(async p => this.request(p, from, hi, options.signal)))
    return results.flatMap(r => r.status === 'fulfilled' ? r.value : [])
  }
}

/** The backfill request for the certificates of views `[from, to]`. */
export function encodeBackfillRequest (from: number, to: number): Uint8Array {
  return new Writer(20).varint(from).varint(to).finish()
}

/** The encoded certificates of a backfill response body (`CodecError` if it breaks the protocol). */
export function decodeBackfillResponse (body: Uint8Array): Uint8Array[] {
  const r = new Reader(body)
  const out = r.vec(MAX_BACKFILL_VIEWS * 3, r => r.bytes(MAX_BACKFILL_RESPONSE_BYTES))
  r.finish()
  return out
}

/** A backfill answer starts with its number of certificates (a varint): a lone zero is the empty answer. */
function isEmptyAnswer (body: Uint8Array): boolean {
  return body.length === 1 && body[0] === 0
}

/** What the backfill protocol adds to the kit's server: its request codec, its answer from the engine, its violations. */
export class BackfillHandler implements RequestHandler<{ from: number, to: number }> {
  readonly maxRequestBytes = MAX_REQUEST
  private readonly engine: () => SimplexEngine | undefined
  private readonly onViolation: (peer: PeerId, reason: string) => void

  constructor (engine: () => SimplexEngine | undefined, onViolation: (peer: PeerId, reason: string) => void) {
    this.engine = engine
    this.onViolation = onViolation
  }

  decode (frame: Uint8Array): { from: number, to: number } {
    const r = new Reader(frame)
    const from = r.varint()
    const to = r.varint()
    r.finish()
    if (to < from || to - from >= MAX_BACKFILL_VIEWS) { throw new BackfillViolation(`bad range [${from}, ${to}]`) }
    return { from, to }
  }

  async answer ({ from, to }: { from: number, to: number }): Promise<Uint8Array> {
    const certs: Uint8Array[] = []
    for (let v = from; v <= to; v++) { certs.push(...(this.engine()?.certificatesFor(v) ?? []).map(encodeCertificate)) }
    const w = new Writer(1024).length32(certs.length)
    for (const c of certs) { w.bytes(c) }
    return w.finish()
  }

  isNoData (body: Uint8Array): boolean {
    return isEmptyAnswer(body)
  }

  /** A reset or a slow peer is not a violation (its own deadline may have passed); bytes that break the protocol are. */
  malformed (peer: PeerId, err: Error): void {
    if (isViolation(err)) { this.onViolation(peer, `malformed backfill request: ${err.message}`) }
  }
}
