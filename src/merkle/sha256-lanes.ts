/**
 * Many independent Merkle hashes at once: leaves and nodes are queued, then
 * `flush()` hashes them four at a time in the WebAssembly SIMD module of
 * `sha256-simd-wasm.ts` (one message per i32x4 lane) and writes each digest
 * where it was asked for.
 *
 * Only two-block messages go through the lanes: every node (72 bytes) and
 * every leaf of an 8-byte position plus 48..111 bytes of element. Anything
 * else, and everything when WebAssembly SIMD is unavailable, is hashed at
 * once by the JS implementation (`sha256.ts`), so results never depend on
 * which path ran (tested against node:crypto).
 *
 * Invariants: a queued digest is written only by the next `flush()` (callers
 * flush before reading it, and between dependent levels of a tree); inputs
 * are copied when queued, so they may be overwritten afterwards; JS is
 * single-threaded and nothing here awaits, so one shared queue is safe.
 */

import { SHA256_SIMD_WASM } from './sha256-simd-wasm.ts'
import { hashLeafInto, hashNodeInto } from './sha256.ts'

/** Messages per wasm call (memory layout below). */
const CAP = 4096
const IN_BYTES = CAP * 128
const OUT_PTR = IN_BYTES
const SCRATCH_PTR = OUT_PTR + CAP * 32

interface Simd {
  words: Int32Array
  hash(groups: number, outPtr: number, scratchPtr: number): void
}

function instantiate (): Simd | undefined {
  try {
    const bytes = Uint8Array.from(atob(SHA256_SIMD_WASM), c => c.charCodeAt(0))
    if (!WebAssembly.validate(bytes)) { return undefined }
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports
    const memory = exports.memory as WebAssembly.Memory
    if (memory.buffer.byteLength < SCRATCH_PTR + 1024) { return undefined }
    return { words: new Int32Array(memory.buffer), hash: exports.hash as (groups: number, outPtr: number, scratchPtr: number) => void }
  } catch {
    return undefined
  }
}

const MSG = new Uint8Array(128)

function readWord (b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
}

export class Sha256Lanes {
  private readonly simd: Simd | undefined
  private readonly dst: Uint8Array[] = new Array<Uint8Array>(CAP)
  private readonly dstOff = new Int32Array(CAP)
  private count = 0

  /** `simd: false` forces the JS path (for tests and comparisons). */
  constructor (simd = true) {
    this.simd = simd ? instantiate() : undefined
  }

  /** Whether the WebAssembly SIMD path is in use. */
  get accelerated (): boolean {
    return this.simd !== undefined
  }

  /** Word index of word 0 of the next queued message (lane-interleaved). */
  private slot (out: Uint8Array, oo: number): number {
    if (this.count === CAP) { this.flush() }
    const k = this.count++
    this.dst[k] = out
    this.dstOff[k] = oo
    return ((k >>> 2) << 7) + (k & 3)
  }

  /** Queue `SHA256(u64be(pos) ‖ l[lo..lo+32) ‖ r[ro..ro+32))` into `out[oo..oo+32)`. */
  node (pos: number, l: Uint8Array, lo: number, r: Uint8Array, ro: number, out: Uint8Array, oo: number): void {
    const simd = this.simd
    if (simd === undefined) {
      hashNodeInto(pos, l, lo, r, ro, out, oo)
      return
    }
    const w = simd.words
    let i = this.slot(out, oo)
    w[i] = Math.floor(pos / 0x100000000) | 0
    w[i + 4] = pos | 0
    i += 8
    for (let j = 0; j < 32; j += 4, i += 4) { w[i] = readWord(l, lo + j) }
    for (let j = 0; j < 32; j += 4, i += 4) { w[i] = readWord(r, ro + j) }
    w[i] = 0x80000000 | 0
    for (let j = 0; j < 12; j++) { i += 4; w[i] = 0 }
    w[i + 4] = 72 * 8
  }

  /** Queue `SHA256(u64be(pos) ‖ element[eo..eo+elen))` into `out[oo..oo+32)`. */
  leaf (pos: number, element: Uint8Array, eo: number, elen: number, out: Uint8Array, oo: number): void {
    const len = 8 + elen
    const simd = this.simd
    if (simd === undefined || len + 9 <= 64 || len + 9 > 128) {
      hashLeafInto(pos, element, eo, elen, out, oo)
      return
    }
    const m = MSG
    for (let j = 0; j < elen; j++) { m[8 + j] = element[eo + j] }
    m[len] = 0x80
    for (let j = len + 1; j < 124; j++) { m[j] = 0 }
    const w = simd.words
    let i = this.slot(out, oo)
    w[i] = Math.floor(pos / 0x100000000) | 0
    w[i + 4] = pos | 0
    for (let o = 8; o < 124; o += 4) { i += 4; w[i + 4] = readWord(m, o) }
    w[i + 8] = len * 8
  }

  /** Hash everything queued and write the digests. */
  flush (): void {
    const simd = this.simd
    const n = this.count
    if (simd === undefined || n === 0) { return }
    this.count = 0
    simd.hash((n + 3) >>> 2, OUT_PTR, SCRATCH_PTR)
    const w = simd.words
    const outBase = OUT_PTR >>> 2
    for (let k = 0; k < n; k++) {
      const out = this.dst[k]
      let o = this.dstOff[k]
      let i = outBase + ((k >>> 2) << 5) + (k & 3)
      for (let j = 0; j < 8; j++, i += 4, o += 4) {
        const v = w[i]
        out[o] = v >>> 24
        out[o + 1] = v >>> 16
        out[o + 2] = v >>> 8
        out[o + 3] = v
      }
      this.dst[k] = EMPTY
    }
  }
}

const EMPTY = new Uint8Array(0)

/** The shared queue the Merkle code uses. */
export const sha256Lanes = new Sha256Lanes()
