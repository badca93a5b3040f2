/**
 * `libp2p-qmdb node --config FILE`: run one node until SIGINT/SIGTERM.
 *
 * stdout carries JSON lines only (`started`, `phase`, `progress`, `anchor`,
 * `ready`, periodic `status`, `stopped`, `error`) so supervisors and the
 * interop harness can follow the node. With `--control` the node also reads
 * JSON commands on stdin, one per line: `{"cmd":"status"}`, `{"cmd":"pause"}`,
 * `{"cmd":"block","peers":[…]}`, `{"cmd":"unblock"}`, `{"cmd":"stop"}`.
 *
 * A first signal stops the node gracefully (everything durable is flushed
 * and the process exits 0); a second one exits at once.
 */

import { createInterface } from 'node:readline'
import { loadConfig } from '../node/config.ts'
import { createNode } from '../node/node.ts'
import { emit } from './output.ts'
import type { NodeEvents, QmdbNode } from '../node/node.ts'

export interface RunNodeOptions {
  configPath: string
  /** Emit a `status` line this often (ms); 0 disables. */
  statusIntervalMs: number
  control: boolean
  /** Passed to `createNode` (see `NodeEvents.serving`). */
  serving?: NodeEvents['serving']
}

/** Progress lines at most this often per database (the final one always). */
const PROGRESS_EVERY_MS = 500

export async function runNode (opts: RunNodeOptions): Promise<number> {
  const config = await loadConfig(opts.configPath)
  const lastProgress = new Map<string, number>()
  const node = await createNode(config, {
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
  node.ready.then(() => { emit('ready') }, err => { emit('error', { message: (err as Error).message }) })

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
    let cmd: { cmd?: unknown, peers?: unknown }
    try {
      cmd = JSON.parse(line)
    } catch {
      emit('error', { message: 'control: not JSON' })
      return
    }
    const peers = Array.isArray(cmd.peers) ? cmd.peers.filter((p): p is string => typeof p === 'string') : undefined
    switch (cmd.cmd) {
      case 'status': reportStatus(); break
      case 'pause': void node.pauseConsensus().then(() => { emit('paused') }); break
      case 'block': void node.blockPeers(peers ?? []).then(() => { emit('blocked', { peers }) }); break
      case 'unblock': node.unblockPeers(peers); emit('unblocked', { peers }); break
      case 'stop': stop(); break
      default: emit('error', { message: `control: unknown command ${String(cmd.cmd)}` })
    }
  })
  // the supervisor going away is a stop request
  rl.on('close', stop)
}
