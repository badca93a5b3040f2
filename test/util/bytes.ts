/** Small byte helpers shared by the tests. */

export function hex (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
}

export function fromHex (s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'))
}

export function u64be (n: number | bigint): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}

export function u64le (n: number | bigint): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true)
  return b
}

/** A copy of `b` with byte `i` xor-ed with `mask` (default 0x01). */
export function flip (b: Uint8Array, i: number, mask = 1): Uint8Array {
  const c = b.slice()
  c[i] ^= mask
  return c
}
