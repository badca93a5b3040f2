/**
 * The light client: verified reads of a chain's databases from any peer,
 * trusting only the validator set it is given (docs/PROTOCOLS.md,
 * "Light-client proofs"; README, "Light clients").
 *
 * `lightClient(libp2p, { validators, chain, application })` works on any
 * libp2p node the caller made (Node.js or a browser: this module uses no
 * `node:` modules and no storage). `get(peer, db, key)` opens one stream on
 * the database's proof protocol, sends one request frame, reads one answer
 * frame (bounded reader, capped at `maxResponseBytes`, within `timeout`)
 * and verifies it (`verify.ts`). It never returns an unverified value: every
 * failure is a `LightError` whose code names what failed.
 *
 * Outbound requests are limited per peer (concurrency and rate, as the sync
 * resolvers' clients) so a client stays within what servers admit.
 */

import { frameStream } from '../net/frames.ts'
import { PeerLimiter } from '../net/limits.ts'
import { DEFAULT_PROTOCOL_PREFIX } from '../net/protocol.ts'
import { linked, sleep } from '../net/signals.ts'
import { LightError } from './errors.ts'
import { DEFAULT_MAX_LIGHT_RESPONSE, MAX_KEY_BYTES, decodeLightAnswer, encodeLightRequest, lightProtocolId } from './protocol.ts'
import { LightValidators, maxFinalizationBytes, verifyAnswer } from './verify.ts'
import type { LightApplication, LightBlock, LightDatabase, LightValue } from './verify.ts'
import type { RateLimit } from '../net/limits.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface LightClientInit<B extends LightBlock> {
  /** The trusted validator set: Ed25519 peer ids, in the chain's order. */
  validators: readonly string[]
  /** The chain id (signed into every vote; namespaces the protocol ids). */
  chain: string
  /** How blocks decode and which root a block commits to per database (the application's seam). */
  application: LightApplication<B>
  protocolPrefix?: string
  /** Deadline of one `get` (ms). Default 10000. */
  timeout?: number
  /** Largest answer read. Default 4 MiB. */
  maxResponseBytes?: number
  /** Per-peer outbound limits. Defaults: 4 concurrent, 10/s, burst 20. */
  outbound?: { maxConcurrent?: number, rate?: RateLimit }
}

export interface GetOptions {
  /** A finalized height (default: the latest the peer can prove). */
  height?: number
  signal?: AbortSignal
}

export interface LightClient {
  /** The verified value of `key` in database `db`, as `peer` proves it; a `LightError` otherwise. */
  get(peer: PeerId | Multiaddr, db: string, key: Uint8Array, options?: GetOptions): Promise<LightValue>
  /** The proof protocol id of database `db`. */
  protocol(db: string): string
}

class Client<B extends LightBlock> implements LightClient {
  private readonly libp2p: Pick<Libp2p, 'dialProtocol'>
  private readonly init: LightClientInit<B>
  private readonly validators: LightValidators
  private readonly limiter: PeerLimiter
  private readonly prefix: string

  constructor (libp2p: Pick<Libp2p, 'dialProtocol'>, init: LightClientInit<B>) {
    this.libp2p = libp2p
    this.init = init
    this.validators = new LightValidators(init.chain, init.validators)
    this.limiter = new PeerLimiter(init.outbound?.rate ?? { perSecond: 10, burst: 20 }, init.outbound?.maxConcurrent ?? 4)
    this.prefix = init.protocolPrefix ?? DEFAULT_PROTOCOL_PREFIX
    lightProtocolId(this.prefix, init.chain, 'check')
  }

  protocol (db: string): string {
    return lightProtocolId(this.prefix, this.init.chain, db)
  }

  private database (db: string): LightDatabase {
    const spec = this.init.application.databases[db]
    if (spec === undefined) { throw new LightError('Unsupported', `the application has no database ${JSON.stringify(db)}`) }
    if (spec.light === undefined) { throw new LightError('Unsupported', `${db} is not a current database: only current databases prove a key's value now`) }
    if (this.init.application.lightRoot === undefined) { throw new LightError('Unsupported', 'the application does not say which root a block commits to (lightRoot)') }
    return spec.light
  }

  async get (peer: PeerId | Multiaddr, db: string, key: Uint8Array, options: GetOptions = {}): Promise<LightValue> {
    const spec = this.database(db)
    if (key.length > MAX_KEY_BYTES) { throw new LightError('Unsupported', `a key of at most ${MAX_KEY_BYTES} bytes`) }
    const request = encodeLightRequest({ key, height: options.height })
    const peerKey = peer.toString()
    const link = linked(options.signal === undefined ? [] : [options.signal], this.init.timeout ?? 10_000)
    // over the per-peer limits: wait for a slot (within the deadline) rather than exceed what servers admit
    for (let admitted = this.limiter.tryAcquire(peerKey); !admitted.ok; admitted = this.limiter.tryAcquire(peerKey)) {
      await sleep(Math.max(10, admitted.retryInMs), link.signal)
      if (link.signal.aborted) {
        link.dispose()
        options.signal?.throwIfAborted()
        throw new LightError('NoAnswer', `too many requests to ${peerKey} (${admitted.reason}) until the deadline`)
      }
    }
    let body: Uint8Array
    try {
      const stream = await this.libp2p.dialProtocol(peer, this.protocol(db), { signal: link.signal })
      try {
        const frames = frameStream(stream, { maxDataLength: this.init.maxResponseBytes ?? DEFAULT_MAX_LIGHT_RESPONSE })
        await frames.write(request, { signal: link.signal })
        await stream.close({ signal: link.signal })
        body = await frames.read({ signal: link.signal })
        await stream.closeRead()
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
    } catch (err) {
      options.signal?.throwIfAborted()
      throw new LightError('NoAnswer', `${peerKey} gave no answer on ${db}: ${link.timedOut() ? 'timed out' : (err as Error)?.message}`, { cause: err })
    } finally {
      link.dispose()
      this.limiter.release(peerKey)
    }
    const answer = decodeLightAnswer(body, {
      maxBlockBytes: this.init.application.blockCodec.maxBytes,
      maxFinalizationBytes: maxFinalizationBytes(this.validators.n)
    })
    if (answer.type === 'unavailable') {
      throw new LightError('HeightUnavailable', `${peerKey} cannot prove ${options.height === undefined ? 'any height' : `height ${options.height}`} of ${db}` +
        (answer.latest === undefined ? '' : ` (it proves height ${answer.latest})`))
    }
    if (answer.type === 'no-value') {
      if (spec.kind === 'current-ordered') { throw new LightError('Malformed', `${peerKey} claims ${db} has no value for the key without an exclusion proof`) }
      throw new LightError('Unprovable', `${peerKey} says the key has no value in ${db} at height ${answer.height}; ${db} is unordered, so absence cannot be proven`)
    }
    return verifyAnswer(this.validators, this.init.application, db, spec, key, options.height, answer)
  }
}

/** A light client on `libp2p` (any node: it only dials the proof protocols). */
export function lightClient<B extends LightBlock> (libp2p: Pick<Libp2p, 'dialProtocol'>, init: LightClientInit<B>): LightClient {
  return new Client(libp2p, init)
}
