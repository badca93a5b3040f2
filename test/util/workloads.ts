/**
 * commonware's conformance workloads (commonware `storage/conformance.toml`) and the helpers they use.
 * Each entry hashes, for seeds 0..199, `u64_le(len(root)) ‖ root`.
 */
import { createHash } from 'node:crypto'
import { u64be, u64le } from './bytes.ts'

export function sha (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) { h.update(p) }
  return new Uint8Array(h.digest())
}

export const key = (i: number): Uint8Array => sha(u64be(i))
export const val = (i: number, s: number): Uint8Array => sha(u64be(i), u64be(s + 1))

export function colliding (prefix: number, s: number): Uint8Array {
  const k = new Uint8Array(32)
  k[0] = prefix
  k.set(u64be(s), 24)
  return k
}

/** Hash the outputs of `run(seed)` for seeds 0..count-1 the way conformance.toml does. */
export async function conformanceHash (count: number, run: (seed: number) => Promise<Uint8Array>): Promise<string> {
  const h = createHash('sha256')
  for (let seed = 0; seed < count; seed++) {
    const out = await run(seed)
    h.update(u64le(out.length)).update(out)
  }
  return h.digest('hex')
}

export interface KeyedBatch {
  update(key: Uint8Array, value: Uint8Array): unknown
  delete(key: Uint8Array): unknown
}

/** The four keyed batches of the any/current conformance workload for `seed`. */
export function keyedWorkload (seed: number): Array<(b: KeyedBatch) => void> {
  const n = (seed % 50) + 5
  const prefix = seed % 256
  const deleted = (i: number): boolean => ((seed ^ i) % 5) === 0
  const half = Math.floor(n / 2)
  return [
    b => { for (let i = 0; i < n; i++) { b.update(key(i), val(i, 1)) } },
    b => { for (let i = 0; i < n; i++) { if (deleted(i)) { b.delete(key(i)) } else { b.update(key(i), val(i, 2)) } } },
    b => {
      for (let i = 0; i < n; i++) { if (deleted(i)) { b.update(key(i), val(i, 3)) } }
      for (let i = 0; i < half; i++) { b.update(colliding(prefix, 10000 + i), val(i, 4)) }
    },
    b => {
      for (let i = 0; i < n; i++) { b.update(key(i), val(i, 5)) }
      for (let i = 0; i < half; i++) {
        if (i % 2 === 1) { b.delete(colliding(prefix, 10000 + i)) } else { b.update(colliding(prefix, 10000 + i), val(i, 6)) }
      }
    }
  ]
}
