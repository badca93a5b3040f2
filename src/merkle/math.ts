/**
 * Merkle Mountain Range arithmetic (commonware `storage/src/mmr`).
 *
 * Vocabulary: a *location* is a 0-based leaf index (or a leaf count); a
 * position* is a 0-based node index in post-order (or a node count, the
 * size*). Positions never change once assigned.
 *
 * All values are JS numbers. commonware allows up to 2^62 leaves; here the
 * limit is 2^52 leaves so that every position (< 2^53) is an exact integer.
 * Decoders reject anything larger, so no valid input is silently truncated,
 * and 2^52 operations is far beyond any single database.
 */

import { MerkleError } from './errors.ts'

/** Maximum number of leaves (the safe-integer bound of this implementation). */
export const MAX_LEAVES = 2 ** 52
/** Size (node count) of an MMR with `MAX_LEAVES` leaves. */
export const MAX_NODES = 2 ** 53 - 1
/** Upper bound on the number of pinned nodes (peaks of any MMR). */
export const MAX_PINNED_NODES = 64
/** Upper bound on proof digests per proven element (61 path siblings + 61 peaks in commonware). */
export const MAX_PROOF_DIGESTS_PER_ELEMENT = 122

const TWO_32 = 0x100000000

function popcount32 (x: number): number {
  x = x - ((x >>> 1) & 0x55555555)
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  x = (x + (x >>> 4)) & 0x0f0f0f0f
  return Math.imul(x, 0x01010101) >>> 24
}

/** Number of set bits of a non-negative safe integer. */
export function popcount (n: number): number {
  if (n < TWO_32) { return popcount32(n) }
  return popcount32(Math.floor(n / TWO_32)) + popcount32(n >>> 0)
}

/** Number of bits needed to represent `n` (0 for 0). */
export function bitLength (n: number): number {
  if (n < TWO_32) { return 32 - Math.clz32(n) }
  return 64 - Math.clz32(Math.floor(n / TWO_32))
}

function trailingOnes32 (x: number): number {
  // trailing ones of x = trailing zeros of ~x
  const inv = ~x
  if (inv === 0) { return 32 }
  return 31 - Math.clz32(inv & -inv)
}

/** Number of trailing 1 bits of a non-negative safe integer. */
export function trailingOnes (n: number): number {
  const lo = n >>> 0
  if (lo !== 0xffffffff) { return trailingOnes32(lo) }
  return 32 + trailingOnes32(Math.floor(n / TWO_32) >>> 0)
}

/** Position of leaf `loc`; equivalently the size of an MMR with `loc` leaves. */
export function locToPos (loc: number): number {
  return 2 * loc - popcount(loc)
}

/**
 * The leaf location whose position is `pos`, or `undefined` if `pos` is not a
 * leaf. Also converts a valid size to its leaf count.
 */
export function posToLoc (pos: number): number | undefined {
  if (pos < 0 || !Number.isSafeInteger(pos)) { return undefined }
  // locToPos(n) = 2n - popcount(n), so n ≈ (pos + popcount(n)) / 2; iterate to the fixpoint
  let n = Math.floor(pos / 2)
  for (let i = 0; i < 3; i++) { n = Math.floor((pos + popcount(n)) / 2) }
  for (let c = Math.max(0, n - 1); c <= n + 1; c++) {
    if (locToPos(c) === pos) { return c }
  }
  return undefined
}

/** Leaf count of a valid size; throws `InvalidSize` otherwise. */
export function leavesOf (size: number): number {
  const n = posToLoc(size)
  if (n === undefined) { throw new MerkleError('InvalidSize', `${size} is not a valid MMR size`) }
  return n
}

/** True iff `size` is the node count of an MMR with some number of leaves. */
export function isValidSize (size: number): boolean {
  return size <= MAX_NODES && posToLoc(size) !== undefined
}

/** Largest valid size `<= size`. */
export function toNearestSize (size: number): number {
  let lo = 0
  let hi = Math.min(size, MAX_LEAVES) // locToPos(n) >= n
  // invariant: locToPos(lo) <= size; find the largest such leaf count
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (locToPos(mid) <= size) { lo = mid } else { hi = mid - 1 }
  }
  return locToPos(lo)
}

/** Height of the node at `pos` (0 for leaves). */
export function posToHeight (pos: number): number {
  if (pos === 0) { return 0 }
  let s = 2 ** bitLength(pos) - 1
  while (s !== 0) {
    if (pos >= s) { pos -= s }
    s = Math.floor(s / 2)
  }
  return pos
}

/** A perfect subtree (mountain or part of one): root position, height and first leaf. */
export interface Peak {
  pos: number
  height: number
}

/** Peaks of an MMR of `size` nodes, oldest (tallest) first. */
export function peaks (size: number): Peak[] {
  const out: Peak[] = []
  if (size === 0) { return out }
  const b = bitLength(size)
  let twoH = 2 ** b
  let node = twoH - 2
  let h = b - 1
  while (twoH > 1) {
    if (node < size) {
      out.push({ pos: node, height: h })
      node += twoH - 1
      continue
    }
    twoH /= 2
    h--
    node -= twoH
  }
  return out
}

/** Positions of the peaks of an MMR of `size` nodes, oldest first. */
export function peakPositions (size: number): number[] {
  return peaks(size).map(p => p.pos)
}

/**
 * Positions that must survive pruning to leaf `loc`: the peaks of the MMR with
 * `loc` leaves, oldest first (`popcount(loc)` of them).
 */
export function nodesToPin (loc: number): number[] {
  return peakPositions(locToPos(loc))
}

/**
 * Number of oldest peaks of an MMR with `leaves` leaves whose leaves all lie
 * strictly below `floor` (commonware `storage/src/mmr`).
 */
export function inactivePeaks (leaves: number, floor: number): number {
  let count = 0
  let covered = 0
  for (const p of peaks(locToPos(leaves))) {
    covered += 2 ** p.height
    if (covered <= floor) { count++ } else { break }
  }
  return count
}

/** Validate a leaf location against the representable range. */
export function checkLocation (loc: number): void {
  if (!Number.isSafeInteger(loc) || loc < 0 || loc > MAX_LEAVES) {
    throw new MerkleError('LocationOverflow', `location ${loc} exceeds ${MAX_LEAVES}`)
  }
}
