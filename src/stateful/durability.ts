/**
 * Bounded durability and marshal acknowledgements (commonware `glue/src/stateful/actor/durability.rs`).
 *
 * - at most one database flush is in flight; finalizations applied meanwhile
 * are flushed together by one successor flush (coalescing);
 * - a block's marshal acknowledgement is released only once a flush that
 * covers its height is durable, and acknowledgements are released in height
 * order; so marshal's processed height never passes the databases' durable
 * height;
 * - when the manager stops, every unreleased acknowledgement is cancelled.
 *
 * The flush itself is started by the owner (`startSync` in the manager),
 * which captures the covered height *before* calling `DatabaseSet.finalize`.
 */

import { StatefulFatalError } from './errors.ts'
import type { Acknowledgement } from './marshal.ts'
import type { Barrier } from '../qmdb/index.ts'

interface ActiveSync {
  height: number
  /** Settles once the flush completed and its acks were released (or failed). */
  promise: Promise<void>
}

export class Durability {
  /** Highest applied height known durable. */
  durable: number
  private readonly acks: Array<{ height: number, ack: Acknowledgement }> = []
  private active: ActiveSync | undefined
  private closed = false

  constructor (durable: number) {
    this.durable = durable
  }

  latestApplied (): number {
    return this.acks.length > 0 ? this.acks[this.acks.length - 1].height : this.durable
  }

  /** A finalized block at `height` was applied; hold its ack until durable. */
  applied (height: number, ack: Acknowledgement): void {
    if (this.closed) {
      ack.cancel(new Error('the stateful manager stopped'))
      return
    }
    if (height <= this.latestApplied()) {
      throw new StatefulFatalError('FinalizedHeightsNotIncreasing', `finalized heights must increase (latest applied ${this.latestApplied()})`, { height })
    }
    this.acks.push({ height, ack })
  }

  /** An applied suffix is not covered and no flush is running. */
  needsSync (): boolean {
    return this.active === undefined && this.durable < this.latestApplied()
  }

  get syncActive (): ActiveSync | undefined {
    return this.active
  }

  covers (height: number): boolean {
    return this.durable >= height
  }

  /**
   * Track a flush covering everything applied through `height`. `onDone`
   * runs after its acks were released; `onError` gets the fatal error if the
   * flush failed.
   */
  started (height: number, barrier: Barrier, onDone: () => void, onError: (err: StatefulFatalError) => void): void {
    if (this.active !== undefined) { throw new StatefulFatalError('InvariantViolated', 'sync already active', { height }) }
    if (!(this.durable < height && height <= this.latestApplied())) {
      throw new StatefulFatalError('InvariantViolated', `flush height ${height} outside (${this.durable}, ${this.latestApplied()}]`, { height })
    }
    const active: ActiveSync = {
      height,
      promise: barrier.durable().then(
        () => {
          if (this.active === active) { this.complete(height) }
          onDone()
        },
        (err: unknown) => {
          const database = (err as { database?: string }).database
          onError(new StatefulFatalError('DatabaseSyncFailed', `database sync failed: ${(err as Error)?.message ?? String(err)}`, { height, database, cause: err }))
        }
      )
    }
    this.active = active
  }

  private complete (height: number): void {
    this.active = undefined
    if (this.closed) { return }
    this.durable = Math.max(this.durable, height)
    while (this.acks.length > 0 && this.acks[0].height <= this.durable) {
      const { ack } = this.acks.shift() as { height: number, ack: Acknowledgement }
      ack.acknowledge()
    }
  }

  /** Stop: cancel every unreleased acknowledgement; later flush completions release nothing. */
  close (reason: Error): void {
    this.closed = true
    for (const { ack } of this.acks.splice(0)) {
      try { ack.cancel(reason) } catch { /* marshal is gone */ }
    }
  }

  /** Unreleased acknowledgements (for diagnostics and tests). */
  get heldAcks (): number {
    return this.acks.length
  }
}
