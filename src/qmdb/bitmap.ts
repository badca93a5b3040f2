/**
 * Activity bitmap: one bit per operation (commonware `storage/src/qmdb/any`, `storage/src/qmdb/current`).
 *
 * Bit `i` lives in byte `i / 8`, mask `1 << (i % 8)` (LSB first), chunk
 * `i / chunkBits`. Bits below `prunedBits` (a multiple of the chunk size) are
 * no longer stored and read as 0; bits at or past `length` are 0.
 *
 * For `any` it is an in-memory index (1 = possibly active, exact in practice);
 * for `current` its chunk bytes are authenticated by grafting them onto the MMR.
 */

export class Bitmap {
  readonly chunkBytes: number
  readonly chunkBits: number
  private bytes: Uint8Array
  private _length = 0
  private _prunedBits = 0

  constructor (chunkBytes = 32) {
    this.chunkBytes = chunkBytes
    this.chunkBits = chunkBytes * 8
    this.bytes = new Uint8Array(chunkBytes * 4)
  }

  get length (): number { return this._length }
  get prunedBits (): number { return this._prunedBits }
  get prunedChunks (): number { return this._prunedBits / this.chunkBits }
  /** Number of complete chunks (pruned ones included). */
  get completeChunks (): number { return Math.floor(this._length / this.chunkBits) }

  private ensure (bits: number): void {
    const need = Math.ceil((bits - this._prunedBits) / 8)
    if (need <= this.bytes.length) { return }
    let cap = this.bytes.length * 2
    while (cap < need) { cap *= 2 }
    const next = new Uint8Array(cap)
    next.set(this.bytes)
    this.bytes = next
  }

  /** Start over as `length` zero bits with the first `prunedChunks` chunks pruned. */
  reset (length: number, prunedChunks = 0): void {
    this._prunedBits = prunedChunks * this.chunkBits
    this._length = Math.max(length, this._prunedBits)
    this.bytes = new Uint8Array(Math.max(this.chunkBytes * 4, Math.ceil((this._length - this._prunedBits) / 8) * 2))
  }

  get (i: number): boolean {
    if (i < this._prunedBits || i >= this._length) { return false }
    const o = i - this._prunedBits
    return (this.bytes[o >>> 3] & (1 << (o & 7))) !== 0
  }

  set (i: number, value = true): void {
    if (i >= this._length) { throw new RangeError(`bit ${i} beyond length ${this._length}`) }
    if (i < this._prunedBits) {
      if (value) { throw new RangeError(`bit ${i} is pruned`) }
      return
    }
    const o = i - this._prunedBits
    if (value) { this.bytes[o >>> 3] |= 1 << (o & 7) } else { this.bytes[o >>> 3] &= ~(1 << (o & 7)) }
  }

  /** Grow to `length` bits; new bits are 0. */
  extend (length: number): void {
    if (length <= this._length) { return }
    this.ensure(length)
    this._length = length
  }

  /** Shrink to `length` bits (a rewind); dropped bits are cleared. */
  truncate (length: number): void {
    if (length >= this._length) { return }
    if (length < this._prunedBits) { throw new RangeError(`cannot truncate to ${length} below pruned ${this._prunedBits}`) }
    for (let i = length; i < this._length && ((i - this._prunedBits) & 7) !== 0; i++) { this.set(i, false) }
    const fromByte = Math.ceil((length - this._prunedBits) / 8)
    this.bytes.fill(0, fromByte, Math.ceil((this._length - this._prunedBits) / 8))
    this._length = length
  }

  /** Drop whole chunks below `bit` (rounded down to a chunk boundary). */
  pruneTo (bit: number): void {
    const target = Math.floor(Math.min(bit, this._length) / this.chunkBits) * this.chunkBits
    if (target <= this._prunedBits) { return }
    const dropBytes = (target - this._prunedBits) / 8
    this.bytes = this.bytes.slice(dropBytes, Math.max(dropBytes + this.chunkBytes * 4, this.bytes.length))
    this._prunedBits = target
  }

  /** First set bit in `[from, to)`, or -1. */
  nextSetBit (from: number, to: number = this._length): number {
    let i = Math.max(from, this._prunedBits)
    const end = Math.min(to, this._length)
    while (i < end) {
      const o = i - this._prunedBits
      const byte = this.bytes[o >>> 3] >> (o & 7)
      if (byte === 0) {
        i += 8 - (o & 7)
        continue
      }
      if ((byte & 1) !== 0) { return i }
      i++
    }
    return -1
  }

  /** The bytes of chunk `c` (a copy; zero-padded past `length`, all zero if pruned). */
  chunk (c: number): Uint8Array {
    const out = new Uint8Array(this.chunkBytes)
    const startBit = c * this.chunkBits
    if (startBit < this._prunedBits || startBit >= this._length) { return out }
    const o = (startBit - this._prunedBits) / 8
    out.set(this.bytes.subarray(o, Math.min(o + this.chunkBytes, this.bytes.length)))
    return out
  }

  /** Whether chunk `c` is all zero. */
  chunkIsZero (c: number): boolean {
    const startBit = c * this.chunkBits
    if (startBit < this._prunedBits || startBit >= this._length) { return true }
    const o = (startBit - this._prunedBits) / 8
    for (let i = o; i < o + this.chunkBytes && i < this.bytes.length; i++) {
      if (this.bytes[i] !== 0) { return false }
    }
    return true
  }
}
