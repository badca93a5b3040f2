/**
 * Allocation-free SHA-256 for the Merkle hot paths.
 *
 * Leaf and node digests are tiny messages (72-100 bytes); with one
 * `node:crypto` call per hash the call overhead dominates. This module hashes
 * straight from the caller's buffers into the caller's output buffer with a
 * shared scratch state (safe: JS is single-threaded and every function here is
 * synchronous). `npm run bench` compares it with `node:crypto` and
 * `@noble/hashes`.
 */

import { compress } from './sha256-compress.ts'

const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85 | 0, 0x3c6ef372, 0xa54ff53a | 0, 0x510e527f, 0x9b05688c | 0, 0x1f83d9ab, 0x5be0cd19
])

const S = new Int32Array(8)
const W = new Int32Array(16)
const BLOCK = new Uint8Array(64)
const BLOCK_VIEW = new DataView(BLOCK.buffer)

function reset (): void {
  S.set(IV)
}

function readWord (b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
}

function writeState (out: Uint8Array, oo: number): void {
  for (let i = 0; i < 8; i++) {
    const v = S[i]
    const p = oo + 4 * i
    out[p] = v >>> 24
    out[p + 1] = v >>> 16
    out[p + 2] = v >>> 8
    out[p + 3] = v
  }
}

/** Load the 16 words of a 64-byte block at `b[o..o+64)` and compress it. */
function compressAt (b: Uint8Array, o: number): void {
  for (let i = 0; i < 16; i++) { W[i] = readWord(b, o + 4 * i) }
  compress(S, W)
}

/**
 * `SHA256(u64be(pos) || left || right)` (72 bytes) written to `out[oo..oo+32)`.
 * Inputs may alias the output.
 */
export function hashNodeInto (pos: number, l: Uint8Array, lo: number, r: Uint8Array, ro: number, out: Uint8Array, oo: number): void {
  reset()
  W[0] = Math.floor(pos / 0x100000000) | 0
  W[1] = pos | 0
  for (let i = 0; i < 8; i++) { W[2 + i] = readWord(l, lo + 4 * i) }
  for (let i = 0; i < 6; i++) { W[10 + i] = readWord(r, ro + 4 * i) }
  compress(S, W)
  W[0] = readWord(r, ro + 24)
  W[1] = readWord(r, ro + 28)
  W[2] = 0x80000000 | 0
  W[3] = 0; W[4] = 0; W[5] = 0; W[6] = 0; W[7] = 0; W[8] = 0
  W[9] = 0; W[10] = 0; W[11] = 0; W[12] = 0; W[13] = 0; W[14] = 0
  W[15] = 72 * 8
  compress(S, W)
  writeState(out, oo)
}

/** `SHA256(a || b)` for two 32-byte digests, written to `out[oo..oo+32)`. */
export function hashPairInto (a: Uint8Array, ao: number, b: Uint8Array, bo: number, out: Uint8Array, oo: number): void {
  reset()
  for (let i = 0; i < 8; i++) { W[i] = readWord(a, ao + 4 * i) }
  for (let i = 0; i < 8; i++) { W[8 + i] = readWord(b, bo + 4 * i) }
  compress(S, W)
  W[0] = 0x80000000 | 0
  for (let i = 1; i < 15; i++) { W[i] = 0 }
  W[15] = 64 * 8
  compress(S, W)
  writeState(out, oo)
}

// ---- streaming over a virtual concatenation (leaves, roots, generic digests) ----

let fill = 0 // bytes buffered in BLOCK
let total = 0 // bytes hashed so far

function begin (): void {
  reset()
  fill = 0
  total = 0
}

function update (data: Uint8Array, off: number, len: number): void {
  total += len
  if (fill > 0) {
    const take = Math.min(64 - fill, len)
    for (let i = 0; i < take; i++) { BLOCK[fill + i] = data[off + i] }
    fill += take
    off += take
    len -= take
    if (fill < 64) { return }
    compressAt(BLOCK, 0)
    fill = 0
  }
  while (len >= 64) {
    compressAt(data, off)
    off += 64
    len -= 64
  }
  for (let i = 0; i < len; i++) { BLOCK[i] = data[off + i] }
  fill = len
}

function updateU64 (v: number): void {
  const hi = Math.floor(v / 0x100000000)
  U64.setUint32(0, hi)
  U64.setUint32(4, v >>> 0)
  update(U64_BYTES, 0, 8)
}

function end (out: Uint8Array, oo: number): void {
  const bits = total * 8
  BLOCK[fill++] = 0x80
  if (fill > 56) {
    BLOCK.fill(0, fill, 64)
    compressAt(BLOCK, 0)
    fill = 0
  }
  BLOCK.fill(0, fill, 56)
  BLOCK_VIEW.setUint32(56, Math.floor(bits / 0x100000000))
  BLOCK_VIEW.setUint32(60, bits >>> 0)
  compressAt(BLOCK, 0)
  writeState(out, oo)
}

const U64_BYTES = new Uint8Array(8)
const U64 = new DataView(U64_BYTES.buffer)

let MSG = new Uint8Array(256)

/** `SHA256(u64be(pos) || element[eo..eo+elen))` written to `out[oo..oo+32)`. */
export function hashLeafInto (pos: number, element: Uint8Array, eo: number, elen: number, out: Uint8Array, oo: number): void {
  // lay out the padded message once, then compress whole blocks from it
  const len = 8 + elen
  const blocks = (len + 9 + 63) >>> 6
  const total = blocks << 6
  if (MSG.length < total) { MSG = new Uint8Array(total * 2) }
  const m = MSG
  const hi = Math.floor(pos / 0x100000000)
  m[0] = hi >>> 24; m[1] = hi >>> 16; m[2] = hi >>> 8; m[3] = hi
  m[4] = pos >>> 24; m[5] = pos >>> 16; m[6] = pos >>> 8; m[7] = pos
  if (elen <= 96) {
    for (let i = 0; i < elen; i++) { m[8 + i] = element[eo + i] }
  } else {
    m.set(element.subarray(eo, eo + elen), 8)
  }
  m[len] = 0x80
  for (let i = len + 1; i < total - 8; i++) { m[i] = 0 }
  const bits = len * 8
  m[total - 8] = 0; m[total - 7] = 0; m[total - 6] = 0; m[total - 5] = 0
  m[total - 4] = bits >>> 24; m[total - 3] = bits >>> 16; m[total - 2] = bits >>> 8; m[total - 1] = bits
  reset()
  for (let b = 0; b < blocks; b++) { compressAt(m, b << 6) }
  writeState(out, oo)
}

/** SHA-256 of the concatenation of `parts` (a fresh 32-byte array). */
export function sha256 (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(32)
  begin()
  for (const p of parts) { update(p, 0, p.length) }
  end(out, 0)
  return out
}

/** `SHA256(u64be(a) [|| u64be(b)] || rest...)`, used for roots. */
export function sha256WithU64 (prefix: readonly number[], ...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(32)
  begin()
  for (const v of prefix) { updateU64(v) }
  for (const p of parts) { update(p, 0, p.length) }
  end(out, 0)
  return out
}
