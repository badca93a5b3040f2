/**
 * Grafting the activity bitmap onto the operations MMR (`storage/src/qmdb/current/grafting.rs`).
 *
 * The bitmap is cut into chunks of `8N` bits (N bytes, a power of two >= 32;
 * the default N = 32 gives 256 bits and grafting height `gh = 8`). Each complete chunk `c` becomes a leaf of the *grafted*
 * tree: the ops node covering the chunk's operations (height `gh`), combined
 * with the chunk bytes unless they are all zero:
 *
 * `graftedLeaf(c) = opsNode(c)` if chunk c is all zero, else
 * `SHA256(chunkBytes(c) ‖ opsNode(c))`.
 *
 * Grafted internal nodes are hashed with the *ops-space* position of the ops
 * node covering the same operations, so a region of all-zero chunks hashes
 * exactly like the ops tree (which is why pruned chunks need no extra data).
 *
 * Positions: grafted positions are MMR positions over chunk leaves; `opsPosition`
 * maps a grafted node to its ops-space twin.
 */

import { MerkleError, computeRoot, locToPos, peaks, posToHeight, posToLoc, sha256, defaultHasher, nodesToPin, trailingOnes } from '../merkle/index.ts'
import type { Digest } from '../merkle/index.ts'

/** The default chunk size in bytes (N = 32: 256-bit chunks, grafting height 8). */
export const CHUNK_BYTES = 32
export const CHUNK_BITS = CHUNK_BYTES * 8
export const GRAFT_HEIGHT = 8

/** The chunk geometry of a `current` database: N bytes, 8N bits, grafting height log2(8N). */
export interface GraftShape {
  readonly chunkBytes: number
  readonly chunkBits: number
  readonly height: number
}

/**
 * The shape for chunks of `chunkBytes` bytes: a power of two and a multiple
 * of the digest size (`storage/src/qmdb/current/mod.rs` asserts the same), so
 * every chunk lines up with one ops subtree.
 */
export function graftShape (chunkBytes: number = CHUNK_BYTES): GraftShape {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 32 || chunkBytes > (1 << 20) || (chunkBytes & (chunkBytes - 1)) !== 0) {
    throw new RangeError(`chunk size must be a power of two from 32 to 2^20 bytes, got ${chunkBytes}`)
  }
  return { chunkBytes, chunkBits: chunkBytes * 8, height: Math.log2(chunkBytes * 8) }
}

export const DEFAULT_GRAFT: GraftShape = graftShape(CHUNK_BYTES)

/** Ops position of the height-`gh` node covering chunk `c`. */
export function chunkOpsPosition (c: number, g: GraftShape = DEFAULT_GRAFT): number {
  return locToPos(c * g.chunkBits) + 2 ** (g.height + 1) - 2
}

/** Ops-space position of the grafted node at grafted position `q`. */
export function opsPosition (q: number, g: GraftShape = DEFAULT_GRAFT): number {
  const h = posToHeight(q)
  const leftmost = q - (2 ** (h + 1) - 2)
  const c0 = posToLoc(leftmost)
  if (c0 === undefined) { throw new MerkleError('NonLeaf', `grafted position ${q}`) }
  return locToPos(c0 * g.chunkBits) + 2 ** (h + g.height + 1) - 2
}

/** Grafted position of the node covering the ops peak `(pos, height >= gh)` that starts at leaf `start`. */
export function graftedPositionOfPeak (start: number, height: number, g: GraftShape = DEFAULT_GRAFT): number {
  const c0 = start / g.chunkBits
  return locToPos(c0) + 2 ** (height - g.height + 1) - 2
}

export function isZero (bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0) { return false }
  }
  return true
}

/** The grafted leaf of a chunk. */
export function graftedLeaf (chunk: Uint8Array, opsNode: Digest): Digest {
  return isZero(chunk) ? opsNode : sha256(chunk, opsNode)
}

/** Hash a grafted internal node at grafted position `q`. */
export function graftedNode (q: number, left: Digest, right: Digest, g: GraftShape = DEFAULT_GRAFT): Digest {
  const out = new Uint8Array(32)
  defaultHasher.nodeInto(opsPosition(q, g), left, 0, right, 0, out, 0)
  return out
}

/**
 * Inactive peaks for the grafted root: the oldest ops peaks wholly below the
 * floor, cut back to the last one ending on a chunk boundary.
 */
export function chunkAlignedInactivePeaks (leaves: number, floor: number, g: GraftShape = DEFAULT_GRAFT): number {
  let kc = 0
  let leafEnd = 0
  const ps = peaks(locToPos(leaves))
  for (let i = 0; i < ps.length; i++) {
    const width = 2 ** ps[i].height
    if (leafEnd + width > floor) { break }
    leafEnd += width
    if (leafEnd % g.chunkBits === 0) { kc = i + 1 }
  }
  return kc
}

/** Read access to grafted nodes (the committed tree, or a batch overlay over it). */
export interface GraftView {
  /** Number of grafted leaves (complete chunks). */
  readonly leaves: number
  node(q: number): Digest
}

/**
 * The committed grafted tree, fully in memory: one leaf per complete chunk
 * (~1/256 of the ops tree). Chunks below `pruned` are gone except the pins
 * (the peaks of the grafted MMR with `pruned` leaves).
 */
export class GraftedTree implements GraftView {
  readonly shape: GraftShape
  private _leaves = 0
  private _pruned = 0
  private base = 0 // grafted position of the first stored node
  private nodes: Digest[] = []
  private pins = new Map<number, Digest>()

  constructor (shape: GraftShape = DEFAULT_GRAFT) {
    this.shape = shape
  }

  get leaves (): number { return this._leaves }
  get pruned (): number { return this._pruned }
  get size (): number { return locToPos(this._leaves) }

  /** Start over with `pruned` leaves known only through `pins` (peaks of MMR(pruned)). */
  reset (pruned: number, pins: readonly Digest[]): void {
    const positions = nodesToPin(pruned)
    if (positions.length !== pins.length) { throw new MerkleError('InvalidPinnedNodes', `expected ${positions.length} grafted pins, got ${pins.length}`) }
    this.pins = new Map(positions.map((p, i) => [p, pins[i]]))
    this._pruned = pruned
    this._leaves = pruned
    this.base = locToPos(pruned)
    this.nodes = []
  }

  node (q: number): Digest {
    if (q >= this.base) {
      const d = this.nodes[q - this.base]
      if (d !== undefined) { return d }
    } else {
      const d = this.pins.get(q)
      if (d !== undefined) { return d }
    }
    throw new MerkleError('MissingNode', `grafted node ${q} not available`)
  }

  /** Set (or append) the node at `q`. */
  set (q: number, d: Digest): void {
    if (q < this.base) { throw new MerkleError('ElementPruned', `grafted node ${q} is pruned`) }
    this.nodes[q - this.base] = d
  }

  setLeaves (leaves: number): void {
    this._leaves = leaves
    this.nodes.length = Math.max(0, locToPos(leaves) - this.base)
  }

  /** Append a leaf and its new parents. */
  appendLeaf (d: Digest): void {
    appendGrafted(this, this._leaves, d, (q, x) => { this.set(q, x) }, this.shape)
    this._leaves++
  }

  /** Drop leaves below `pruned`, keeping the peaks of MMR(pruned) as pins. */
  prune (pruned: number): void {
    if (pruned <= this._pruned) { return }
    if (pruned > this._leaves) { throw new MerkleError('LeafOutOfBounds', `prune grafted tree to ${pruned} beyond ${this._leaves}`) }
    const positions = nodesToPin(pruned)
    this.pins = new Map(positions.map(p => [p, this.node(p)]))
    const newBase = locToPos(pruned)
    this.nodes = this.nodes.slice(newBase - this.base)
    this.base = newBase
    this._pruned = pruned
  }
}

/**
 * Append grafted leaf number `leaf` (digest `d`) on top of `view`, writing the
 * leaf and every new parent through `put`.
 */
export function appendGrafted (view: GraftView, leaf: number, d: Digest, put: (q: number, d: Digest) => void, g: GraftShape = DEFAULT_GRAFT): void {
  let pos = locToPos(leaf)
  put(pos, d)
  let right = d
  for (let h = 1; h <= trailingOnes(leaf); h++) {
    pos++
    const left = view.node(pos - 2 ** h)
    right = graftedNode(pos, left, right, g)
    put(pos, right)
  }
}

/**
 * Positions on the path from grafted leaf `leaf` up to (excluding) its peak in
 * an MMR of `leaves` leaves, each with its height.
 */
export function pathToPeak (leaf: number, leaves: number): number[] {
  const size = locToPos(leaves)
  const out: number[] = []
  let pos = locToPos(leaf)
  let h = 0
  for (;;) {
    // right child if the next position is higher; its parent follows immediately
    const nextIsParent = pos + 1 < size && posToHeight(pos + 1) > h
    const parent = nextIsParent ? pos + 1 : pos + 2 ** (h + 1)
    if (parent >= size) { return out }
    out.push(parent)
    pos = parent
    h++
  }
}

/**
 * The canonical root of a `current` state: `H(opsRoot ‖ graftedRoot)`,
 * plus the partial chunk when the bitmap does not end on a chunk boundary.
 */
export function canonicalRoot (opsRoot: Digest, graftedRoot: Digest, leaves: number, partialChunk: Uint8Array | undefined, g: GraftShape = DEFAULT_GRAFT): Digest {
  const nextBit = leaves % g.chunkBits
  return combineRoots(opsRoot, graftedRoot, nextBit === 0 ? undefined : { nextBit, digest: sha256(partialChunk ?? new Uint8Array(g.chunkBytes)) })
}

/**
 * `H(opsRoot ‖ graftedRoot [‖ u64be(nextBit) ‖ partialDigest])`: the canonical
 * root from its parts (`combine_roots` in `storage/src/qmdb/current/db.rs`; MMR
 * has no pending chunk).
 */
export function combineRoots (opsRoot: Digest, graftedRoot: Digest, partial: { nextBit: number, digest: Digest } | undefined): Digest {
  if (partial === undefined) { return sha256(opsRoot, graftedRoot) }
  const bits = new Uint8Array(8)
  new DataView(bits.buffer).setBigUint64(0, BigInt(partial.nextBit))
  return sha256(opsRoot, graftedRoot, bits, partial.digest)
}

/**
 * The grafted root: the ops peaks below `gh` as they are, the taller ones
 * replaced by their grafted twins, bagged backward with `kc` inactive peaks.
 */
export function graftedRoot (leaves: number, floor: number, opsPeakDigests: readonly Digest[], view: GraftView, g: GraftShape = DEFAULT_GRAFT): Digest {
  let start = 0
  const virtual = peaks(locToPos(leaves)).map((p, i) => {
    const d = p.height < g.height ? opsPeakDigests[i] : view.node(graftedPositionOfPeak(start, p.height, g))
    start += 2 ** p.height
    return d
  })
  return computeRoot(leaves, chunkAlignedInactivePeaks(leaves, floor, g), virtual)
}

/** The grafted bitmap state a `current` batch adds on top of its parent state. */
export interface GraftOverlay {
  readonly chunkBits: number
  /** Chunk index → chunk bytes after this batch (only chunks whose bits changed). */
  readonly chunks: Map<number, Uint8Array>
  /** Grafted position → digest (changed or appended nodes). */
  readonly nodes: Map<number, Digest>
  /** Ops node digest of every chunk completed by this batch. */
  readonly chunkOps: Map<number, Digest>
  /** Complete chunks after this batch. */
  readonly leaves: number
  readonly canonical: Digest
}
