/**
 * `libp2p-qmdb node --config FILE`: run one node until SIGINT/SIGTERM.
 *
 * stdout carries JSON lines only (`listening`, `started`, `phase`,
 * `progress`, `anchor`, `ready`, periodic `status`, `fatal`, `stopped`,
 * `error`) so supervisors and the interop harness can follow the node. With
 * `--control` the node also reads JSON commands on stdin, one per line:
 * `{"cmd":"status"}`, `{"cmd":"pause"}`, `{"cmd":"block","peers":[…]}`,
 * `{"cmd":"unblock"}`, `{"cmd":"peers","addrs":[…]}` (keep these
 * multiaddrs connected too), `{"cmd":"stop"}`.
 *
 * A first signal stops the node gracefully (everything durable is flushed
 * and the process exits 0); a second one exits at once. A fatal error (the
 * application threw, a database failed) or a failed startup prints a
 * `fatal` line and one line on stderr naming it, stops the node and exits 1:
 * a node must never go on with state it cannot trust.
 */

import { createInterface } from 'node:readline'
import { loadConfig } from '../node/config.ts'
import { createNode } from '../node/node.ts'
import { ledgerApplication, ledgerSettings } from './ledger.ts'
import { emit } from './output.ts'
import type { NodeApplication } from '../node/application.ts'
import type { NodeEvents, QmdbNode } from '../node/node.ts'
import type { DatabaseRecord } from '../qmdb/managed.ts'
import type { Block } from '../stateful/types.ts'

export interface RunNodeOptions {
  configPath: string
  /** Emit a `status` line this often (ms); 0 disables. */
  statusIntervalMs: number
  control: boolean
  /** Passed to `createNode` (see `NodeEvents.serving`). */
  serving?: NodeEvents['serving']
  /** The application to run (default: the ledger, with the config's `application` settings). */
  application?: NodeApplication<Block, DatabaseRecord>
}

/** Progress lines at most this often per database (the final one always). */
const PROGRESS_EVERY_MS = 500

export async function runNode (opts: RunNodeOptions): Promise<number> {
  const config = await loadConfig(opts.configPath)
  const application = opts.application ?? ledgerApplication(ledgerSettings(config.application)) as unknown as NodeApplication<Block, DatabaseRecord>
  const lastProgress = new Map<string, number>()
  const node = await createNode(config, application, {
    onListening: addresses => { emit('listening', { addresses }) },
    onPhase: phase => { emit('phase', { phase }) },
    onProgress: p => {
      const now = Date.now()
      if (p.synced < p.total && now - (lastProgress.get(p.database) ?? 0) < PROGRESS_EVERY_MS) { return }
      lastProgress.set(p.database, now)
      emit('progress', { database: p.database, synced: p.synced, total: p.total })
    },
    onAnchor: a => { emit('anchor', { height: a.height, digest: a.key }) },
    serving: opts.serving
  })
  emit('started', { peerId: node.peerId, validator: config.validators.includes(node.peerId), addresses: node.libp2p.getMultiaddrs().map(String) })

  const done = Promise.withResolvers<number>()
  let stopping = false
  const stop = (code: number): void => {
    if (stopping) { return }
    stopping = true
    clearInterval(timer)
    node.stop().then(() => {
      emit('stopped')
      done.resolve(code)
    }, err => {
      emit('error', { message: `stop failed: ${(err as Error).message}` })
      done.resolve(1)
    })
  }
  const reportStatus = (): void => {
    node.status().then(s => { emit('status', { ...s }) }, () => {})
  }
  const timer = opts.statusIntervalMs > 0 ? setInterval(reportStatus, opts.statusIntervalMs) : undefined
  const fatal = (err: unknown, when: string): void => {
    if (stopping) { return }
    const e = err as { message?: string, code?: string, phase?: string, height?: number, digest?: string }
    emit('fatal', { when, message: e?.message ?? String(err), code: e?.code, phase: e?.phase, height: e?.height, digest: e?.digest })
    process.stderr.write(`libp2p-qmdb: the node stopped on a fatal error ${when}: ${e?.message ?? String(err)}\n`)
    stop(1)
  }
  node.ready.then(() => { emit('ready') }, err => { fatal(err, 'while starting') })
  node.failed.catch(err => { fatal(err, 'while processing') })

  const onSignal = (): void => {
    if (stopping) { process.exit(1) }
    stop(0)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  if (opts.control) { readControl(node, reportStatus, () => { stop(0) }) }
  const code = await done.promise
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  return code
}

function readControl (node: QmdbNode, reportStatus: () => void, stop: () => void): void {
  const rl = createInterface({ input: process.stdin })
  rl.on('line', line => {
    let cmd: { cmd?: unknown, peers?: unknown, addrs?: unknown }
    try {
      cmd = JSON.parse(line)
    } catch {
      emit('error', { message: 'control: not JSON' })
      return
    }
    const peers = Array.isArray(cmd.peers) ? cmd.peers.filter((p): p is string => typeof p === 'string') : undefined
    const addrs = Array.isArray(cmd.addrs) ? cmd.addrs.filter((p): p is string => typeof p === 'string') : []
    switch (cmd.cmd) {
      case 'status': reportStatus(); break
      case 'pause': void node.pauseConsensus().then(() => { emit('paused') }); break
      case 'block': void node.blockPeers(peers ?? []).then(() => { emit('blocked', { peers }) }); break
      case 'unblock': node.unblockPeers(peers); emit('unblocked', { peers }); break
      case 'peers': node.addPeers(addrs).then(() => { emit('peers', { addrs }) }, err => { emit('error', { message: `control: ${(err as Error).message}` }) }); break
      case 'stop': stop(); break
      default: emit('error', { message: `control: unknown command ${String(cmd.cmd)}` })
    }
  })
  // the supervisor going away is a stop request
  rl.on('close', stop)
}
