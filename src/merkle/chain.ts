/**
 * Batch chains and staleness, shared by the MMR and the QMDB databases.
 *
 * A speculative batch is forked either from the committed structure (then it
 * records the structure's state token at fork time) or from another batch.
 * Applying a batch gives it a fresh token, makes that token the structure's
 * state, and cuts its parent link: everything below it is now committed, so
 * a descendant reads through at most its *unapplied* ancestors and the
 * applied history can be garbage-collected (the role of Rust's weak refs).
 *
 * A chain is valid for the structure iff walking up from the tip reaches
 * either an applied batch whose token is the current state (the structure is
 * exactly at that batch) or an unapplied root batch forked at the current
 * state. Anything else is stale: a sibling branch, an ancestor applied after
 * its child, a batch from before a rewind or reopen.
 */

export interface ChainLink {
  /** Parent batch; `undefined` when the parent is the committed structure. */
  parent: ChainLink | undefined
  /** State token of the committed structure this batch was forked from (root batches only). */
  baseToken: object | undefined
  /** The structure's state token right after this batch was applied. */
  appliedToken: object | undefined
}

/**
 * The unapplied batches from the oldest to `tip`, or `undefined` if the chain
 * is stale for a structure whose state token is `state`.
 */
export function unappliedChain<T extends ChainLink> (tip: T, state: object): T[] | undefined {
  const chain: T[] = []
  let b: ChainLink = tip
  for (;;) {
    if (b.appliedToken !== undefined) {
      if (b.appliedToken !== state) { return undefined }
      break
    }
    chain.push(b as T)
    if (b.parent === undefined) {
      if (b.baseToken !== state) { return undefined }
      break
    }
    b = b.parent
  }
  return chain.reverse()
}

/** Record that `link` is now committed state; returns its token. */
export function markApplied (link: ChainLink): object {
  const token = {}
  link.appliedToken = token
  link.parent = undefined
  link.baseToken = undefined
  return token
}
