/**
 * Decoder fuzzing: random byte strings and mutations of valid encodings must
 * decode to a value or throw the decoder's typed error, nothing else.
 */
import { CodecError } from '../../src/codec/index.ts'
import { Rng } from './rng.ts'

export interface FuzzResult { ok: number, rejected: number }

/**
 * Run `decode` on `iterations` inputs: half uniformly random (length 0..maxLen),
 * half mutations (bit flips, truncation, extension, byte insertion/deletion,
 * splices) of the `valid` encodings. Throws on the first non-`CodecError`
 * (or non-`allowed`) exception.
 */
export function fuzzDecoder (decode: (b: Uint8Array) => unknown, valid: Uint8Array[], iterations: number, seed: number, allowed: Array<new (...args: any[]) => Error> = []): FuzzResult {
  const rng = new Rng(seed)
  const res = { ok: 0, rejected: 0 }
  const maxLen = Math.max(64, ...valid.map(v => v.length * 2))
  for (let i = 0; i < iterations; i++) {
    let input: Uint8Array
    if (i % 2 === 0 || valid.length === 0) {
      input = rng.bytes(rng.int(maxLen + 1))
    } else {
      input = mutate(rng, rng.pick(valid), valid)
    }
    try {
      decode(input)
      res.ok++
    } catch (err) {
      if (err instanceof CodecError || allowed.some(t => err instanceof t)) {
        res.rejected++
        continue
      }
      throw new Error(`decoder threw ${(err as Error)?.name}: ${(err as Error)?.message} on input ${Buffer.from(input).toString('hex')}`)
    }
  }
  return res
}

function mutate (rng: Rng, base: Uint8Array, valid: Uint8Array[]): Uint8Array {
  const b = base.slice()
  switch (rng.int(7)) {
    case 0: { // flip 1-3 bits
      const n = 1 + rng.int(3)
      for (let j = 0; j < n && b.length > 0; j++) { b[rng.int(b.length)] ^= 1 << rng.int(8) }
      return b
    }
    case 1: return b.subarray(0, rng.int(b.length + 1)) // truncate
    case 2: { // extend
      const out = new Uint8Array(b.length + 1 + rng.int(16))
      out.set(b)
      out.set(rng.bytes(out.length - b.length), b.length)
      return out
    }
    case 3: { // set a byte to an edge value
      if (b.length > 0) { b[rng.int(b.length)] = rng.pick([0x00, 0x01, 0x7f, 0x80, 0xff]) }
      return b
    }
    case 4: { // insert a byte
      const at = rng.int(b.length + 1)
      const out = new Uint8Array(b.length + 1)
      out.set(b.subarray(0, at))
      out[at] = rng.u32() & 0xff
      out.set(b.subarray(at), at + 1)
      return out
    }
    case 5: { // delete a byte
      if (b.length === 0) { return b }
      const at = rng.int(b.length)
      const out = new Uint8Array(b.length - 1)
      out.set(b.subarray(0, at))
      out.set(b.subarray(at + 1), at)
      return out
    }
    default: { // splice two valid encodings
      const other = rng.pick(valid)
      const a = rng.int(b.length + 1)
      const c = rng.int(other.length + 1)
      const out = new Uint8Array(a + other.length - c)
      out.set(b.subarray(0, a))
      out.set(other.subarray(c), a)
      return out
    }
  }
}
