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

/** Messages per wasm call. Layout: messages, digests, 1 KiB of schedule scratch (the module's round constants sit in its top KiB). */
const CAP = 4096
const IN_BYTES = CAP * 128
const OUT_PTR = IN_BYTES
const SCRATCH_PTR = OUT_PTR + CAP * 32

interface Simd {
  words: Int32Array
  hash(groups: number, outPtr: number, scratchPtr: number): void
}

function instantiate (): Simd | undefined {
  // words are copied through Int32Arrays, whose byte order is the platform's; wasm memory is little-endian
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) { return undefined }
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

/** Byte-swap a 32-bit word (a big-endian word as its bytes sit in memory, read little-endian). */
function bswap (v: number): number {
  return (v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)
}

/** The 4 bytes at `b[o..o+4)` as one little-endian read (what an aligned Int32Array load gives). */
function readLe (b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)
}

/**
 * 32-bit views of the two byte arrays last seen (MMR batches hash from and
 * into one arena; a caller may alternate a source and a destination), so the
 * `buffer`/`byteOffset` getters run once per array, not per message.
 */
const NO_VIEW: Int32Array<ArrayBufferLike> = new Int32Array(0)
/** the view `wordAt` last resolved against */
let view32 = NO_VIEW
let arrayA: Uint8Array | undefined
let viewA = NO_VIEW
let baseA = -1
let arrayB: Uint8Array | undefined
let viewB = NO_VIEW
let baseB = -1

/** Forget the cached views (so no batch's buffer stays alive through them). */
function forgetViews (): void {
  arrayA = arrayB = undefined
  viewA = viewB = view32 = NO_VIEW
}

/** The word index of `b[o]` in `view32` (which it then views) if it is 4-byte aligned, else -1. */
function wordAt (b: Uint8Array, o: number): number {
  let base: number
  if (b === arrayA) {
    base = baseA
    view32 = viewA
  } else if (b === arrayB) {
    base = baseB
    view32 = viewB
  } else {
    const off = b.byteOffset
    base = (off & 3) !== 0 ? -1 : off >>> 2
    const view = base < 0 ? NO_VIEW : (viewA.buffer === b.buffer ? viewA : new Int32Array(b.buffer, 0, b.buffer.byteLength >>> 2))
    arrayB = arrayA
    viewB = viewA
    baseB = baseA
    arrayA = b
    viewA = view
    baseA = base
    view32 = view
  }
  return base < 0 || (o & 3) !== 0 ? -1 : base + (o >>> 2)
}

const PAD_NODE = 0x80 // byte 72 = 0x80 (word 18 in memory order)
const LEN_NODE = bswap(72 * 8)

export class Sha256Lanes {
  private readonly simd: Simd | undefined
  /** per queued message: the word view its digest goes to (aligned), else the byte array */
  private readonly dstWords: Array<Int32Array | undefined> = new Array<Int32Array | undefined>(CAP)
  private readonly dstBytes: Uint8Array[] = new Array<Uint8Array>(CAP)
  /** word index (aligned) or byte offset */
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
    const w = wordAt(out, oo)
    if (w >= 0) {
      this.dstWords[k] = view32
      this.dstOff[k] = w
    } else {
      this.dstWords[k] = undefined
      this.dstBytes[k] = out
      this.dstOff[k] = oo
    }
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
    w[i] = bswap(Math.floor(pos / 0x100000000) | 0)
    w[i + 4] = bswap(pos | 0)
    i += 8
    i = this.child(l, lo, w, i)
    i = this.child(r, ro, w, i)
    w[i] = PAD_NODE
    for (let j = 0; j < 12; j++) { i += 4; w[i] = 0 }
    w[i + 4] = LEN_NODE
  }

  /** Copy the 8 words of a 32-byte child into the lanes at word index `i`; returns the next index. */
  private child (b: Uint8Array, o: number, w: Int32Array, i: number): number {
    let k = wordAt(b, o)
    if (k >= 0) {
      const v = view32
      for (let j = 0; j < 8; j++, i += 4) { w[i] = v[k++] }
    } else {
      for (let j = 0; j < 32; j += 4, i += 4) { w[i] = readLe(b, o + j) }
    }
    return i
  }

  /** Queue `SHA256(u64be(pos) ‖ element[eo..eo+elen))` into `out[oo..oo+32)`. */
  leaf (pos: number, element: Uint8Array, eo: number, elen: number, out: Uint8Array, oo: number): void {
    const len = 8 + elen
    const simd = this.simd
    if (simd === undefined || len + 9 <= 64 || len + 9 > 128) {
      hashLeafInto(pos, element, eo, elen, out, oo)
      return
    }
    const w = simd.words
    const i = this.slot(out, oo)
    w[i] = bswap(Math.floor(pos / 0x100000000) | 0)
    w[i + 4] = bswap(pos | 0)
    // message word t (bytes 4t..4t+4, the element from word 2) is lane word i + 4t, read little-endian as wasm does
    let k = i + 8
    const whole = eo + (elen & ~3)
    let e = eo
    for (; e < whole; e += 4, k += 4) { w[k] = readLe(element, e) }
    let tail = 0x80 << ((elen & 3) << 3)
    for (let b = 0; e < eo + elen; b += 8, e++) { tail |= element[e] << b }
    w[k] = tail
    for (k += 4; k < i + 124; k += 4) { w[k] = 0 }
    w[i + 124] = bswap(len * 8)
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
      let i = outBase + ((k >>> 2) << 5) + (k & 3)
      const v = this.dstWords[k]
      if (v !== undefined) {
        let q = this.dstOff[k]
        for (let j = 0; j < 8; j++, i += 4) { v[q++] = w[i] }
        this.dstWords[k] = undefined
      } else {
        const out = this.dstBytes[k]
        const o = this.dstOff[k]
        for (let j = 0; j < 32; j += 4, i += 4) {
          const x = w[i]
          out[o + j] = x
          out[o + j + 1] = x >>> 8
          out[o + j + 2] = x >>> 16
          out[o + j + 3] = x >>> 24
        }
        this.dstBytes[k] = EMPTY
      }
    }
    // do not keep the last batch's buffer alive through the view cache
    forgetViews()
  }
}

const EMPTY = new Uint8Array(0)

/** The shared queue the Merkle code uses. */
export const sha256Lanes = new Sha256Lanes()
