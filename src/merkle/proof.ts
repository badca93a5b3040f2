/**
 * MMR range proofs: blueprint, building, byte format and verification
 * (commonware `storage/src/mmr`), byte-compatible with commonware's `Proof`.
 *
 * A proof for the contiguous range `[start, end)` of an MMR with `leaves`
 * leaves and `k` inactive peaks carries, in order: the forward-folded
 * accumulator of the inactive prefix peaks (if any), the active prefix peaks,
 * the peaks after the range that are sent individually, the backward-folded
 * accumulator of the active suffix peaks (if any), then the siblings of the
 * range inside its range peaks (left-first DFS).
 *
 * Invariants:
 * - verification never trusts a count from the proof: the digest count must
 * equal what the blueprint of `(leaves, k, range)` requires, exactly;
 * - decoding caps the digest count before allocating;
 * - every verification failure is a `MerkleError` (or `false` from the
 * boolean helpers), never another exception.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MerkleError } from './errors.ts'
import { fold, rootWithFolded, digestEquals, defaultHasher, sha256 } from './hasher.ts'
import { locToPos, peaks, MAX_LEAVES } from './math.ts'
import { sha256Lanes } from './sha256-lanes.ts'
import type { Bagging, Digest } from './hasher.ts'

export interface Proof {
  /** Leaf count of the tree the proof is for. */
  leaves: number
  /** Inactive peaks committed in the root. */
  inactivePeaks: number
  digests: Digest[]
}

/** A perfect subtree: root position, height, first leaf. */
export interface Subtree {
  pos: number
  height: number
  start: number
}

export interface Blueprint {
  foldPrefix: Subtree[]
  prefixActive: Subtree[]
  after: Subtree[]
  suffix: Subtree[]
  rangePeaks: Subtree[]
  /** Positions of the siblings, in DFS order, range peak by range peak. */
  siblings: number[]
  /** Number of digests a proof following this blueprint carries. */
  digestCount: number
}

function subEnd (s: Subtree): number {
  return s.start + 2 ** s.height
}

function leftChild (s: Subtree): Subtree {
  return { pos: s.pos - 2 ** s.height, height: s.height - 1, start: s.start }
}

function rightChild (s: Subtree): Subtree {
  return { pos: s.pos - 1, height: s.height - 1, start: s.start + 2 ** (s.height - 1) }
}

/** The peaks of an MMR with `leaves` leaves as subtrees with their first leaf. */
export function peakSubtrees (leaves: number): Subtree[] {
  let cursor = 0
  return peaks(locToPos(leaves)).map(p => {
    const s = { pos: p.pos, height: p.height, start: cursor }
    cursor += 2 ** p.height
    return s
  })
}

/**
 * What a proof of `[start, end)` in a tree of `leaves` leaves with `k`
 * inactive peaks consists of.
 */
export function blueprint (leaves: number, k: number, start: number, end: number, bagging: Bagging = 'backward'): Blueprint {
  if (start >= end) { throw new MerkleError('Empty', `empty range [${start}, ${end})`) }
  if (end > leaves) { throw new MerkleError('RangeOutOfBounds', `range end ${end} beyond ${leaves} leaves`) }
  const bp: Blueprint = { foldPrefix: [], prefixActive: [], after: [], suffix: [], rangePeaks: [], siblings: [], digestCount: 0 }
  const all = peakSubtrees(leaves)
  if (k > all.length) { throw new MerkleError('InvalidProof', `${k} inactive peaks but only ${all.length} peaks`) }
  all.forEach((p, i) => {
    if (subEnd(p) <= start) {
      if (i < k || bagging === 'forward') { bp.foldPrefix.push(p) } else { bp.prefixActive.push(p) }
    } else if (p.start >= end) {
      if (bagging === 'backward' && i >= k) { bp.suffix.push(p) } else { bp.after.push(p) }
    } else {
      bp.rangePeaks.push(p)
    }
  })
  const walk = (x: Subtree): void => {
    if (subEnd(x) <= start || x.start >= end) {
      bp.siblings.push(x.pos)
      return
    }
    if (x.start >= start && subEnd(x) <= end) { return }
    walk(leftChild(x))
    walk(rightChild(x))
  }
  for (const rp of bp.rangePeaks) { walk(rp) }
  bp.digestCount = (bp.foldPrefix.length > 0 ? 1 : 0) + bp.prefixActive.length + bp.after.length +
    (bp.suffix.length > 0 ? 1 : 0) + bp.siblings.length
  return bp
}

/** Every node position whose digest is needed to build a proof from `bp`. */
export function blueprintPositions (bp: Blueprint): number[] {
  return [
    ...bp.foldPrefix.map(s => s.pos),
    ...bp.prefixActive.map(s => s.pos),
    ...bp.after.map(s => s.pos),
    ...bp.suffix.map(s => s.pos),
    ...bp.siblings
  ]
}

/** Assemble a proof from `bp` with node digests provided by `get`. */
export function assembleProof (bp: Blueprint, leaves: number, k: number, get: (pos: number) => Digest): Proof {
  const digests: Digest[] = []
  if (bp.foldPrefix.length > 0) {
    let acc = get(bp.foldPrefix[0].pos)
    for (let i = 1; i < bp.foldPrefix.length; i++) { acc = fold(acc, get(bp.foldPrefix[i].pos)) }
    digests.push(acc)
  }
  for (const s of bp.prefixActive) { digests.push(get(s.pos)) }
  for (const s of bp.after) { digests.push(get(s.pos)) }
  if (bp.suffix.length > 0) {
    let acc = get(bp.suffix[bp.suffix.length - 1].pos)
    for (let j = bp.suffix.length - 2; j >= 0; j--) { acc = fold(get(bp.suffix[j].pos), acc) }
    digests.push(acc)
  }
  for (const p of bp.siblings) { digests.push(get(p)) }
  return { leaves, inactivePeaks: k, digests }
}

/**
 * Build a range proof for `[start, end)` of a tree with `leaves` leaves from a
 * synchronous node source (throws `ElementPruned` for a missing node).
 */
export function buildRangeProof (get: (pos: number) => Digest | undefined, leaves: number, k: number, start: number, end: number, bagging: Bagging = 'backward'): Proof {
  const bp = blueprint(leaves, k, start, end, bagging)
  return assembleProof(bp, leaves, k, pos => {
    const d = get(pos)
    if (d === undefined) { throw new MerkleError('ElementPruned', `node ${pos} is not available`) }
    return d
  })
}

// ---------------------------------------------------------------------------
// Byte format: varint(leaves) || varint(inactivePeaks) || varint(len) || 32·len

export function encodeProof (proof: Proof, w: Writer = new Writer(16 + 32 * proof.digests.length)): Writer {
  w.varint(proof.leaves).varint(proof.inactivePeaks).length32(proof.digests.length)
  for (const d of proof.digests) { w.raw(d) }
  return w
}

/** Decode a proof carrying at most `maxDigests` digests (checked before allocation). */
export function decodeProof (r: Reader, maxDigests: number): Proof {
  const leaves = r.varint()
  if (leaves > MAX_LEAVES) { throw new CodecError('Overflow', `proof leaves ${leaves} exceed ${MAX_LEAVES}`) }
  const inactivePeaks = r.varint32()
  const digests = r.fixedVec(maxDigests, 32)
  return { leaves, inactivePeaks, digests }
}

export function proofToBytes (proof: Proof): Uint8Array {
  return encodeProof(proof).finish()
}

export function proofFromBytes (bytes: Uint8Array, maxDigests: number): Proof {
  const r = new Reader(bytes)
  const p = decodeProof(r, maxDigests)
  r.finish()
  return p
}

// ---------------------------------------------------------------------------
// Verification

/** Ranges of at least this many elements hash their leaves through the lanes. */
const LANE_LEAVES = 16

/** The leaf digests of `elements` at locations `start, start + 1, ...`, 32 bytes each, at the start of `out` (or a new array). */
function hashLeaves (start: number, elements: readonly Uint8Array[], out: Uint8Array = new Uint8Array(32 * elements.length)): Uint8Array {
  for (let i = 0; i < elements.length; i++) {
    const el = elements[i]
    sha256Lanes.leaf(locToPos(start + i), el, 0, el.length, out, 32 * i)
  }
  sha256Lanes.flush()
  return out
}

/**
 * The root of the perfect subtree `x`, every leaf of which is in the range,
 * from its leaf digests at `d[32 * first ..)`: a level at a time through the
 * lanes, each level written at `d[32 * scratch ..)` onwards (room for
 * `2^height - 1` digests). Returns the byte offset of the root in `d`.
 *
 * In post-order a perfect subtree of height `l` takes `2^(l+1) - 1`
 * consecutive positions from its first leaf's, its root last; the `j`-th
 * one of height `l` under `x` starts at leaf `x.start + j 2^l`.
 */
function laneSubtree (x: Subtree, d: Uint8Array, first: number, scratch: number): number {
  let src = 32 * first
  let dst = 32 * scratch
  for (let l = 1; l <= x.height; l++) {
    const width = 2 ** l
    const last = 2 * width - 2
    const count = 2 ** (x.height - l)
    for (let j = 0; j < count; j++) {
      sha256Lanes.node(locToPos(x.start + j * width) + last, d, src + 64 * j, d, src + 64 * j + 32, d, dst + 32 * j)
    }
    sha256Lanes.flush()
    src = dst
    dst += 32 * count
  }
  return src
}

// scratch for reconstructRoot (synchronous, so one shared buffer is safe)
const STACK = new Uint8Array(32 * 128)

/** The proof must carry exactly the digests its blueprint requires, 32 bytes each. */
function checkDigests (bp: Blueprint, digests: readonly Digest[]): void {
  if (digests.length !== bp.digestCount) {
    throw new MerkleError(digests.length < bp.digestCount ? 'MissingDigests' : 'ExtraDigests', `expected ${bp.digestCount} digests, got ${digests.length}`)
  }
  for (const d of digests) {
    if (d.length !== 32) { throw new MerkleError('InvalidProof', 'digest is not 32 bytes') }
  }
}

/** The range `[start, start + count)` must lie inside `leaves`; returns its end. */
function checkRange (start: number, count: number, leaves: number): number {
  if (!Number.isSafeInteger(start) || start < 0 || start >= leaves) { throw new MerkleError('InvalidStartLoc', `start ${start} outside ${leaves} leaves`) }
  const end = start + count
  if (end > leaves) { throw new MerkleError('InvalidEndLoc', `end ${end} beyond ${leaves} leaves`) }
  return end
}

/** Only the empty tree can be "proven" with no elements. */
function emptyTreeRoot (proof: Proof, start: number, bagging: Bagging): Digest {
  if (start !== 0 || proof.leaves !== 0) { throw new MerkleError('MissingElements', 'no elements to verify') }
  if (proof.inactivePeaks !== 0) { throw new MerkleError('InvalidProof', 'empty tree with inactive peaks') }
  if (proof.digests.length !== 0) { throw new MerkleError('ExtraDigests', 'empty tree proof with digests') }
  return rootWithFolded(0, 0, 0, [], bagging)
}

/**
 * A grafting hook for `current` proofs: a node recomputed at exactly
 * `height` whose first leaf is `start` is replaced by `SHA256(chunk ‖ node)`
 * when `chunk(start)` returns a non-zero chunk.
 */
export interface GraftHook {
  height: number
  chunk(start: number): Uint8Array | undefined
}

export interface ReconstructOptions {
  /** Records every `(position, digest)` the verifier computed or received individually. */
  extracted?: Map<number, Digest>
  graft?: GraftHook
}

/**
 * Recompute the root committed by `proof` for `elements` starting at leaf
 * `start`. Throws `MerkleError` on a malformed proof. With `extracted`, records
 * every `(position, digest)` the verifier computed or received individually
 * (range nodes, siblings, active prefix and `after` peaks).
 */
export function reconstructRoot (proof: Proof, start: number, elements: readonly Uint8Array[], bagging: Bagging = 'backward', options: ReconstructOptions = {}): Digest {
  const { extracted, graft } = options
  const { leaves, inactivePeaks: k, digests } = proof
  if (elements.length === 0) { return emptyTreeRoot(proof, start, bagging) }
  const end = checkRange(start, elements.length, leaves)
  let bp: Blueprint
  try {
    bp = blueprint(leaves, k, start, end, bagging)
  } catch (err) {
    if (err instanceof MerkleError) { throw new MerkleError('InvalidSize', err.message) }
    throw err
  }
  checkDigests(bp, digests)
  let di = 0
  const list: Digest[] = []
  if (bp.foldPrefix.length > 0) { list.push(digests[di++]) }
  for (const s of bp.prefixActive) {
    extracted?.set(s.pos, digests[di])
    list.push(digests[di++])
  }
  const afterStart = di
  di += bp.after.length
  const suffixAcc = bp.suffix.length > 0 ? digests[di++] : undefined
  let si = di // siblings follow
  let ei = 0
  const hasher = defaultHasher
  // the leaves are independent: hashed together up front (`sha256-lanes.ts`); so are the nodes of each subtree wholly
  // inside the range, hashed a level at a time (unless every node must be recorded or grafted); the rest as the walk meets them
  const lanes = elements.length >= LANE_LEAVES
  const levels = lanes && extracted === undefined && graft === undefined
  // leaves at [0, n), a subtree's levels at [n, 2n): in the lanes' arena (wasm memory), which lives until the next arena() —
  // nothing here awaits, so no other batch can take it meanwhile
  const work = levels ? sha256Lanes.arena(64 * elements.length) : undefined
  const leafDigests = lanes ? hashLeaves(start, elements, work) : undefined

  // Stack discipline: every call pushes exactly one digest on `stack` (depth <= 54).
  const stack = STACK
  let top = 0
  const rec = (x: Subtree): void => {
    if (subEnd(x) <= start || x.start >= end) {
      const d = digests[si++]
      stack.set(d, 32 * top++)
      extracted?.set(x.pos, d)
      return
    }
    if (work !== undefined && x.height > 0 && x.start >= start && subEnd(x) <= end) {
      const at = laneSubtree(x, work, ei, elements.length)
      stack.set(work.subarray(at, at + 32), 32 * top++)
      ei += 2 ** x.height
      return
    }
    if (x.height === 0) {
      if (leafDigests !== undefined) {
        stack.set(leafDigests.subarray(32 * ei, 32 * ei + 32), 32 * top++)
        ei++
      } else {
        const el = elements[ei++]
        hasher.leafInto(x.pos, el, 0, el.length, stack, 32 * top++)
      }
    } else {
      rec(leftChild(x))
      rec(rightChild(x))
      top -= 1
      hasher.nodeInto(x.pos, stack, 32 * (top - 1), stack, 32 * top, stack, 32 * (top - 1))
      if (graft !== undefined && x.height === graft.height) { applyGraft(graft, x.start, stack, 32 * (top - 1)) }
    }
    if (extracted !== undefined) { extracted.set(x.pos, stack.slice(32 * (top - 1), 32 * top)) }
  }
  for (const rp of bp.rangePeaks) {
    rec(rp)
    list.push(stack.slice(0, 32))
    top = 0
  }
  for (let i = 0; i < bp.after.length; i++) {
    const d = digests[afterStart + i]
    extracted?.set(bp.after[i].pos, d)
    list.push(d)
  }
  if (suffixAcc !== undefined) { list.push(suffixAcc) }
  if (si !== digests.length || ei !== elements.length) { throw new MerkleError('ExtraDigests', 'proof not fully consumed') }
  const toFold = bp.foldPrefix.length === 0 ? k : Math.max(k - bp.foldPrefix.length, 0) + 1
  return rootWithFolded(leaves, toFold, k, list, bagging)
}

function applyGraft (graft: GraftHook, start: number, buf: Uint8Array, off: number): void {
  const chunk = graft.chunk(start)
  if (chunk === undefined || chunk.every(b => b === 0)) { return }
  const d = sha256(chunk, buf.subarray(off, off + 32))
  buf.set(d, off)
}

/** True iff `proof` proves `elements` at `[start, start + n)` under `root`. */
export function verifyRangeProof (proof: Proof, start: number, elements: readonly Uint8Array[], root: Digest, bagging: Bagging = 'backward'): boolean {
  try {
    return digestEquals(reconstructRoot(proof, start, elements, bagging), root)
  } catch (err) {
    if (err instanceof MerkleError) { return false }
    throw err
  }
}

/**
 * Verify a proof and return the digests it exposes, keyed by position.
 * Throws `MerkleError` (`RootMismatch` when well-formed but wrong).
 */
export function verifyAndExtractDigests (proof: Proof, start: number, elements: readonly Uint8Array[], root: Digest, bagging: Bagging = 'backward'): Map<number, Digest> {
  const extracted = new Map<number, Digest>()
  const got = reconstructRoot(proof, start, elements, bagging, { extracted })
  if (!digestEquals(got, root)) { throw new MerkleError('RootMismatch', 'reconstructed root differs') }
  return extracted
}

/**
 * The sync boundary check: `proof` proves `elements` starting at `start`
 * under `root`, and `pins` are exactly the digests of `nodesToPin(start)`
 * (the peaks of the MMR with `start` leaves), oldest first.
 *
 * For an MMR every pin coincides with a fold-prefix peak, an active prefix
 * peak, or a left sibling of the first range peak, so each is compared with a
 * digest the proof itself commits to.
 */
export function verifyProofAndPinnedNodes (proof: Proof, start: number, elements: readonly Uint8Array[], pins: readonly Digest[], root: Digest, bagging: Bagging = 'backward'): boolean {
  let extracted: Map<number, Digest>
  try {
    extracted = verifyAndExtractDigests(proof, start, elements, root, bagging)
  } catch (err) {
    if (err instanceof MerkleError) { return false }
    throw err
  }
  if (elements.length === 0) { return pins.length === 0 }
  if (start > proof.leaves) { return false }
  const pinPositions = peaks(locToPos(start)).map(p => p.pos)
  if (pinPositions.length !== pins.length) { return false }
  const pinMap = new Map<number, Digest>()
  for (let i = 0; i < pins.length; i++) {
    if (pins[i].length !== 32) { return false }
    pinMap.set(pinPositions[i], pins[i])
  }
  return pinsMatchProof(proof, start, start + elements.length, pinMap, extracted, bagging)
}

/**
 * Every pin must equal the digest the proof commits to at its position
 * (fold-prefix accumulator, active prefix peak, or left sibling of the first
 * range peak), and every pin must be used.
 */
function pinsMatchProof (proof: Proof, start: number, end: number, pinMap: Map<number, Digest>, extracted: Map<number, Digest>, bagging: Bagging): boolean {
  const take = (x: Subtree): Digest | undefined => {
    const d = pinMap.get(x.pos)
    if (d !== undefined) {
      pinMap.delete(x.pos)
      return d
    }
    if (x.height === 0) { return undefined }
    const a = take(leftChild(x))
    const b = take(rightChild(x))
    if (a === undefined || b === undefined) { return undefined }
    const out = new Uint8Array(32)
    defaultHasher.nodeInto(x.pos, a, 0, b, 0, out, 0)
    return out
  }
  const bp = blueprint(proof.leaves, proof.inactivePeaks, start, end, bagging)
  if (bp.foldPrefix.length > 0) {
    let acc = take(bp.foldPrefix[0])
    if (acc === undefined) { return false }
    for (let i = 1; i < bp.foldPrefix.length; i++) {
      const d = take(bp.foldPrefix[i])
      if (d === undefined) { return false }
      acc = fold(acc, d)
    }
    if (!digestEquals(acc, proof.digests[0])) { return false }
  }
  for (const x of bp.prefixActive) {
    const d = take(x)
    const want = extracted.get(x.pos)
    if (d === undefined || want === undefined || !digestEquals(d, want)) { return false }
  }
  const prefixSiblings: Subtree[] = []
  const collect = (x: Subtree): void => {
    if (subEnd(x) <= start) {
      prefixSiblings.push(x)
      return
    }
    if (x.start >= start || x.height === 0) { return }
    collect(leftChild(x))
    collect(rightChild(x))
  }
  if (bp.rangePeaks.length > 0) { collect(bp.rangePeaks[0]) }
  for (const x of prefixSiblings) {
    const d = take(x)
    const want = extracted.get(x.pos)
    if (d === undefined || want === undefined || !digestEquals(d, want)) { return false }
  }
  return pinMap.size === 0
}
