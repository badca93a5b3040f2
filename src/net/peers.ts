/**
 * What a request/response client (resolvers, marshal) knows about the peers
 * it fetches from: a latency score per peer (moving average, lower is
 * better), the peers blocked for serving data that failed verification or
 * breaking the protocol, the peers blocked for a while by the strike rule,
 * and the ordering used to pick a peer for a request (commonware
 * `resolver/src/p2p`).
 *
 * The strike rule (docs/PROTOCOLS.md, resolvers' "Client behaviour"): a
 * peer earns a strike when it timed out (or, unless `noData` is off,
 * answered no-data) on a request that another peer then answered with data; `limit` strikes in a row block it for `blockMs`, and
 * each further strike-out doubles that (up to `maxBlockMs`). A data answer
 * clears its strikes and its back-off. The block is bounded because an honest
 * peer looks the same for a while when it is behind, pruned past the range,
 * or on a broken connection, and must get back in once it recovers — the
 * role graylisting with a decaying score plays in gossipsub. Misses seen
 * before a peer's last strike counted (requests it was asked at the same
 * time) add no strike: one occasion is one strike. commonware's
 * resolver only ever blocks peers whose data failed verification and merely
 * deprioritises the slow ones, which leaves a staller asked again forever.
 *
 * Invariants: a peer blocked with `block` stays blocked for the book's
 * lifetime (the reference's exclusion is permanent); a struck-out peer is
 * blocked until its deadline on the book's clock, then on probation (its
 * next strike blocks it again); fresh requests try peers best score first,
 * retries try them in random order with the peer that just failed last.
 */

import type { PeerId } from '@libp2p/interface'

function compareIds (a: string, b: string): number {
  if (a === b) { return 0 }
  return a < b ? -1 : 1
}

/** The strike rule's parameters (see the module comment). */
export interface StrikeRule {
  /** Strikes in a row that block a peer; 0 turns the rule off. */
  limit: number
  /** First block of a struck-out peer (ms); doubled per strike-out since its last data answer. */
  blockMs: number
  /** Longest such block (ms). */
  maxBlockMs: number
  /**
   * Whether a no-data answer is a strike (else only timeouts are). Off for
   * marshal, whose honest peers lack recent blocks while they are behind.
   */
  noData: boolean
  /**
   * Least time (ms) between two re-asks of one peer that timed out on a
   * stream it accepted (`src/net/recheck.ts`); 0 turns re-asking off.
   */
  recheckMs: number
  /** Re-asks in flight at once, for the whole book. */
  maxRechecks: number
}

/**
 * The services' strike rule: 3 strikes block for 30 s, then 1, 2, 4 … up to
 * 10 minutes; a staller is asked again at most every 10 s, 2 at a time.
 */
export const DEFAULT_STRIKES: StrikeRule = { limit: 3, blockMs: 30_000, maxBlockMs: 600_000, noData: true, recheckMs: 10_000, maxRechecks: 2 }

export interface PeerBookOptions {
  /** Latency (ms) assumed for a peer never measured. */
  initialLatency: number
  /** The strike rule (default `DEFAULT_STRIKES`). */
  strikes?: StrikeRule
  /** The clock struck-out blocks run on, in ms (default `performance.now`). */
  now?(): number
}

interface Strikes {
  /** Strikes since the last data answer or strike-out. */
  count: number
  /** Strike-outs since the last data answer. */
  outs: number
  /** Blocked until this time on the book's clock (0: not blocked). */
  until: number
  /** When the last strike counted: a miss seen before it is the same occasion (concurrent requests) and does not count again. */
  lastAt: number
  reason: string
}

/** Most peers tracked for scores or strikes before the table starts over (a bound on memory, not a rule). */
const MAX_TRACKED = 8192

export class PeerBook {
  private readonly scores = new Map<string, number>()
  private readonly blockedPeers = new Map<string, string>()
  private readonly strikes = new Map<string, Strikes>()
  private readonly initialLatency: number
  private readonly rule: StrikeRule
  private readonly clock: () => number

  constructor (options: PeerBookOptions) {
    this.initialLatency = options.initialLatency
    this.rule = options.strikes ?? DEFAULT_STRIKES
    this.clock = options.now ?? (() => performance.now())
  }

  /** The book's clock (ms). */
  now (): number {
    return this.clock()
  }

  /** Current latency score of `peer` in ms. */
  score (peer: string): number {
    return this.scores.get(peer) ?? this.initialLatency
  }

  /** Fold one observation into the moving average: `(old + elapsed) / 2`. */
  record (peer: string, elapsedMs: number): void {
    if (this.scores.size > MAX_TRACKED && !this.scores.has(peer)) { this.scores.clear() }
    this.scores.set(peer, (this.score(peer) + Math.max(0, elapsedMs)) / 2)
  }

  /** Block `peer` for good; returns false if it already was. */
  block (peer: string, reason: string): boolean {
    if (this.blockedPeers.has(peer)) { return false }
    this.blockedPeers.set(peer, reason)
    return true
  }

  /** Whether a no-data answer is a strike here. */
  get strikesNoData (): boolean {
    return this.rule.noData
  }

  /**
   * One strike against `peer` (it timed out or had no data on a request
   * another peer answered), for a miss seen at `missedAt` (default now): a
   * miss seen before its last strike counted is part of that occasion — a
   * peer asked several requests at once that were all missing answers them
   * all alike — and is ignored. Returns how long it is now blocked for (ms)
   * if this strike blocked it, else undefined.
   */
  strike (peer: string, reason: string, missedAt?: number): number | undefined {
    const { limit, blockMs, maxBlockMs } = this.rule
    if (limit <= 0 || this.blockedPeers.has(peer)) { return undefined }
    let s = this.strikes.get(peer)
    if (s === undefined) {
      if (this.strikes.size > MAX_TRACKED) { this.forgetUnblocked() }
      s = { count: 0, outs: 0, until: 0, lastAt: -Infinity, reason }
      this.strikes.set(peer, s)
    }
    const now = this.now()
    if (s.until > now || (missedAt ?? now) < s.lastAt) { return undefined }
    s.lastAt = now
    // on probation after a strike-out: one strike is enough again
    s.count = s.outs > 0 ? limit : s.count + 1
    if (s.count < limit) { return undefined }
    const ms = Math.min(maxBlockMs, blockMs * 2 ** Math.min(s.outs, 30))
    s.count = 0
    s.outs++
    s.until = now + ms
    s.reason = `${reason} (${s.outs > 1 ? 'again, ' : ''}${limit} requests in a row that other peers answered)`
    return ms
  }

  /** `peer` answered with data: its strikes and back-off are cleared (a struck-out block runs its course). */
  answered (peer: string): void {
    const s = this.strikes.get(peer)
    if (s === undefined) { return }
    if (s.until > this.now()) {
      s.count = 0
      s.outs = 0
    } else {
      this.strikes.delete(peer)
    }
  }

  /** Why `peer` was last struck out (undefined if it never was since its last data answer). */
  strikeReason (peer: string): string | undefined {
    const s = this.strikes.get(peer)
    return s !== undefined && s.outs > 0 ? s.reason : undefined
  }

  /** Strike-outs of `peer` since its last data answer. */
  strikeOuts (peer: string): number {
    return this.strikes.get(peer)?.outs ?? 0
  }

  private forgetUnblocked (): void {
    const now = this.now()
    for (const [peer, s] of this.strikes) {
      if (s.until <= now && s.outs === 0) { this.strikes.delete(peer) }
    }
    if (this.strikes.size > MAX_TRACKED) { this.strikes.clear() }
  }

  /** Blocked for good, or struck out and its block not yet over. */
  isBlocked (peer: string): boolean {
    if (this.blockedPeers.has(peer)) { return true }
    const s = this.strikes.get(peer)
    return s !== undefined && s.until > this.now()
  }

  /** Blocked peers (for good, or struck out and not yet back) and why. */
  blocked (): Map<string, string> {
    const out = new Map(this.blockedPeers)
    const now = this.now()
    for (const [peer, s] of this.strikes) {
      if (s.until > now && !out.has(peer)) { out.set(peer, s.reason) }
    }
    return out
  }

  get blockedCount (): number {
    let n = this.blockedPeers.size
    const now = this.now()
    for (const [peer, s] of this.strikes) {
      if (s.until > now && !this.blockedPeers.has(peer)) { n++ }
    }
    return n
  }

  /**
   * The order to try `candidates` in: by score for a fresh request, shuffled
   * for a retry (with `last`, the peer that just failed, moved to the end).
   */
  order (candidates: PeerId[], fresh: boolean, last?: string, random: () => number = Math.random): PeerId[] {
    const list = candidates.filter(p => !this.isBlocked(p.toString()))
    if (fresh) {
      const keyed = list.map(p => ({ p, id: p.toString() }))
      keyed.sort((a, b) => (this.score(a.id) - this.score(b.id)) || compareIds(a.id, b.id))
      return keyed.map(k => k.p)
    }
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const t = list[i]
      list[i] = list[j]
      list[j] = t
    }
    if (last !== undefined) {
      const at = list.findIndex(p => p.toString() === last)
      if (at >= 0 && list.length > 1) { list.push(list.splice(at, 1)[0]) }
    }
    return list
  }
}

/**
 * One request's part in the strike rule: the peers that were reached and had
 * nothing for it (timed out on an open stream, or no data). When a peer
 * answers it with data, that peer is cleared and each of the others earns a
 * strike; a request nobody answers strikes no one. `P` is whatever names a
 * peer to the caller (a `PeerId`, or a plain id string); the book keys it by
 * its string form.
 */
export class StrikeTally<P extends { toString(): string } = string> {
  private readonly book: PeerBook
  private readonly key: string
  private readonly missed = new Map<string, { peer: P, what: string, at: number }>()

  constructor (book: PeerBook, key: string) {
    this.book = book
    this.key = key
  }

  /** `peer` was reached and had nothing: it timed out on an open stream, or answered no-data. */
  miss (peer: P, what: 'timeout' | 'no-data'): void {
    if (what === 'no-data' && !this.book.strikesNoData) { return }
    this.missed.set(peer.toString(), { peer, what, at: this.book.now() })
  }

  /**
   * `peer` answered with data; returns the peers this struck out, how long
   * (ms) and why. `stalled` is told each other peer that timed out on it
   * (the suspects `src/net/recheck.ts` asks again).
   */
  answered (peer: P, stalled?: (peer: P) => void): Array<{ peer: P, ms: number, reason: string }> {
    const id = peer.toString()
    this.book.answered(id)
    const out: Array<{ peer: P, ms: number, reason: string }> = []
    for (const [other, miss] of this.missed) {
      if (other === id) { continue }
      if (miss.what === 'timeout') { stalled?.(miss.peer) }
      const ms = this.book.strike(other, `${miss.what} for ${this.key}`, miss.at)
      if (ms !== undefined) { out.push({ peer: miss.peer, ms, reason: this.book.strikeReason(other) ?? miss.what }) }
    }
    this.missed.clear()
    return out
  }
}

/** Wakes everyone waiting for "something changed" (a peer appeared, a slot freed). */
export class Notifier {
  private waiters = new Set<() => void>()

  notify (): void {
    const waiters = this.waiters
    this.waiters = new Set()
    for (const w of waiters) { w() }
  }

  /** Resolve on the next `notify`, after `ms`, or when `signal` aborts (never rejects). */
  async wait (ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) { return }
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}
