/**
 * Snapshot index benchmark: the key-ordered leaf index of ordered databases
 * (`OrderedKeyIndex`) next to the hash index of unordered ones
 * (`FixedKeyIndex`), 32-byte SHA-256 keys inserted in random order:
 * bytes per key (retained heap + array buffers after a full GC when run with
 * `--expose-gc`, else the arrays' own size), inserts/s, lookups/s, and for the
 * ordered index predecessor queries/s. `BENCH_INDEX_KEYS` sets the size
 * (default 1M; 10M needs about 1.5 GB of heap).
 */
import { sha256 } from '../src/merkle/index.ts'
import { OrderedKeyIndex } from '../src/qmdb/index.ts'
import { FixedKeyIndex } from '../src/qmdb/key-index.ts'
import { fmt, header, line, now } from './util.ts'
import type { KeyIndex } from '../src/qmdb/key-index.ts'

const KEYS = Number(process.env.BENCH_INDEX_KEYS ?? 1_000_000)
const LOOKUPS = 1_000_000

/** `n` keys packed in one buffer (so the keys themselves are not counted per index). */
function makeKeys (n: number): Uint8Array {
  const out = new Uint8Array(n * 32)
  const b = new Uint8Array(8)
  const view = new DataView(b.buffer)
  for (let i = 0; i < n; i++) {
    view.setUint32(0, i)
    view.setUint32(4, 0x6b6579)
    out.set(sha256(b), i * 32)
  }
  return out
}

/** `global.gc` when node runs with `--expose-gc`. */
function gcHook (): (() => void) | undefined {
  return (globalThis as { gc?(): void }).gc
}

function retained (): number {
  const gc = gcHook()
  gc?.()
  gc?.()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

function run (name: string, make: () => KeyIndex, keys: Uint8Array, n: number): void {
  const before = retained()
  const index = make()
  let t = now()
  for (let i = 0; i < n; i++) { index.set(keys.subarray(i * 32, i * 32 + 32), i) }
  const insertMs = now() - t
  const bytes = retained() - before
  let sum = 0
  t = now()
  for (let i = 0, j = 0; i < LOOKUPS; i++) {
    j = (j + 7_919) % n
    sum += index.get(keys.subarray(j * 32, j * 32 + 32))
  }
  const lookupMs = now() - t
  if (sum < 0) { throw new Error('lookup missed') }
  const measured = gcHook() !== undefined
  line(`${name}: memory`, `${fmt(bytes / n, 1)} B/key`, measured ? '(retained after GC)' : '(no --expose-gc: includes garbage)')
  line(`${name}: insert (random order)`, `${fmt(n / (insertMs / 1000))} keys/s`)
  line(`${name}: lookup`, `${fmt(LOOKUPS / (lookupMs / 1000))} gets/s`)
  if (index instanceof OrderedKeyIndex) {
    t = now()
    let found = 0
    const probe = new Uint8Array(32)
    for (let i = 0, j = 0; i < LOOKUPS; i++) {
      j = (j + 7_919) % n
      probe.set(keys.subarray(j * 32, j * 32 + 32))
      probe[31] ^= 1 // usually absent: the span query exclusion proofs make
      if (index.floor(probe) !== undefined) { found++ }
    }
    line(`${name}: floor (span of an absent key)`, `${fmt(LOOKUPS / ((now() - t) / 1000))} queries/s`, `${fmt(index.footprint / n, 1)} B/key in leaf arrays`)
    if (found === 0) { throw new Error('no spans found') }
  }
}

export async function benchOrderedIndex (): Promise<void> {
  header(`snapshot index: ${fmt(KEYS)} random 32-byte keys`)
  const keys = makeKeys(KEYS)
  run('ordered (leaf arrays)', () => new OrderedKeyIndex(32), keys, KEYS)
  run('unordered (hash table)', () => new FixedKeyIndex(32), keys, KEYS)
}
