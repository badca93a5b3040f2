/**
 * Durable storage of the block store (marshal) on a datastore.
 *
 * Layout under `prefix`:
 * - `b/<digest hex>`: encoded block (proposed, verified, finalized; a block at a
 * height once finalized to another digest is deleted then)
 * - `n/<height:16hex>/<digest hex>`: empty marker, so blocks can be pruned by height
 * - `h/<height:16hex>`: digest of the finalized block at that height
 * - `f/<height:16hex>`: finalization certificate for that height (when one was received)
 * - `meta`: version u8 ‖ varint(processed + 1, 0 = never) ‖ varint epoch ‖ varint view
 * (the round of the processed block: the floor below which nothing is redelivered)
 *
 * Every write is one atomic batch; a finalized block's bytes are always stored
 * before (or with) its height index, so a crash never leaves a height pointing
 * at a missing block.
 */

import { Reader, Writer, hex } from '../codec/index.ts'
import { hex16, joinKey, parseHex16 } from '../storage/keys.ts'
import { MarshalError } from './types.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock, Round } from './types.ts'
import type { Kv } from '../storage/kv.ts'

const META_VERSION = 1

export interface ProcessedState {
  height: number | undefined
  round: Round
}

export class BlockStore<B extends MarshalBlock, F> {
  private readonly kv: Kv
  private readonly prefix: string
  private readonly codec: BlockCodec<B>
  private readonly scheme: FinalizationScheme<F>
  /** decoded blocks by digest hex, least recently used first, with their encoded sizes */
  private readonly cache = new Map<string, { block: B, bytes: number }>()
  private cachedBytes = 0
  private readonly cacheSize: number
  private readonly cacheBytes: number
  /** highest height with a certificate, once scanned (`null`: not known yet); kept current by writes */
  private latestCert: number | undefined | null = null
  /** bumped by every certificate write and prune, so a scan racing them does not cache a stale answer */
  private certGeneration = 0

  /**
   * The decoded-block cache holds at most `cacheSize` blocks and
   * `cacheBytes` of encoded block bytes (a decoded block takes a small
   * multiple of its encoding), whichever is reached first. The defaults
   * cover the blocks the stateful manager and serving peers read again (the
   * recent tip), not the whole retained history.
   */
  constructor (kv: Kv, prefix: string, codec: BlockCodec<B>, scheme: FinalizationScheme<F>, cacheSize = 256, cacheBytes = 16 * 1024 * 1024) {
    this.kv = kv
    this.prefix = prefix
    this.codec = codec
    this.scheme = scheme
    this.cacheSize = cacheSize
    this.cacheBytes = cacheBytes
  }

  /** Blocks and encoded bytes in the decoded-block cache. */
  get cached (): { blocks: number, bytes: number } {
    return { blocks: this.cache.size, bytes: this.cachedBytes }
  }

  private key (...parts: string[]): string {
    return joinKey(this.prefix, ...parts)
  }

  private remember (b: B, bytes: number): void {
    const k = hex(b.digest)
    this.forget(k)
    if (bytes > this.cacheBytes) { return }
    this.cache.set(k, { block: b, bytes })
    this.cachedBytes += bytes
    while (this.cache.size > this.cacheSize || this.cachedBytes > this.cacheBytes) {
      this.forget(this.cache.keys().next().value as string)
    }
  }

  private forget (k: string): void {
    const entry = this.cache.get(k)
    if (entry === undefined) { return }
    this.cache.delete(k)
    this.cachedBytes -= entry.bytes
  }

  async putBlock (block: B): Promise<void> {
    const encoded = this.codec.encode(block)
    this.remember(block, encoded.length)
    await this.kv.batch()
      .put(this.key('b', hex(block.digest)), encoded)
      .put(this.key('n', hex16(block.height), hex(block.digest)), new Uint8Array(0))
      .commit()
  }

  async getBlock (digest: Uint8Array): Promise<B | undefined> {
    const k = hex(digest)
    const cached = this.cache.get(k)
    if (cached !== undefined) {
      // most recently used goes last
      this.cache.delete(k)
      this.cache.set(k, cached)
      return cached.block
    }
    const bytes = await this.kv.get(this.key('b', k))
    if (bytes === undefined) { return undefined }
    let b: B
    try {
      b = this.codec.decode(bytes)
    } catch (err) {
      throw new MarshalError('DataCorrupted', `stored block ${k} does not decode: ${(err as Error).message}`)
    }
    if (hex(b.digest) !== k) { throw new MarshalError('DataCorrupted', `stored block ${k} has digest ${hex(b.digest)}`) }
    this.remember(b, bytes.length)
    return b
  }

  /** Whether the block with `digest` is stored (cache first; no decode, no cache change). */
  async hasBlock (digest: Uint8Array): Promise<boolean> {
    const k = hex(digest)
    return this.cache.has(k) || (await this.kv.get(this.key('b', k))) !== undefined
  }

  /**
   * Record `block` as the finalized block at its height (stored with it),
   * with its certificate if any. Other blocks stored at that height are off
   * the finalized chain and are deleted in the same batch: nothing a peer
   * gossiped that lost (or never took part) stays on disk.
   */
  async setFinalized (block: B, cert?: F): Promise<void> {
    const encoded = this.codec.encode(block)
    this.remember(block, encoded.length)
    const h = hex16(block.height)
    const digest = hex(block.digest)
    const batch = this.kv.batch()
    for await (const k of this.kv.keys(this.key('n', h) + '/')) {
      const other = k.slice(k.lastIndexOf('/') + 1)
      if (other === digest) { continue }
      batch.delete(k).delete(this.key('b', other))
      this.forget(other)
    }
    batch
      .put(this.key('b', digest), encoded)
      .put(this.key('n', h, digest), new Uint8Array(0))
      .put(this.key('h', h), block.digest)
    if (cert !== undefined) { batch.put(this.key('f', h), this.scheme.encode(cert)) }
    await batch.commit({ sync: true })
    if (cert !== undefined) {
      this.certGeneration++
      if (this.latestCert !== null) { this.latestCert = Math.max(this.latestCert ?? -1, block.height) }
    }
  }

  async getFinalizedDigest (height: number): Promise<Uint8Array | undefined> {
    const d = await this.kv.get(this.key('h', hex16(height)))
    if (d !== undefined && d.length !== 32) { throw new MarshalError('DataCorrupted', `finalized index at ${height} is ${d.length} bytes`) }
    return d
  }

  async getFinalizedBlock (height: number): Promise<B | undefined> {
    const d = await this.getFinalizedDigest(height)
    return d === undefined ? undefined : this.getBlock(d)
  }

  async getFinalization (height: number): Promise<F | undefined> {
    const bytes = await this.kv.get(this.key('f', hex16(height)))
    if (bytes === undefined) { return undefined }
    try {
      return this.scheme.decode(bytes)
    } catch (err) {
      throw new MarshalError('DataCorrupted', `stored finalization at ${height}: ${(err as Error).message}`)
    }
  }

  /** Highest height with a stored finalization certificate, if any (scanned once, then cached). */
  async latestFinalizationHeight (): Promise<number | undefined> {
    if (this.latestCert !== null) { return this.latestCert }
    const generation = this.certGeneration
    let last: number | undefined
    for await (const k of this.kv.keys(this.key('f') + '/')) {
      const h = parseHex16(k.slice(k.lastIndexOf('/') + 1))
      if (h !== undefined && (last === undefined || h > last)) { last = h }
    }
    if (generation === this.certGeneration) { this.latestCert = last }
    return last
  }

  /** Highest finalized height indexed, if any. */
  async latestFinalizedHeight (): Promise<number | undefined> {
    let last: number | undefined
    for await (const k of this.kv.keys(this.key('h') + '/')) {
      const h = parseHex16(k.slice(k.lastIndexOf('/') + 1))
      if (h !== undefined && (last === undefined || h > last)) { last = h }
    }
    return last
  }

  async getProcessed (): Promise<ProcessedState> {
    const bytes = await this.kv.get(this.key('meta'))
    if (bytes === undefined) { return { height: undefined, round: { epoch: 0, view: 0 } } }
    try {
      const r = new Reader(bytes)
      if (r.u8() !== META_VERSION) { throw new Error('unknown version') }
      const h = r.varint()
      const epoch = r.varint()
      const view = r.varint()
      r.finish()
      return { height: h === 0 ? undefined : h - 1, round: { epoch, view } }
    } catch (err) {
      throw new MarshalError('DataCorrupted', `marshal meta: ${(err as Error).message}`)
    }
  }

  async setProcessed (height: number, round: Round): Promise<void> {
    await this.kv.batch().put(this.key('meta'), new Writer(24).u8(META_VERSION).varint(height + 1).varint(round.epoch).varint(round.view).finish()).commit({ sync: true })
  }

  /** Delete every block, index entry and certificate below `height`. */
  async pruneBelow (height: number): Promise<number> {
    const batch = this.kv.batch()
    let pruned = 0
    for await (const k of this.kv.keys(this.key('n') + '/')) {
      const parts = k.slice(this.key('n').length + 1).split('/')
      const h = parseHex16(parts[0])
      if (h === undefined || h >= height) { continue }
      batch.delete(k).delete(this.key('b', parts[1]))
      this.forget(parts[1])
      pruned++
    }
    for (const sub of ['h', 'f']) {
      for await (const k of this.kv.keys(this.key(sub) + '/')) {
        const h = parseHex16(k.slice(k.lastIndexOf('/') + 1))
        if (h !== undefined && h < height) { batch.delete(k) }
      }
    }
    await batch.commit()
    this.certGeneration++
    this.latestCert = null
    return pruned
  }
}
