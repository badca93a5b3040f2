/**
 * `current`: `any` plus an authenticated activity bitmap, so one proof shows
 * that a key's value is its *current* value (`storage/src/qmdb/current`);
 * unordered keys here, ordered ones in `OrderedCurrentDb`.
 *
 * Two roots: the ops root (same as `any`; what state sync targets) and the
 * canonical root `H(opsRoot ‖ graftedRoot [‖ u64be(nextBit) ‖ H(partial chunk)])`
 * that blocks commit to (`root`). `opsRootWitness()` proves the first is
 * committed by the second. The chunk size N (bytes; 8N bits per chunk) is
 * configurable as in commonware (`chunkBytes`, default 32).
 *
 * A merkleized batch carries a `GraftOverlay`: the chunks whose bits it
 * changed (relative to its parent state), the grafted nodes it changed or
 * appended, and its canonical root. Reads walk the overlay chain down to the
 * committed bitmap and grafted tree, as batch diffs do for keys. Applying a
 * batch merges its overlay into the committed tree.
 *
 * Invariants: the committed grafted tree has one leaf per complete chunk of
 * the committed log; chunks below `floor(pruningBoundary / 8N)` are pruned
 * (they are all zero, so their grafted digests equal the ops digests and the
 * pins come from the ops tree).
 */

import { assembleProof, blueprint, blueprintPositions, locToPos, nodesToPin, posToHeight, posToLoc, sha256 } from '../merkle/index.ts'
import { joinKey } from '../storage/keys.ts'
import { AnyDb, MerkleizedAnyBatch } from './any.ts'
import { SYNC_REBUILD_STEP } from './core.ts'
import { QmdbError } from './errors.ts'
import {
  GraftedTree, appendGrafted, canonicalRoot, chunkAlignedInactivePeaks, chunkOpsPosition,
  graftShape, graftedLeaf, graftedNode, graftedPositionOfPeak, graftedRoot, opsPosition, pathToPeak
} from './grafting.ts'
import { currentReader } from './readers.ts'
import type { AnyDbOptions } from './any.ts'
import type { CurrentRangeProof, OperationProof, OpsRootWitness } from './current-proof.ts'
import type { GraftShape, GraftView } from './grafting.ts'
import type { CurrentReader } from './readers.ts'
import type { FullSyncJournal, SyncRange } from './sync-journal.ts'
import type { Digest } from '../merkle/index.ts'
import type { WriteBatch } from '../storage/kv.ts'

export interface CurrentDbOptions extends AnyDbOptions {
  /**
   * Bitmap chunk size N in bytes: a power of two, at least 32 (default 32).
   * Larger chunks keep a smaller grafted tree in memory and make proofs carry
   * more bitmap bytes; the canonical root depends on it, so every replica and
   * verifier of a database must use the same N.
   */
  chunkBytes?: number
}

export class CurrentDb extends AnyDb {
  readonly kind: string = 'current'
  /** The chunk geometry (N, 8N, grafting height). */
  readonly shape: GraftShape
  private readonly graftTree: GraftedTree
  /** ops digest of each unpruned complete chunk */
  private chunkOps = new Map<number, Digest>()
  private _canonical!: Digest
  /** the ops size the grafted tree reflects */
  private graftedAt = -1

  protected constructor (options: CurrentDbOptions, ordered = false) {
    const shape = graftShape(options.chunkBytes)
    super(options, shape.chunkBytes, ordered)
    this.shape = shape
    this.graftTree = new GraftedTree(shape)
  }

  /**
   * Build the database from a completed state-sync journal (see
   * `QmdbCore.buildFromSync`); durable after `commitSyncResult()`.
   */
  static async fromSyncResult (options: CurrentDbOptions, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize = SYNC_REBUILD_STEP): Promise<CurrentDb> {
    return new CurrentDb(options).buildFromSync(journal, pins, range, expectedRoot, applyBatchSize)
  }

  static async open (options: CurrentDbOptions = {}): Promise<CurrentDb> {
    return new CurrentDb(options).openCurrent()
  }

  /** Open the stored database, refusing one written with another chunk size (its roots would silently change). */
  protected async openCurrent (): Promise<this> {
    const stored = await this.kv?.get(joinKey(this.prefix, 'chunk'))
    if (stored !== undefined) {
      const n = stored.length === 4 ? new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0) : -1
      if (n !== this.shape.chunkBytes) { throw new QmdbError('UnexpectedData', `database under ${this.prefix} uses ${n}-byte chunks, opened with ${this.shape.chunkBytes}`) }
    }
    return this.openCore()
  }

  protected stageExtra (batch: WriteBatch): void {
    super.stageExtra(batch)
    const n = new Uint8Array(4)
    new DataView(n.buffer).setUint32(0, this.shape.chunkBytes)
    batch.put(joinKey(this.prefix, 'chunk'), n)
  }

  /** The canonical root (ops root + grafted bitmap). */
  get root (): Digest { return this._canonical }

  /** The floor rounded down to a chunk boundary: what sync starts from. */
  get syncBoundary (): number { return this._floor - (this._floor % this.shape.chunkBits) }

  protected batchSyncBoundary (batch: MerkleizedAnyBatch): number {
    return batch.floor - (batch.floor % this.shape.chunkBits)
  }

  /** Chunk bytes of the committed bitmap. */
  chunk (c: number): Uint8Array {
    return this.bitmap.chunk(c)
  }

  // ---- committed grafted tree -------------------------------------------------

  protected async refreshRoots (): Promise<void> {
    if (this.graftedAt !== this.size) { await this.rebuildGraft() }
    this._canonical = this.computeCanonical(this.opsRoot, this.size, this._floor, this.mmr.peakDigests(), this.graftTree, c => this.bitmap.chunk(c))
  }

  /** Recompute the grafted tree from the bitmap and the ops tree (open, rewind). */
  private async rebuildGraft (): Promise<void> {
    const g = this.shape
    const pruned = Math.floor(this.log.base / g.chunkBits)
    const leaves = Math.floor(this.size / g.chunkBits)
    // pins: grafted peaks of MMR(pruned) = ops nodes at the mapped positions (pruned chunks are zero)
    const pinPositions = nodesToPin(pruned)
    const [pins, ops] = await Promise.all([
      this.mmr.getNodes(pinPositions.map(q => opsPosition(q, g))),
      this.mmr.getNodes(range(pruned, leaves).map(c => chunkOpsPosition(c, g)))
    ])
    this.graftTree.reset(pruned, pins)
    this.chunkOps = new Map()
    ops.forEach((d, i) => {
      const c = pruned + i
      this.chunkOps.set(c, d)
      this.graftTree.appendLeaf(graftedLeaf(this.bitmap.chunk(c), d))
    })
    this.graftedAt = this.size
  }

  protected applyIndex (batch: MerkleizedAnyBatch): void {
    super.applyIndex(batch)
    const g = batch.graft
    if (g === undefined || this.graftedAt !== batch.baseSize) {
      this.graftedAt = -1 // rebuilt by refreshRoots
      return
    }
    for (const [c, d] of g.chunkOps) { this.chunkOps.set(c, d) }
    this.graftTree.setLeaves(g.leaves)
    for (const [q, d] of g.nodes) { this.graftTree.set(q, d) }
    this.graftedAt = batch.size
    this._canonical = g.canonical
  }

  protected pruneIndex (loc: number): void {
    super.pruneIndex(loc)
    const pruned = Math.floor(loc / this.shape.chunkBits)
    this.graftTree.prune(pruned)
    for (const c of this.chunkOps.keys()) {
      if (c < pruned) { this.chunkOps.delete(c) }
    }
  }

  private computeCanonical (opsRoot: Digest, size: number, floor: number, opsPeaks: Digest[], view: GraftView, chunkAt: (c: number) => Uint8Array): Digest {
    const g = this.shape
    const partial = size % g.chunkBits === 0 ? undefined : chunkAt(Math.floor(size / g.chunkBits))
    return canonicalRoot(opsRoot, graftedRoot(size, floor, opsPeaks, view, g), size, partial, g)
  }

  /**
   * The witness that the canonical root commits to the ops root (`ops_root_witness`
   * in `storage/src/qmdb/current/db.rs`): a client holding a trusted canonical
   * root can check an ops root (e.g. a sync target) with `verifyOpsRootWitness`.
   */
  opsRootWitness (): OpsRootWitness {
    this.check()
    const g = this.shape
    const size = this.size
    const graftedRootDigest = graftedRoot(size, this._floor, this.mmr.peakDigests(), this.graftTree, g)
    const nextBit = size % g.chunkBits
    const partial = nextBit === 0 ? undefined : { nextBit, digest: sha256(this.bitmap.chunk(Math.floor(size / g.chunkBits))) }
    return { graftedRoot: graftedRootDigest, partial }
  }

  // ---- proofs -------------------------------------------------------------------

  /** Digests of the virtual tree at ops positions: ops nodes below the grafting height, grafted nodes above. */
  private async virtualNodes (positions: readonly number[]): Promise<Digest[]> {
    const out = new Array<Digest>(positions.length)
    const low: number[] = []
    const lowIdx: number[] = []
    positions.forEach((p, i) => {
      const h = posToHeight(p)
      if (h < this.shape.height) {
        low.push(p)
        lowIdx.push(i)
        return
      }
      const first = posToLoc(p - (2 ** (h + 1) - 2)) as number
      out[i] = this.graftTree.node(graftedPositionOfPeak(first, h, this.shape))
    })
    const got = await this.mmr.getNodes(low)
    got.forEach((d, j) => { out[lowIdx[j]] = d })
    return out
  }

  /**
   * Operations `[start, min(size, start + maxOps))`, the bitmap chunks covering
   * them, and a proof of both against the canonical root.
   */
  async rangeProof (start: number, maxOps: number): Promise<{ proof: CurrentRangeProof, ops: Uint8Array[], chunks: Uint8Array[] }> {
    this.check()
    const L = this.size
    if (start >= L) { throw new QmdbError('RangeOutOfBounds', `start ${start} not below size ${L}`) }
    if (start < this.log.base) { throw new QmdbError('OperationPruned', `operation ${start} is pruned`) }
    const end = Math.min(L, start + Math.max(1, maxOps))
    const g = this.shape
    const k = chunkAlignedInactivePeaks(L, this._floor, g)
    const bp = blueprint(L, k, start, end)
    const positions = blueprintPositions(bp)
    const [digests, ops] = await Promise.all([this.virtualNodes(positions), this.log.range(start, end)])
    const byPos = new Map(positions.map((p, i) => [p, digests[i]]))
    const proof = assembleProof(bp, L, k, p => byPos.get(p) as Digest)
    const chunks: Uint8Array[] = []
    for (let c = Math.floor(start / g.chunkBits); c <= Math.floor((end - 1) / g.chunkBits); c++) { chunks.push(this.bitmap.chunk(c)) }
    const partialChunkDigest = L % g.chunkBits === 0 ? undefined : sha256(this.bitmap.chunk(Math.floor(L / g.chunkBits)))
    return { proof: { proof, partialChunkDigest, opsRoot: this.opsRoot }, ops, chunks }
  }

  /** Reads and proofs only (see `readers.ts`). */
  reader (): CurrentReader<{ proof: CurrentRangeProof, ops: Uint8Array[], chunks: Uint8Array[] }, { proof: OperationProof, op: Uint8Array }> {
    return currentReader(this)
  }

  /** Proof that `key` currently has its value: the active update operation and its activity bit. */
  async keyValueProof (key: Uint8Array): Promise<{ proof: OperationProof, op: Uint8Array }> {
    const loc = this.locationOf(key)
    if (loc < 0) { throw new QmdbError('KeyNotFound', 'the key has no value') }
    const { proof, ops, chunks } = await this.rangeProof(loc, 1)
    return { proof: { loc, chunk: chunks[0], rangeProof: proof }, op: ops[0] }
  }

  // ---- batches ----------------------------------------------------------------

  /** Chunk bytes as of the state after `batch` (or the committed state). */
  chunkAt (batch: MerkleizedAnyBatch | undefined, c: number): Uint8Array {
    for (let b = batch; b !== undefined; b = b.parent) {
      const bytes = b.graft?.chunks.get(c)
      if (bytes !== undefined) { return bytes }
    }
    return this.bitmap.chunk(c)
  }

  private chunkOpsAt (batch: MerkleizedAnyBatch | undefined, c: number): Digest {
    for (let b = batch; b !== undefined; b = b.parent) {
      const d = b.graft?.chunkOps.get(c)
      if (d !== undefined) { return d }
    }
    const d = this.chunkOps.get(c)
    if (d === undefined) { throw new Error(`no ops digest for chunk ${c}`) }
    return d
  }

  private graftViewAt (batch: MerkleizedAnyBatch | undefined, leaves: number, own?: Map<number, Digest>): GraftView {
    const tree = this.graftTree
    return {
      leaves,
      node (q: number): Digest {
        const mine = own?.get(q)
        if (mine !== undefined) { return mine }
        for (let b = batch; b !== undefined; b = b.parent) {
          const d = b.graft?.nodes.get(q)
          if (d !== undefined) { return d }
        }
        return tree.node(q)
      }
    }
  }

  /** Graft the bitmap changes of `m` (relative to its parent state) and compute its canonical root. */
  async afterMerkleize (m: MerkleizedAnyBatch): Promise<void> {
    const parent = m.parent
    if (parent !== undefined && parent.graft === undefined) { throw new Error('parent batch was not merkleized by a current database') }
    const g = this.shape
    const B = m.baseSize
    const S = m.size
    // bit changes relative to the parent state: clears (all < B) then sets (all >= B)
    const clears: number[] = [B - 1]
    const sets: number[] = [S - 1]
    const { locs, prevs } = m.diff
    for (let s = 0; s < m.diff.size; s++) {
      if (prevs[s] >= 0) { clears.push(prevs[s]) }
      if (locs[s] >= 0) { sets.push(locs[s]) }
    }
    const chunks = new Map<number, Uint8Array>()
    const touch = (bit: number, value: boolean): void => {
      const c = Math.floor(bit / g.chunkBits)
      let bytes = chunks.get(c)
      if (bytes === undefined) {
        bytes = this.chunkAt(parent, c).slice()
        chunks.set(c, bytes)
      }
      const o = bit - c * g.chunkBits
      if (value) { bytes[o >>> 3] |= 1 << (o & 7) } else { bytes[o >>> 3] &= ~(1 << (o & 7)) }
    }
    for (const bit of clears) { if (bit >= this.bitmap.prunedBits) { touch(bit, false) } }
    for (const bit of sets) { touch(bit, true) }

    const G0 = Math.floor(B / g.chunkBits)
    const G1 = Math.floor(S / g.chunkBits)
    const chunkOps = new Map<number, Digest>()
    if (G1 > G0) {
      const digests = await m.mmr.getNodes(range(G0, G1).map(c => chunkOpsPosition(c, g)))
      digests.forEach((d, i) => chunkOps.set(G0 + i, d))
    }
    const bytesOf = (c: number): Uint8Array => chunks.get(c) ?? this.chunkAt(parent, c)
    const opsOf = (c: number): Digest => chunkOps.get(c) ?? this.chunkOpsAt(parent, c)

    const nodes = new Map<number, Digest>()
    const view = this.graftViewAt(parent, G0, nodes)
    // 1. changed leaves of chunks complete before this batch, then their ancestors (lowest first)
    const dirty = new Set<number>()
    for (const c of chunks.keys()) {
      if (c < G0 && c >= this.graftTree.pruned) {
        nodes.set(locToPos(c), graftedLeaf(bytesOf(c), opsOf(c)))
        for (const q of pathToPeak(c, G0)) { dirty.add(q) }
      }
    }
    for (const q of [...dirty].sort((a, b) => a - b)) {
      // children: left at q - 2^h, right at q - 1 (heights increase with position along a path)
      const h = posToHeight(q)
      nodes.set(q, graftedNode(q, view.node(q - 2 ** h), view.node(q - 1), g))
    }
    // 2. chunks completed by this batch
    for (let c = G0; c < G1; c++) {
      appendGrafted(view, c, graftedLeaf(bytesOf(c), opsOf(c)), (q, d) => { nodes.set(q, d) }, g)
    }
    const finalView = this.graftViewAt(parent, G1, nodes)
    const partial = S % g.chunkBits === 0 ? undefined : bytesOf(G1)
    const canonical = canonicalRoot(m.opsRoot, graftedRoot(S, m.floor, m.mmr.peakDigests(), finalView, g), S, partial, g)
    m.graft = { chunkBits: g.chunkBits, chunks, nodes, chunkOps, leaves: G1, canonical }
  }
}

function range (from: number, to: number): number[] {
  const out: number[] = []
  for (let i = from; i < to; i++) { out.push(i) }
  return out
}
