/**
 * The proving side of one answer: a key's value (or, ordered, its absence)
 * with its proof against the canonical root of a `current` database's
 * applied state. The host adds the block and the finalization
 * (`src/node/light.ts`).
 *
 * Invariant: the proof and the returned root come from one state only if
 * the database did not change while the proof was read (reads are
 * asynchronous); the caller compares `size` before and after and retries.
 */

import { encodeOperationProof } from '../qmdb/current-proof.ts'
import { QmdbError } from '../qmdb/errors.ts'
import { encodeExclusionProof, encodeOrderedKeyValueProof } from '../qmdb/ordered-proof.ts'
import type { LightDatabase } from './verify.ts'
import type { Digest } from '../merkle/index.ts'
import type { OperationProof } from '../qmdb/current-proof.ts'
import type { ExclusionProof, OrderedKeyValueProof } from '../qmdb/ordered-proof.ts'

/** The reads of a `current` database a proof needs (its reader facade has them). */
export interface ProvableReader {
  readonly root: Digest
  readonly size: number
  keyValueProof?(key: Uint8Array): Promise<{ proof: OperationProof, op: Uint8Array }>
  orderedKeyValueProof?(key: Uint8Array): Promise<{ proof: OrderedKeyValueProof, value: Uint8Array }>
  exclusionProof?(key: Uint8Array): Promise<ExclusionProof>
}

export type Proven =
  | { type: 'proof', root: Digest, size: number, result: 'value' | 'absent', value: Uint8Array, proof: Uint8Array }
  | { type: 'no-value', root: Digest, size: number }

function notFound (err: unknown): boolean {
  return err instanceof QmdbError && err.code === 'KeyNotFound'
}

/** Prove `key` in `reader` (a database described by `db`). */
export async function proveKey (reader: ProvableReader, db: LightDatabase, key: Uint8Array): Promise<Proven> {
  const root = reader.root
  const size = reader.size
  if (db.kind === 'current-ordered') {
    if (reader.orderedKeyValueProof === undefined || reader.exclusionProof === undefined) { throw new TypeError('not an ordered current database') }
    try {
      const { proof, value } = await reader.orderedKeyValueProof(key)
      return { type: 'proof', root, size, result: 'value', value, proof: encodeOrderedKeyValueProof(db.codec, proof) }
    } catch (err) {
      if (!notFound(err)) { throw err }
    }
    const proof = await reader.exclusionProof(key)
    return { type: 'proof', root, size, result: 'absent', value: new Uint8Array(0), proof: encodeExclusionProof(db.codec, proof) }
  }
  if (reader.keyValueProof === undefined) { throw new TypeError('not a current database') }
  try {
    const { proof, op } = await reader.keyValueProof(key)
    return { type: 'proof', root, size, result: 'value', value: op, proof: encodeOperationProof(proof) }
  } catch (err) {
    if (notFound(err)) { return { type: 'no-value', root, size } }
    throw err
  }
}
