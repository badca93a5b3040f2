/**
 * Virtual time for the simulation: while installed, the global
 * `setTimeout`/`setInterval` (and their `clear*`) schedule callbacks on a
 * virtual timeline instead of the wall clock. `run` fires them in order of
 * (due time, creation order), letting every promise chain a callback starts
 * settle (one real `setImmediate` turn) before virtual time moves on, so a
 * consensus timeout of 400 ms costs no real time at all.
 *
 * Invariants: virtual time never goes backwards; two timers due at the same
 * virtual time fire in the order they were created; nothing here reads the
 * wall clock, so with in-memory storage and no real I/O a run is a pure
 * function of its inputs. Timers created before `install` (and real timers
 * inside Node, e.g. `AbortSignal.timeout`) stay on the wall clock.
 */

type Callback = (...args: unknown[]) => void

/** What the patched `setTimeout` returns (enough of Node's `Timeout` for callers that ref/unref it). */
export class VirtualTimer {
  readonly id: number
  at: number
  readonly interval: number | undefined
  readonly fn: Callback
  readonly args: unknown[]
  cancelled = false

  constructor (id: number, at: number, interval: number | undefined, fn: Callback, args: unknown[]) {
    this.id = id
    this.at = at
    this.interval = interval
    this.fn = fn
    this.args = args
  }

  ref (): this { return this }
  unref (): this { return this }
  hasRef (): boolean { return true }
  refresh (): this { return this }
  [Symbol.toPrimitive] (): number { return this.id }
}

interface Originals {
  setTimeout: typeof globalThis.setTimeout
  clearTimeout: typeof globalThis.clearTimeout
  setInterval: typeof globalThis.setInterval
  clearInterval: typeof globalThis.clearInterval
  setImmediate: typeof globalThis.setImmediate
}

export class VirtualClock {
  /** Virtual milliseconds since the clock was created. */
  now = 0
  /** Timer callbacks fired so far. */
  fired = 0
  /** Exceptions thrown by timer callbacks. */
  readonly uncaught: unknown[] = []
  private nextId = 1
  /** pending timers, sorted by (at, id) */
  private queue: VirtualTimer[] = []
  private originals: Originals | undefined

  /** Replace the global timer functions (at most one clock installed at a time). */
  install (): void {
    if (this.originals !== undefined) { return }
    const g = globalThis as unknown as Record<string, unknown>
    if (g.__qmdbSimClock !== undefined) { throw new Error('a virtual clock is already installed') }
    const originals: Originals = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      setInterval: globalThis.setInterval,
      clearInterval: globalThis.clearInterval,
      setImmediate: globalThis.setImmediate
    }
    this.originals = originals
    const clear = (t: unknown): void => {
      if (t instanceof VirtualTimer) { this.cancel(t) } else { originals.clearTimeout(t as Parameters<typeof clearTimeout>[0]) }
    }
    g.setTimeout = (fn: Callback, ms?: number, ...args: unknown[]) => this.schedule(fn, ms, undefined, args)
    g.setInterval = (fn: Callback, ms?: number, ...args: unknown[]) => this.schedule(fn, ms, Math.max(1, ms ?? 1), args)
    g.clearTimeout = clear
    g.clearInterval = clear
    g.__qmdbSimClock = this
  }

  uninstall (): void {
    const o = this.originals
    if (o === undefined) { return }
    const g = globalThis as unknown as Record<string, unknown>
    g.setTimeout = o.setTimeout
    g.clearTimeout = o.clearTimeout
    g.setInterval = o.setInterval
    g.clearInterval = o.clearInterval
    delete g.__qmdbSimClock
    this.originals = undefined
    // pending timers are dropped, not moved to the wall clock: they belong to
    // the stopped simulation, and firing them later (in another test) could
    // only produce stray work; their promises stay pending and are collected
    this.queue = []
  }

  /** A virtual timer (also what the patched globals call). */
  schedule (fn: Callback, ms: number | undefined, interval: number | undefined, args: unknown[] = []): VirtualTimer {
    const delay = Number.isFinite(ms) && (ms as number) > 0 ? Math.floor(ms as number) : 0
    const t = new VirtualTimer(this.nextId++, this.now + delay, interval, fn, args)
    this.insert(t)
    return t
  }

  cancel (t: VirtualTimer): void {
    t.cancelled = true
    const i = this.queue.indexOf(t)
    if (i >= 0) { this.queue.splice(i, 1) }
  }

  /** Timers waiting to fire. */
  get pending (): number {
    return this.queue.length
  }

  private insert (t: VirtualTimer): void {
    // binary search for the first timer due strictly later (ties keep creation order)
    let lo = 0
    let hi = this.queue.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.queue[mid].at <= t.at) { lo = mid + 1 } else { hi = mid }
    }
    this.queue.splice(lo, 0, t)
  }

  /** One real event-loop turn: every promise chain that can settle without a timer settles. */
  async settle (): Promise<void> {
    const immediate = this.originals?.setImmediate ?? globalThis.setImmediate
    await new Promise<void>(resolve => { immediate(resolve) })
  }

  /**
   * Fire timers in order until `done()` holds (checked after every settled
   * step) or virtual time would pass `deadline`. Resolves `true` iff `done()`
   * held.
   */
  async run (done: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      await this.settle()
      if (done()) { return true }
      const t = this.queue[0]
      if (t === undefined || t.at > deadline) {
        // nothing left before the deadline: time passes to it
        this.now = Math.max(this.now, deadline)
        return done()
      }
      this.queue.shift()
      this.now = Math.max(this.now, t.at)
      this.fired++
      if (t.interval !== undefined) {
        t.at = this.now + t.interval
        this.insert(t)
      }
      try {
        t.fn(...t.args)
      } catch (err) {
        // in a real process this would be an uncaught exception
        this.uncaught.push(err)
      }
    }
  }

  /** Let `ms` of virtual time pass (firing what falls due). */
  async advance (ms: number): Promise<void> {
    await this.run(() => false, this.now + ms)
  }
}
