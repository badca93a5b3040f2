/**
 * A corrupt serving peer for interop tests: a real follower node (same CLI
 * protocol as `libp2p-qmdb node`) whose state-sync answers are tampered —
 * every proof's first digest is flipped (or, for a proof without digests,
 * the last operation's last byte), so each response still decodes but fails
 * verification; a request it cannot serve gets a fabricated answer (never
 * "no data"). Honest peers must block it and finish their sync elsewhere.
 *
 * Usage: node dist/interop/bad-node.js node --config FILE [--status-interval MS] [--control]
 */

import { parseArgs } from 'node:util'
import { runNode } from '../src/cli/run-node.ts'
import { installPolyfills } from '../src/polyfill.ts'
import type { Request, Response } from '../src/sync/messages.ts'
import type { Source } from '../src/sync/source.ts'

// libp2p v3 calls Promise.withResolvers, which Node 20 lacks
installPolyfills()

function flip (b: Uint8Array): Uint8Array {
  const c = b.slice()
  c[c.length - 1] ^= 0x01
  return c
}

function corrupt (r: Response): Response {
  if (r.proof.digests.length > 0) {
    return { ...r, proof: { ...r.proof, digests: [flip(r.proof.digests[0]), ...r.proof.digests.slice(1)] } }
  }
  if (r.type === 'boundary') { return { ...r, op: flip(r.op) } }
  return { ...r, ops: [...r.ops.slice(0, -1), flip(r.ops[r.ops.length - 1])] }
}

/** What it sends when it has nothing to tamper with (it never says "no data", so it is always caught lying). */
function fabricate (request: Request): Response {
  const proof = { leaves: request.size, inactivePeaks: 0, digests: [new Uint8Array(32).fill(0xee)] }
  const op = new Uint8Array([0xff])
  return request.type === 'operations' ? { type: 'operations', proof, ops: [op] } : { type: 'boundary', proof, op, pinnedNodes: [] }
}

const tampering = (_db: string, source: Source): Source => ({
  async serve (request, options) {
    try {
      const served = await source.serve(request, options)
      return { ...served, response: corrupt(served.response) }
    } catch {
      return { response: fabricate(request) }
    }
  }
})

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: { config: { type: 'string' }, 'status-interval': { type: 'string' }, control: { type: 'boolean' } }
})
const code = await runNode({
  configPath: values.config ?? '',
  statusIntervalMs: Number(values['status-interval'] ?? 0),
  control: values.control === true,
  serving: tampering
})
process.exit(code)
