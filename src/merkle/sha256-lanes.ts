/**
 * Many independent Merkle hashes at once: leaves and nodes are queued, then
 * `flush()` hashes them four at a time in the WebAssembly SIMD module of
 * `sha256-simd-wasm.ts` (one message per i32x4 lane) and writes each digest
 * where it was asked for.
 *
 * Nodes (72 bytes) are gathered by the module itself: a queued node is five
 * words (position, child and digest pointers into wasm memory), so children
 * and digests that live in an `arena()` (wasm memory) cost no copies at all;
 * other children are staged into wasm memory when queued, other digests
 * copied out at flush. Leaves of an 8-byte position plus 0..119 bytes of
 * element (one- and two-block messages) are laid out padded in the module's
 * lane-interleaved input. Anything else, and everything when WebAssembly SIMD
 * is unavailable, is hashed at once by the JS implementation (`sha256.ts`),
 * so results never depend on which path ran (tested against node:crypto).
 *
 * Invariants: a queued digest is written only by the next `flush()` (callers
 * flush before reading it, and between dependent levels of a tree); inputs
 * outside the arena are copied when queued, so they may be overwritten
 * afterwards, while arena inputs are read at flush; JS is single-threaded and
 * nothing here awaits, so one shared queue is safe.
 */

import { SHA256_SIMD_WASM } from './sha256-simd-wasm.ts'
import { hashLeafInto, hashNodeInto } from './sha256.ts'

/** Messages per queue (a multiple of 8, the module's pairs of four-lane groups); a full queue is hashed at once. */
const CAP = 2048
// wasm memory layout (bytes; the module keeps its round constants in the top KiB of the first MiB)
const Q1_IN = 0 // one-block leaves, lane-interleaved: CAP * 64
const Q2_IN = Q1_IN + CAP * 64 // two-block leaves: CAP * 128
const NODE_DESC = Q2_IN + CAP * 128 // 20 words per four nodes
const Q1_DST = NODE_DESC + CAP * 20 // digest pointer per one-block leaf
const Q2_DST = Q1_DST + CAP * 4
const NODE_STAGE = Q2_DST + CAP * 4 // children copied in: 64 bytes per node
const Q1_OUT = NODE_STAGE + CAP * 64 // digests bound for JS arrays: 32 bytes per message
const Q2_OUT = Q1_OUT + CAP * 32
const NODE_OUT = Q2_OUT + CAP * 32
const SCRATCH = NODE_OUT + CAP * 32 // the message schedules of a pair of groups (2112 bytes, below the module's top KiB)
const ARENA = 1 << 20
/** Largest arena kept in wasm memory (which never shrinks); bigger ones are plain arrays. */
const MAX_ARENA = 16 << 20

interface Simd {
  memory: WebAssembly.Memory
  msgs(pairs: number, blocks: number, inPtr: number, dstPtr: number, scratchPtr: number): void
  nodes(pairs: number, descPtr: number, scratchPtr: number): void
}

function instantiate (): Simd | undefined {
  // words are copied through Int32Arrays, whose byte order is the platform's; wasm memory is little-endian
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) { return undefined }
  try {
    const bytes = Uint8Array.from(atob(SHA256_SIMD_WASM), c => c.charCodeAt(0))
    if (!WebAssembly.validate(bytes)) { return undefined }
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports
    const memory = exports.memory as WebAssembly.Memory
    if (memory.buffer.byteLength < SCRATCH + 2112 + 1024) { return undefined }
    return { memory, msgs: exports.msgs as Simd['msgs'], nodes: exports.nodes as Simd['nodes'] }
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
 * 32-bit views of the two byte arrays last seen (a caller may alternate a
 * source and a destination), so the `buffer`/`byteOffset` getters run once
 * per array, not per message.
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

/** Copy 8 words (32 bytes at `b[o..]`) into `w` from word index `i`. */
function copyIn (b: Uint8Array, o: number, w: Int32Array, i: number): void {
  let k = wordAt(b, o)
  if (k >= 0) {
    const v = view32
    for (let j = 0; j < 8; j++) { w[i + j] = v[k++] }
  } else {
    for (let j = 0; j < 8; j++, o += 4) { w[i + j] = readLe(b, o) }
  }
}

/** Copy 32 bytes from word index `i` of `w` to `out[oo..]`. */
function copyOut (w: Int32Array, i: number, out: Uint8Array, oo: number): void {
  let q = wordAt(out, oo)
  if (q >= 0) {
    const v = view32
    for (let j = 0; j < 8; j++) { v[q++] = w[i + j] }
  } else {
    for (let j = 0; j < 32; j += 4) {
      const x = w[i++]
      out[oo + j] = x
      out[oo + j + 1] = x >>> 8
      out[oo + j + 2] = x >>> 16
      out[oo + j + 3] = x >>> 24
    }
  }
}

const EMPTY = new Uint8Array(0)

/** One queue of messages: where each digest goes when it is not written by the module itself. */
class Pending {
  count = 0
  /** digests bound for JS arrays: message index, array and offset */
  readonly idx = new Int32Array(CAP)
  readonly arrays: Uint8Array[] = new Array<Uint8Array>(CAP).fill(EMPTY)
  readonly offs = new Int32Array(CAP)
  copies = 0

  /** Record that message `k`'s digest (staged at `stage + 32k`) goes to `out[oo..]`. */
  later (k: number, out: Uint8Array, oo: number): void {
    const c = this.copies++
    this.idx[c] = k
    this.arrays[c] = out
    this.offs[c] = oo
  }

  /** Copy the staged digests out (from word index `stageWord`) and empty the queue. */
  finish (w: Int32Array, stageWord: number): void {
    for (let c = 0; c < this.copies; c++) {
      copyOut(w, stageWord + (this.idx[c] << 3), this.arrays[c], this.offs[c])
      this.arrays[c] = EMPTY
    }
    this.copies = 0
    this.count = 0
  }
}

export class Sha256Lanes {
  private readonly simd: Simd | undefined
  private words: Int32Array = NO_VIEW
  /** the current arena (in wasm memory at `ARENA`); recognised by identity, as the `buffer` getter is slow */
  private resident: Uint8Array = EMPTY
  private readonly q1 = new Pending()
  private readonly q2 = new Pending()
  private readonly qn = new Pending()

  /** `simd: false` forces the JS path (for tests and comparisons). */
  constructor (simd = true) {
    this.simd = simd ? instantiate() : undefined
    this.refresh()
  }

  /** Whether the WebAssembly SIMD path is in use. */
  get accelerated (): boolean {
    return this.simd !== undefined
  }

  /** Re-view wasm memory (its buffer is replaced when it grows). */
  private refresh (): void {
    if (this.simd === undefined) { return }
    this.words = new Int32Array(this.simd.memory.buffer)
  }

  /**
   * A zeroed byte array of `bytes` for digests the lanes read and write in
   * place (inside wasm memory when it fits, else a plain array, which works
   * the same, only slower). It stays valid until the next `arena()` call:
   * keep a `detach()`ed copy of what must outlive it. Flushes the queues.
   */
  arena (bytes: number): Uint8Array {
    const simd = this.simd
    if (simd === undefined || bytes > MAX_ARENA) { return new Uint8Array(bytes) }
    this.flush()
    const need = ARENA + bytes
    const have = simd.memory.buffer.byteLength
    if (need > have) {
      try {
        simd.memory.grow(Math.ceil((need - have) / 65536))
      } catch {
        // no memory for it (the engine's or the page's limit): the plain-array path gives the same digests
        return new Uint8Array(bytes)
      }
      this.refresh()
    }
    const a = new Uint8Array(simd.memory.buffer, ARENA, bytes)
    a.fill(0)
    this.resident = a
    return a
  }

  /** `a` itself if it lives outside wasm memory, else a copy that does. */
  detach (a: Uint8Array): Uint8Array {
    return a === this.resident ? a.slice() : a
  }

  /** Queue `SHA256(u64be(pos) ‖ l[lo..lo+32) ‖ r[ro..ro+32))` into `out[oo..oo+32)`. */
  node (pos: number, l: Uint8Array, lo: number, r: Uint8Array, ro: number, out: Uint8Array, oo: number): void {
    if (this.simd === undefined) {
      hashNodeInto(pos, l, lo, r, ro, out, oo)
      return
    }
    const q = this.qn
    if (q.count === CAP) { this.flushNodes() }
    const k = q.count++
    const w = this.words
    const arena = this.resident
    const d = (NODE_DESC >>> 2) + (k >>> 2) * 20 + (k & 3)
    w[d] = bswap(Math.floor(pos / 0x100000000) | 0)
    w[d + 4] = bswap(pos | 0)
    if (l === arena) {
      w[d + 8] = ARENA + lo
    } else {
      copyIn(l, lo, w, (NODE_STAGE >>> 2) + (k << 4))
      w[d + 8] = NODE_STAGE + (k << 6)
    }
    if (r === arena) {
      w[d + 12] = ARENA + ro
    } else {
      copyIn(r, ro, w, (NODE_STAGE >>> 2) + (k << 4) + 8)
      w[d + 12] = NODE_STAGE + (k << 6) + 32
    }
    if (out === arena) {
      w[d + 16] = ARENA + oo
    } else {
      w[d + 16] = NODE_OUT + (k << 5)
      q.later(k, out, oo)
    }
  }

  /** Queue `SHA256(u64be(pos) ‖ element[eo..eo+elen))` into `out[oo..oo+32)`. */
  leaf (pos: number, element: Uint8Array, eo: number, elen: number, out: Uint8Array, oo: number): void {
    const len = 8 + elen
    if (this.simd === undefined || len + 9 > 128) {
      hashLeafInto(pos, element, eo, elen, out, oo)
      return
    }
    const one = len + 9 <= 64
    const q = one ? this.q1 : this.q2
    if (q.count === CAP) { if (one) { this.flushLeaves(1) } else { this.flushLeaves(2) } }
    const k = q.count++
    const w = this.words
    // word t of message k sits at i + 4t (lane-interleaved groups of four, in pairs of groups), and a two-block
    // message's second block 64 words further on (the other group's first block is between)
    const i = one ? (Q1_IN >>> 2) + (k >>> 2) * 64 + (k & 3) : (Q2_IN >>> 2) + (k >>> 3) * 256 + ((k >>> 2) & 1) * 64 + (k & 3)
    const last = one ? 15 : 31
    w[i] = bswap(Math.floor(pos / 0x100000000) | 0)
    w[i + 4] = bswap(pos | 0)
    // the element from word 2, read little-endian as wasm does (the module swaps bytes)
    let t = 2
    const whole = eo + (elen & ~3)
    let e = eo
    for (; e < whole; e += 4, t++) { w[i + 4 * t + ((t >>> 4) << 6)] = readLe(element, e) }
    let tail = 0x80 << ((elen & 3) << 3)
    for (let b = 0; e < eo + elen; b += 8, e++) { tail |= element[e] << b }
    w[i + 4 * t + ((t >>> 4) << 6)] = tail
    for (t++; t < last; t++) { w[i + 4 * t + ((t >>> 4) << 6)] = 0 }
    w[i + 4 * last + ((last >>> 4) << 6)] = bswap(len * 8)
    const dst = ((one ? Q1_DST : Q2_DST) >>> 2) + k
    if (out === this.resident) {
      w[dst] = ARENA + oo
    } else {
      w[dst] = (one ? Q1_OUT : Q2_OUT) + (k << 5)
      q.later(k, out, oo)
    }
  }

  private flushNodes (): void {
    const q = this.qn
    if (q.count === 0) { return }
    // the idle lanes of a partial group read and write their own staging slots, never a stale pointer
    const w = this.words
    for (let k = q.count; (k & 7) !== 0; k++) {
      const d = (NODE_DESC >>> 2) + (k >>> 2) * 20 + (k & 3)
      w[d + 8] = w[d + 12] = NODE_STAGE + (k << 6)
      w[d + 16] = NODE_OUT + (k << 5)
    }
    (this.simd as Simd).nodes((q.count + 7) >>> 3, NODE_DESC, SCRATCH)
    q.finish(this.words, NODE_OUT >>> 2)
  }

  private flushLeaves (blocks: 1 | 2): void {
    const q = blocks === 1 ? this.q1 : this.q2
    if (q.count === 0) { return }
    const out = blocks === 1 ? Q1_OUT : Q2_OUT
    const dst = (blocks === 1 ? Q1_DST : Q2_DST) >>> 2
    for (let k = q.count; (k & 7) !== 0; k++) { this.words[dst + k] = out + (k << 5) }
    (this.simd as Simd).msgs((q.count + 7) >>> 3, blocks, blocks === 1 ? Q1_IN : Q2_IN, blocks === 1 ? Q1_DST : Q2_DST, SCRATCH)
    q.finish(this.words, out >>> 2)
  }

  /** Hash everything queued and write the digests. */
  flush (): void {
    if (this.simd === undefined) { return }
    this.flushLeaves(1)
    this.flushLeaves(2)
    this.flushNodes()
    // do not keep the last batch's buffer alive through the view cache
    forgetViews()
  }
}

/** The shared queue the Merkle code uses. */
export const sha256Lanes = new Sha256Lanes()
