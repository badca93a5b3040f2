/**
 * What the sync engine does with a `Source`, reduced to one request: serve,
 * verify against the trusted root for the request's size, give the verdict,
 * and ask again after a rejection.
 */
import { verifyProofAndPinnedNodes, verifyRangeProof } from '../../src/merkle/index.ts'
import type { Digest } from '../../src/merkle/index.ts'
import type { Request, Response } from '../../src/sync/messages.ts'
import type { Source } from '../../src/sync/source.ts'

/** True iff `res` is a valid answer to `req` under `root`. */
export function verifies (req: Request, res: Response, root: Digest): boolean {
  if (res.type !== req.type || res.proof.leaves !== req.size) { return false }
  if (res.type === 'operations') {
    const max = req.type === 'operations' ? req.maxOps : 1
    if (res.ops.length < 1 || res.ops.length > max) { return false }
    return verifyRangeProof(res.proof, req.start, res.ops, root)
  }
  return verifyProofAndPinnedNodes(res.proof, req.start, [res.op], res.pinnedNodes, root)
}

export interface VerifiedFetch {
  response: Response
  /** Responses rejected before the valid one. */
  rejected: number
}

/** Fetch `req` until a response verifies against `root` (feedback given for each). */
export async function fetchVerified (source: Source, req: Request, root: Digest, signal?: AbortSignal): Promise<VerifiedFetch> {
  let rejected = 0
  for (;;) {
    const { response, feedback } = await source.serve(req, { signal })
    const ok = verifies(req, response, root)
    feedback?.(ok)
    if (ok) { return { response, rejected } }
    if (feedback === undefined) { throw new Error('a final source served an invalid response') }
    rejected++
  }
}
