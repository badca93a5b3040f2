/**
 * The execution state shared by the manager loop and every verification job
 * (commonware `glue/src/stateful/actor/processor/mod.rs`): the pending-tip map of speculative block states above
 * the processed anchor, the processed anchor itself and the block currently
 * being finalized.
 *
 * Every method is synchronous: a call is one critical section (JS runs it to
 * completion), so check-and-insert sequences cannot interleave.
 *
 * Invariants:
 * - an entry exists only for a block whose merkleized state matched its sync
 * targets (the callers check before `cachePending`);
 * - when inserted, an entry's parent is the processed anchor or another
 * entry, and its round is above the processed round — or, during a
 * finalization of W, it is W itself or a descendant of W;
 * - after a finalization of W the map holds only descendants of W with a
 * round above W's.
 */

import { compareRounds, roundsEqual } from './types.ts'
import type { Anchor, Round } from './types.ts'
import type { DatabaseRecord, DatabaseSet, MerkleizedOf, UnmerkleizedOf } from '../qmdb/index.ts'

export interface PendingEntry<Dbs extends DatabaseRecord> {
  round: Round
  /** Hex digest of the parent. */
  parent: string
  height: number
  merkleized: MerkleizedOf<Dbs>
}

export type ForkResult<Dbs extends DatabaseRecord> = { ok: true, batches: UnmerkleizedOf<Dbs> } | { ok: false }

export class ExecutionState<Dbs extends DatabaseRecord> {
  readonly pending = new Map<string, PendingEntry<Dbs>>()
  lastProcessed: Anchor
  finalizing: Anchor | undefined
  finalizingBatch: MerkleizedOf<Dbs> | undefined
  finalizingCompatible = new Set<string>()
  private readonly databases: DatabaseSet<Dbs>

  constructor (databases: DatabaseSet<Dbs>, lastProcessed: Anchor) {
    this.databases = databases
    this.lastProcessed = lastProcessed
  }

  /** The parent state is available without replay (`finalizing` is not consulted). */
  isKnown (key: string): boolean {
    return key === this.lastProcessed.key || this.pending.has(key)
  }

  /** The state is available to fork from or already reflected (replay `Ready`). */
  isReady (key: string): boolean {
    return this.isKnown(key) || (this.finalizingBatch !== undefined && this.finalizing?.key === key)
  }

  /** Whether `key` is the processed block or the block being finalized (a waiter can recover through it). */
  finalizationRecovers (key: string): boolean {
    return key === this.lastProcessed.key || this.finalizing?.key === key
  }

  /**
   * Batches forked from the state after block `parent`: a pending
   * entry, the finalizing winner, or the committed state if `parent` is the
   * processed anchor; otherwise the parent is unknown.
   */
  forkBatches (parent: string): ForkResult<Dbs> {
    const entry = this.pending.get(parent)
    if (entry !== undefined) { return { ok: true, batches: this.databases.forkBatches(entry.merkleized) } }
    if (this.finalizing?.key === parent) {
      if (this.finalizingBatch === undefined) { return { ok: false } }
      return { ok: true, batches: this.databases.forkBatches(this.finalizingBatch) }
    }
    if (this.lastProcessed.key !== parent) { return { ok: false } }
    return { ok: true, batches: this.databases.newBatches() }
  }

  /**
   * Insert a computed state. True if it is now (or already was)
   * represented; false if it is no longer compatible with finalized history.
   */
  cachePending (key: string, parent: string, height: number, round: Round, merkleized: MerkleizedOf<Dbs>): boolean {
    if (this.pending.has(key)) { return true }
    const f = this.finalizing
    if (f !== undefined && this.finalizingBatch !== undefined && f.key === key && roundsEqual(f.round, round)) { return true }
    const lp = this.lastProcessed
    if (lp.key === key && roundsEqual(lp.round, round)) { return true }
    const parentKnown = parent === lp.key || this.pending.has(parent)
    let compatible: boolean
    if (f === undefined) {
      compatible = compareRounds(round, lp.round) > 0 && parentKnown
    } else {
      compatible = (key === f.key && roundsEqual(round, f.round) && parentKnown) ||
        (compareRounds(round, f.round) > 0 && this.finalizingCompatible.has(parent))
    }
    if (!compatible) { return false }
    this.pending.set(key, { round, parent, height, merkleized })
    if (f !== undefined) { this.finalizingCompatible.add(key) }
    return true
  }

  /** `{W} ∪` the pending descendants of W with a round above W's. */
  compatiblePending (winner: string, round: Round): Set<string> {
    const children = new Map<string, string[]>()
    for (const [key, e] of this.pending) {
      if (compareRounds(e.round, round) <= 0) { continue }
      const list = children.get(e.parent)
      if (list === undefined) { children.set(e.parent, [key]) } else { list.push(key) }
    }
    const out = new Set<string>([winner])
    const queue = [winner]
    while (queue.length > 0) {
      const next = queue.pop() as string
      for (const c of children.get(next) ?? []) {
        if (!out.has(c)) {
          out.add(c)
          queue.push(c)
        }
      }
    }
    return out
  }
}
