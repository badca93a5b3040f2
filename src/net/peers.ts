/**
 * What a request/response client (resolvers, marshal) knows about the peers
 * it fetches from: a latency score per peer (moving average, lower is
 * better), the set of peers blocked for serving data that failed
 * verification or breaking the protocol, and the ordering used to pick a
 * peer for a request (commonware `resolver/src/p2p`).
 *
 * Invariants: a blocked peer stays blocked for the book's lifetime (the
 * reference's exclusion is permanent); fresh requests try peers best score
 * first, retries try them in random order with the peer that just failed last.
 */

import type { PeerId } from '@libp2p/interface'

function compareIds (a: string, b: string): number {
  if (a === b) { return 0 }
  return a < b ? -1 : 1
}

export interface PeerBookOptions {
  /** Latency (ms) assumed for a peer never measured. */
  initialLatency: number
}

export class PeerBook {
  private readonly scores = new Map<string, number>()
  private readonly blockedPeers = new Map<string, string>()
  private readonly initialLatency: number

  constructor (options: PeerBookOptions) {
    this.initialLatency = options.initialLatency
  }

  /** Current latency score of `peer` in ms. */
  score (peer: string): number {
    return this.scores.get(peer) ?? this.initialLatency
  }

  /** Fold one observation into the moving average: `(old + elapsed) / 2`. */
  record (peer: string, elapsedMs: number): void {
    if (this.scores.size > 8192 && !this.scores.has(peer)) { this.scores.clear() }
    this.scores.set(peer, (this.score(peer) + Math.max(0, elapsedMs)) / 2)
  }

  /** Block `peer` for good; returns false if it already was. */
  block (peer: string, reason: string): boolean {
    if (this.blockedPeers.has(peer)) { return false }
    this.blockedPeers.set(peer, reason)
    return true
  }

  isBlocked (peer: string): boolean {
    return this.blockedPeers.has(peer)
  }

  /** Blocked peers and why. */
  blocked (): Map<string, string> {
    return new Map(this.blockedPeers)
  }

  get blockedCount (): number {
    return this.blockedPeers.size
  }

  /**
   * The order to try `candidates` in: by score for a fresh request, shuffled
   * for a retry (with `last`, the peer that just failed, moved to the end).
   */
  order (candidates: PeerId[], fresh: boolean, last?: string, random: () => number = Math.random): PeerId[] {
    const list = candidates.filter(p => !this.blockedPeers.has(p.toString()))
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
