/**
 * Example: read and verify proofs the way a light client would, trusting
 * only a root (from a finalized block), never the database that answered.
 * - `any`: a range of the operation log (`historicalProof`) checked with
 * `verifyRangeProof` against the ops root; the operations decode with the
 * database's codec.
 * - `current`: that a key has a value now (`keyValueProof`) checked with
 * `verifyOperationProof` against the canonical root.
 * A tampered operation fails both. Exits 0 when every check comes out right.
 */
/* eslint-disable no-console -- a program that reports what it did */
import { AnyDb, CurrentDb, verifyOperationProof, verifyRangeProof } from 'libp2p-qmdb'

function key (n: number): Uint8Array {
  const k = new Uint8Array(32)
  new DataView(k.buffer).setUint32(28, n)
  return k
}

let ok = true
function check (what: string, actual: boolean, expected: boolean): void {
  console.log(`${what}: ${actual}`)
  if (actual !== expected) { ok = false }
}

// any: prove operations [start, start + 5) of the log as of the current size
const accounts = await AnyDb.open()
const batch = accounts.newBatch()
for (let i = 0; i < 20; i++) { batch.update(key(i), key(100 + i)) }
await accounts.apply(await batch.merkleize())
await accounts.commit()

const trustedRoot = accounts.opsRoot // in an application: the root in a finalized block
const start = 3
const { proof, ops } = await accounts.historicalProof(accounts.size, start, 5)
check('range proof verifies', verifyRangeProof(proof, start, ops, trustedRoot), true)
for (const [i, bytes] of ops.entries()) {
  const op = accounts.codec.decode(bytes)
  console.log(`  op ${start + i}: ${op.type}`, op.type === 'update' ? `key …${op.key[31]} = …${op.value[31]}` : '')
}
const tampered = ops.map(b => b.slice())
tampered[0][tampered[0].length - 1] ^= 1
check('a tampered range verifies', verifyRangeProof(proof, start, tampered, trustedRoot), false)

// current: prove that key 7 has its value now
const state = await CurrentDb.open()
const b = state.newBatch()
for (let i = 0; i < 20; i++) { b.update(key(i), key(200 + i)) }
await state.apply(await b.merkleize())
await state.commit()

const canonicalRoot = state.root
const { proof: kvProof, op } = await state.keyValueProof(key(7))
check('key 7 has its value now', verifyOperationProof(kvProof, op, canonicalRoot), true)
const forged = op.slice()
forged[forged.length - 1] ^= 1
check('a forged value verifies', verifyOperationProof(kvProof, forged, canonicalRoot), false)

if (!ok) { process.exitCode = 1 }
