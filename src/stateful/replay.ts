/**
 * The replay registry (commonware `glue/src/stateful/actor/processor/mod.rs`): at most one replay ("flight") of a
 * given block digest runs at a time, among all verification jobs and the
 * finalizer; the others wait for its outcome.
 *
 * A flight is settled exactly once by its owner: with an outcome, or with
 * `undefined` when the owner was cancelled (waiters then claim again and one
 * of them becomes the new owner). Settling removes the flight, but only if
 * it is still the registered one (a stale owner never touches a newer
 * flight). Waiters need no registration: a cancelled waiter simply stops
 * awaiting.
 */

import { deferred } from './util.ts'
import type { Deferred } from './util.ts'

/** Outcome of replaying one block (or a whole rebuild). */
export type ReplayOutcome = 'ok' | 'invalid' | 'incomplete'

export interface Flight {
  readonly key: string
  readonly generation: number
  /** Resolves with the owner's outcome, or `undefined` if the owner was cancelled. */
  readonly done: Promise<ReplayOutcome | undefined>
}

interface FlightRecord extends Flight {
  settle: Deferred<ReplayOutcome | undefined>
}

export type Claim =
  | { kind: 'ready' }
  | { kind: 'wait', flight: Flight }
  | { kind: 'owner', flight: Flight }

export class ReplayRegistry {
  private readonly flights = new Map<string, FlightRecord>()
  private generations = 0

  /**
   * Atomically: `ready` if the state exists, `wait` if a flight is running,
   * else register a new flight owned by the caller.
   */
  claim (key: string, isReady: (key: string) => boolean): Claim {
    if (isReady(key)) { return { kind: 'ready' } }
    const existing = this.flights.get(key)
    if (existing !== undefined) { return { kind: 'wait', flight: existing } }
    return { kind: 'owner', flight: this.register(key) }
  }

  /** A running flight for `key`, if any. */
  get (key: string): Flight | undefined {
    return this.flights.get(key)
  }

  /** Register a flight for `key` (there must be none). */
  register (key: string): Flight {
    if (this.flights.has(key)) { throw new Error(`replay flight already registered for ${key}`) }
    const settle = deferred<ReplayOutcome | undefined>()
    const record: FlightRecord = { key, generation: ++this.generations, done: settle.promise, settle }
    this.flights.set(key, record)
    return record
  }

  /** The owner is done (`undefined` = cancelled without a result). */
  finish (flight: Flight, outcome: ReplayOutcome | undefined): void {
    const record = this.flights.get(flight.key)
    if (record === undefined || record.generation !== flight.generation) {
      throw new Error(`replay owner of ${flight.key} has no matching in-flight entry`)
    }
    this.flights.delete(flight.key)
    record.settle.resolve(outcome)
  }

  /** No replay is running (asserted before pruning). */
  get idle (): boolean {
    return this.flights.size === 0
  }

  get size (): number {
    return this.flights.size
  }
}
