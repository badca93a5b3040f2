/**
 * `libp2p-qmdb get --peer <multiaddr> --db <name> <key-hex>`: one verified
 * read of the ledger from one node (docs/PROTOCOLS.md, "Light-client
 * proofs"). The validator set and chain id come from a node config written
 * by `libp2p-qmdb init` (`--config`); nothing the peer sends is trusted.
 *
 * Prints the value in hex (or `absent`) and `verified at height H (block
 * <digest>)`; any failure (a tampered answer, an unreachable peer, a key an
 * unordered database cannot prove absent) is a `LightError` whose code and
 * message reach stderr, exit 1.
 */

import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { hex } from '../codec/index.ts'
import { lightClient } from '../light/client.ts'
import { loadConfig } from '../node/config.ts'
import { ledgerApplication } from './ledger.ts'
import { UsageError } from './output.ts'
import type { LightValue } from '../light/verify.ts'

export interface GetOptions {
  configPath: string
  peer: string
  db: string
  keyHex: string
  height?: number
  timeoutMs: number
}

function parseKey (keyHex: string): Uint8Array {
  const s = keyHex.startsWith('0x') ? keyHex.slice(2) : keyHex
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) { throw new UsageError(`the key must be hex (got ${keyHex})`) }
  return uint8ArrayFromString(s.toLowerCase(), 'base16')
}

/** The two lines `get` prints for a verified read. */
export function formatValue (v: LightValue): string {
  return `${v.absent ? 'absent' : hex(v.value)}\nverified at height ${v.height} (block ${hex(v.blockDigest)})`
}

export async function runGet (opts: GetOptions): Promise<LightValue> {
  const key = parseKey(opts.keyHex)
  let peer
  try {
    peer = multiaddr(opts.peer)
  } catch (err) {
    throw new UsageError(`--peer is not a multiaddr: ${(err as Error).message}`)
  }
  if (peer.getComponents().find(c => c.name === 'p2p') === undefined) { throw new UsageError('--peer must end with /p2p/<peer id>') }
  const config = await loadConfig(opts.configPath)
  const libp2p = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  try {
    const client = lightClient(libp2p, { validators: config.validators, chain: config.chainId, application: ledgerApplication(), timeout: opts.timeoutMs })
    return await client.get(peer, opts.db, key, { height: opts.height })
  } finally {
    await libp2p.stop()
  }
}
