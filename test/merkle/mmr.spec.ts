import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import all from 'it-all'
import { nodeCryptoHasher } from '../../bench/node-crypto-hasher.ts'
import {
  Mmr, MerkleError, verifyRangeProof, jsHasher, nobleHasher, sha256, leafDigest, nodeDigest
} from '../../src/merkle/index.ts'
import { Kv } from '../../src/storage/index.ts'
import { u64be } from '../util/bytes.ts'
import { Rng } from '../util/rng.ts'

const el = (i: number): Uint8Array => u64be(i)

describe('merkle: hashers', () => {
  it('all implementations agree with node:crypto on random inputs of every small length', () => {
    const rng = new Rng(1)
    for (let len = 0; len < 300; len++) {
      const data = rng.bytes(len)
      const want = new Uint8Array(createHash('sha256').update(data).digest())
      expect(sha256(data)).to.deep.equal(want)
      expect(sha256(data.subarray(0, len >> 1), data.subarray(len >> 1))).to.deep.equal(want)
      for (const h of [jsHasher, nodeCryptoHasher, nobleHasher]) { expect(h.digest(data)).to.deep.equal(want, h.name) }
    }
    const l = rng.bytes(32)
    const r = rng.bytes(32)
    const elem = rng.bytes(65)
    for (const h of [jsHasher, nodeCryptoHasher, nobleHasher]) {
      const out = new Uint8Array(96)
      h.nodeInto(2 ** 40 + 5, l, 0, r, 0, out, 10)
      expect(out.subarray(10, 42)).to.deep.equal(new Uint8Array(createHash('sha256').update(u64be(2 ** 40 + 5)).update(l).update(r).digest()), h.name)
      h.leafInto(77, elem, 0, 65, out, 50)
      expect(out.subarray(50, 82)).to.deep.equal(leafDigest(77, elem), h.name)
      h.pairInto(l, 0, r, 0, out, 0)
      expect(out.subarray(0, 32)).to.deep.equal(sha256(l, r), h.name)
    }
    expect(nodeDigest(3, l, r)).to.deep.equal(new Uint8Array(createHash('sha256').update(u64be(3)).update(l).update(r).digest()))
  })
})

describe('merkle: batches', () => {
  it('a batch gives the same root as appending one by one, without touching the committed state', () => {
    const a = Mmr.inMemory()
    const b = Mmr.inMemory()
    for (let i = 0; i < 100; i++) { a.append([el(i)]) }
    const batch = b.newBatch()
    for (let i = 0; i < 100; i++) { batch.add(el(i)) }
    const m = batch.merkleize()
    expect(m.root()).to.deep.equal(a.root())
    expect(b.leaves).to.equal(0)
    b.apply(m)
    expect(b.root()).to.deep.equal(a.root())
    expect(b.leaves).to.equal(100)
  })

  it('child batches read through their parents; siblings are independent; applying one branch makes the other stale', async () => {
    const mmr = Mmr.inMemory()
    mmr.append([el(0), el(1), el(2)])
    const base = mmr.root()
    const p = mmr.newBatch().add(el(3)).add(el(4)).merkleize()
    const c = p.newBatch().add(el(5)).merkleize()
    const sibling = mmr.newBatch().add(el(99)).merkleize()
    const ref = Mmr.inMemory()
    ref.append([0, 1, 2, 3, 4, 5].map(el))
    expect(c.root()).to.deep.equal(ref.root())
    // a proof from the speculative child verifies against its root
    const proof = await (await import('../../src/merkle/index.ts')).proveRange(c, 1, 6)
    expect(verifyRangeProof(proof, 1, [1, 2, 3, 4, 5].map(el), c.root())).to.equal(true)
    expect(mmr.root()).to.deep.equal(base)
    // applying the child applies its unapplied parent too
    mmr.apply(c)
    expect(mmr.root()).to.deep.equal(ref.root())
    expect(() => { mmr.apply(sibling) }).to.throw(MerkleError).with.property('code', 'StaleBatch')
    expect(() => { mmr.apply(p) }).to.throw(MerkleError).with.property('code', 'StaleBatch')
    // re-applying the current state is a no-op
    mmr.apply(c)
    expect(mmr.leaves).to.equal(6)
  })

  it('applying the parent then the child skips the applied parent', () => {
    const mmr = Mmr.inMemory()
    const p = mmr.newBatch().add(el(0)).add(el(1)).merkleize()
    const c = p.newBatch().add(el(2)).merkleize()
    mmr.apply(p)
    mmr.apply(c)
    const ref = Mmr.inMemory()
    ref.append([el(0), el(1), el(2)])
    expect(mmr.root()).to.deep.equal(ref.root())
  })

  it('rewind makes outstanding batches stale and restores the older root', async () => {
    const mmr = Mmr.inMemory()
    mmr.append([0, 1, 2, 3, 4].map(el))
    const at5 = mmr.root()
    mmr.append([5, 6, 7].map(el))
    const pending = mmr.newBatch().add(el(8)).merkleize()
    await mmr.rewind(5)
    expect(mmr.root()).to.deep.equal(at5)
    expect(() => { mmr.apply(pending) }).to.throw(MerkleError).with.property('code', 'StaleBatch')
    await mmr.prune(3)
    await expect(mmr.rewind(2)).to.eventually.be.rejectedWith(MerkleError).with.property('code', 'RewindBeyondHistory')
  })

  it('an MMR rebuilt from its peaks has the same root and the same future', () => {
    const full = Mmr.inMemory()
    full.append(Array.from({ length: 45 }, (_, i) => el(i)))
    const compact = Mmr.fromPeaks(45, full.peakDigests())
    expect(compact.root(2)).to.deep.equal(full.root(2))
    expect(() => Mmr.fromPeaks(45, full.peakDigests().slice(1))).to.throw(MerkleError).with.property('code', 'InvalidPinnedNodes')
    full.append([el(45), el(46)])
    compact.append([el(45), el(46)])
    expect(compact.root()).to.deep.equal(full.root())
  })
})

describe('merkle: persisted MMR', function () {
  this.timeout(120_000)
  let dir: string

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-mmr-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('appends 100k leaves in batches, reopens with the same root and the same proofs', async () => {
    const ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
    const mmr = await Mmr.open(new Kv(ds), '/mmr', { cacheChunks: 16 })
    const ref = Mmr.inMemory()
    for (let b = 0; b < 100; b++) {
      const batch = mmr.newBatch()
      const rbatch = ref.newBatch()
      for (let i = 0; i < 1000; i++) {
        batch.add(el(b * 1000 + i))
        rbatch.add(el(b * 1000 + i))
      }
      mmr.apply(batch.merkleize())
      ref.apply(rbatch.merkleize())
      await mmr.commit()
    }
    const root = mmr.root(3)
    expect(root).to.deep.equal(ref.root(3))
    const rng = new Rng(5)
    const ranges = Array.from({ length: 30 }, () => { const s = rng.int(100_000); return [s, Math.min(100_000, s + 1 + rng.int(500))] })
    const proofs = await Promise.all(ranges.map(async ([s, e]) => mmr.proof(s, e, 3)))
    await ds.close()

    const ds2 = new LevelDatastore(join(dir, 'db'))
    await ds2.open()
    const reopened = await Mmr.open(new Kv(ds2), '/mmr')
    expect(reopened.leaves).to.equal(100_000)
    expect(reopened.root(3)).to.deep.equal(root)
    for (let i = 0; i < ranges.length; i++) {
      const [s, e] = ranges[i]
      const p = await reopened.proof(s, e, 3)
      expect(p).to.deep.equal(proofs[i])
      const els = Array.from({ length: e - s }, (_, j) => el(s + j))
      expect(verifyRangeProof(p, s, els, root)).to.equal(true)
    }
    await ds2.close()
  })

  it('reopens at the last durable commit after a crash (uncommitted work is lost, nothing half-written)', async () => {
    const ds = new MemoryDatastore()
    const mmr = await Mmr.open(new Kv(ds), '/m')
    mmr.append(Array.from({ length: 300 }, (_, i) => el(i)))
    await mmr.commit()
    const committed = mmr.root()
    mmr.append([el(300), el(301)])
    await mmr.prune(100)
    // "crash": reopen from the same store without committing
    const reopened = await Mmr.open(new Kv(ds), '/m')
    expect(reopened.leaves).to.equal(300)
    expect(reopened.prunedLoc).to.equal(0)
    expect(reopened.root()).to.deep.equal(committed)
  })

  it('persists pruning and rewinds across reopen', async () => {
    const ds = new MemoryDatastore()
    const kv = new Kv(ds)
    const mmr = await Mmr.open(kv, '/m', { cacheChunks: 2 })
    mmr.append(Array.from({ length: 2000 }, (_, i) => el(i)))
    await mmr.commit()
    await mmr.prune(1500)
    await mmr.rewind(1700)
    await mmr.commit()
    const root = mmr.root(1)
    const again = await Mmr.open(kv, '/m')
    expect(again.prunedLoc).to.equal(1500)
    expect(again.leaves).to.equal(1700)
    expect(again.root(1)).to.deep.equal(root)
    const p = await again.proof(1500, 1700, 1)
    expect(verifyRangeProof(p, 1500, Array.from({ length: 200 }, (_, i) => el(1500 + i)), root)).to.equal(true)
    await expect(again.proof(1000, 1700, 1)).to.eventually.be.rejectedWith(MerkleError).with.property('code', 'ElementPruned')
    // pruned chunks are gone from the store
    const chunks = (await all(kv.keys('/m/n/'))).length
    expect(chunks).to.be.lessThan(Math.ceil((2 * 1700) / 256) - 10)
    // appending after reopen continues the same structure
    again.append([el(1700)])
    const ref = Mmr.inMemory()
    ref.append(Array.from({ length: 1701 }, (_, i) => el(i)))
    expect(again.root()).to.deep.equal(ref.root())
  })

  it('rejects corrupted metadata and chunks with typed errors', async () => {
    const ds = new MemoryDatastore()
    const kv = new Kv(ds)
    const mmr = await Mmr.open(kv, '/m')
    mmr.append(Array.from({ length: 600 }, (_, i) => el(i)))
    await mmr.commit()
    await kv.batch().put('/m/meta', new Uint8Array([9, 1, 2])).commit()
    await expect(Mmr.open(kv, '/m')).to.eventually.be.rejectedWith(MerkleError).with.property('code', 'DataCorrupted')
    await kv.batch().put('/m/meta', new Uint8Array([1, 0x80])).commit()
    await expect(Mmr.open(kv, '/m')).to.eventually.be.rejectedWith(MerkleError).with.property('code', 'DataCorrupted')
  })
})
