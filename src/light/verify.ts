/**
 * What a light client checks in an answer, trusting nothing but the
 * validator set and the chain id it was given (docs/PROTOCOLS.md,
 * "Light-client proofs"), in this order, each failure a `LightError`
 * naming it:
 *
 * 1. the finalization decodes, is a finalization, and carries a quorum of
 * distinct validators' valid Ed25519 signatures over the chain's signed
 * message (`Certificate`), for the digest of the block sent (`Certificate`);
 * 2. the block decodes with the application's codec (`Malformed`), at the
 * height asked for (`HeightMismatch`);
 * 3. the application's seam reads the database's root from the block, and
 * it equals the root the proof is against (`RootCommitment`);
 * 4. the proof shows the key's value (or, ordered only, its absence) under
 * that root (`Proof`); an unordered proof is for the key asked (`KeyMismatch`).
 *
 * Browser-safe: signatures are checked with `@libp2p/crypto`'s public keys
 * (no `node:` modules; `src/consensus/validators.ts` uses `node:crypto`).
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { decodeCertificate, isFinalization, signedMessage } from '../consensus/types.ts'
import { decodeOperationProof, verifyOperationProof } from '../qmdb/current-proof.ts'
import { compareBytes } from '../qmdb/ops.ts'
import { decodeExclusionProof, decodeOrderedKeyValueProof, verifyExclusionProof, verifyOrderedKeyValueProof } from '../qmdb/ordered-proof.ts'
import { LightError } from './errors.ts'
import type { LightAnswer } from './protocol.ts'
import type { Finalization } from '../consensus/types.ts'
import type { AnyOpCodec } from '../qmdb/ops.ts'
import type { PublicKey } from '@libp2p/interface'

/** How a light client reads one database: what its proofs look like. */
export interface LightDatabase {
  /** `current`: values proven current, absence unprovable; `current-ordered`: also exclusion proofs. */
  readonly kind: 'current' | 'current-ordered'
  /** The database's operation codec (key and value fields, encoding). */
  readonly codec: AnyOpCodec
  /** The bitmap chunk size N of the database (every verifier must use the database's N). */
  readonly chunkBytes: number
}

/** The block fields a light client needs. */
export interface LightBlock {
  readonly digest: Uint8Array
  readonly height: number
}

/**
 * The application seam: how a light client decodes the chain's blocks and
 * finds the root a block commits to for a database. A `NodeApplication`
 * whose databases are `current` kinds and which implements `lightRoot` is one.
 */
export interface LightApplication<B extends LightBlock> {
  readonly blockCodec: { decode(bytes: Uint8Array): B, readonly maxBytes: number }
  readonly databases: { readonly [name: string]: { readonly light?: LightDatabase } }
  /** The root `block` commits to for database `db` (what its proofs verify against), or undefined. */
  lightRoot?(block: B, db: string): Uint8Array | undefined
}

/** A verified read. */
export type LightValue =
  | { absent: false, value: Uint8Array, height: number, blockDigest: Uint8Array }
  | { absent: true, value: undefined, height: number, blockDigest: Uint8Array }

/** Largest finalization a client reads for `n` validators (as `finalizationScheme`'s `maxBytes`). */
export function maxFinalizationBytes (n: number): number {
  return 128 + n * 80
}

/** The trusted validator set of a chain, as public keys (browser-safe verification). */
export class LightValidators {
  readonly chain: string
  readonly n: number
  readonly quorum: number
  private readonly keys: PublicKey[]

  constructor (chain: string, ids: readonly string[]) {
    if (ids.length === 0) { throw new RangeError('the validator set is empty') }
    if (new Set(ids).size !== ids.length) { throw new RangeError('a validator is listed twice') }
    this.chain = chain
    this.n = ids.length
    this.quorum = this.n - Math.floor((this.n - 1) / 3)
    this.keys = ids.map((id, i) => {
      const pid = peerIdFromString(id)
      if (pid.type !== 'Ed25519' || pid.publicKey === undefined) { throw new RangeError(`validator ${i} (${id}) is not an Ed25519 peer id`) }
      return pid.publicKey
    })
  }

  /** The finalization in `bytes`, verified (quorum of distinct validators, every signature valid). */
  async verifyFinalization (bytes: Uint8Array): Promise<Finalization> {
    let f
    try {
      f = decodeCertificate(bytes)
    } catch (err) {
      throw new LightError('Certificate', `undecodable finalization: ${(err as Error).message}`, { cause: err })
    }
    if (!isFinalization(f)) { throw new LightError('Certificate', `a ${f.subject.kind} certificate, not a finalization`) }
    if (f.signers.length < this.quorum) { throw new LightError('Certificate', `${f.signers.length} signers, a quorum is ${this.quorum}`) }
    const message = signedMessage(this.chain, f.subject)
    for (let i = 0; i < f.signers.length; i++) {
      const key = this.keys[f.signers[i]]
      if (key === undefined) { throw new LightError('Certificate', `signer ${f.signers[i]} is not a validator`) }
      // decodeCertificate already refused repeated or unordered signers
      if (!await key.verify(message, f.signatures[i])) { throw new LightError('Certificate', `signature of validator ${f.signers[i]} does not verify`) }
    }
    return f
  }
}

function digestsEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0
}

function decoded<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    throw new LightError('Malformed', `${what}: ${(err as Error).message}`, { cause: err })
  }
}

/** Verify a decoded answer to `key` (at `height`, if asked) from database `db` (see the module comment). */
export async function verifyAnswer<B extends LightBlock> (
  validators: LightValidators, application: LightApplication<B>, dbName: string, db: LightDatabase,
  key: Uint8Array, height: number | undefined, answer: LightAnswer & { type: 'answer' }
): Promise<LightValue> {
  const f = await validators.verifyFinalization(answer.finalization)
  const block = decoded('block', () => application.blockCodec.decode(answer.block))
  if (!digestsEqual(block.digest, f.subject.proposal.payload)) { throw new LightError('Certificate', `the finalization is for another block than the one sent (height ${block.height})`) }
  if (height !== undefined && block.height !== height) { throw new LightError('HeightMismatch', `asked for height ${height}, got a block at ${block.height}`) }
  const committed = application.lightRoot?.(block, dbName)
  if (committed === undefined) { throw new LightError('RootCommitment', `the block at height ${block.height} commits no root for ${dbName}`) }
  if (!digestsEqual(committed, answer.root)) { throw new LightError('RootCommitment', `the proof is against a root the block at height ${block.height} does not commit to`) }
  const found = { height: block.height, blockDigest: block.digest }
  if (db.kind === 'current-ordered') {
    if (answer.result === 'absent') {
      const proof = decoded('exclusion proof', () => decodeExclusionProof(db.codec, answer.proof, 122, db.chunkBytes))
      if (!verifyExclusionProof(db.codec, key, proof, answer.root, db.chunkBytes)) { throw new LightError('Proof', 'the exclusion proof does not verify') }
      return { absent: true, value: undefined, ...found }
    }
    const proof = decoded('key-value proof', () => decodeOrderedKeyValueProof(db.codec, answer.proof, 122, db.chunkBytes))
    if (!verifyOrderedKeyValueProof(db.codec, key, answer.value, proof, answer.root, db.chunkBytes)) { throw new LightError('Proof', 'the key-value proof does not verify') }
    return { absent: false, value: answer.value, ...found }
  }
  if (answer.result === 'absent') { throw new LightError('Malformed', `an exclusion proof for ${dbName}, an unordered database`) }
  const op = decoded('operation', () => db.codec.decode(answer.value))
  if (op.type !== 'update') { throw new LightError('KeyMismatch', `the proven operation is a ${op.type}, not an update of the key`) }
  if (!digestsEqual(op.key, key)) { throw new LightError('KeyMismatch', 'the proven operation updates another key') }
  const proof = decoded('operation proof', () => decodeOperationProof(answer.proof, 122, db.chunkBytes))
  if (!verifyOperationProof(proof, answer.value, answer.root, db.chunkBytes)) { throw new LightError('Proof', 'the operation proof does not verify') }
  return { absent: false, value: op.value, ...found }
}
