/**
 * The probe's sample (commonware `glue/src/stateful/probe/sample.rs`): one verified finalization per
 * peer per request round, and the rule that turns enough of them into a
 * floor.
 *
 * Policies (`threshold` is `f + 1` for a committee of `n = 3f + 1`):
 * - `'agreement'`: the floor is the highest-round finalization that at
 * least `threshold` distinct peers reported (same round and payload). A
 * floor needs one honest voucher even if every Byzantine peer replays the
 * same certificate.
 * - `'highest'` (the reference rule): once `threshold` distinct peers
 * replied, the floor is the highest-round reply. At least one reply is
 * honest and every reply verified, so the floor is real and no older than
 * an honest node's view; Byzantine peers can only push it higher with
 * another real finalization.
 *
 * Invariants: a peer contributes at most one reply per round (the first);
 * replies judged unjudgeable at selection time count for nothing; a floor is
 * selected at most once and then no peer is pending; ties between rounds
 * keep the reply of the smallest peer id (deterministic).
 */

import { compareRounds } from '../marshal/types.ts'
import type { FinalizationScheme } from '../marshal/types.ts'

export type FloorPolicy = 'agreement' | 'highest'

/** `f` for a committee of `n`: the most faulty members a `3f + 1` committee tolerates. */
export function maxFaults (n: number): number {
  return n <= 0 ? 0 : Math.floor((n - 1) / 3)
}

function hex (d: Uint8Array): string {
  return Buffer.from(d).toString('hex')
}

export class Sample<F> {
  readonly policy: FloorPolicy
  private readonly scheme: Pick<FinalizationScheme<F>, 'round' | 'payload'>
  private readonly replies = new Map<string, F>()
  private selected: F | undefined

  constructor (scheme: Pick<FinalizationScheme<F>, 'round' | 'payload'>, policy: FloorPolicy = 'agreement') {
    this.scheme = scheme
    this.policy = policy
  }

  /** No floor yet and `peer` has not replied this round. */
  pending (peer: string): boolean {
    return this.selected === undefined && !this.replies.has(peer)
  }

  /** Keep `f` as `peer`'s reply unless it already replied (first reply wins). */
  record (peer: string, f: F): boolean {
    if (this.replies.has(peer)) { return false }
    this.replies.set(peer, f)
    return true
  }

  /** Forget this round's replies (the floor, if any, stays). */
  reset (): void {
    this.replies.clear()
  }

  get size (): number {
    return this.replies.size
  }

  get floor (): F | undefined {
    return this.selected
  }

  /** Select the floor if the replies allow it (only once). */
  select (threshold: number, judgeable: (f: F) => boolean = () => true): F | undefined {
    if (this.selected !== undefined) { return undefined }
    const peers = [...this.replies.keys()].sort()
    const usable: Array<[string, F]> = []
    for (const peer of peers) {
      const f = this.replies.get(peer) as F
      if (judgeable(f)) { usable.push([peer, f]) }
    }
    const floor = this.policy === 'highest' ? this.highest(usable, threshold) : this.agreed(usable, threshold)
    if (floor !== undefined) { this.selected = floor }
    return floor
  }

  private highest (usable: Array<[string, F]>, threshold: number): F | undefined {
    if (usable.length === 0 || usable.length < threshold) { return undefined }
    let best = usable[0][1]
    for (const [, f] of usable) {
      if (compareRounds(this.scheme.round(f), this.scheme.round(best)) > 0) { best = f }
    }
    return best
  }

  private agreed (usable: Array<[string, F]>, threshold: number): F | undefined {
    const groups = new Map<string, { f: F, count: number }>()
    for (const [, f] of usable) {
      const r = this.scheme.round(f)
      const key = `${r.epoch}:${r.view}:${hex(this.scheme.payload(f))}`
      const g = groups.get(key)
      if (g === undefined) { groups.set(key, { f, count: 1 }) } else { g.count++ }
    }
    let best: F | undefined
    for (const g of groups.values()) {
      if (g.count < Math.max(1, threshold)) { continue }
      if (best === undefined || compareRounds(this.scheme.round(g.f), this.scheme.round(best)) > 0) { best = g.f }
    }
    return best
  }
}
