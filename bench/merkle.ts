/**
 * Hashing and MMR benchmarks: hasher implementations side by side, MMR
 * append + root throughput against the per-call and native SHA-256 bounds of
 * the same leaf and node inputs, proof building and verification.
 */
import { jsHasher, nobleHasher, Mmr, verifyRangeProof, buildRangeProof } from '../src/merkle/index.ts'
import { sha256Lanes } from '../src/merkle/sha256-lanes.ts'
import { nodeCryptoHasher } from './node-crypto-hasher.ts'
import { blocksFor, fmt, header, judge, line, nativeNsPerBlock, now, perCallNs } from './util.ts'
import type { Hasher } from '../src/merkle/index.ts'

/** Issue 14's figures before its work (same bench, 2 cores): ratios to the native bound. */
const BASELINE = { nodeRatio: 0.13, mmrRatio: 0.08 }

/**
 * Nanoseconds per node digest through the batched lanes: children and digests
 * in the lanes' arena (the path MMR batches use), or in plain arrays (copied
 * into and out of wasm memory).
 */
function lanesNs (nodes: number, inArena: boolean): number {
  const n = 4096
  const arena = inArena ? sha256Lanes.arena(96 * n) : new Uint8Array(96 * n)
  for (let i = 0; i < 64 * n; i++) { arena[i] = i }
  const out = 64 * n
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const k = i & (n - 1)
      sha256Lanes.node(i, arena, 64 * k, arena, 64 * k + 32, arena, out + 32 * k)
    }
    sha256Lanes.flush()
  }
  run(50_000)
  const t = now()
  run(nodes)
  return ((now() - t) * 1e6) / nodes
}

function hasherNs (h: Hasher, iterations: number): number {
  const l = new Uint8Array(32).fill(1)
  const r = new Uint8Array(32).fill(2)
  const out = new Uint8Array(32)
  for (let i = 0; i < 20_000; i++) { h.nodeInto(i, l, 0, r, 0, out, 0) }
  const t = now()
  for (let i = 0; i < iterations; i++) { h.nodeInto(i, l, 0, r, 0, out, 0) }
  return ((now() - t) * 1e6) / iterations
}

export async function benchMerkle (): Promise<{ mmrLeavesPerSec: number }> {
  header('hashing: one 72-byte node digest (u64 position ‖ left ‖ right)')
  const nsBlock = nativeNsPerBlock()
  const native = nsBlock * blocksFor(72)
  line('native bound (16 MiB node:crypto, best of 7, per 2 blocks)', `${fmt(native, 1)} ns`)
  const results: Array<[string, number]> = []
  for (const h of [nodeCryptoHasher, nobleHasher, jsHasher]) {
    const ns = hasherNs(h, h === jsHasher ? 1_000_000 : 300_000)
    results.push([h.name, ns])
    line(`hasher ${h.name}`, `${fmt(ns, 1)} ns`, `${fmt(1e9 / ns)} hashes/s, ${fmt(native / ns, 3)} of native`)
  }
  const kind = sha256Lanes.accelerated ? 'wasm simd, 8 lanes' : 'js fallback'
  const staged = lanesNs(1_000_000, false)
  line(`batched lanes (${kind}), plain arrays`, `${fmt(staged, 1)} ns`, `${fmt(1e9 / staged)} hashes/s, ${fmt(native / staged, 3)} of native`)
  const lanes = lanesNs(1_000_000, true)
  line(`batched lanes (${kind}), arena (MMR batches)`, `${fmt(lanes, 1)} ns`,
    `${fmt(1e9 / lanes)} hashes/s, ${fmt(native / lanes, 3)} of native (baseline ${BASELINE.nodeRatio}); ${judge({ name: 'node hashing (batched lanes) / native', value: native / lanes, limit: 0.5, kind: 'min', level: 'target' })}`)
  const fastest = results.reduce((a, b) => (b[1] < a[1] ? b : a))
  line('fastest per-call hasher (proofs, roots)', fastest[0])

  header('MMR append + root (1M leaves of 32 bytes, batches of 10k, root after each)')
  const leaves = 1_000_000
  const batchSize = 10_000
  const elements = Array.from({ length: batchSize }, (_, i) => { const e = new Uint8Array(32); e[0] = i; e[1] = i >> 8; return e })
  const mmr = Mmr.inMemory()
  const t = now()
  for (let b = 0; b < leaves / batchSize; b++) {
    const batch = mmr.newBatch()
    for (const e of elements) { batch.add(e) }
    mmr.apply(batch.merkleize())
    mmr.root()
  }
  const ms = now() - t
  const mmrLeavesPerSec = leaves / (ms / 1000)
  // the same inputs: one 40-byte leaf message per leaf and ~one 72-byte node message per leaf
  const nodesPerLeaf = (mmr.size - leaves) / leaves
  const perCall = perCallNs(40) + nodesPerLeaf * perCallNs(72)
  const nativeLeaf = nsBlock * (blocksFor(40) + nodesPerLeaf * blocksFor(72))
  line('MMR append+root', `${fmt(mmrLeavesPerSec)} leaves/s`)
  line('per-call bound (node:crypto, same leaf+node inputs)', `${fmt(1e9 / perCall)} leaves/s`, `ratio ${fmt((1e9 / perCall) > 0 ? mmrLeavesPerSec / (1e9 / perCall) : 0, 2)}`)
  line('native bound (SHA-256 compression rate, same blocks)', `${fmt(1e9 / nativeLeaf)} leaves/s`, `ratio ${fmt(mmrLeavesPerSec / (1e9 / nativeLeaf), 2)} (baseline ${BASELINE.mmrRatio}); ${judge({ name: 'MMR append+root / native', value: mmrLeavesPerSec / (1e9 / nativeLeaf), limit: 0.3, kind: 'min', level: 'target' })}`)

  header('range proofs (1M-leaf MMR)')
  const get = (p: number): Uint8Array | undefined => mmr.nodeSync(p)
  const root = mmr.root()
  for (const len of [1, 100, 1000]) {
    const iters = Math.max(300, Math.floor(20_000 / len))
    let t0 = now()
    const proofs = []
    for (let i = 0; i < iters; i++) {
      const s = (i * 7919) % (leaves - len)
      proofs.push({ s, p: buildRangeProof(get, leaves, 0, s, s + len) })
    }
    const buildMs = now() - t0
    t0 = now()
    for (const { s, p } of proofs) {
      const els = []
      for (let j = 0; j < len; j++) { els.push(elements[(s + j) % batchSize]) }
      if (!verifyRangeProof(p, s, els, root)) { throw new Error('bench proof failed') }
    }
    const verifyMs = now() - t0
    line(`build proof of ${len} leaves`, `${fmt(iters / (buildMs / 1000))} proofs/s`)
    line(`verify proof of ${len} leaves`, `${fmt(iters / (verifyMs / 1000))} proofs/s`, `${fmt((iters * len) / (verifyMs / 1000))} leaves/s`)
  }
  return { mmrLeavesPerSec }
}
