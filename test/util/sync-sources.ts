/**
 * Test `Source`s for the sync engine: one that counts what it serves, one
 * that always fails, one that holds every request until the test releases
 * it (to interleave responses with target updates), and a lying source that
 * tampers the responses of an honest one and records the engine's verdicts.
 */
import { ServeError, requestKey } from '../../src/sync/index.ts'
import type { Request, Response, Served, ServeOptions, Source } from '../../src/sync/index.ts'

export function opsOf (r: Response): number {
  return r.type === 'operations' ? r.ops.length : 1
}

/** Records every request and counts what it serves: operations, calls per request key, calls in total. */
export class CountingSource implements Source {
  readonly inner: Source
  readonly requests: Request[] = []
  readonly calls = new Map<string, number>()
  total = 0
  opsServed = 0

  constructor (inner: Source) {
    this.inner = inner
  }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    this.requests.push(request)
    this.total++
    const k = requestKey(request)
    this.calls.set(k, (this.calls.get(k) ?? 0) + 1)
    const served = await this.inner.serve(request, options)
    this.opsServed += opsOf(served.response)
    return served
  }
}

/** Always fails (the reference's `FailSource`). */
export class FailSource implements Source {
  calls = 0

  async serve (): Promise<Served> {
    this.calls++
    throw new ServeError('Unavailable', 'this source always fails')
  }
}

export interface Held {
  request: Request
  signal?: AbortSignal
  release(): void
}

/**
 * Holds every request until released; the inner source is asked only on
 * release (so it serves its state at that moment).
 */
export class HeldSource implements Source {
  readonly inner: Source
  readonly held: Held[] = []
  readonly requests: Request[] = []
  /** When set, requests go straight to the inner source. */
  passThrough = false
  private readonly waiters: Array<() => void> = []

  constructor (inner: Source) {
    this.inner = inner
  }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    this.requests.push(request)
    if (!this.passThrough) {
      await new Promise<void>(resolve => {
        this.held.push({ request, signal: options.signal, release: resolve })
        for (const w of this.waiters.splice(0)) { w() }
      })
    }
    return this.inner.serve(request, {})
  }

  /** Requests held and not aborted by the engine. */
  get live (): Held[] {
    return this.held.filter(h => h.signal?.aborted !== true)
  }

  async waitHeld (n: number): Promise<void> {
    while (this.live.length < n) {
      await new Promise<void>(resolve => { this.waiters.push(resolve) })
    }
  }

  /** Release the held requests matching `pred` (all by default); returns them. */
  release (pred: (h: Held) => boolean = () => true): Held[] {
    const out = this.held.filter(pred)
    for (const h of out) {
      this.held.splice(this.held.indexOf(h), 1)
      h.release()
    }
    return out
  }

  /** Release everything and stop holding. */
  open (): void {
    this.passThrough = true
    this.release()
  }
}

export type Tamper = (request: Request, honest: Response, served: number) => Response | undefined | Promise<Response | undefined>

export interface Verdict {
  request: Request
  lie: boolean
  /** every value the engine passed to `feedback` */
  calls: boolean[]
}

export interface LyingSourceOptions {
  /** Offer feedback (default true). */
  feedback?: boolean
  /** Which responses to tamper (by serve index), default every other one. */
  lieOn?(index: number, request: Request): boolean
}

/**
 * Serves the honest source's response, replaced by `tamper(...)` on the
 * chosen requests (a tamper returning undefined means "cannot lie here":
 * the honest answer goes out). Every verdict is recorded.
 */
export class LyingSource implements Source {
  readonly inner: Source
  readonly tamper: Tamper
  readonly verdicts: Verdict[] = []
  private readonly feedback: boolean
  private readonly lieOn: (index: number, request: Request) => boolean
  private served = 0

  constructor (inner: Source, tamper: Tamper, options: LyingSourceOptions = {}) {
    this.inner = inner
    this.tamper = tamper
    this.feedback = options.feedback ?? true
    this.lieOn = options.lieOn ?? (i => i % 2 === 0)
  }

  get lies (): Verdict[] { return this.verdicts.filter(v => v.lie) }
  get truths (): Verdict[] { return this.verdicts.filter(v => !v.lie) }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    const index = this.served++
    const honest = (await this.inner.serve(request, options)).response
    const lie = this.lieOn(index, request) ? await this.tamper(request, honest, index) : undefined
    const verdict: Verdict = { request, lie: lie !== undefined, calls: [] }
    this.verdicts.push(verdict)
    const response = lie ?? honest
    if (!this.feedback) { return { response } }
    return { response, feedback: (valid: boolean) => { verdict.calls.push(valid) } }
  }
}

/**
 * Forwards each request to one of `sources`, chosen by `pick(index)` (default
 * round-robin): a peer set with liars and honest peers behind one source.
 */
export class MixedSource implements Source {
  readonly sources: Source[]
  readonly pick: (index: number) => number
  private served = 0

  constructor (sources: Source[], pick?: (index: number) => number) {
    this.sources = sources
    this.pick = pick ?? (i => i % sources.length)
  }

  async serve (request: Request, options: ServeOptions): Promise<Served> {
    return this.sources[this.pick(this.served++)].serve(request, options)
  }
}
