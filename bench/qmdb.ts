/**
 * Database benchmark: `any` merkleize throughput (32-byte keys and values,
 * batches of 10k updates over a 1M-key database on LevelDB), unordered and
 * ordered (`OrderedAnyDb`, same workload), next to the
 * per-call and native SHA-256 bounds of exactly the same leaf and node
 * inputs, and `@ethereumjs/mpt` doing the same updates + root; the bytes of
 * RSS each key adds; with `BENCH_SCALE` (`1` for 100k,1M,10M keys, or a comma
 * list of key counts) a scaling table of the unordered merkleize.
 * Figures of issue 14 (measured before its work) are printed as baselines.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMPT } from '@ethereumjs/mpt'
import { LevelDatastore } from 'datastore-level'
import { sha256 } from '../src/merkle/index.ts'
import { AnyDb, OrderedAnyDb } from '../src/qmdb/index.ts'
import { blocksFor, fmt, header, judge, line, nativeNsPerBlock, now, perCallNs } from './util.ts'

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000)
/**
 * The trie holds as many keys as the database (issue 14 compares at the same
 * key count). Its build is the slow part of the bench (~1.6k keys/s at 1M on
 * 2 cores, so ~10 min); `BENCH_MPT_KEYS=100000` gives a quick figure, which
 * flatters the trie (a smaller trie updates faster).
 */
const MPT_KEYS = Number(process.env.BENCH_MPT_KEYS ?? KEYS)
const BATCH = 10_000
const ROUNDS = 5

/** Issue 14's figures before its work (same bench, 2 cores). */
const BASELINE = { nativeRatio: 0.02, mptRatio: 20.6, bytesPerKey: 520, orderedRatio: 0.66 }

function rssAfterGc (): number {
  const gc = (globalThis as { gc?(): void }).gc
  if (gc !== undefined) { gc(); gc() }
  return process.memoryUsage.rss()
}

function u32 (i: number, tag: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setUint32(0, i)
  new DataView(b.buffer).setUint32(4, tag)
  return sha256(b)
}

/** Deterministic pseudo-random key indices for round `r`. */
function picks (r: number, n: number, space: number): number[] {
  let x = (r + 1) * 0x9e3779b1
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6b43a9b5) >>> 0
    out.push(x % space)
  }
  return out
}

interface Rounds {
  merkleizeMs: number
  applyMs: number
  leaves: number
  nodes: number
}

/** Fill `db` with `KEYS` keys, then time `ROUNDS` merkleizes of `BATCH` random updates (each applied and committed). */
async function rounds (db: AnyDb, label: string, keys = KEYS, print = true): Promise<Rounds & { bytesPerKey: number }> {
  const rssBefore = rssAfterGc()
  let t = now()
  for (let start = 0; start < keys; start += 100_000) {
    const b = db.newBatch()
    for (let i = start; i < Math.min(keys, start + 100_000); i++) { b.update(u32(i, 0), u32(i, 1)) }
    await db.apply(await b.merkleize())
    await db.commit()
  }
  const buildMs = now() - t
  const bytesPerKey = (rssAfterGc() - rssBefore) / keys
  if (print) {
    line(`${label}: build (create + apply + commit)`, `${fmt(keys / (buildMs / 1000))} keys/s`)
    line(`${label}: RSS added per key (after GC)`, `${fmt(bytesPerKey)} B/key`, `baseline ${BASELINE.bytesPerKey} B/key; ${judge({ name: `${label}: RSS per key at ${fmt(keys)} keys`, value: bytesPerKey, limit: 150, kind: 'max', level: 'target', unit: ' B' })}`)
  }
  let merkleizeMs = 0
  let applyMs = 0
  let leaves = 0
  let nodes = 0
  for (let r = 0; r < ROUNDS; r++) {
    const b = db.newBatch()
    for (const i of picks(r, BATCH, keys)) { b.update(u32(i, 0), u32(i, r + 2)) }
    t = now()
    const m = await b.merkleize()
    merkleizeMs += now() - t
    leaves += m.size - m.baseSize
    nodes += (m.mmr.size - m.mmr.baseSize) - (m.size - m.baseSize)
    t = now()
    await db.apply(m)
    await db.commit()
    applyMs += now() - t
  }
  return { merkleizeMs, applyMs, leaves, nodes, bytesPerKey }
}

/** `BENCH_SCALE`: the unordered merkleize at several database sizes (per-update cost should grow no faster than log n). */
async function scaling (sizes: number[]): Promise<void> {
  header(`scaling: unordered merkleize of ${fmt(BATCH)} updates (BENCH_SCALE)`)
  process.stdout.write(`  ${'keys'.padStart(12)} ${'updates/s'.padStart(12)} ${'us/update'.padStart(10)} ${'us/update/log2(n)'.padStart(18)} ${'B/key RSS'.padStart(10)}\n`)
  for (const keys of sizes) {
    const dir = await mkdtemp(join(tmpdir(), 'qmdb-bench-scale-'))
    const ds = new LevelDatastore(join(dir, 'db'))
    await ds.open()
    try {
      const db = await AnyDb.open({ datastore: ds, prefix: '/scale' })
      const r = await rounds(db, `${fmt(keys)} keys`, keys, false)
      const us = (r.merkleizeMs * 1000) / (ROUNDS * BATCH)
      process.stdout.write(`  ${fmt(keys).padStart(12)} ${fmt(1e6 / us).padStart(12)} ${fmt(us, 2).padStart(10)} ${fmt(us / Math.log2(keys), 3).padStart(18)} ${fmt(r.bytesPerKey).padStart(10)}\n`)
      await db.close()
    } finally {
      await ds.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

export async function benchQmdb (): Promise<{ merkleizeOpsPerSec: number, orderedMerkleizeOpsPerSec: number }> {
  header(`any: merkleize ${fmt(BATCH)} updates over ${fmt(KEYS)} keys (32-byte keys/values, LevelDB)`)
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-bench-'))
  const ds = new LevelDatastore(join(dir, 'db'))
  await ds.open()
  try {
    const db = await AnyDb.open({ datastore: ds, prefix: '/bench' })
    const { merkleizeMs, applyMs, leaves, nodes } = await rounds(db, 'unordered')
    const updates = ROUNDS * BATCH
    const opsPerSec = updates / (merkleizeMs / 1000)
    const opBytes = db.codec.fixedSize as number
    const perCallMs = (leaves * perCallNs(8 + opBytes) + nodes * perCallNs(72)) / 1e6
    const nativeMs = (leaves * blocksFor(8 + opBytes) + nodes * blocksFor(72)) * nativeNsPerBlock() / 1e6
    line('merkleize', `${fmt(opsPerSec)} updates/s`, `${fmt(merkleizeMs / ROUNDS, 1)} ms per batch; ${fmt(leaves / ROUNDS)} ops, ${fmt(nodes / ROUNDS)} nodes`)
    line('apply + commit (LevelDB, one atomic write)', `${fmt(updates / (applyMs / 1000))} updates/s`, `${fmt(applyMs / ROUNDS, 1)} ms per batch`)
    line('per-call SHA-256 bound (node:crypto, same inputs)', `${fmt(updates / (perCallMs / 1000))} updates/s`, `ratio ${fmt(perCallMs / merkleizeMs, 2)} (target >= 0.5)`)
    line('native SHA-256 bound (same blocks)', `${fmt(updates / (nativeMs / 1000))} updates/s`, `ratio ${fmt(nativeMs / merkleizeMs, 2)} (baseline ${BASELINE.nativeRatio}; stretch >= 0.25); ${judge({ name: 'any merkleize / native SHA-256 bound', value: nativeMs / merkleizeMs, limit: 0.1, kind: 'min', level: 'floor' })}`)
    await db.close()

    // ordered: the same workload; updates of existing keys keep their next keys, so the extra cost is the ordered index
    const ordered = await OrderedAnyDb.open({ datastore: ds, prefix: '/bench-ordered' })
    const o = await rounds(ordered, 'ordered')
    const orderedPerSec = updates / (o.merkleizeMs / 1000)
    line('ordered merkleize', `${fmt(orderedPerSec)} updates/s`, `${fmt(o.merkleizeMs / ROUNDS, 1)} ms per batch; ${fmt(o.leaves / ROUNDS)} ops; ${fmt(orderedPerSec / opsPerSec, 2)}x unordered (baseline ${BASELINE.orderedRatio}x); ${judge({ name: 'ordered / unordered merkleize', value: orderedPerSec / opsPerSec, limit: 0.5, kind: 'min', level: 'target', unit: 'x' })}`)
    line('ordered apply + commit', `${fmt(updates / (o.applyMs / 1000))} updates/s`, `${fmt(o.applyMs / ROUNDS, 1)} ms per batch`)
    await ordered.close()

    // @ethereumjs/mpt: the same kind of update batch + root
    const trie = await createMPT({})
    let t = now()
    const ops = []
    for (let i = 0; i < MPT_KEYS; i++) { ops.push({ type: 'put' as const, key: u32(i, 0), value: u32(i, 1) }) }
    await trie.batch(ops)
    const mptBuildMs = now() - t
    t = now()
    for (const i of picks(0, BATCH, MPT_KEYS)) { await trie.put(u32(i, 0), u32(i, 2)) }
    trie.root()
    const mptMs = now() - t
    const mptPerSec = BATCH / (mptMs / 1000)
    line(`@ethereumjs/mpt ${fmt(BATCH)} updates + root over ${fmt(MPT_KEYS)} keys`, `${fmt(mptPerSec)} updates/s`, `build ${fmt(MPT_KEYS / (mptBuildMs / 1000))} keys/s (${fmt(mptBuildMs / 1000)} s)`)
    const sameCount = MPT_KEYS === KEYS
    const mptName = sameCount ? 'merkleize vs @ethereumjs/mpt' : `merkleize vs @ethereumjs/mpt at ${fmt(MPT_KEYS)} keys (not the same key count)`
    line('merkleize vs Patricia trie', `${fmt(opsPerSec / mptPerSec, 1)}x`, `baseline ${BASELINE.mptRatio}x; ${judge({ name: mptName, value: opsPerSec / mptPerSec, limit: 100, kind: 'min', level: sameCount ? 'floor' : 'target', unit: 'x' })}` + (sameCount ? '' : ` (trie at ${fmt(MPT_KEYS)} keys, database at ${fmt(KEYS)}: the floor is judged at the same key count only)`))
    return { merkleizeOpsPerSec: opsPerSec, orderedMerkleizeOpsPerSec: orderedPerSec }
  } finally {
    await ds.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** The scaling table if `BENCH_SCALE` is set. */
export async function benchScaling (): Promise<void> {
  const scale = process.env.BENCH_SCALE
  if (scale === undefined || scale === '') { return }
  await scaling(scale === '1' ? [100_000, 1_000_000, 10_000_000] : scale.split(',').map(Number))
}
