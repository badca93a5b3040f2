/**
 * `libp2p-qmdb demo` (`npm start`): the whole system in one process.
 *
 * First `validators` nodes (TCP on localhost, data in a temporary directory)
 * run consensus over the example ledger until `blocks` blocks are final.
 * Then a late joiner starts with state sync: it finds a floor with the probe,
 * fetches both databases from the validators with verified range proofs,
 * hands off to its stateful manager and follows the chain. Finally consensus
 * pauses, every node settles on the same finalized height, and the demo
 * prints each node's height and database roots.
 *
 * Exit code 0 when every node reports the same roots at the same height, 1
 * otherwise (or when a stage misses the deadline).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createNode } from '../node/node.ts'
import { nodeIdentities } from './init.ts'
import { ledgerApplication } from './ledger.ts'
import { info, progressBar, toJson } from './output.ts'
import type { NodeConfig } from '../node/config.ts'
import type { NodeStatus, QmdbNode } from '../node/node.ts'

export interface DemoOptions {
  validators: number
  /** Finalized blocks before the joiner starts. */
  blocks: number
  /** Blocks the joiner must follow after its hand-off. */
  follow: number
  /** Generated transfers per block. */
  transfers: number
  /** Overall deadline (ms). */
  timeoutMs: number
  json: boolean
  /** Keep the data here instead of a removed temporary directory. */
  dir?: string
}

export interface DemoNodeReport {
  name: string
  role: 'validator' | 'joiner'
  peerId: string
  height: number | undefined
  roots: NodeStatus['roots']
}

export interface DemoReport {
  ok: boolean
  height: number | undefined
  nodes: DemoNodeReport[]
  /** Height the joiner's state sync anchored at. */
  anchor: number | undefined
  elapsedMs: number
}

class DeadlineError extends Error {
  readonly name = 'DeadlineError'
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function heightOf (node: QmdbNode): Promise<number> {
  return (await node.status()).appliedHeight ?? 0
}

export async function runDemo (opts: DemoOptions): Promise<DemoReport> {
  const started = Date.now()
  const deadline = started + opts.timeoutMs
  const until = async (what: string, cond: () => Promise<boolean>, everyMs = 250): Promise<void> => {
    while (!(await cond())) {
      if (Date.now() > deadline) { throw new DeadlineError(`the demo missed its deadline while waiting for ${what}`) }
      await sleep(everyMs)
    }
  }
  const dir = opts.dir !== undefined ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'libp2p-qmdb-demo-'))
  const nodes: Array<{ name: string, role: 'validator' | 'joiner', node: QmdbNode }> = []
  let anchor: number | undefined
  try {
    const ids = await nodeIdentities(dir, opts.validators + 1)
    const validators = ids.slice(0, opts.validators).map(n => n.peerId)
    const base = (i: number): NodeConfig => ({
      dataDir: ids[i].dataDir,
      chainId: 'qmdb-demo',
      validators,
      // dial every node already running
      bootstrap: nodes.flatMap(n => n.node.libp2p.getMultiaddrs().map(String)),
      consensus: { leaderTimeoutMs: 1000, notarizationTimeoutMs: 2000 }
    })

    const application = ledgerApplication({ autoTransfers: opts.transfers })
    info(`starting ${opts.validators} validators in ${dir}`)
    for (let i = 0; i < opts.validators; i++) {
      nodes.push({ name: ids[i].name, role: 'validator', node: await createNode(base(i), application) })
    }
    let lastShown = -1
    await until(`${opts.blocks} finalized blocks`, async () => {
      const h = Math.min(...await Promise.all(nodes.map(async n => heightOf(n.node))))
      if (h !== lastShown && (h % 10 === 0 || h >= opts.blocks)) {
        info(`  finalized height ${h}`)
        lastShown = h
      }
      return h >= opts.blocks
    })

    info(`starting a late joiner with state sync at height ${lastShown}`)
    let lastProgress = 0
    const joiner = await createNode({ ...base(opts.validators), stateSync: true }, application, {
      onPhase: p => { info(`  joiner: ${p}`) },
      onProgress: p => {
        const now = Date.now()
        if (p.synced < p.total && now - lastProgress < 500) { return }
        lastProgress = now
        info(`  joiner: ${p.database.padEnd(8)} ${progressBar(p.synced, p.total)} operations`)
      },
      onAnchor: a => {
        anchor = a.height
        info(`  joiner: sync target is the state at height ${a.height}`)
      }
    })
    nodes.push({ name: ids[opts.validators].name, role: 'joiner', node: joiner })
    await until('the joiner to finish its state sync', async () => {
      const s = await joiner.status()
      return s.phase === 'processing' && s.appliedHeight !== undefined
    })
    const handoff = await heightOf(joiner)
    info(`  joiner processing from height ${handoff}; following ${opts.follow} more blocks`)
    await until(`the joiner to follow ${opts.follow} blocks`, async () => (await heightOf(joiner)) >= handoff + opts.follow)

    info('pausing consensus; waiting for every node to settle')
    await Promise.all(nodes.map(async n => n.node.pauseConsensus()))
    let previous = ''
    let statuses: NodeStatus[] = []
    await until('the nodes to settle on one height', async () => {
      statuses = await Promise.all(nodes.map(async n => n.node.status()))
      const heights = statuses.map(s => s.appliedHeight)
      const key = toJson(heights)
      const settled = key === previous && heights.every(h => h === heights[0])
      previous = key
      return settled
    }, 1000).catch(err => {
      // report what we have: the table shows which node lags
      if (!(err instanceof DeadlineError)) { throw err }
    })

    const reports: DemoNodeReport[] = nodes.map((n, i) => ({
      name: n.name, role: n.role, peerId: n.node.peerId, height: statuses[i]?.appliedHeight, roots: statuses[i]?.roots
    }))
    const first = reports[0]
    const ok = reports.every(r => r.roots !== undefined && r.height === first.height && toJson(r.roots) === toJson(first.roots))
    return { ok, height: first.height, nodes: reports, anchor, elapsedMs: Date.now() - started }
  } finally {
    await Promise.all(nodes.map(async n => n.node.stop().catch(() => {})))
    if (opts.dir === undefined) { await rm(dir, { recursive: true, force: true }) }
  }
}

/** The report as a table for a terminal. */
export function formatReport (r: DemoReport): string {
  const dbs = Object.keys(r.nodes.find(n => n.roots !== undefined)?.roots ?? {})
  const rows = r.nodes.map(n => [n.name, n.role, String(n.height ?? '-'), ...dbs.map(db => n.roots?.[db]?.slice(0, 16) ?? '-')])
  const header = ['node', 'role', 'height', ...dbs.map(db => `${db} root`)]
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map(row => row[c].length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ')
  return [
    line(header),
    ...rows.map(line),
    '',
    r.ok
      ? `OK: ${r.nodes.length} nodes agree on every root at height ${r.height} (joiner anchored at ${r.anchor ?? '-'}; ${(r.elapsedMs / 1000).toFixed(1)} s)`
      : 'MISMATCH: the nodes do not agree on height and roots'
  ].join('\n')
}
