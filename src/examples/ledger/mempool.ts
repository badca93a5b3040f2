/**
 * The ledger's mempool: pending transfers in arrival order, de-duplicated by
 * transfer id, bounded (the oldest are dropped when full). Proposals take
 * from the front; finalized blocks remove what they included.
 */

import { hex } from '../../codec/index.ts'
import { transferId } from './block.ts'
import type { Transfer } from './block.ts'

export class Mempool {
  private readonly pending = new Map<string, Transfer>()
  private readonly capacity: number

  constructor (capacity = 100_000) {
    this.capacity = capacity
  }

  get size (): number {
    return this.pending.size
  }

  /** Queue a transfer; false if it is already queued. */
  add (t: Transfer): boolean {
    const id = hex(transferId(t))
    if (this.pending.has(id)) { return false }
    if (this.pending.size >= this.capacity) { this.pending.delete(this.pending.keys().next().value as string) }
    this.pending.set(id, t)
    return true
  }

  /** The oldest `n` transfers (they stay queued until a finalized block includes them). */
  take (n: number): Transfer[] {
    const out: Transfer[] = []
    for (const t of this.pending.values()) {
      if (out.length >= n) { break }
      out.push(t)
    }
    return out
  }

  remove (transfers: readonly Transfer[]): void {
    for (const t of transfers) { this.pending.delete(hex(transferId(t))) }
  }
}
