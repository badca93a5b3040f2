/**
 * Admission control: per peer, a token bucket for rate and a counter for
 * concurrency, keyed by peer id string; optionally a cap on the slots held
 * by all peers together. Used inbound (a server sheds a peer's excess
 * streams, and everyone's beyond the total, so many peer ids cannot hold an
 * unbounded number of idle streams between them) and outbound (a client
 * never asks one peer more than it is willing to serve).
 *
 * Invariants: tokens never exceed `burst`; a slot is held from a successful
 * `tryAcquire` until its `release`; the slots held never exceed
 * `maxConcurrent` per peer nor `maxTotal` overall; idle state (full bucket,
 * no slot held) is forgotten so the maps stay bounded by the number of
 * active peers.
 */

export interface RateLimit {
  /** Sustained requests per second (tokens refilled per second). */
  perSecond: number
  /** Largest burst (bucket capacity). */
  burst: number
}

export class TokenBucket {
  private tokens: number
  private last: number
  readonly limit: RateLimit

  constructor (limit: RateLimit, now = Date.now()) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) { throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1') }
    this.limit = limit
    this.tokens = limit.burst
    this.last = now
  }

  private refill (now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.limit.burst, this.tokens + (now - this.last) * this.limit.perSecond / 1000)
      this.last = now
    }
  }

  /** Take one token if there is one. */
  tryTake (now = Date.now()): boolean {
    this.refill(now)
    if (this.tokens >= 1) {
      this.tokens -= 1
      return true
    }
    return false
  }

  /** Milliseconds until a token is available (0 if one is). */
  msUntilToken (now = Date.now()): number {
    this.refill(now)
    if (this.tokens >= 1) { return 0 }
    return Math.ceil((1 - this.tokens) * 1000 / this.limit.perSecond)
  }

  /** True when the bucket is full (nothing to remember). */
  isFull (now = Date.now()): boolean {
    this.refill(now)
    return this.tokens >= this.limit.burst
  }
}

export type AdmitResult =
  | { ok: true }
  | { ok: false, reason: 'concurrency' | 'total' | 'rate', retryInMs: number }

/** Rate and concurrency limits for many peers. */
export class PeerLimiter {
  private readonly buckets = new Map<string, TokenBucket>()
  private readonly active = new Map<string, number>()
  private held = 0
  readonly rate: RateLimit
  readonly maxConcurrent: number
  readonly maxTotal: number

  constructor (rate: RateLimit, maxConcurrent: number, maxTotal = Infinity) {
    if (!(maxConcurrent >= 1)) { throw new RangeError('maxConcurrent must be >= 1') }
    if (!(maxTotal >= 1)) { throw new RangeError('maxTotal must be >= 1') }
    this.rate = rate
    this.maxConcurrent = maxConcurrent
    this.maxTotal = maxTotal
  }

  /** Slots held by all peers together. */
  get total (): number {
    return this.held
  }

  /** Number of slots `peer` holds. */
  inFlight (peer: string): number {
    return this.active.get(peer) ?? 0
  }

  /** Take a slot and a token for `peer`, or say why not and when to try again. */
  tryAcquire (peer: string, now = Date.now()): AdmitResult {
    const held = this.active.get(peer) ?? 0
    if (held >= this.maxConcurrent) { return { ok: false, reason: 'concurrency', retryInMs: 0 } }
    if (this.held >= this.maxTotal) { return { ok: false, reason: 'total', retryInMs: 0 } }
    let bucket = this.buckets.get(peer)
    if (bucket === undefined) {
      this.prune(now)
      bucket = new TokenBucket(this.rate, now)
      this.buckets.set(peer, bucket)
    }
    if (!bucket.tryTake(now)) { return { ok: false, reason: 'rate', retryInMs: bucket.msUntilToken(now) } }
    this.active.set(peer, held + 1)
    this.held++
    return { ok: true }
  }

  /** Give back a slot taken by `tryAcquire`. */
  release (peer: string): void {
    const held = this.active.get(peer) ?? 0
    if (held === 0) { return }
    this.held--
    if (held <= 1) {
      this.active.delete(peer)
    } else {
      this.active.set(peer, held - 1)
    }
  }

  /** Drop full buckets of idle peers once the map grows. */
  private prune (now: number): void {
    if (this.buckets.size < 1024) { return }
    for (const [peer, bucket] of this.buckets) {
      if (!this.active.has(peer) && bucket.isFull(now)) { this.buckets.delete(peer) }
    }
  }
}
