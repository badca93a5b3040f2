/**
 * Database-level acceptance checks not covered by qmdb-conformance /
 * qmdb-batches / sync-messages-local-source:
 * - point 10: for `any`, `current` (both also ordered), `immutable` and `keyless` on LevelDB, every
 * historical proof at every commit boundary (every start) verifies against
 * the ops root recorded when that boundary was applied — and only against
 * it — before and after a reopen; after pruning, starts below the boundary
 * fail with `ItemPruned` while the rest still verify;
 * - point 12 (`current`): key-value proofs verify against the canonical root
 * for every active key (with and without a partial chunk, before and after
 * pruning and reopening) and fail on any tampering, for a superseded
 * operation (its activity bit is 0) and against another state's root;
 * range proofs over the grafted tree likewise;
 * - point 12 (compact): compact `immutable`/`keyless` follow the full
 * variants root for root through random batches with metadata, floors,
 * chains and rewinds, and can be built by state sync (from a full database
 * and from another compact database), persisted and continued; a sync to a
 * wrong root leaves the existing compact state untouched.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { verifyRangeProof } from '../../src/merkle/index.ts'
import {
  AnyDb, CompactImmutableDb, CompactKeylessDb, CurrentDb, ImmutableDb, KeylessDb, OrderedAnyDb, OrderedCurrentDb, QmdbError, decodeOperationProof, encodeOperationProof,
  fixedField, verifyCurrentRange, verifyOperationProof
} from '../../src/qmdb/index.ts'
import { CompactSource, LocalSource, SyncError, compactSync, compactToTarget, syncDatabase } from '../../src/sync/index.ts'
import { hex, u64be } from '../util/bytes.ts'
import { Rng } from '../util/rng.ts'
import { key, val } from '../util/workloads.ts'
import type { Digest } from '../../src/merkle/index.ts'
import type { CompactDb, OperationProof } from '../../src/qmdb/index.ts'
import type { Datastore } from 'interface-datastore'

/**
 * A copy of `b` with byte `i` xor-ed with `mask` (`Uint8Array.from`: a copy
 * whatever the input's type; see the Buffer-view regression test at the end).
 */
function flip (b: Uint8Array, i: number, mask = 1): Uint8Array {
  const c = Uint8Array.from(b)
  c[i] ^= mask
  return c
}

type FullKind = 'any' | 'current' | 'any-ordered' | 'current-ordered' | 'immutable' | 'keyless'
type FullDb = AnyDb | CurrentDb | ImmutableDb | KeylessDb

async function qmdbCode (p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    expect(err).to.be.instanceOf(QmdbError)
    return (err as QmdbError).code
  }
  return 'ok'
}

async function openFull (kind: FullKind, datastore?: Datastore): Promise<FullDb> {
  const options = { datastore, prefix: `/${kind}` }
  switch (kind) {
    case 'any': return AnyDb.open(options)
    case 'current': return CurrentDb.open(options)
    case 'any-ordered': return OrderedAnyDb.open(options)
    case 'current-ordered': return OrderedCurrentDb.open(options)
    case 'immutable': return ImmutableDb.open(options)
    default: return KeylessDb.open(options)
  }
}

/** One random batch (keys from a small space so updates, deletes and moves happen). */
async function randomBatch (db: FullDb, rng: Rng, j: number): Promise<void> {
  if (db instanceof AnyDb) {
    const b = db.newBatch()
    const n = 1 + rng.int(10)
    for (let i = 0; i < n; i++) {
      const k = rng.int(30)
      if (rng.int(4) === 0) { b.delete(key(k)) } else { b.update(key(k), val(k, j)) }
    }
    if (rng.int(3) === 0) { b.withMetadata(val(j, 77)) }
    await db.apply(await b.merkleize())
    return
  }
  const floor = Math.max(db.inactivityFloor, Math.floor(db.size * rng.int(80) / 100))
  if (db instanceof ImmutableDb) {
    const b = db.newBatch().withInactivityFloor(floor)
    for (let i = 0, n = 1 + rng.int(8); i < n; i++) { b.set(key(1000 * j + i), val(i, j)) }
    await db.apply(await b.merkleize())
    return
  }
  const b = db.newBatch().withInactivityFloor(floor)
  for (let i = 0, n = 1 + rng.int(8); i < n; i++) { b.append(val(i, j)) }
  if (rng.int(3) === 0) { b.withMetadata(val(j, 5)) }
  await db.apply(await b.merkleize())
}

/** Check every (boundary, start) pair; returns how many proofs were checked. */
async function checkHistory (db: FullDb, roots: Map<number, Digest>, rng: Rng): Promise<number> {
  let checked = 0
  const sizes = [...roots.keys()]
  for (const [size, root] of roots) {
    for (let start = 0; start < size; start++) {
      const maxOps = 1 + rng.int(12)
      if (start < db.pruningBoundary) {
        expect(await qmdbCode(db.historicalProof(size, start, maxOps))).to.equal('ItemPruned', `size ${size} start ${start}`)
        continue
      }
      const { proof, ops } = await db.historicalProof(size, start, maxOps)
      expect(ops.length).to.equal(Math.min(maxOps, size - start))
      expect(proof.leaves).to.equal(size)
      expect(verifyRangeProof(proof, start, ops, root)).to.equal(true, `size ${size} start ${start}`)
      // never against another boundary's root
      const other = sizes[rng.int(sizes.length)]
      if (other !== size) { expect(verifyRangeProof(proof, start, ops, roots.get(other) as Digest)).to.equal(false) }
      checked++
    }
  }
  return checked
}

describe('qmdb: historical proofs at every commit boundary (LevelDB)', function () {
  this.timeout(60_000)
  const env = { dir: '' }

  beforeEach(async () => { env.dir = await mkdtemp(join(tmpdir(), 'qmdb-hist-')) })
  afterEach(async () => { await rm(env.dir, { recursive: true, force: true }) })

  for (const kind of ['any', 'current', 'any-ordered', 'current-ordered', 'immutable', 'keyless'] as FullKind[]) {
    it(`${kind}: every start at every boundary verifies against that boundary's root; pruned starts are ItemPruned`, async () => {
      const rng = new Rng(kind.length * 7919)
      let ds = new LevelDatastore(env.dir)
      await ds.open()
      let db = await openFull(kind, ds)
      const roots = new Map<number, Digest>([[db.size, db.opsRoot]])
      // `current` needs a floor past one bitmap chunk (256 ops) to prune anything
      for (let j = 0; j < (kind.startsWith('current') ? 40 : 14); j++) {
        await randomBatch(db, rng, j + 1)
        roots.set(db.size, db.opsRoot)
        if (j % 3 === 0) { await db.commit() }
      }
      await db.commit()
      const before = await checkHistory(db, roots, rng)
      expect(before).to.equal([...roots.keys()].reduce((a, s) => a + s, 0))
      // a size that is not a commit boundary has no governing floor
      const nonBoundary = [...roots.keys()].find(s => !roots.has(s - 1) && s > 2) as number
      expect(await qmdbCode(db.historicalProof(nonBoundary - 1, 0, 1))).to.equal('HistoricalFloorPruned')
      expect(await qmdbCode(db.historicalProof(db.size + 1, 0, 1))).to.equal('RangeOutOfBounds')

      // reopen: the same history is provable
      await db.close()
      await ds.close()
      ds = new LevelDatastore(env.dir)
      await ds.open()
      db = await openFull(kind, ds)
      expect(hex(db.opsRoot)).to.equal(hex(roots.get(db.size) as Digest))
      await checkHistory(db, roots, rng)

      // prune to the sync boundary, reopen, and check again
      const boundary = db.syncBoundary
      expect(boundary).to.be.greaterThan(1)
      await db.prune(boundary)
      expect(db.pruningBoundary).to.be.at.most(boundary)
      expect(db.pruningBoundary).to.be.greaterThan(0)
      await checkHistory(db, roots, rng)
      expect(await qmdbCode(db.pinnedNodesAt(0))).to.equal('ok') // no pins needed at 0
      await db.close()
      await ds.close()
      ds = new LevelDatastore(env.dir)
      await ds.open()
      db = await openFull(kind, ds)
      const pruned = db.pruningBoundary
      expect(pruned).to.be.greaterThan(0)
      await checkHistory(db, roots, rng)
      expect(await qmdbCode(db.readOpBytes(pruned - 1))).to.equal('ItemPruned')
      await db.close()
      await ds.close()
    })
  }
})

/** Tampered variants of an operation proof: every one must fail. */
function tamperings (p: OperationProof, op: Uint8Array, rng: Rng): Array<[string, OperationProof, Uint8Array]> {
  const rp = p.rangeProof
  const out: Array<[string, OperationProof, Uint8Array]> = []
  const bit = p.loc % 256
  const cleared = Uint8Array.from(p.chunk)
  cleared[bit >>> 3] &= ~(1 << (bit & 7))
  const otherBit = (bit + 1 + rng.int(255)) % 256
  const toggled = Uint8Array.from(p.chunk)
  toggled[otherBit >>> 3] ^= 1 << (otherBit & 7)
  out.push(['op byte', p, flip(op, rng.int(op.length))])
  out.push(['own bit cleared', { ...p, chunk: cleared }, op])
  out.push(['another bit of the chunk', { ...p, chunk: toggled }, op])
  out.push(['loc + 1', { ...p, loc: p.loc + 1 }, op])
  if (p.loc > 0) { out.push(['loc - 1', { ...p, loc: p.loc - 1 }, op]) }
  out.push(['ops root', { ...p, rangeProof: { ...rp, opsRoot: flip(rp.opsRoot, rng.int(32)) } }, op])
  out.push(['leaves', { ...p, rangeProof: { ...rp, proof: { ...rp.proof, leaves: rp.proof.leaves + 1 } } }, op])
  out.push(['inactive peaks', { ...p, rangeProof: { ...rp, proof: { ...rp.proof, inactivePeaks: rp.proof.inactivePeaks + 1 } } }, op])
  if (rp.proof.digests.length > 0) {
    const i = rng.int(rp.proof.digests.length)
    const digests = rp.proof.digests.slice()
    digests[i] = flip(digests[i], rng.int(32))
    out.push([`digest ${i}`, { ...p, rangeProof: { ...rp, proof: { ...rp.proof, digests } } }, op])
    out.push(['digest dropped', { ...p, rangeProof: { ...rp, proof: { ...rp.proof, digests: rp.proof.digests.slice(1) } } }, op])
  }
  out.push(['digest added', { ...p, rangeProof: { ...rp, proof: { ...rp.proof, digests: [...rp.proof.digests, rp.opsRoot] } } }, op])
  if (rp.partialChunkDigest !== undefined) {
    out.push(['partial digest', { ...p, rangeProof: { ...rp, partialChunkDigest: flip(rp.partialChunkDigest, 0) } }, op])
    out.push(['partial digest removed', { ...p, rangeProof: { ...rp, partialChunkDigest: undefined } }, op])
  } else {
    out.push(['partial digest added', { ...p, rangeProof: { ...rp, partialChunkDigest: rp.opsRoot } }, op])
  }
  return out
}

describe('qmdb: current proofs (a value is current)', function () {
  this.timeout(60_000)

  /** A `current` database with a few complete chunks and an independent model of its values. */
  async function build (datastore?: Datastore): Promise<{ db: CurrentDb, model: Map<string, Uint8Array>, rng: Rng }> {
    const rng = new Rng(12)
    const db = await CurrentDb.open({ datastore })
    const model = new Map<string, Uint8Array>()
    for (let j = 1; j <= 12; j++) {
      const b = db.newBatch()
      for (let i = 0; i < 60; i++) {
        const k = rng.int(150)
        if (rng.int(5) === 0) {
          b.delete(key(k))
          model.delete(hex(key(k)))
        } else {
          b.update(key(k), val(k, j))
          model.set(hex(key(k)), val(k, j))
        }
      }
      await db.apply(await b.merkleize())
    }
    return { db, model, rng }
  }

  async function checkAllKeys (db: CurrentDb, model: Map<string, Uint8Array>, rng: Rng, tamper: boolean): Promise<void> {
    const root = db.root
    for (let k = 0; k < 150; k++) {
      const want = model.get(hex(key(k)))
      if (want === undefined) {
        expect(await qmdbCode(db.keyValueProof(key(k)))).to.equal('KeyNotFound')
        continue
      }
      const { proof, op } = await db.keyValueProof(key(k))
      // the proven operation is the model's value for this key
      expect(db.codec.decode(op)).to.deep.equal({ type: 'update', key: key(k), value: want })
      expect(verifyOperationProof(proof, op, root)).to.equal(true, `key ${k}`)
      const decoded = decodeOperationProof(encodeOperationProof(proof))
      expect(verifyOperationProof(decoded, op, root)).to.equal(true)
      expect(proof.rangeProof.partialChunkDigest === undefined).to.equal(db.size % 256 === 0)
      if (tamper) {
        for (const [what, p, o] of tamperings(proof, op, rng)) {
          expect(verifyOperationProof(p, o, root)).to.equal(false, `key ${k}: ${what}`)
        }
        expect(verifyOperationProof(proof, op, flip(root, rng.int(32)))).to.equal(false)
      }
    }
  }

  it('every active key: proofs verify and every tampering fails (partial chunk, then chunk-aligned size)', async () => {
    const { db, model, rng } = await build()
    expect(db.size).to.be.greaterThan(3 * 256)
    expect(db.size % 256).to.not.equal(0)
    await checkAllKeys(db, model, rng, true)
    // land exactly on a chunk boundary: empty batches add 2 ops, creates add 3
    let next = 1000
    for (let guard = 0; db.size % 256 !== 0 && guard < 400; guard++) {
      const rem = 256 - (db.size % 256)
      const b = db.newBatch()
      if (rem !== 2 && rem !== 4) {
        b.update(key(next), val(next, 0))
        model.set(hex(key(next)), val(next, 0))
        next++
      }
      await db.apply(await b.merkleize())
    }
    expect(db.size % 256).to.equal(0)
    await checkAllKeys(db, model, rng, true)
  })

  it('a superseded or deleted value is not current; an old proof fails against the new root', async () => {
    const { db, model } = await build()
    const k = [...Array(150).keys()].find(i => model.has(hex(key(i)))) as number
    const { proof: old, op: oldOp } = await db.keyValueProof(key(k))
    const oldRoot = db.root
    await db.apply(await db.newBatch().update(key(k), val(k, 99)).merkleize())
    // the old proof still verifies against the old root only
    expect(verifyOperationProof(old, oldOp, oldRoot)).to.equal(true)
    expect(verifyOperationProof(old, oldOp, db.root)).to.equal(false)
    // the old operation is still in the log and provable as an operation, but its bit is 0
    const { proof: rp, ops, chunks } = await db.rangeProof(old.loc, 1)
    expect(hex(ops[0])).to.equal(hex(oldOp))
    expect(verifyCurrentRange(rp, old.loc, ops, chunks, db.root)).to.equal(true)
    expect(verifyOperationProof({ loc: old.loc, chunk: chunks[0], rangeProof: rp }, oldOp, db.root)).to.equal(false)
    // forcing the bit on breaks the range proof instead
    const forced = Uint8Array.from(chunks[0])
    forced[(old.loc % 256) >>> 3] |= 1 << (old.loc % 8)
    expect(verifyOperationProof({ loc: old.loc, chunk: forced, rangeProof: rp }, oldOp, db.root)).to.equal(false)
    // the new value is current
    const fresh = await db.keyValueProof(key(k))
    expect(verifyOperationProof(fresh.proof, fresh.op, db.root)).to.equal(true)
    // deleted: no proof of a value
    await db.apply(await db.newBatch().delete(key(k)).merkleize())
    expect(await qmdbCode(db.keyValueProof(key(k)))).to.equal('KeyNotFound')
    expect(verifyOperationProof(fresh.proof, fresh.op, db.root)).to.equal(false)
  })

  it('range proofs over the grafted tree verify for every start; wrong chunks fail', async () => {
    const { db, rng } = await build()
    const root = db.root
    for (let start = 0; start < db.size; start += 1 + rng.int(9)) {
      const maxOps = 1 + rng.int(rng.int(2) === 0 ? 20 : 600)
      const { proof, ops, chunks } = await db.rangeProof(start, maxOps)
      expect(ops.length).to.equal(Math.min(maxOps, db.size - start))
      expect(chunks.length).to.equal(Math.floor((start + ops.length - 1) / 256) - Math.floor(start / 256) + 1)
      expect(verifyCurrentRange(proof, start, ops, chunks, root)).to.equal(true, `start ${start} maxOps ${maxOps}`)
      // the ops part alone is an ordinary range proof against the ops root of the same state
      const c = rng.int(chunks.length)
      const bad = chunks.slice()
      bad[c] = flip(chunks[c], rng.int(32), 1 << rng.int(8))
      expect(verifyCurrentRange(proof, start, ops, bad, root)).to.equal(false, `chunk ${c} flipped`)
      expect(verifyCurrentRange(proof, start, ops, chunks.slice(0, -1), root)).to.equal(false)
      expect(verifyCurrentRange(proof, start, ops, [...chunks, chunks[0]], root)).to.equal(false)
      const o = rng.int(ops.length)
      const badOps = ops.slice()
      badOps[o] = flip(ops[o], rng.int(ops[o].length))
      expect(verifyCurrentRange(proof, start, badOps, chunks, root)).to.equal(false)
      expect(verifyCurrentRange(proof, start, ops, chunks, db.opsRoot)).to.equal(false)
    }
    expect(await qmdbCode(db.rangeProof(db.size, 1))).to.equal('RangeOutOfBounds')
  })

  it('after pruning and reopening (LevelDB): active keys still prove; pruned ranges are OperationPruned', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qmdb-current-'))
    try {
      let ds = new LevelDatastore(dir)
      await ds.open()
      const { db, model, rng } = await build(ds)
      await db.commit()
      const boundary = db.syncBoundary
      expect(boundary).to.be.at.least(256) // at least one whole chunk is pruned
      await db.prune(boundary)
      await checkAllKeys(db, model, rng, false)
      expect(await qmdbCode(db.rangeProof(boundary - 1, 1))).to.equal('OperationPruned')
      const root = db.root
      await db.close()
      await ds.close()
      ds = new LevelDatastore(dir)
      await ds.open()
      const again = await CurrentDb.open({ datastore: ds })
      expect(hex(again.root)).to.equal(hex(root))
      await checkAllKeys(again, model, rng, true)
      expect(await qmdbCode(again.rangeProof(0, 1))).to.equal('OperationPruned')
      await again.close()
      await ds.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('qmdb: compact variants', function () {
  this.timeout(60_000)

  /** Apply the same random batch (with metadata and floors) to a full and a compact database. */
  async function twinBatch (full: ImmutableDb | KeylessDb, compact: CompactDb<any>, rng: Rng, j: number, chain: number): Promise<void> {
    let fb: any = full.newBatch()
    let cb: any = compact.newBatch()
    let fm: any, cm: any
    let floor = full.inactivityFloor
    for (let c = 0; c < chain; c++) {
      const metaValue = full instanceof ImmutableDb ? val(j, c) : u64be(j * 10 + c)
      const meta = rng.int(2) === 0 ? metaValue : undefined
      const n = rng.int(6)
      for (let i = 0; i < n; i++) {
        if (full instanceof ImmutableDb) {
          fb.set(key(100 * j + 10 * c + i), val(i, j))
          cb.set(key(100 * j + 10 * c + i), val(i, j))
        } else {
          fb.append(u64be(j * 1000 + i))
          cb.append(u64be(j * 1000 + i))
        }
      }
      const size = (fm?.size ?? full.size) + n + 1
      floor = Math.max(floor, Math.floor((size - 1) * rng.int(90) / 100))
      fm = await fb.withMetadata(meta).withInactivityFloor(floor).merkleize()
      cm = await cb.withMetadata(meta).withInactivityFloor(floor).merkleize()
      expect(hex(cm.root)).to.equal(hex(fm.root), `speculative root, chain link ${c}`)
      fb = fm.newBatch()
      cb = cm.newBatch()
    }
    await full.apply(fm)
    await compact.apply(cm)
  }

  const variants = [
    { name: 'immutable', full: async (ds?: Datastore) => ImmutableDb.open({ datastore: ds, prefix: '/full' }), compact: async (ds?: Datastore) => CompactImmutableDb.open({ datastore: ds, prefix: '/compact' }) },
    { name: 'keyless', full: async (ds?: Datastore) => KeylessDb.open({ datastore: ds, prefix: '/full', value: fixedField(8) }), compact: async (ds?: Datastore) => CompactKeylessDb.open({ datastore: ds, prefix: '/compact', value: fixedField(8) }) }
  ]

  for (const v of variants) {
    it(`${v.name}: same roots as the full variant through random chains, reopen and rewind`, async () => {
      const rng = new Rng(v.name.length)
      const ds = new MemoryDatastore()
      const full = await v.full(ds) as ImmutableDb | KeylessDb
      let compact = await v.compact(ds) as CompactDb<any>
      expect(hex(compact.root)).to.equal(hex(full.root))
      const roots = new Map<number, string>([[full.size, hex(full.root)]])
      for (let j = 1; j <= 25; j++) {
        await twinBatch(full, compact, rng, j, 1 + rng.int(3))
        expect(hex(compact.root)).to.equal(hex(full.root), `after batch ${j}`)
        expect(compact.size).to.equal(full.size)
        expect(compact.inactivityFloor).to.equal(full.inactivityFloor)
        expect(compact.metadata).to.deep.equal(full.metadata)
        roots.set(full.size, hex(full.root))
        if (j % 5 === 0) {
          await compact.commit()
          compact = await v.compact(ds) as CompactDb<any>
          expect(hex(compact.root)).to.equal(hex(full.root), 'after reopen')
        }
      }
      // rewind both to an older commit boundary: same root as recorded there
      const sizes = [...roots.keys()].filter(s => s > 1 && s < full.size)
      const target = sizes[Math.floor(sizes.length * 0.8)]
      await full.rewind(target)
      await compact.rewind(target)
      expect(hex(compact.root)).to.equal(roots.get(target))
      expect(hex(full.root)).to.equal(roots.get(target))
      await twinBatch(full, compact, rng, 99, 2)
      expect(hex(compact.root)).to.equal(hex(full.root))
    })

    it(`${v.name}: built from a sync result (from the full database, then from a compact source), persisted, continued`, async () => {
      const rng = new Rng(3 + v.name.length)
      const full = await v.full() as ImmutableDb | KeylessDb
      const twin = await v.compact() as CompactDb<any>
      for (let j = 1; j <= 10; j++) { await twinBatch(full, twin, rng, j, 1) }

      const ds = new MemoryDatastore()
      const target = compactToTarget({ root: full.root, size: full.size })
      const synced = await v.compact(ds) as CompactDb<any>
      const bootstrapRoot = hex(synced.root)
      const result = await syncDatabase({ kind: compactSync(synced), target, source: new LocalSource(full) })
      expect(result).to.equal(synced)
      expect(hex(synced.root)).to.equal(hex(full.root))
      expect(synced.size).to.equal(full.size)
      expect(synced.inactivityFloor).to.equal(full.inactivityFloor)
      // durable: a reopen has the synced state
      const reopened = await v.compact(ds) as CompactDb<any>
      expect(hex(reopened.root)).to.equal(hex(full.root))
      // and continues exactly like the full database
      await twinBatch(full, reopened, rng, 50, 2)
      expect(hex(reopened.root)).to.equal(hex(full.root))
      expect(bootstrapRoot).to.not.equal(hex(full.root))

      // compact → compact: sync a fresh compact database from the reopened one
      const second = await v.compact() as CompactDb<any>
      await syncDatabase({ kind: compactSync(second), target: compactToTarget({ root: reopened.root, size: reopened.size }), source: new CompactSource(reopened) })
      expect(hex(second.root)).to.equal(hex(full.root))

      // genesis target (size 1): one Operations request, no pins
      const genesis = await v.compact() as CompactDb<any>
      const fresh = await v.full() as ImmutableDb | KeylessDb
      await syncDatabase({ kind: compactSync(genesis), target: compactToTarget({ root: fresh.root, size: 1 }), source: new LocalSource(fresh) })
      expect(hex(genesis.root)).to.equal(hex(fresh.root))
    })

    it(`${v.name}: a sync to a root the source cannot prove fails and leaves the compact state untouched`, async () => {
      const rng = new Rng(5)
      const full = await v.full() as ImmutableDb | KeylessDb
      const ds = new MemoryDatastore()
      const local = await v.compact(ds) as CompactDb<any>
      for (let j = 1; j <= 4; j++) { await twinBatch(full, local, rng, j, 1) }
      await local.commit()
      const before = hex(local.root)
      const sizeBefore = local.size
      const wrong = compactToTarget({ root: flip(full.root, 3), size: full.size })
      const err = await syncDatabase({ kind: compactSync(local), target: wrong, source: new LocalSource(full) }).catch(e => e)
      expect(err).to.be.instanceOf(SyncError)
      expect(hex(local.root)).to.equal(before)
      expect(local.size).to.equal(sizeBefore)
      const reopened = await v.compact(ds) as CompactDb<any>
      expect(hex(reopened.root)).to.equal(before)
    })
  }
})

describe('qmdb: bytes served from a LevelDB-backed database', function () {
  this.timeout(30_000)

  it('mutating a .slice() copy of a served operation does not change the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qmdb-alias-'))
    try {
      let ds = new LevelDatastore(dir)
      await ds.open()
      const db = await AnyDb.open({ datastore: ds })
      await db.apply(await db.newBatch().update(key(1), val(1, 1)).update(key(2), val(2, 1)).merkleize())
      await db.commit()
      await db.close()
      await ds.close()
      ds = new LevelDatastore(dir)
      await ds.open()
      const again = await AnyDb.open({ datastore: ds })
      const root = again.root
      const op = await again.readOpBytes(1)
      const original = hex(op)
      const copy = op.slice()
      copy[5] ^= 1
      expect(hex(await again.readOpBytes(1))).to.equal(original)
      const { proof, ops } = await again.historicalProof(again.size, 1, 1)
      expect(verifyRangeProof(proof, 1, ops, root)).to.equal(true)
      await again.close()
      await ds.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
