/**
 * Read-only facades: the `finalized` hook's view of the databases offers
 * reads and proofs and no way to mutate — no mutating method, nothing that
 * leads back to the database object — and stays live as the state moves.
 */
import { expect } from 'aegir/chai'
import { verifyRangeProof } from '../../src/merkle/index.ts'
import {
  AnyDb, CompactImmutableDb, CompactKeylessDb, CurrentDb, DatabaseSet, ImmutableDb, KeylessDb, OrderedAnyDb, OrderedCurrentDb, verifyExclusionProof
} from '../../src/qmdb/index.ts'
import { key, val } from '../util/workloads.ts'

const MUTATORS = [
  'newBatch', 'forkBatch', 'merkleize', 'apply', 'commit', 'sync', 'finalize', 'prune', 'pruneTo', 'rewind',
  'rewindToTarget', 'close', 'importWitness', 'commitSyncResult', 'validateBatch', 'db', 'dbs', 'merkle', 'state'
]

/** Every value reachable from `root` through own and inherited properties (getters evaluated). */
function reachable (root: object): unknown[] {
  const out: unknown[] = []
  for (let o: object | null = root; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name === 'constructor') { continue }
      try { out.push((root as Record<string, unknown>)[name]) } catch { /* a getter may throw */ }
    }
  }
  return out
}

function expectReadOnly (reader: object, db: object): void {
  for (const m of MUTATORS) {
    expect((reader as Record<string, unknown>)[m], `facade offers ${m}`).to.equal(undefined)
  }
  for (const v of reachable(reader)) { expect(v).to.not.equal(db) }
  expect(Object.isFrozen(reader)).to.equal(true)
  expect(() => { (reader as Record<string, unknown>).apply = () => {} }).to.throw(TypeError)
}

describe('qmdb: read-only facades', () => {
  it('any: reads the live state and proves it, cannot mutate', async () => {
    const db = await AnyDb.open()
    const r = db.reader()
    expectReadOnly(r, db)
    await db.apply(await db.newBatch().update(key(1), val(1, 0)).merkleize())
    expect(await r.get(key(1))).to.deep.equal(val(1, 0))
    expect(r.size).to.equal(db.size)
    expect(r.root).to.deep.equal(db.root)
    expect(r.activeKeys).to.equal(1)
    const { proof, ops } = await r.proof(r.inactivityFloor, 10)
    expect(verifyRangeProof(proof, r.inactivityFloor, ops, r.root)).to.equal(true)
  })

  it('current: canonical root, ops root and key-value proofs', async () => {
    const db = await CurrentDb.open()
    await db.apply(await db.newBatch().update(key(2), val(2, 0)).merkleize())
    const r = db.reader()
    expectReadOnly(r, db)
    expect(r.root).to.deep.equal(db.root)
    expect(r.opsRoot).to.deep.equal(db.opsRoot)
    expect(r.root).to.not.deep.equal(r.opsRoot)
    expect((await r.keyValueProof(key(2))).op).to.deep.equal((await db.keyValueProof(key(2))).op)
  })

  it('ordered any and ordered current: spans, ranges, next keys and exclusion proofs, cannot mutate', async () => {
    const [a, b, c] = [key(1), key(2), key(3)].sort((x, y) => Buffer.compare(x, y))
    for (const db of [await OrderedAnyDb.open(), await OrderedCurrentDb.open()]) {
      await db.apply(await db.newBatch().update(a, val(1, 0)).update(c, val(3, 0)).merkleize())
      const r = db.reader()
      expectReadOnly(r, db)
      expect((await r.getAll(a))?.nextKey).to.deep.equal(c)
      expect((await r.getSpan(b))?.key).to.deep.equal(a)
      const seen: Uint8Array[] = []
      for await (const e of r.entries(a)) { seen.push(e.key) }
      expect(seen).to.deep.equal([a, c])
      // live: a new key shows up through the same facade
      await db.apply(await db.newBatch().update(b, val(2, 0)).merkleize())
      expect((await r.getAll(a))?.nextKey).to.deep.equal(b)
    }
    const cur = await OrderedCurrentDb.open()
    await cur.apply(await cur.newBatch().update(a, val(1, 0)).merkleize())
    const r = cur.reader()
    expect(verifyExclusionProof(cur.codec, b, await r.exclusionProof(b), r.root)).to.equal(true)
    expect((await r.orderedKeyValueProof(a)).value).to.deep.equal(val(1, 0))
  })

  it('immutable and keyless', async () => {
    const imm = await ImmutableDb.open()
    await imm.apply(await imm.newBatch().set(key(3), val(3, 0)).merkleize())
    expectReadOnly(imm.reader(), imm)
    expect(await imm.reader().get(key(3))).to.deep.equal(val(3, 0))
    const kl = await KeylessDb.open()
    await kl.apply(await kl.newBatch().append(val(4, 0)).merkleize())
    expectReadOnly(kl.reader(), kl)
    expect(await kl.reader().get(1)).to.deep.equal(val(4, 0))
  })

  it('compact: tip and its proof', async () => {
    for (const db of [await CompactKeylessDb.open(), await CompactImmutableDb.open()]) {
      const r = db.reader()
      expectReadOnly(r, db)
      expect(r.syncTarget()).to.deep.equal(db.syncTarget())
      expect((await r.tipProof()).op).to.deep.equal((await db.tipProof()).op)
    }
  })

  it('DatabaseSet.readers(): one frozen record of facades', async () => {
    const set = new DatabaseSet({ accounts: await AnyDb.open(), receipts: await CompactKeylessDb.open() })
    const readers = set.readers()
    expect(set.readers()).to.equal(readers)
    expect(Object.isFrozen(readers)).to.equal(true)
    expectReadOnly(readers.accounts, set.dbs.accounts)
    expectReadOnly(readers.receipts, set.dbs.receipts)
  })
})
