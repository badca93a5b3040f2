/**
 * The per-call baseline `npm run bench` measures the Merkle hashers against:
 * one `node:crypto` call per hash. It lives here, not in src/merkle, so the
 * package's Merkle code has no Node built-in import and bundles for browsers
 * (README "Browser light client"); test/merkle/mmr.spec.ts checks it agrees.
 */
import { createHash } from 'node:crypto'
import type { Hasher } from '../src/merkle/index.ts'

/** `SHA256(u64be(pos) || parts...)` through one `node:crypto` hash. */
function positioned (pos: number, ...parts: Uint8Array[]): Buffer {
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64BE(BigInt(pos))
  const h = createHash('sha256').update(prefix)
  for (const p of parts) { h.update(p) }
  return h.digest()
}

export const nodeCryptoHasher: Hasher = {
  name: 'node:crypto',
  digest (...parts) {
    const h = createHash('sha256')
    for (const p of parts) { h.update(p) }
    return new Uint8Array(h.digest())
  },
  leafInto (pos, element, eo, elen, out, oo) {
    out.set(positioned(pos, element.subarray(eo, eo + elen)), oo)
  },
  nodeInto (pos, l, lo, r, ro, out, oo) {
    out.set(positioned(pos, l.subarray(lo, lo + 32), r.subarray(ro, ro + 32)), oo)
  },
  pairInto (a, ao, b, bo, out, oo) {
    out.set(createHash('sha256').update(a.subarray(ao, ao + 32)).update(b.subarray(bo, bo + 32)).digest(), oo)
  }
}
