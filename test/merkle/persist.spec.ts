/**
 * Persisted MMR beyond what mmr.spec.ts covers (acceptance points 3,
 * 4 and the MMR part of 11):
 * - pruned to chunk-edge and odd locations, committed and reopened with a tiny
 * node cache (every read goes to the store): the roots and proofs equal an
 * unpruned in-memory reference, every range at or after the boundary is
 * provable, the boundary check accepts the true pins only, ranges below the
 * boundary fail with `ElementPruned`, and appends continue the same tree;
 * - corrupted or missing stored records (node chunks, pins, meta) on a real
 * LevelDB give typed errors (`StorageError` / `MerkleError`) on open or read.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { Writer } from '../../src/codec/index.ts'
import { MAX_LEAVES, MerkleError, Mmr, nodesToPin, peaks, verifyProofAndPinnedNodes, verifyRangeProof } from '../../src/merkle/index.ts'
import { Kv, StorageError } from '../../src/storage/index.ts'
import { u64be } from '../util/bytes.ts'
import { Rng } from '../util/rng.ts'

/** A mutated copy (`Uint8Array.from`: `.slice()` of a LevelDB Buffer is a view). */
function flip (b: Uint8Array, i: number): Uint8Array {
  const c = Uint8Array.from(b)
  c[i] ^= 1
  return c
}

const LEAVES = 600
const el = (i: number): Uint8Array => u64be(i * 31 + 5)
const elements = Array.from({ length: LEAVES }, (_, i) => el(i))

async function codeOf (p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (err instanceof MerkleError || err instanceof StorageError) { return `${err.name}:${err.code}` }
    throw err
  }
  return 'ok'
}

/** A persisted MMR of LEAVES leaves built in committed batches of 50. */
async function buildPersisted (kv: Kv, prefix: string): Promise<Mmr> {
  const mmr = await Mmr.open(kv, prefix, { cacheChunks: 2 })
  for (let b = 0; b < LEAVES; b += 50) {
    const batch = mmr.newBatch()
    for (let i = b; i < b + 50; i++) { batch.add(elements[i]) }
    mmr.apply(batch.merkleize())
    await mmr.commit()
  }
  return mmr
}

describe('merkle: persisted, pruned and reopened', function () {
  this.timeout(60_000)
  const ref = Mmr.inMemory()
  ref.append(elements)
  const peakCount = peaks(ref.size).length

  // node chunks hold 256 positions: boundaries on both sides of chunk edges, odd and even leaves
  for (const loc of [1, 2, 3, 64, 127, 128, 129, 255, 256, 300, 511, 512, 599, 600]) {
    it(`pruned to ${loc}: roots, proofs and pins after reopen`, async () => {
      const rng = new Rng(loc)
      const ds = new MemoryDatastore()
      const kv = new Kv(ds)
      const mmr = await buildPersisted(kv, '/m')
      await mmr.prune(loc)
      await mmr.commit()
      const again = await Mmr.open(kv, '/m', { cacheChunks: 2 })
      expect(again.leaves).to.equal(LEAVES)
      expect(again.prunedLoc).to.equal(loc)
      for (let k = 0; k <= peakCount; k++) { expect(again.root(k)).to.deep.equal(ref.root(k), `k=${k}`) }
      expect(again.root(0, 'forward')).to.deep.equal(ref.root(0, 'forward'))

      // every start at or after the boundary near it, and random ones further on
      const starts = new Set<number>()
      for (let s = loc; s < Math.min(LEAVES, loc + 6); s++) { starts.add(s) }
      if (loc < LEAVES) {
        for (let i = 0; i < 12; i++) { starts.add(loc + rng.int(LEAVES - loc)) }
      }
      for (const s of starts) {
        const e = s + 1 + rng.int(Math.min(80, LEAVES - s))
        const k = rng.int(peakCount + 1)
        const proof = await again.proof(s, e, k)
        expect(proof).to.deep.equal(await ref.proof(s, e, k), `[${s}, ${e}) k=${k}`)
        expect(verifyRangeProof(proof, s, elements.slice(s, e), ref.root(k))).to.equal(true)
        // boundary check at s with the stored pins
        const one = await again.proof(s, s + 1, k)
        const pins = await again.pinnedNodesAt(s)
        expect(pins.length).to.equal(nodesToPin(s).length)
        expect(verifyProofAndPinnedNodes(one, s, [elements[s]], pins, ref.root(k))).to.equal(true)
        for (let i = 0; i < pins.length; i++) {
          const altered = pins.slice()
          altered[i] = flip(pins[i], rng.int(32))
          expect(verifyProofAndPinnedNodes(one, s, [elements[s]], altered, ref.root(k))).to.equal(false)
          expect(verifyProofAndPinnedNodes(one, s, [elements[s]], pins.filter((_, j) => j !== i), ref.root(k))).to.equal(false)
        }
        expect(verifyProofAndPinnedNodes(one, s, [elements[s]], [...pins, pins[0] ?? new Uint8Array(32)], ref.root(k))).to.equal(false)
      }
      // below the boundary: typed failures (leaf 0 is a pin only when loc = 1)
      if (loc >= 2) {
        expect(await codeOf(again.proof(0, 1))).to.equal('MerkleError:ElementPruned')
      }
      // the reopened structure keeps growing as the unpruned one does
      const more = Array.from({ length: 77 }, (_, i) => el(LEAVES + i))
      again.append(more)
      const grown = Mmr.inMemory()
      grown.append([...elements, ...more])
      expect(again.root(1)).to.deep.equal(grown.root(1))
      await again.commit()
      expect((await Mmr.open(kv, '/m')).root(1)).to.deep.equal(grown.root(1))
    })
  }
})

describe('merkle: corrupted persisted records (LevelDB)', function () {
  this.timeout(60_000)
  let dir: string
  let ds: LevelDatastore
  let kv: Kv

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmdb-mmr-corrupt-'))
    ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
    kv = new Kv(ds)
    const mmr = await buildPersisted(kv, '/m')
    await mmr.prune(300)
    await mmr.commit()
  })
  afterEach(async () => {
    await ds.close()
    await rm(dir, { recursive: true, force: true })
  })

  const chunkKey = (i: number): string => `/m/n/${i.toString(16).padStart(16, '0')}`
  const put = async (k: string, v: Uint8Array): Promise<void> => { await kv.batch().put(k, v).commit() }

  it('the uncorrupted store reopens with the reference root', async () => {
    const ref = Mmr.inMemory()
    ref.append(elements)
    expect((await Mmr.open(kv, '/m')).root()).to.deep.equal(ref.root())
  })

  // 600 leaves = 1196 nodes in chunks of 256 positions; pruning to leaf 300 (position 596)
  // deleted chunks 0 and 1. Chunk 2 is read only by proofs near the boundary; chunk 3
  // holds the highest peak (position 1022) and chunk 4 is the tail: both are read on open.
  it('a node chunk of the wrong length: DataCorrupted when it is read', async () => {
    expect(await kv.get(chunkKey(1))).to.equal(undefined)
    const tail = await kv.get(chunkKey(4)) as Uint8Array
    await put(chunkKey(4), tail.subarray(0, tail.length - 5))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('StorageError:DataCorrupted')
    await put(chunkKey(4), tail)
    const older = await kv.get(chunkKey(2)) as Uint8Array
    await put(chunkKey(2), new Uint8Array(older.length + 32)) // longer than a chunk
    const mmr = await Mmr.open(kv, '/m', { cacheChunks: 2 })
    expect(await codeOf(mmr.proof(310, 320))).to.equal('StorageError:DataCorrupted')
    expect(await codeOf(mmr.proof(520, 600))).to.equal('ok') // only peaks and the tail chunk
  })

  it('a missing node chunk: MissingItem on a proof (chunk 2) or on open (chunk 3, a peak)', async () => {
    await kv.batch().delete(chunkKey(2)).commit()
    const mmr = await Mmr.open(kv, '/m', { cacheChunks: 2 })
    expect(await codeOf(mmr.proof(310, 320))).to.equal('StorageError:MissingItem')
    await kv.batch().delete(chunkKey(3)).commit()
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('StorageError:MissingItem')
  })

  it('pins of the wrong length or missing: DataCorrupted', async () => {
    const pins = await kv.get('/m/pins') as Uint8Array
    expect(pins.length).to.equal(32 * nodesToPin(300).length)
    await put('/m/pins', pins.subarray(0, pins.length - 32))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
    await put('/m/pins', new Uint8Array(pins.length + 1))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
    await kv.batch().delete('/m/pins').commit()
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
  })

  it('pins returned after a reopen are copies', async () => {
    const mmr = await Mmr.open(kv, '/m')
    const root = mmr.root()
    const pins = await mmr.pinnedNodesAt(300)
    pins[0][0] ^= 1
    expect((await mmr.pinnedNodesAt(300))[0][0]).to.not.equal(pins[0][0])
    expect(mmr.root()).to.deep.equal(root)
  })

  it('meta out of bounds, with trailing bytes, or ahead of the stored nodes: typed errors', async () => {
    const meta = (leaves: number, pruned: number): Uint8Array => new Writer().u8(1).varint(leaves).varint(pruned).finish()
    await put('/m/meta', meta(600, 601))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
    await put('/m/meta', meta(MAX_LEAVES + 1, 300))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
    await put('/m/meta', new Uint8Array([...meta(600, 300), 0]))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
    // claims 1000 more leaves than were written: the peaks are not in the store
    await put('/m/meta', meta(1600, 300))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('StorageError:MissingItem')
    // a pruning boundary that does not match the stored pins
    await put('/m/meta', meta(600, 256))
    expect(await codeOf(Mmr.open(kv, '/m'))).to.equal('MerkleError:DataCorrupted')
  })
})
