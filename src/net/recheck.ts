/**
 * Re-asking stallers, the strike rule's second half (docs/PROTOCOLS.md,
 * "Client behaviour"; `src/net/peers.ts`): a peer that timed out on a
 * stream it accepted, for a request another peer then answered, is ranked
 * last by its score and so is rarely asked again — its strikes would never
 * reach the limit. Such a peer becomes a suspect and is asked that same
 * request again in the background, spaced out, until it answers (suspicion
 * ends) or its strikes block it.
 *
 * Why this never blocks an honest peer: the kit's server answers every
 * request it accepted within its serve deadline, with data or no-data, so
 * only a peer that sits on an accepted stream is a suspect, and any true
 * answer to a re-ask, no-data included (a peer behind or pruned past the
 * item), ends the suspicion without a strike. Data is true when it passes the
 * protocol's checks — where the caller verifies after parsing (state sync),
 * the re-ask judges it against what the caller accepted from the other peer
 * (`Ask.judge`), so a staller cannot end its suspicion with parseable junk:
 * false data blocks it, as it would any peer. The item re-asked is one
 * another peer just served, so it exists; an unreachable peer, a reset or a
 * dial failure is no strike, as in the rule.
 *
 * Invariants: at most one re-ask in flight per peer and `maxRechecks` in all;
 * a peer is re-asked at most once per `recheckMs` on the book's clock; each
 * re-ask that times out is one strike (its own occasion); at most
 * `MAX_SUSPECTS` suspects are held; `stop` cancels everything, leaves no
 * timer behind and takes no suspect until `start`; `recheckMs: 0` (or
 * `maxRechecks: 0`) turns re-asking off.
 */

import type { PeerBook, StrikeRule } from './peers.ts'

/**
 * How a re-ask ended: answered (`data`, `no-data`), sat on (`timeout`), answered falsely (`invalid`: the
 * peer is blocked already), or anything that says nothing (`other`).
 */
export type RecheckOutcome = 'data' | 'no-data' | 'timeout' | 'invalid' | 'other'

/** Ask the suspect its request again; the signal aborts when re-asking stops. */
export type Reask = (signal: AbortSignal) => Promise<RecheckOutcome>

interface Suspect<P> {
  peer: P
  reask: Reask
  /** Earliest time of the next re-ask (book's clock). */
  next: number
  busy: boolean
  /** Re-asks in a row that said nothing (peer unreachable meanwhile). */
  silent: number
}

/** Most suspects held at once (a bound on memory and work, not a rule). */
const MAX_SUSPECTS = 64
/**
 * Re-asks in a row that say nothing (the suspect is unreachable) before it
 * is let go: spaced 1, 2, 4, then 8 spacings apart, about 10 minutes at the
 * default spacing.
 */
const MAX_SILENT = 10

export class Rechecks<P extends { toString(): string }> {
  private readonly book: PeerBook
  private readonly rule: Pick<StrikeRule, 'limit' | 'recheckMs' | 'maxRechecks'>
  private readonly struck: (peer: P, reason: string, ms: number) => void
  private readonly suspects = new Map<string, Suspect<P>>()
  private inFlight = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private controller = new AbortController()

  /** `struck` is told of each strike-out a re-ask causes. */
  constructor (book: PeerBook, rule: Pick<StrikeRule, 'limit' | 'recheckMs' | 'maxRechecks'>, struck: (peer: P, reason: string, ms: number) => void) {
    this.book = book
    this.rule = rule
    this.struck = struck
  }

  private get enabled (): boolean {
    return this.rule.limit > 0 && this.rule.recheckMs > 0 && this.rule.maxRechecks > 0 && !this.controller.signal.aborted
  }

  /** Suspects not yet answered nor blocked. */
  get pending (): number {
    return this.suspects.size
  }

  /**
   * `peer` timed out on a stream it accepted for a request another peer then
   * answered; `reask` asks it that request again.
   */
  stalled (peer: P, reask: Reask): void {
    if (!this.enabled) { return }
    const id = peer.toString()
    const known = this.suspects.get(id)
    if (known !== undefined) {
      known.reask = reask
      return
    }
    if (this.suspects.size >= MAX_SUSPECTS || this.book.isBlocked(id)) { return }
    this.suspects.set(id, { peer, reask, next: this.book.now() + this.rule.recheckMs, busy: false, silent: 0 })
    this.schedule()
  }

  /** Cancel every re-ask and forget every suspect (the service stopped); none is taken until `start`. */
  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort()
    this.suspects.clear()
  }

  /** Take suspects again after `stop` (a new instance takes them from the start). */
  start (): void {
    if (this.controller.signal.aborted) { this.controller = new AbortController() }
  }

  /** One timer, for the earliest suspect due, while a re-ask slot is free. */
  private schedule (): void {
    if (this.timer !== undefined || this.inFlight >= this.rule.maxRechecks) { return }
    let next = Infinity
    for (const s of this.suspects.values()) {
      if (!s.busy && s.next < next) { next = s.next }
    }
    if (next === Infinity) { return }
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.run()
    }, Math.max(0, next - this.book.now()))
  }

  private run (): void {
    const now = this.book.now()
    for (const [id, s] of this.suspects) {
      if (this.inFlight >= this.rule.maxRechecks) { break }
      if (s.busy || s.next > now) { continue }
      if (this.book.isBlocked(id)) {
        this.suspects.delete(id)
        continue
      }
      void this.recheck(id, s, this.controller.signal)
    }
    this.schedule()
  }

  private async recheck (id: string, s: Suspect<P>, signal: AbortSignal): Promise<void> {
    s.busy = true
    this.inFlight++
    const at = this.book.now()
    let outcome: RecheckOutcome
    try {
      outcome = await s.reask(signal)
    } catch {
      outcome = 'other'
    } finally {
      this.inFlight--
      s.busy = false
    }
    // stopped meanwhile, or the suspect was dropped: nothing counts (suspects taken since may wait for this slot)
    if (signal.aborted || this.suspects.get(id) !== s) {
      this.schedule()
      return
    }
    s.next = this.book.now() + this.rule.recheckMs
    if (outcome === 'data' || outcome === 'no-data') {
      if (outcome === 'data') { this.book.answered(id) }
      this.suspects.delete(id)
    } else if (outcome === 'invalid') {
      this.suspects.delete(id)
    } else if (outcome === 'timeout') {
      s.silent = 0
      const ms = this.book.strike(id, 'timeout when asked again for an item another peer served', at)
      if (ms !== undefined) {
        this.suspects.delete(id)
        this.struck(s.peer, this.book.strikeReason(id) ?? 'timeout', ms)
      }
    } else if (++s.silent >= MAX_SILENT) {
      this.suspects.delete(id)
    } else {
      // unreachable for now (a partition, a restart): wait longer, up to 8 spacings
      s.next = this.book.now() + this.rule.recheckMs * 2 ** Math.min(s.silent, 3)
    }
    this.schedule()
  }
}
