/**
 * Periodic pruning schedule (commonware `glue/src/stateful/actor/core/processing.rs`).
 *
 * The manager remembers the `(height, syncTargets)` of the finalized blocks it
 * applied in this process. Every `maintenanceInterval` heights (at a phase
 * `offset`), once a full window has been observed, it asks to prune:
 * - marshal below the oldest remembered height (`maxPendingAcks + 1 +
 * retainedMarshalBlocks` blocks back), and
 * - the databases to the targets of the block `maxPendingAcks + 1 +
 * retainedQmdbBlocks` back (a target that is durable by then, and old enough
 * that a restart which must rewind to marshal's processed height still
 * finds the history it needs).
 *
 * Invariant: `retainedMarshalBlocks >= retainedQmdbBlocks`, so marshal always
 * keeps every block a database rewind may need.
 */

import { randomInt } from 'node:crypto'
import { StatefulFatalError } from './errors.ts'

export interface PruneConfig {
  /** Prune every this many heights (> 0). */
  maintenanceInterval: number
  /** Extra finalized blocks marshal keeps beyond the ack window (>= 0). */
  retainedMarshalBlocks: number
  /** Extra finalized states the databases keep beyond the ack window (>= 0, <= retainedMarshalBlocks). */
  retainedQmdbBlocks: number
  /** Phase in `[0, maintenanceInterval)`; random when omitted (spreads pruning across nodes). */
  offset?: number
}

export interface PruneTask<T> {
  /** Marshal may drop finalized blocks below this height. */
  marshalHeight: number
  /** The height whose state the databases are pruned to (must be durable first). */
  barrierHeight: number
  qmdbTarget: T
}

function checkCount (name: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new StatefulFatalError('PruneConfigInvalid', `${name} must be an integer >= ${min} (got ${n})`)
  }
}

export class Pruning<T> {
  readonly interval: number
  readonly offset: number
  readonly marshalWindow: number
  readonly qmdbWindow: number
  private readonly retained: Array<{ height: number, targets: T }> = []

  constructor (config: PruneConfig, maxPendingAcks: number) {
    checkCount('maintenanceInterval', config.maintenanceInterval, 1)
    checkCount('retainedMarshalBlocks', config.retainedMarshalBlocks, 0)
    checkCount('retainedQmdbBlocks', config.retainedQmdbBlocks, 0)
    checkCount('maxPendingAcks', maxPendingAcks, 0)
    if (config.retainedMarshalBlocks < config.retainedQmdbBlocks) {
      throw new StatefulFatalError('PruneConfigInvalid', 'marshal must retain at least as many blocks as QMDB')
    }
    this.interval = config.maintenanceInterval
    this.offset = config.offset ?? randomInt(this.interval)
    if (!Number.isSafeInteger(this.offset) || this.offset < 0 || this.offset >= this.interval) {
      throw new StatefulFatalError('PruneConfigInvalid', `prune maintenance offset ${this.offset} must be within the interval ${this.interval}`)
    }
    const base = maxPendingAcks + 1
    this.marshalWindow = base + config.retainedMarshalBlocks
    this.qmdbWindow = base + config.retainedQmdbBlocks
    if (!Number.isSafeInteger(this.marshalWindow)) {
      throw new StatefulFatalError('PruneConfigInvalid', 'prune window overflowed')
    }
  }

  /** Record a finalized block; a prune task when one is due. */
  observeFinalized (height: number, targets: T): PruneTask<T> | undefined {
    this.retained.push({ height, targets })
    if (this.retained.length > this.marshalWindow) { this.retained.shift() }
    if (height % this.interval !== this.offset) { return undefined }
    if (this.retained.length < this.marshalWindow) { return undefined }
    const marshalHeight = this.retained[0].height
    const { height: barrierHeight, targets: qmdbTarget } = this.retained[this.retained.length - this.qmdbWindow]
    return { marshalHeight, barrierHeight, qmdbTarget }
  }
}
