/** The deterministic writes of batch `j` in the crash test, and the model state after batches 0..j. */
import { key, val } from './workloads.ts'

export function crashBatchWrites (j: number): Array<[Uint8Array, Uint8Array | null]> {
  const out: Array<[Uint8Array, Uint8Array | null]> = []
  for (let i = 0; i < 200; i++) {
    const k = (j * 131 + i * 17) % 3000
    out.push([key(k), (k + j) % 7 === 0 ? null : val(k, j)])
  }
  return out
}

export function crashModel (upTo: number): Map<string, Uint8Array | null> {
  const m = new Map<string, Uint8Array | null>()
  for (let j = 0; j <= upTo; j++) {
    for (const [k, v] of crashBatchWrites(j)) { m.set(Buffer.from(k).toString('hex'), v) }
  }
  return m
}
