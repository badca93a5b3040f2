/**
 * Harness for the stateful tests: a scripted consensus driver (propose and
 * verify calls with their own abort controllers), gates that hold the test
 * application inside a call until the test releases it, liveness helpers
 * (no timing assertions: `eventually` only bounds how long a test may hang),
 * and a ready-made manager on real QMDB databases with a scripted marshal.
 */

import { Registry } from 'prom-client'
import { Stateful } from '../../src/stateful/index.ts'
import { ChainBuilder, TestApp, contextFor, openMemoryDbs } from './stateful-app.ts'
import { MockMarshal } from './stateful-marshal.ts'
import type { TestBlock, TestDbs } from './stateful-app.ts'
import type { DatabaseSet } from '../../src/qmdb/index.ts'
import type { PruneConfig, StatefulFatalError, StatefulInit } from '../../src/stateful/index.ts'

/** Holds callers inside `pass()` until released; honours abort signals. */
export class Gate {
  entered = 0
  private opened = false
  private readonly waiting: Array<{ resolve(): void }> = []
  private readonly enterWaiters: Array<() => void> = []

  async pass (signal?: AbortSignal): Promise<void> {
    this.entered++
    for (const w of this.enterWaiters.splice(0)) { w() }
    if (this.opened) { return }
    await new Promise<void>((resolve, reject) => {
      const entry = { resolve }
      this.waiting.push(entry)
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(entry)
        if (i >= 0) { this.waiting.splice(i, 1) }
        reject(signal.reason)
      }, { once: true })
    })
  }

  /** Resolves once `n` callers entered in total. */
  async waitEntered (n = 1): Promise<void> {
    while (this.entered < n) {
      await new Promise<void>(resolve => { this.enterWaiters.push(resolve) })
    }
  }

  get holding (): number {
    return this.waiting.length
  }

  /** Release the callers waiting now. */
  release (): void {
    for (const w of this.waiting.splice(0)) { w.resolve() }
  }

  /** Release everyone, now and later. */
  open (): void {
    this.opened = true
    this.release()
  }
}

/** Wait (bounded, for liveness only) until `cond` holds. */
export async function eventually (cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > limitMs) { throw new Error(`gave up waiting: ${what}`) }
    await new Promise(resolve => setTimeout(resolve, 1))
  }
}

/** Whether `p` is still unsettled after letting pending work run for a while. */
export async function stillPending (p: Promise<unknown>, turns = 50): Promise<boolean> {
  const state = { settled: false }
  p.then(() => { state.settled = true }, () => { state.settled = true })
  for (let i = 0; i < turns && !state.settled; i++) {
    await new Promise(resolve => setImmediate(resolve))
  }
  return !state.settled
}

/** A verification call the test can cancel. */
export interface Call<T> {
  promise: Promise<T>
  abort(): void
}

export function verifyCall (stateful: Stateful<TestBlock, TestDbs>, block: TestBlock): Call<boolean> {
  const controller = new AbortController()
  const promise = stateful.verify(block.context, block.digest, { signal: controller.signal })
  promise.catch(() => {})
  return { promise, abort: () => { controller.abort() } }
}

export function proposeCall (stateful: Stateful<TestBlock, TestDbs>, parent: TestBlock, view: number): Call<Uint8Array | undefined> {
  const controller = new AbortController()
  const promise = stateful.propose(contextFor(parent, view), { signal: controller.signal })
  promise.catch(() => {})
  return { promise, abort: () => { controller.abort() } }
}

export interface HarnessOptions {
  maxPendingAcks?: number
  prune?: PruneConfig
  set?: DatabaseSet<TestDbs>
  builder?: ChainBuilder
  marshal?: MockMarshal<TestBlock>
  app?: TestApp
  registry?: Registry
  /** Do not call `start()` (nor attach the marshal). */
  noStart?: boolean
  init?: Partial<StatefulInit<TestBlock, TestDbs>>
}

export interface Harness {
  builder: ChainBuilder
  app: TestApp
  marshal: MockMarshal<TestBlock>
  set: DatabaseSet<TestDbs>
  stateful: Stateful<TestBlock, TestDbs>
  registry: Registry
  fatal: StatefulFatalError[]
  genesis: TestBlock
  stop(): Promise<void>
}

export async function harness (opts: HarnessOptions = {}): Promise<Harness> {
  const builder = opts.builder ?? await ChainBuilder.create()
  const app = opts.app ?? new TestApp(builder.genesis)
  const marshal = opts.marshal ?? new MockMarshal<TestBlock>({ genesis: builder.genesis, maxPendingAcks: opts.maxPendingAcks })
  const set = opts.set ?? await openMemoryDbs()
  const registry = opts.registry ?? new Registry()
  const fatal: StatefulFatalError[] = []
  const stateful = new Stateful<TestBlock, TestDbs>({
    application: app,
    databases: set,
    marshal,
    prune: opts.prune,
    registry,
    onFatal: err => { fatal.push(err) },
    ...opts.init
  })
  if (opts.noStart !== true) {
    await stateful.start()
    marshal.attach(stateful)
  }
  return {
    builder,
    app,
    marshal,
    set,
    stateful,
    registry,
    fatal,
    genesis: builder.genesis,
    stop: async () => {
      await stateful.stop()
      await stateful.whenStopped().catch(() => {})
    }
  }
}

/** Value of a single-series metric in `registry`. */
export async function metricValue (registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name)
  if (m === undefined) { throw new Error(`no metric ${name}`) }
  const v = await m.get()
  return v.values[0]?.value ?? 0
}
