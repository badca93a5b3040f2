/**
 * A corrupt serving peer for interop tests: a real follower node (same CLI
 * protocol as `libp2p-qmdb node`) whose state-sync answers are tampered —
 * every proof's first digest is flipped (or, for a proof without digests,
 * the last operation's last byte), so each response still decodes but fails
 * verification. Honest peers must block it and finish their sync elsewhere.
 *
 * Usage: node dist/interop/bad-node.js node --config FILE [--status-interval MS] [--control]
 */

import '../src/polyfill.ts'
import { parseArgs } from 'node:util'
import { runNode } from '../src/cli/run-node.ts'
import type { Response } from '../src/sync/messages.ts'
import type { Source } from '../src/sync/source.ts'

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

const tampering = (_db: string, source: Source): Source => ({
  async serve (request, options) {
    const served = await source.serve(request, options)
    return { ...served, response: corrupt(served.response) }
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
