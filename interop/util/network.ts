/**
 * A local multi-process network for interop tests: `libp2p-qmdb init`'s
 * layout in a temporary directory (keys, one config per node), a
 * `NodeProcess` per node, and the checks every scenario ends with: pause
 * consensus, wait until every running node has applied the same height, and
 * compare the roots.
 *
 * No port is picked in advance (another process could take it in between):
 * every node listens on port 0 and reports its real address (`listening`).
 * A node starts knowing the addresses of the running validators (as `init`'s
 * bootstrap lists would: everyone keeps a connection to every validator);
 * when a validator starts, the running nodes are told its new address.
 */

import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initNetwork } from '../../src/cli/init.ts'
import { NodeProcess, CLI, LIVE_HEAP_FLAGS } from './node-process.ts'
import type { NodeConfig } from '../../src/node/config.ts'

export interface NetworkOptions {
  validators: number
  /** Non-validators created with state sync enabled (not started). */
  joiners?: number
  transfers?: number
  /** Minimum block time (default 50 ms: a loaded CI machine keeps up with the chain). */
  blockIntervalMs?: number
  /** Start every node with {@link LIVE_HEAP_FLAGS}, so `NodeProcess.liveHeap()` answers. */
  liveHeap?: boolean
}

const open = new Set<Network>()

/** Networks not closed, processes still running, temp dirs not removed (should all be empty after a suite). */
export async function leftovers (): Promise<string[]> {
  const out: string[] = []
  for (const net of open) { out.push(`network ${net.dir} not closed`) }
  for (const net of Network.all) {
    for (const n of net.nodes) { if (n.running) { out.push(`${n.name} of ${net.dir} still running`) } }
    if (await access(net.dir).then(() => true, () => false)) { out.push(`${net.dir} still exists`) }
  }
  return out
}

export class Network {
  static readonly all: Network[] = []
  readonly nodes: NodeProcess[] = []
  readonly peerIds: string[] = []
  /** Each node's address while it runs (`undefined` before its first start). */
  readonly addrs: Array<string | undefined> = []

  private constructor (readonly dir: string, readonly validators: number) {}

  static async create (opts: NetworkOptions): Promise<Network> {
    const dir = await mkdtemp(join(tmpdir(), 'qmdb-interop-'))
    const net = new Network(dir, opts.validators)
    open.add(net)
    Network.all.push(net)
    const nodes = await initNetwork({
      dir, validators: opts.validators, joiners: opts.joiners ?? 0, chainId: 'qmdb-interop', host: '127.0.0.1', autoTransfers: opts.transfers ?? 50, blockIntervalMs: opts.blockIntervalMs ?? 50
    })
    for (const n of nodes) {
      net.nodes.push(new NodeProcess(n.name, n.configPath, CLI, undefined, opts.liveHeap === true ? LIVE_HEAP_FLAGS : []))
      net.peerIds.push(n.peerId)
      net.addrs.push(undefined)
    }
    return net
  }

  /**
   * Start node `i` knowing the running nodes `peers` (default: the running
   * validators), wait until it listens, and record its address; a validator's
   * new address is sent to every running node.
   */
  async start (i: number, options: { peers?: number[] } = {}): Promise<void> {
    const running = (j: number): boolean => j !== i && this.nodes[j].running && this.addrs[j] !== undefined
    const peers = (options.peers ?? this.validatorNodes.map((_, v) => v)).filter(running)
    await this.editConfig(i, c => { c.bootstrap = peers.map(j => this.addrs[j] as string) })
    const node = this.nodes[i]
    this.addrs[i] = undefined
    node.start()
    const listening = await node.event('listening', 30_000)
    const addr = (listening.addresses as string[])[0]
    this.addrs[i] = addr.includes('/p2p/') ? addr : `${addr}/p2p/${this.peerIds[i]}`
    if (i < this.validators) {
      for (let j = 0; j < this.nodes.length; j++) {
        if (running(j)) { this.nodes[j].send({ cmd: 'peers', addrs: [this.addrs[i]] }) }
      }
    }
  }

  get validatorNodes (): NodeProcess[] {
    return this.nodes.slice(0, this.validators)
  }

  /** Change node `i`'s config file before it starts. */
  async editConfig (i: number, edit: (c: NodeConfig) => void): Promise<void> {
    const path = this.nodes[i].configPath
    const c = JSON.parse(await readFile(path, 'utf8')) as NodeConfig
    edit(c)
    await writeFile(path, JSON.stringify(c, null, 2))
  }

  /** Replace node `i`'s process with `script` (same CLI arguments). */
  useScript (i: number, script: string): void {
    const n = this.nodes[i]
    this.nodes[i] = new NodeProcess(n.name, n.configPath, script)
  }

  /** Start these nodes one after the other (each learns the addresses of those before it). */
  async startAll (which = this.nodes): Promise<void> {
    for (const n of which) { await this.start(this.nodes.indexOf(n)) }
  }

  /** Lowest applied height among `which` (0 before the first status line). */
  minHeight (which = this.validatorNodes): number {
    return Math.min(...which.map(n => n.status?.appliedHeight ?? 0))
  }

  async allAt (min: number, timeoutMs: number, which = this.validatorNodes): Promise<void> {
    await Promise.all(which.map(async n => n.height(min, timeoutMs)))
  }

  /**
   * Pause consensus everywhere and wait until every running node reports the
   * same applied height twice in a row; returns that height, the block digest
   * and the roots (throws if any node has another block or other roots).
   */
  async settle (timeoutMs = 30_000): Promise<{ height: number, digest: string, roots: Record<string, string> }> {
    const running = this.nodes.filter(n => n.running)
    for (const n of running) { n.send({ cmd: 'pause' }) }
    const deadline = Date.now() + timeoutMs
    let previous = ''
    for (;;) {
      await new Promise(resolve => setTimeout(resolve, 800))
      const st = running.map(n => n.status)
      const heights = st.map(s => s?.appliedHeight)
      const key = JSON.stringify(heights)
      if (key === previous && heights.every(h => h !== undefined && h === heights[0])) {
        // the same block at that height, and the same state after it
        const roots = st.map(s => JSON.stringify({ digest: s?.digest, roots: s?.roots }))
        if (roots.some(r => r !== roots[0])) {
          throw new Error(`nodes disagree on roots at height ${heights[0]}:\n${running.map((n, i) => `${n.name}: ${roots[i]}`).join('\n')}`)
        }
        const s0 = st[0]
        if (s0?.roots === undefined || s0.digest === undefined || heights[0] === undefined) { throw new Error('no roots reported') }
        return { height: heights[0], digest: s0.digest, roots: s0.roots }
      }
      previous = key
      if (Date.now() > deadline) {
        throw new Error(`nodes did not settle: ${running.map((n, i) => `${n.name}=${heights[i]}`).join(' ')}\n${running.map(n => n.diagnostics()).join('\n')}`)
      }
    }
  }

  async close (): Promise<void> {
    await Promise.all(this.nodes.map(async n => n.stop()))
    await rm(this.dir, { recursive: true, force: true })
    open.delete(this)
  }
}

export { CLI }
