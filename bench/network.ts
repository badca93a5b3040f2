/**
 * Network bench: a 4-validator network on 127.0.0.1 (TCP, Noise, Yamux,
 * gossipsub) in this process, each block carrying `transfers` generated
 * ledger transfers. Reports finalized blocks/s and transfers/s, and the
 * finalization latency (leader's proposal → finalization certificate)
 * p50/p99, next to the same-run cost of executing and merkleizing one such
 * block on its own (the CPU bound: 4 nodes share this one thread).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nodeIdentities } from '../src/cli/init.ts'
import { ledgerApplication } from '../src/cli/ledger.ts'
import { LedgerApp, accountId, openLedgerDatabases } from '../src/examples/ledger/index.ts'
import { createNode } from '../src/node/node.ts'
import { fmt, header, line, now } from './util.ts'
import type { LedgerDbs, Transfer } from '../src/examples/ledger/index.ts'
import type { NodeConfig } from '../src/node/config.ts'
import type { QmdbNode } from '../src/node/node.ts'
import type { MerkleizedOf } from '../src/qmdb/index.ts'

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) { return NaN }
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/** Blocks/s of executing + merkleizing ledger blocks alone (in memory, no consensus, no network). */
async function localBlockRate (transfers: number, blocks = 20): Promise<number> {
  const set = await openLedgerDatabases()
  const app = LedgerApp.forDatabases(set)
  const accounts = 1000
  const nonces = new Array<bigint>(accounts).fill(0n)
  let parent: MerkleizedOf<LedgerDbs> | undefined
  let t = 0
  for (let b = -2; b < blocks; b++) {
    if (b === 0) { t = now() } // two warm-up blocks
    const list: Transfer[] = []
    for (let i = 0; i < transfers; i++) {
      const from = (b * 7919 + i * 104729 + 1_000_000) % accounts
      const to = (from + 1 + (i % (accounts - 1))) % accounts
      list.push({ from: accountId(from), to: accountId(to), amount: 1n, nonce: nonces[from]++ })
    }
    const batches = parent === undefined ? set.newBatches() : set.forkBatches(parent)
    parent = (await app.execute(batches, list)).merkleized
  }
  return blocks / ((now() - t) / 1000)
}

export async function benchNetwork (opts: { transfers?: number, seconds?: number } = {}): Promise<void> {
  const transfers = opts.transfers ?? 1000
  const seconds = opts.seconds ?? 20
  header(`network: 4 validators, ${transfers} transfers per block, ${seconds} s (one process)`)
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-bench-net-'))
  const nodes: QmdbNode[] = []
  const proposed = new Map<number, number>()
  const latencies: number[] = []
  const sampling = { open: false }
  try {
    const ids = await nodeIdentities(dir, 4)
    const validators = ids.map(n => n.peerId)
    for (let i = 0; i < 4; i++) {
      const config: NodeConfig = {
        dataDir: ids[i].dataDir,
        chainId: 'qmdb-bench',
        validators,
        bootstrap: nodes.flatMap(n => n.libp2p.getMultiaddrs().map(String))
      }
      nodes.push(await createNode(config, ledgerApplication({ autoTransfers: transfers, maxTransfers: transfers }), {
        onProposed: view => { proposed.set(view, now()) },
        onFinalized: view => {
          // the first validator's view of finalization (every node sees every proposal's timestamp: one process)
          if (i !== 0) { return }
          const at = proposed.get(view)
          if (at !== undefined && sampling.open) { latencies.push(now() - at) }
          proposed.delete(view)
        }
      }))
    }
    const height = async (): Promise<number> => Math.min(...await Promise.all(nodes.map(async n => (await n.status()).appliedHeight ?? 0)))
    while (await height() < 5) { await new Promise(resolve => setTimeout(resolve, 100)) }
    const h0 = await height()
    const t0 = now()
    sampling.open = true
    await new Promise(resolve => setTimeout(resolve, seconds * 1000))
    sampling.open = false
    const h1 = await height()
    const elapsed = (now() - t0) / 1000
    const blocks = h1 - h0
    latencies.sort((a, b) => a - b)
    const local = await localBlockRate(transfers)
    line('finalized blocks/s (all 4 nodes applied; LevelDB fsync before each ack)', fmt(blocks / elapsed, 1), `${blocks} blocks`)
    line('baseline: execute + merkleize one block alone, blocks/s', fmt(local, 1))
    line('ratio network / (baseline / 4 nodes sharing this CPU)', fmt((blocks / elapsed) / (local / 4), 2))
    line('transfers/s', fmt(blocks * transfers / elapsed))
    line('finalization latency p50 (proposal → certificate)', `${fmt(percentile(latencies, 0.5), 1)} ms`, `${latencies.length} samples`)
    line('finalization latency p99', `${fmt(percentile(latencies, 0.99), 1)} ms`)
  } finally {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  }
}
