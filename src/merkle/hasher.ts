/**
 * SHA-256 Merkle hashing with commonware's exact byte layouts (commonware `storage/src/mmr`).
 *
 * - leaf  = SHA256(u64be(pos) || element)
 * - node  = SHA256(u64be(pos) || left || right)
 * - fold  = SHA256(acc || peak)
 * - root  = SHA256(u64be(leaves) [|| u64be(k) if k > 0] || bagged peaks)
 *
 * One `Hasher` interface with interchangeable implementations; the Merkle
 * code uses `defaultHasher`, the fastest one measured by `npm run bench` (the
 * allocation-free JS implementation: one `node:crypto` call per 72-byte
 * message costs more in call overhead than the compression itself; that
 * baseline lives in bench/, so this module, like everything a light client
 * verifies with, runs in browsers). All implementations produce identical
 * digests (tested).
 */

import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { MerkleError } from './errors.ts'
import { hashLeafInto, hashNodeInto, hashPairInto, sha256 as jsSha256, sha256WithU64 } from './sha256.ts'

/** A 32-byte SHA-256 digest. */
export type Digest = Uint8Array

export const DIGEST_LENGTH = 32

export interface Hasher {
  readonly name: string
  /** SHA-256 of the concatenation of `parts`. */
  digest(...parts: Uint8Array[]): Digest
  /** Leaf digest of `element[eo..eo+elen)` at `pos`, written to `out[oo..oo+32)`. */
  leafInto(pos: number, element: Uint8Array, eo: number, elen: number, out: Uint8Array, oo: number): void
  /** Node digest at `pos` of the 32-byte children at `l[lo..]`, `r[ro..]`, written to `out[oo..]`. */
  nodeInto(pos: number, l: Uint8Array, lo: number, r: Uint8Array, ro: number, out: Uint8Array, oo: number): void
  /** `SHA256(a || b)` of two 32-byte digests, written to `out[oo..]`. */
  pairInto(a: Uint8Array, ao: number, b: Uint8Array, bo: number, out: Uint8Array, oo: number): void
}

/** The allocation-free JS implementation (default). */
export const jsHasher: Hasher = {
  name: 'js-unrolled',
  digest: jsSha256,
  leafInto: hashLeafInto,
  nodeInto: hashNodeInto,
  pairInto: hashPairInto
}

function u64be (v: number): Uint8Array {
  const b = new Uint8Array(8)
  const view = new DataView(b.buffer)
  view.setUint32(0, Math.floor(v / 0x100000000))
  view.setUint32(4, v >>> 0)
  return b
}

/** `@noble/hashes` (the portable baseline). */
export const nobleHasher: Hasher = {
  name: '@noble/hashes',
  digest (...parts) {
    const h = nobleSha256.create()
    for (const p of parts) { h.update(p) }
    return h.digest()
  },
  leafInto (pos, element, eo, elen, out, oo) {
    out.set(nobleSha256.create().update(u64be(pos)).update(element.subarray(eo, eo + elen)).digest(), oo)
  },
  nodeInto (pos, l, lo, r, ro, out, oo) {
    out.set(nobleSha256.create().update(u64be(pos)).update(l.subarray(lo, lo + 32)).update(r.subarray(ro, ro + 32)).digest(), oo)
  },
  pairInto (a, ao, b, bo, out, oo) {
    out.set(nobleSha256.create().update(a.subarray(ao, ao + 32)).update(b.subarray(bo, bo + 32)).digest(), oo)
  }
}

export const defaultHasher: Hasher = jsHasher

/** SHA-256 of the concatenation of `parts`. */
export function sha256 (...parts: Uint8Array[]): Digest {
  return jsSha256(...parts)
}

/** Leaf digest `SHA256(u64be(pos) || element)`. */
export function leafDigest (pos: number, element: Uint8Array): Digest {
  const out = new Uint8Array(32)
  hashLeafInto(pos, element, 0, element.length, out, 0)
  return out
}

/** Internal node digest `SHA256(u64be(pos) || left || right)`. */
export function nodeDigest (pos: number, left: Digest, right: Digest): Digest {
  const out = new Uint8Array(32)
  hashNodeInto(pos, left, 0, right, 0, out, 0)
  return out
}

/** `SHA256(acc || peak)`. */
export function fold (acc: Digest, peak: Digest): Digest {
  const out = new Uint8Array(32)
  hashPairInto(acc, 0, peak, 0, out, 0)
  return out
}

/** How the peaks not folded into the inactive prefix are combined. */
export type Bagging = 'forward' | 'backward'

/**
 * Root over `peakDigests` (oldest first) with `toFold` leading entries folded
 * forward into one accumulator and `committed` inactive peaks hashed in.
 *
 * `root(L, k, peaks)` is `rootWithFolded(L, k, k, peaks)`; proof verification
 * uses a different `toFold` when its first entry already stands for several
 * folded peaks (commonware `storage/src/mmr`).
 */
export function rootWithFolded (leaves: number, toFold: number, committed: number, peakDigests: readonly Digest[], bagging: Bagging = 'backward'): Digest {
  const m = peakDigests.length
  if (m === 0) {
    if (toFold !== 0 || committed !== 0) { throw new MerkleError('InvalidInactivePeaks', `requested ${committed}, peaks 0`) }
    return sha256WithU64([leaves])
  }
  if (toFold > m) { throw new MerkleError('InvalidInactivePeaks', `requested ${toFold}, peaks ${m}`) }
  let acc = peakDigests[0]
  let i = 1
  for (; i < toFold; i++) { acc = fold(acc, peakDigests[i]) }
  let folded: Digest
  if (bagging === 'forward') {
    folded = acc
    for (; i < m; i++) { folded = fold(folded, peakDigests[i]) }
  } else {
    // backward: right-nested fold of [acc, rest...]
    if (i === m) {
      folded = acc
    } else {
      folded = peakDigests[m - 1]
      for (let j = m - 2; j >= i; j--) { folded = fold(peakDigests[j], folded) }
      folded = fold(acc, folded)
    }
  }
  return committed === 0 ? sha256WithU64([leaves], folded) : sha256WithU64([leaves, committed], folded)
}

/**
 * Root of an MMR with `leaves` leaves, `k` inactive peaks and the given
 * bagging. QMDB always uses backward bagging with `k = inactivePeaks(L, floor)`.
 */
export function computeRoot (leaves: number, k: number, peakDigests: readonly Digest[], bagging: Bagging = 'backward'): Digest {
  if (k > peakDigests.length) { throw new MerkleError('InvalidInactivePeaks', `requested ${k}, peaks ${peakDigests.length}`) }
  return rootWithFolded(leaves, k, k, peakDigests, bagging)
}

/** Root of the empty MMR: `SHA256(u64be(0))`. */
export function emptyRoot (): Digest {
  return sha256WithU64([0])
}

/** Constant-time-ish equality of two digests (not secret data; plain loop). */
export function digestEquals (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) { return false }
  for (let i = 0; i < a.length; i++) { if (a[i] !== b[i]) { return false } }
  return true
}
