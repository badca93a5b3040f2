/**
 * Deterministic test randomness (xorshift128+ seeded by splitmix64), so every
 * property test is reproducible from its seed.
 */
export class Rng {
  private s0: bigint
  private s1: bigint

  constructor (seed: number) {
    let z = BigInt(seed) + 0x9e3779b97f4a7c15n
    const next = (): bigint => {
      z = (z + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn
      let x = z
      x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn
      x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn
      return x ^ (x >> 31n)
    }
    this.s0 = next()
    this.s1 = next()
  }

  /** Uniform 32-bit unsigned integer. */
  u32 (): number {
    let x = this.s0
    const y = this.s1
    this.s0 = y
    x ^= (x << 23n) & 0xffffffffffffffffn
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n)
    return Number((this.s1 + y) & 0xffffffffn)
  }

  /** Uniform integer in [0, n). */
  int (n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n)
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) { out[i] = this.u32() & 0xff }
    return out
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }
}
