/**
 * Speculative MMR batches (commonware `storage/src/mmr`).
 *
 * An `MmrBatch` collects appended leaves on top of a parent (the committed
 * `Mmr` or another merkleized batch); `merkleize()` hashes them into a
 * `MerkleizedMmrBatch` that owns only the nodes it appended and reads
 * everything older through its parent chain. Nothing here touches storage,
 * so any number of competing chains can coexist.
 *
 * Invariants:
 * - a merkleized batch is immutable; its node positions `[baseSize, size)`
 * never change;
 * - appending needs only the parent's peaks, which every `MerkleSource`
 * keeps in memory, so merkleize is synchronous and never loads from disk;
 * - chains follow `chain.ts`: a root batch records the committed state token
 * it was forked at; applying cuts parent links, so node reads fall through
 * to the committed structure once an ancestor is applied.
 */

import { MerkleError } from './errors.ts'
import { computeRoot } from './hasher.ts'
import { locToPos, peaks, trailingOnes } from './math.ts'
import { assembleProof, blueprint, blueprintPositions } from './proof.ts'
import { sha256Lanes } from './sha256-lanes.ts'
import type { ChainLink } from './chain.ts'
import type { Bagging, Digest } from './hasher.ts'
import type { Proof } from './proof.ts'

/** Read access to the nodes of a Merkle structure (committed or speculative). */
export interface MerkleSource {
  /** Node count. */
  readonly size: number
  /** Leaf count. */
  readonly leaves: number
  /** The digest at `pos` if it is held in memory (a view; do not mutate). */
  nodeSync(pos: number): Digest | undefined
  /** Digests at `positions`, loading from storage as needed (`ElementPruned` if gone). */
  getNodes(positions: readonly number[]): Promise<Digest[]>
  /** Digests of the current peaks, oldest first (always in memory). */
  peakDigests(): Digest[]
}

/** The committed structure a batch chain is rooted at. */
export interface BatchBase extends MerkleSource {
  /** Identity of the current content; replaced on every mutation. */
  readonly state: object
}

/** Root of `source` with `k` inactive peaks. */
export function sourceRoot (source: MerkleSource, k = 0, bagging: Bagging = 'backward'): Digest {
  return computeRoot(source.leaves, k, source.peakDigests(), bagging)
}

/** A range proof for `[start, end)` of the first `leaves` leaves of `source` (historical when `leaves < source.leaves`). */
export async function proveRange (source: MerkleSource, start: number, end: number, k = 0, leaves = source.leaves, bagging: Bagging = 'backward'): Promise<Proof> {
  if (leaves > source.leaves) { throw new MerkleError('RangeOutOfBounds', `${leaves} leaves requested, ${source.leaves} available`) }
  const bp = blueprint(leaves, k, start, end, bagging)
  const positions = blueprintPositions(bp)
  const digests = await source.getNodes(positions)
  const byPos = new Map<number, Digest>()
  positions.forEach((p, i) => byPos.set(p, digests[i]))
  return assembleProof(bp, leaves, k, pos => byPos.get(pos) as Digest)
}

/**
 * Copies of the digests at `positions` (each below `size`): those `local`
 * holds at once, the rest in one `fetch` (the structure below a batch, or
 * storage). `local` may throw for a position that can never be served.
 */
export async function gatherNodes (positions: readonly number[], size: number, local: (pos: number) => Digest | undefined, fetch: (positions: number[]) => Promise<Digest[]>): Promise<Digest[]> {
  const out = new Array<Digest>(positions.length)
  const rest: number[] = []
  const restIdx: number[] = []
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]
    if (p >= size) { throw new MerkleError('RangeOutOfBounds', `node ${p} beyond size ${size}`) }
    const d = local(p)
    if (d !== undefined) {
      out[i] = d
    } else {
      rest.push(p)
      restIdx.push(i)
    }
  }
  if (rest.length > 0) {
    const got = await fetch(rest)
    for (let j = 0; j < got.length; j++) { out[restIdx[j]] = got[j] }
  }
  return out
}

export class MmrBatch {
  /** The committed structure the chain is rooted at. */
  readonly base: BatchBase
  /** The merkleized parent batch, if any. */
  readonly parentBatch: MerkleizedMmrBatch | undefined
  private readonly baseToken: object | undefined
  private readonly items: Uint8Array[] = []
  private readonly isDigest: boolean[] = []

  constructor (base: BatchBase, parent?: MerkleizedMmrBatch) {
    this.base = base
    this.parentBatch = parent
    this.baseToken = parent === undefined ? base.state : undefined
  }

  private get parent (): MerkleSource {
    return this.parentBatch ?? this.base
  }

  /** Number of leaves added so far. */
  get length (): number {
    return this.items.length
  }

  /** Append an element (hashed as a leaf at merkleize time). */
  add (element: Uint8Array): this {
    this.items.push(element)
    this.isDigest.push(false)
    return this
  }

  /** Append an already computed leaf digest. */
  addLeafDigest (digest: Digest): this {
    if (digest.length !== 32) { throw new MerkleError('InvalidProof', 'leaf digest must be 32 bytes') }
    this.items.push(digest)
    this.isDigest.push(true)
    return this
  }

  private parentNode (pos: number): Digest {
    const d = this.parent.nodeSync(pos)
    if (d === undefined) { throw new MerkleError('MissingNode', `parent peak ${pos} not in memory`) }
    return d
  }

  /**
   * Hash the appended leaves and their new parents. The leaves are
   * independent, and so are the new nodes of one height, so they are hashed
   * together (`sha256-lanes.ts`): all leaves, then the nodes level by level
   * from height 1 (each level needs only the one below or the parent's peaks).
   */
  merkleize (): MerkleizedMmrBatch {
    const parent = this.parent
    const baseSize = parent.size
    const baseLeaves = parent.leaves
    const newLeaves = baseLeaves + this.items.length
    const size = locToPos(newLeaves)
    const lanes = sha256Lanes
    // hashed in place in the lanes' arena (wasm memory: no copies in or out per node), kept as one copy
    const arena = lanes.arena((size - baseSize) * 32)
    /** new node positions by height (index h - 1) */
    const levels: number[][] = []
    let pos = baseSize
    for (let i = 0; i < this.items.length; i++) {
      const item = this.items[i]
      const off = (pos - baseSize) * 32
      if (this.isDigest[i]) { arena.set(item, off) } else { lanes.leaf(pos, item, 0, item.length, arena, off) }
      pos++
      const parents = trailingOnes(baseLeaves + i)
      for (let h = 1; h <= parents; h++) {
        if (levels.length < h) { levels.push([]) }
        levels[h - 1].push(pos)
        pos++
      }
    }
    lanes.flush()
    for (let h = 1; h <= levels.length; h++) {
      const level = levels[h - 1]
      const span = 2 ** h
      for (let j = 0; j < level.length; j++) {
        const p = level[j]
        // the right child is p - 1 (new); the left child is new or one of the parent's peaks
        const left = p - span
        const ro = (p - 1 - baseSize) * 32
        const oo = (p - baseSize) * 32
        if (left >= baseSize) {
          lanes.node(p, arena, (left - baseSize) * 32, arena, ro, arena, oo)
        } else {
          lanes.node(p, this.parentNode(left), 0, arena, ro, arena, oo)
        }
      }
      lanes.flush()
    }
    const peakDigests = peaks(size).map(p => p.pos >= baseSize
      ? arena.slice((p.pos - baseSize) * 32, (p.pos - baseSize) * 32 + 32)
      : this.parentNode(p.pos).slice())
    return new MerkleizedMmrBatch(this.base, this.parentBatch, this.baseToken, baseSize, size, newLeaves, lanes.detach(arena), peakDigests)
  }
}

export class MerkleizedMmrBatch implements MerkleSource, ChainLink {
  readonly base: BatchBase
  parent: MerkleizedMmrBatch | undefined
  baseToken: object | undefined
  appliedToken: object | undefined = undefined
  readonly baseSize: number
  readonly size: number
  readonly leaves: number
  /** Digests of positions `[baseSize, size)`, 32 bytes each. */
  readonly nodes: Uint8Array
  private readonly peaks: Digest[]

  constructor (base: BatchBase, parent: MerkleizedMmrBatch | undefined, baseToken: object | undefined, baseSize: number, size: number, leaves: number, nodes: Uint8Array, peakDigests: Digest[]) {
    this.base = base
    this.parent = parent
    this.baseToken = baseToken
    this.baseSize = baseSize
    this.size = size
    this.leaves = leaves
    this.nodes = nodes
    this.peaks = peakDigests
  }

  /** Where nodes below `baseSize` come from: the parent batch, or the committed structure. */
  private get below (): MerkleSource {
    return this.parent ?? this.base
  }

  nodeSync (pos: number): Digest | undefined {
    if (pos >= this.size) { return undefined }
    if (pos >= this.baseSize) {
      const o = (pos - this.baseSize) * 32
      return this.nodes.subarray(o, o + 32)
    }
    return this.below.nodeSync(pos)
  }

  async getNodes (positions: readonly number[]): Promise<Digest[]> {
    return gatherNodes(positions, this.size, p => {
      if (p < this.baseSize) { return undefined }
      const o = (p - this.baseSize) * 32
      return this.nodes.slice(o, o + 32)
    }, async older => this.below.getNodes(older))
  }

  peakDigests (): Digest[] {
    return this.peaks
  }

  root (k = 0, bagging: Bagging = 'backward'): Digest {
    return computeRoot(this.leaves, k, this.peaks, bagging)
  }

  /** A child batch reading through this one. */
  newBatch (): MmrBatch {
    return new MmrBatch(this.base, this)
  }
}
