/**
 * The fixed validator set: Ed25519 public keys (libp2p peer ids) in order,
 * quorum arithmetic, round-robin leaders, and signature verification of
 * votes and certificates (with a bounded cache of certificate digests, so a
 * certificate seen by gossip and again by backfill is checked once).
 *
 * `n` validators tolerate `f = ⌊(n - 1) / 3⌋` Byzantine ones; a quorum is
 * `n - f` (`2f + 1` when `n = 3f + 1`): any two quorums share at least one
 * honest validator, which is what makes conflicting certificates impossible.
 */

import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { signedMessage } from './types.ts'
import type { Certificate, Vote } from './types.ts'
import type { KeyObject } from 'node:crypto'

/** Certificates remembered as verified (a 44-byte digest each). */
const MAX_VERIFIED = 4096

// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw 32-byte key follows
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export class ValidatorSetError extends Error {
  readonly name = 'ValidatorSetError'
}

export class ValidatorSet {
  readonly chainId: string
  /** Peer ids (base58btc strings), in order. */
  readonly ids: readonly string[]
  private readonly keys: KeyObject[]
  private readonly index = new Map<string, number>()
  private readonly verified = new Set<string>()

  constructor (chainId: string, peerIds: readonly string[]) {
    if (peerIds.length === 0) { throw new ValidatorSetError('the validator set is empty') }
    this.chainId = chainId
    this.ids = [...peerIds]
    this.keys = peerIds.map((id, i) => {
      let raw: Uint8Array
      try {
        const pid = peerIdFromString(id)
        if (pid.type !== 'Ed25519' || pid.publicKey === undefined) { throw new Error('not an Ed25519 peer id') }
        raw = pid.publicKey.raw
      } catch (err) {
        throw new ValidatorSetError(`validator ${i} (${id}): ${(err as Error).message}`)
      }
      if (this.index.has(id)) { throw new ValidatorSetError(`validator ${id} is listed twice`) }
      this.index.set(id, i)
      return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
    })
  }

  get n (): number { return this.ids.length }
  /** Byzantine validators tolerated. */
  get f (): number { return Math.floor((this.n - 1) / 3) }
  get quorum (): number { return this.n - this.f }

  indexOf (peerId: string): number | undefined {
    return this.index.get(peerId)
  }

  /** Index of the leader of `view` (round-robin). */
  leader (view: number): number {
    return view % this.n
  }

  private verifySignature (signer: number, message: Uint8Array, signature: Uint8Array): boolean {
    const key = this.keys[signer]
    if (key === undefined || signature.length !== 64) { return false }
    try {
      return cryptoVerify(null, message, key, signature)
    } catch {
      return false
    }
  }

  verifyVote (v: Vote): boolean {
    return this.verifySignature(v.signer, signedMessage(this.chainId, v.subject), v.signature)
  }

  /** A quorum of distinct validators, each signature valid, all on the same subject. */
  verifyCertificate (c: Certificate): boolean {
    if (c.signers.length !== c.signatures.length || c.signers.length < this.quorum) { return false }
    for (let i = 1; i < c.signers.length; i++) {
      if (c.signers[i] <= c.signers[i - 1]) { return false }
    }
    const message = signedMessage(this.chainId, c.subject)
    // a digest of the whole certificate: the cache costs the same per entry whatever the number of signers
    const hash = createHash('sha256').update(message)
    for (let i = 0; i < c.signers.length; i++) { hash.update(`${c.signers[i]},`).update(c.signatures[i]) }
    const cacheKey = hash.digest('base64')
    if (this.verified.has(cacheKey)) { return true }
    for (let i = 0; i < c.signers.length; i++) {
      if (!this.verifySignature(c.signers[i], message, c.signatures[i])) { return false }
    }
    // oldest first out (a Set iterates in insertion order)
    if (this.verified.size >= MAX_VERIFIED) { this.verified.delete(this.verified.values().next().value as string) }
    this.verified.add(cacheKey)
    return true
  }
}
