/**
 * A fast decoder fuzzer (32-bit xorshift, no BigInt) for the 100k-inputs-per-
 * decoder acceptance runs. Inputs: uniformly random strings, random strings
 * that start with a valid tag byte, and structured mutations of valid
 * encodings. Every input must decode to a value or throw `CodecError`; on
 * success an optional `check` runs (e.g. canonical re-encoding). Anything
 * else throws with the offending input in hex.
 */
import { CodecError } from '../../src/codec/index.ts'

export class FastRng {
  private s: number

  constructor (seed: number) {
    this.s = (seed * 0x9e3779b1) | 0
    if (this.s === 0) { this.s = 0x1234567 }
    for (let i = 0; i < 8; i++) { this.u32() }
  }

  u32 (): number {
    let x = this.s
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.s = x
    return x >>> 0
  }

  /** Uniform integer in [0, n) (n ≤ 2^32). */
  int (n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n)
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i += 4) {
      const v = this.u32()
      out[i] = v
      if (i + 1 < n) { out[i + 1] = v >>> 8 }
      if (i + 2 < n) { out[i + 2] = v >>> 16 }
      if (i + 3 < n) { out[i + 3] = v >>> 24 }
    }
    return out
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }
}

export interface FuzzOptions<T> {
  /** Tag bytes that start valid encodings (random inputs often start with one). */
  tags?: number[]
  /** Called on every successful decode; throw to fail the run. */
  check?(input: Uint8Array, value: T): void
  /** Longest uniformly random input (default: twice the longest valid one, at least 64). */
  maxLen?: number
}

export interface FuzzStats { ok: number, rejected: number }

const EDGE = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff]

export function mutate (rng: FastRng, base: Uint8Array, valid: readonly Uint8Array[]): Uint8Array {
  const len = base.length
  switch (rng.int(9)) {
    case 0: { // flip 1-3 bits
      if (len === 0) { return base }
      const b = base.slice()
      const n = 1 + rng.int(3)
      for (let j = 0; j < n; j++) { b[rng.int(len)] ^= 1 << rng.int(8) }
      return b
    }
    case 1: return base.subarray(0, rng.int(len + 1)) // truncate (a view: inputs are never written)
    case 2: { // extend with random bytes
      const out = new Uint8Array(len + 1 + rng.int(40))
      out.set(base)
      for (let i = len; i < out.length; i++) { out[i] = rng.u32() }
      return out
    }
    case 3: { // 1-2 bytes to edge values
      if (len === 0) { return base }
      const b = base.slice()
      const n = 1 + rng.int(2)
      for (let j = 0; j < n; j++) { b[rng.int(len)] = EDGE[rng.int(EDGE.length)] }
      return b
    }
    case 4: { // insert a byte
      const at = rng.int(len + 1)
      const out = new Uint8Array(len + 1)
      out.set(base.subarray(0, at))
      out[at] = EDGE[rng.int(EDGE.length)]
      out.set(base.subarray(at), at + 1)
      return out
    }
    case 5: { // delete a run of bytes
      if (len === 0) { return base }
      const at = rng.int(len)
      const n = 1 + rng.int(Math.min(8, len - at))
      const out = new Uint8Array(len - n)
      out.set(base.subarray(0, at))
      out.set(base.subarray(at + n), at)
      return out
    }
    case 6: // overwrite a run with 0xff (huge varints / lengths / counts)
    case 7: { // or with zeros (padding-like regions, empty options)
      if (len === 0) { return base }
      const b = base.slice()
      const at = rng.int(len)
      b.fill(rng.int(2) === 0 ? 0xff : 0, at, Math.min(len, at + 1 + rng.int(10)))
      return b
    }
    default: { // splice two valid encodings
      const other = valid[rng.int(valid.length)]
      const a = rng.int(len + 1)
      const c = rng.int(other.length + 1)
      const out = new Uint8Array(a + other.length - c)
      out.set(base.subarray(0, a))
      out.set(other.subarray(c), a)
      return out
    }
  }
}

/**
 * Decode `iterations` inputs: 20% uniformly random, 15% random after a valid
 * tag, 65% mutations of `valid` (one or two stacked). Stack traces are
 * off while it runs.
 */
export function fuzz<T> (decode: (b: Uint8Array) => T, valid: readonly Uint8Array[], iterations: number, seed: number, options: FuzzOptions<T> = {}): FuzzStats {
  const rng = new FastRng(seed)
  const stats = { ok: 0, rejected: 0 }
  const maxLen = options.maxLen ?? Math.max(64, ...valid.map(v => v.length * 2))
  const tags = options.tags ?? []
  // rejected inputs throw: skip the stack capture (most of the cost of a throw)
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return run(decode, valid, iterations, rng, stats, maxLen, tags, options)
  } finally {
    Error.stackTraceLimit = limit
  }
}

function run<T> (decode: (b: Uint8Array) => T, valid: readonly Uint8Array[], iterations: number, rng: FastRng, stats: FuzzStats, maxLen: number, tags: number[], options: FuzzOptions<T>): FuzzStats {
  for (let i = 0; i < iterations; i++) {
    const roll = rng.int(100)
    let input: Uint8Array
    if (roll < 20 || valid.length === 0) {
      input = rng.bytes(rng.int(maxLen + 1))
    } else if (roll < 35 && tags.length > 0) {
      const len = 1 + (rng.int(2) === 0 ? rng.int(maxLen) : rng.pick(valid).length - 1 + rng.int(3))
      input = rng.bytes(Math.max(1, len))
      input[0] = rng.pick(tags)
    } else {
      input = mutate(rng, rng.pick(valid), valid)
      const more = rng.int(2)
      for (let j = 0; j < more; j++) { input = mutate(rng, input, valid) }
    }
    let value: T
    try {
      value = decode(input)
    } catch (err) {
      if (err instanceof CodecError) {
        stats.rejected++
        continue
      }
      throw new Error(`decoder threw ${(err as Error)?.name}: ${(err as Error)?.message} on input ${Buffer.from(input).toString('hex')}`)
    }
    stats.ok++
    if (options.check !== undefined) {
      try {
        options.check(input, value)
      } catch (err) {
        throw new Error(`check failed on input ${Buffer.from(input).toString('hex')}: ${(err as Error).message}`)
      }
    }
  }
  return stats
}
