/**
 * `libp2p-qmdb init`: lay out a local network on disk — one data directory per
 * node holding its identity key, and one JSON config per node (listen ports,
 * TCP and optionally WebSockets for browsers; the validator set, the
 * bootstrap list — one address would do, the rest are discovered —,
 * optionally mDNS, the ledger's settings in
 * `application`). Without a base port every node listens on port 0 (the
 * system picks a free one) and knows no peer addresses: whoever starts the
 * nodes tells them each other's real addresses (the interop harness does,
 * with the `peers` control command). Validators are the first
 * `validators` nodes; the remaining `joiners` start with state sync enabled.
 * Existing keys are reused, so re-running `init` never changes identities.
 */

import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreateKey } from '../node/identity.ts'
import type { NodeConfig } from '../node/config.ts'

export interface InitOptions {
  dir: string
  validators: number
  joiners: number
  chainId: string
  host: string
  /** Node i listens on `basePort + i`; every node on port 0 when undefined. */
  basePort?: number
  /**
   * Node i also listens on WebSockets (for browsers) at `wsBasePort + i`, or
   * every node on port 0 when it is 0; TCP only when undefined.
   */
  wsBasePort?: number
  /** First metrics port (node i gets `metricsBasePort + i`); none when undefined. */
  metricsBasePort?: number
  autoTransfers: number
  /** Minimum block time (ms); 0 = as fast as consensus goes. */
  blockIntervalMs?: number
  /** Every node also discovers peers on the local network with mDNS. */
  mdns?: boolean
}

export interface InitializedNode {
  name: string
  peerId: string
  configPath: string
  config: NodeConfig
}

/** Create (or reuse) the keys of `count` nodes under `dir` and return their peer ids. */
export async function nodeIdentities (dir: string, count: number): Promise<Array<{ name: string, dataDir: string, peerId: string }>> {
  const out = []
  for (let i = 0; i < count; i++) {
    const name = `node-${i}`
    const dataDir = join(dir, name)
    await mkdir(dataDir, { recursive: true })
    const key = await loadOrCreateKey(join(dataDir, 'peer.key'))
    out.push({ name, dataDir, peerId: peerIdFromPrivateKey(key).toString() })
  }
  return out
}

export async function initNetwork (opts: InitOptions): Promise<InitializedNode[]> {
  const dir = resolve(opts.dir)
  const ids = await nodeIdentities(dir, opts.validators + opts.joiners)
  const base = opts.basePort
  const addr = (i: number): string => `/ip4/${opts.host}/tcp/${(base ?? 0) + i}/p2p/${ids[i].peerId}`
  const validators = ids.slice(0, opts.validators).map(n => n.peerId)
  const nodes: InitializedNode[] = []
  for (let i = 0; i < ids.length; i++) {
    const joiner = i >= opts.validators
    const config: NodeConfig = {
      dataDir: ids[i].dataDir,
      chainId: opts.chainId,
      validators,
      listen: [`/ip4/${opts.host}/tcp/${base === undefined ? 0 : base + i}`],
      // everyone keeps a connection to every validator
      bootstrap: base === undefined ? [] : validators.map((_, v) => addr(v)).filter((_, v) => v !== i),
      application: { autoTransfers: opts.autoTransfers }
    }
    if (opts.wsBasePort !== undefined) { config.listen?.push(`/ip4/${opts.host}/tcp/${opts.wsBasePort === 0 ? 0 : opts.wsBasePort + i}/ws`) }
    if ((opts.blockIntervalMs ?? 0) > 0) { config.consensus = { blockIntervalMs: opts.blockIntervalMs } }
    if (joiner) { config.stateSync = true }
    if (opts.mdns === true) { config.mdns = true }
    if (opts.metricsBasePort !== undefined) { config.metricsPort = opts.metricsBasePort + i }
    const configPath = join(dir, `${ids[i].name}.json`)
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`)
    nodes.push({ name: ids[i].name, peerId: ids[i].peerId, configPath, config })
  }
  return nodes
}
