/**
 * Node configuration: what one node of a network needs to know, loaded from a
 * JSON file (`libp2p-qmdb node --config FILE`) or built in code (the demo,
 * tests). Every field is validated with a precise message; unknown fields
 * are rejected so a typo never silently falls back to a default.
 */

import { readFile } from 'node:fs/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

export interface ConsensusConfig {
  /** Time a validator waits for the leader's proposal before nullifying (ms). */
  leaderTimeoutMs?: number
  /** Time a validator waits for a notarization before nullifying (ms). */
  notarizationTimeoutMs?: number
  /**
   * Minimum time a leader waits before proposing (ms, default 0): the chain's
   * block time floor. Must stay below `leaderTimeoutMs`.
   */
  blockIntervalMs?: number
}

export interface SyncConfigFile {
  fetchBatchSize?: number
  maxOutstandingRequests?: number
}

export interface PruneConfigFile {
  maintenanceInterval: number
  retainedMarshalBlocks: number
  retainedQmdbBlocks: number
}

export interface NodeConfig {
  /** Directory of the node's LevelDB, identity key and metadata. */
  dataDir: string
  /** Chain id: namespaces every protocol id and gossip topic. */
  chainId: string
  /** Validator peer ids (base58btc), in order; the node is a validator iff its id is listed. */
  validators: string[]
  /**
   * Multiaddrs to listen on (default `/ip4/127.0.0.1/tcp/0`): TCP
   * (`/ip4/<ip>/tcp/<port>`) and WebSockets (the same followed by `/ws`,
   * what browsers dial, README "Browser light client").
   */
  listen?: string[]
  /**
   * Multiaddrs (with `/p2p/<id>`) dialled at start and kept connected
   * (`@libp2p/bootstrap`); one is enough: the other nodes are found through
   * peer discovery over gossip, and every validator found is kept connected.
   */
  bootstrap?: string[]
  /** Also discover peers on the local network with mDNS (default false). */
  mdns?: boolean
  /** Request state sync at first start (an interrupted sync always resumes). */
  stateSync?: boolean
  /** Serve Prometheus metrics and `/status` on this port (127.0.0.1). */
  metricsPort?: number
  /** The application's own settings (an object; the application validates its fields). */
  application?: Record<string, unknown>
  consensus?: ConsensusConfig
  sync?: SyncConfigFile
  prune?: PruneConfigFile
}

export class ConfigError extends Error {
  readonly name = 'ConfigError'
}

const KEYS: Record<string, true> = {
  dataDir: true, chainId: true, validators: true, listen: true, bootstrap: true, mdns: true, stateSync: true, metricsPort: true, application: true, consensus: true, sync: true, prune: true
}

/** Listen addresses the node's transports (TCP, WebSockets) accept. */
const LISTENABLE = /^\/ip[46]\/[^/]+\/tcp\/\d{1,5}(\/ws)?$/

function fail (field: string, what: string): never {
  throw new ConfigError(`config field \`${field}\` ${what}`)
}

function str (v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) { fail(field, 'must be a non-empty string') }
  return v
}

function strings (v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some(x => typeof x !== 'string' || x.length === 0)) { fail(field, 'must be an array of non-empty strings') }
  return v as string[]
}

function int (v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) { fail(field, `must be an integer in [${min}, ${max}]`) }
  return v
}

function object (v: unknown, field: string, keys: string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) { fail(field, 'must be an object') }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) { fail(`${field}.${k}`, 'is not a known field') }
  }
  return v as Record<string, unknown>
}

/** An optional object of non-negative integers with only `keys` (also for applications' settings). */
export function optionalInts (v: unknown, field: string, keys: string[]): Record<string, number> | undefined {
  if (v === undefined) { return undefined }
  const o = object(v, field, keys)
  const out: Record<string, number> = {}
  for (const [k, x] of Object.entries(o)) { out[k] = int(x, `${field}.${k}`) }
  return out
}

function multiaddrs (v: unknown, field: string, withPeer: boolean): string[] {
  const list = strings(v, field)
  list.forEach((a, i) => {
    let peer: string | undefined
    try {
      peer = multiaddr(a).getComponents().find(c => c.name === 'p2p')?.value
    } catch (err) {
      fail(`${field}[${i}]`, `is not a multiaddr (${(err as Error).message})`)
    }
    if (withPeer && peer === undefined) { fail(`${field}[${i}]`, 'must end with /p2p/<peer id>') }
  })
  return list
}

function listenAddrs (v: unknown): string[] {
  const list = multiaddrs(v, 'listen', false)
  list.forEach((a, i) => {
    // the node's transports are TCP and WebSockets: any other address would be silently not listened on
    if (!LISTENABLE.test(a)) { fail(`listen[${i}]`, 'must be /ip4|ip6/<address>/tcp/<port>, optionally followed by /ws') }
  })
  return list
}

/** Validate a parsed configuration object. */
export function validateConfig (raw: unknown): NodeConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) { throw new ConfigError('the configuration must be a JSON object') }
  const o = raw as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (KEYS[k] !== true) { fail(k, 'is not a known field') }
  }
  const validators = strings(o.validators, 'validators')
  if (validators.length === 0) { fail('validators', 'must list at least one validator') }
  if (new Set(validators).size !== validators.length) { fail('validators', 'must not repeat a validator') }
  validators.forEach((v, i) => {
    let type: string | undefined
    try {
      type = peerIdFromString(v).type
    } catch {
      fail(`validators[${i}]`, 'is not a peer id')
    }
    // votes are Ed25519 signatures by the peer's key
    if (type !== 'Ed25519') { fail(`validators[${i}]`, `must be an Ed25519 peer id (got ${type})`) }
  })
  const config: NodeConfig = { dataDir: str(o.dataDir, 'dataDir'), chainId: str(o.chainId, 'chainId'), validators }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(config.chainId)) { fail('chainId', 'must be 1-64 characters of [A-Za-z0-9._-]') }
  if (o.listen !== undefined) { config.listen = listenAddrs(o.listen) }
  if (o.bootstrap !== undefined) { config.bootstrap = multiaddrs(o.bootstrap, 'bootstrap', true) }
  if (o.stateSync !== undefined) {
    if (typeof o.stateSync !== 'boolean') { fail('stateSync', 'must be a boolean') }
    config.stateSync = o.stateSync
  }
  if (o.mdns !== undefined) {
    if (typeof o.mdns !== 'boolean') { fail('mdns', 'must be a boolean') }
    config.mdns = o.mdns
  }
  if (o.metricsPort !== undefined) { config.metricsPort = int(o.metricsPort, 'metricsPort', 0, 65535) }
  if (o.application !== undefined) {
    if (typeof o.application !== 'object' || o.application === null || Array.isArray(o.application)) { fail('application', 'must be an object') }
    config.application = o.application as Record<string, unknown>
  }
  config.consensus = optionalInts(o.consensus, 'consensus', ['leaderTimeoutMs', 'notarizationTimeoutMs', 'blockIntervalMs'])
  const c = config.consensus
  if (c?.blockIntervalMs !== undefined && c.blockIntervalMs >= (c.leaderTimeoutMs ?? 1000)) {
    fail('consensus.blockIntervalMs', `must be below consensus.leaderTimeoutMs (${c.leaderTimeoutMs ?? 1000} ms), or every view would time out`)
  }
  config.sync = optionalInts(o.sync, 'sync', ['fetchBatchSize', 'maxOutstandingRequests'])
  if (o.prune !== undefined) {
    const p = optionalInts(o.prune, 'prune', ['maintenanceInterval', 'retainedMarshalBlocks', 'retainedQmdbBlocks']) as Record<string, number>
    for (const k of ['maintenanceInterval', 'retainedMarshalBlocks', 'retainedQmdbBlocks']) {
      if (p[k] === undefined) { fail(`prune.${k}`, 'is required') }
    }
    config.prune = p as unknown as PruneConfigFile
  }
  return config
}

/** Read and validate a JSON configuration file. */
export async function loadConfig (path: string): Promise<NodeConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
  return validateConfig(raw)
}
