/**
 * The multi-database sync coordinator (commonware `glue/src/stateful/db/mod.rs`): every database
 * of a set syncs in parallel toward the targets of a finalized block (an
 * anchor*), the coordinator follows newer finalized tips, and the set
 * completes only when every database has reached the targets of one and the
 * same anchor.
 *
 * Generations: each dispatched anchor is a generation. A database that has
 * reached its target is frozen (receives no newer target) until every
 * database has reached something; then, if the databases finished on
 * different generations, the laggards are regrouped onto the newest one; if
 * they all agree and no newer tip is pending, they have converged. A
 * database whose target did not change rides along without an update.
 *
 * Invariants: targets sent to a database never move backwards; a database
 * already at its target gets no update; the converged anchor is the
 * generation every database finished on; the first database failure is the
 * error reported (named), and the others are aborted.
 */

import { Channel } from './channel.ts'
import { syncDatabase } from './engine.ts'
import { SyncError } from './errors.ts'
import type { SyncProgress } from './engine.ts'
import type { SyncKind } from './kinds.ts'
import type { Source } from './source.ts'
import type { Target } from '../qmdb/target.ts'

/**
 * The finalized block a set of targets comes from. The coordinator only
 * orders anchors by height; callers pass their own anchor type.
 */
export interface AnchorLike {
  height: number
}

/** How one member of the set syncs: its kind, source and target conversion. */
export interface MemberSync<DB, T> {
  kind: SyncKind<DB>
  source: Source
  /** The standard target a member target stands for (identity, or `compactToTarget`). */
  toTarget(t: T): Target
  equal(a: T, b: T): boolean
}

export type MemberRecord = Record<string, MemberSync<any, any>>
export type MemberDbs<M extends MemberRecord> = { [K in keyof M]: M[K] extends MemberSync<infer DB, any> ? DB : never }
export type MemberTargets<M extends MemberRecord> = { [K in keyof M]: M[K] extends MemberSync<any, infer T> ? T : never }

/** A newer finalized tip: its anchor and the targets of its block. `observed` fires once it is recorded. */
export interface TipUpdate<Targets, A extends AnchorLike = AnchorLike> {
  anchor: A
  targets: Targets
  observed?(): void
}

export interface CoordinatorOptions<M extends MemberRecord, A extends AnchorLike = AnchorLike> {
  members: M
  anchor: A
  targets: MemberTargets<M>
  /** Newer tips (a ring channel: the newest updates win). */
  tips?: Channel<TipUpdate<MemberTargets<M>, A>>
  maxOutstandingRequests?: number
  fetchBatchSize?: number
  applyBatchSize?: number
  maxRetainedRoots?: number
  onProgress?(p: SyncProgress): void
  /** Called whenever a new generation (anchor) is dispatched. */
  onAnchor?(anchor: A): void
  signal?: AbortSignal
}

export interface CoordinatorResult<M extends MemberRecord, A extends AnchorLike = AnchorLike> {
  dbs: MemberDbs<M>
  anchor: A
  targets: MemberTargets<M>
}

interface MemberState {
  name: string
  gen: number
  reached: boolean
  /** target last dispatched (in member form) */
  target: unknown
  updates: Channel<Target>
  finish: Channel<void>
  reachedCh: Channel<Target>
}

type Event = { kind: 'reached', name: string, target: Target } | { kind: 'done', name: string } | { kind: 'failed', name: string, error: unknown }

/**
 * Sync every member to the targets of one anchor at or after `anchor`.
 * Resolves with the durable databases and the anchor they converged on.
 */
export async function syncDatabaseSet<M extends MemberRecord, A extends AnchorLike = AnchorLike> (options: CoordinatorOptions<M, A>): Promise<CoordinatorResult<M, A>> {
  return new Coordinator<M, A>(options).run()
}

type Generation<M extends MemberRecord, A> = { anchor: A, targets: MemberTargets<M> }

class Coordinator<M extends MemberRecord, A extends AnchorLike> {
  private readonly options: CoordinatorOptions<M, A>
  private readonly events = new Channel<Event>()
  private readonly abort = new AbortController()
  private readonly generations = new Map<number, Generation<M, A>>()
  private readonly states = new Map<string, MemberState>()
  private readonly results = new Map<string, Promise<unknown>>()
  private currentGen = 0
  private latestTip: TipUpdate<MemberTargets<M>, A> | undefined
  private lastAnchor: A
  private readonly aborted: Promise<unknown> | undefined

  constructor (options: CoordinatorOptions<M, A>) {
    this.options = options
    const signal = options.signal
    this.aborted = signal === undefined ? undefined : new Promise(resolve => { signal.addEventListener('abort', resolve, { once: true }) })
    this.lastAnchor = options.anchor
    this.generations.set(0, { anchor: options.anchor, targets: options.targets })
  }

  async run (): Promise<CoordinatorResult<M, A>> {
    const signal = this.options.signal !== undefined ? AbortSignal.any([this.abort.signal, this.options.signal]) : this.abort.signal
    for (const name of Object.keys(this.options.members)) { this.start(name, signal) }
    try {
      for (;;) {
        await this.nextEvent()
        const done = await this.decide()
        if (done !== undefined) { return done }
      }
    } catch (err) {
      this.abort.abort(err)
      for (const st of this.states.values()) { st.finish.close() }
      await Promise.allSettled([...this.results.values()])
      throw err
    } finally {
      this.events.close()
      for (const st of this.states.values()) {
        st.updates.close()
        st.reachedCh.close()
      }
    }
  }

  private start (name: string, signal: AbortSignal): void {
    const member = this.options.members[name]
    const st: MemberState = {
      name,
      gen: 0,
      reached: false,
      target: this.options.targets[name],
      updates: new Channel<Target>(),
      finish: new Channel<void>({ capacity: 1 }),
      reachedCh: new Channel<Target>()
    }
    this.states.set(name, st)
    const run = syncDatabase({
      kind: member.kind,
      name,
      target: member.toTarget(this.options.targets[name]),
      source: member.source,
      updates: st.updates,
      finish: st.finish,
      reached: st.reachedCh,
      maxOutstandingRequests: this.options.maxOutstandingRequests,
      fetchBatchSize: this.options.fetchBatchSize,
      applyBatchSize: this.options.applyBatchSize,
      maxRetainedRoots: this.options.maxRetainedRoots,
      onProgress: this.options.onProgress,
      signal
    })
    this.results.set(name, run)
    run.then(() => { this.events.trySend({ kind: 'done', name }) }, error => { this.events.trySend({ kind: 'failed', name, error }) })
    void (async () => {
      for (;;) {
        const t = await st.reachedCh.recv()
        if (t === undefined) { return }
        this.events.trySend({ kind: 'reached', name, target: t })
      }
    })()
  }

  /** Wait for a member event or a tip, then record everything queued. */
  private async nextEvent (): Promise<void> {
    const tips = this.options.tips
    const waits: Array<Promise<unknown>> = [this.events.ready()]
    if (tips !== undefined && !tips.closed) { waits.push(tips.ready()) }
    if (this.aborted !== undefined) { waits.push(this.aborted) }
    await Promise.race(waits)
    this.options.signal?.throwIfAborted()
    for (;;) {
      const r = this.events.tryRecv()
      if (r === 'empty' || r === 'closed') { break }
      this.record(r.value)
    }
    this.drainTips()
  }

  private record (ev: Event): void {
    if (ev.kind === 'failed') {
      const kind = this.options.members[ev.name].kind.name
      throw new SyncError('Database', `state sync failed (${ev.name}, db ${kind}): ${(ev.error as Error)?.message ?? String(ev.error)}`, { cause: ev.error, database: ev.name })
    }
    if (ev.kind === 'reached') {
      const st = this.states.get(ev.name) as MemberState
      const current = this.options.members[ev.name].toTarget(st.target)
      // a notice for a target superseded since is stale
      if (sameTarget(ev.target, current)) { st.reached = true }
    }
  }

  private drainTips (): void {
    const tips = this.options.tips
    if (tips === undefined) { return }
    for (;;) {
      const r = tips.tryRecv()
      if (r === 'empty' || r === 'closed') { return }
      const tip = r.value
      const floor = this.latestTip?.anchor.height ?? this.lastAnchor.height
      if (tip.anchor.height > floor) { this.latestTip = tip }
      tip.observed?.()
    }
  }

  /** Dispatch generation `gen` to the members `include` selects. */
  private dispatch (gen: number, include: (s: MemberState) => boolean): void {
    const { anchor, targets } = this.generations.get(gen) as Generation<M, A>
    this.lastAnchor = anchor
    this.currentGen = Math.max(this.currentGen, gen)
    this.options.onAnchor?.(anchor)
    for (const st of this.states.values()) {
      if (!include(st)) { continue }
      const member = this.options.members[st.name]
      const t = targets[st.name]
      if (!member.equal(t, st.target)) {
        st.target = t
        st.reached = false
        st.updates.trySend(member.toTarget(t))
      }
      st.gen = gen
    }
    for (const g of [...this.generations.keys()]) {
      if (![...this.states.values()].some(s => s.gen === g)) { this.generations.delete(g) }
    }
  }

  private newGeneration (tip: TipUpdate<MemberTargets<M>, A>, include: (s: MemberState) => boolean): void {
    const gen = this.currentGen + 1
    this.generations.set(gen, { anchor: tip.anchor, targets: tip.targets })
    this.latestTip = undefined
    this.dispatch(gen, include)
  }

  private async decide (): Promise<CoordinatorResult<M, A> | undefined> {
    for (;;) {
      const all = [...this.states.values()]
      if (!all.every(s => s.reached)) {
        // reached members stay frozen until a regroup
        if (this.latestTip !== undefined) { this.newGeneration(this.latestTip, s => !s.reached) }
        return undefined
      }
      const gens = new Set(all.map(s => s.gen))
      if (gens.size > 1) {
        const max = Math.max(...gens)
        this.dispatch(max, s => s.gen !== max)
        continue
      }
      if (this.latestTip !== undefined) {
        this.newGeneration(this.latestTip, () => true)
        continue
      }
      const converged = this.generations.get(all[0].gen) as Generation<M, A>
      for (const s of all) { s.finish.trySend() }
      const dbs: Partial<Record<string, unknown>> = {}
      for (const [name, p] of this.results) { dbs[name] = await p }
      return { dbs: dbs as MemberDbs<M>, anchor: converged.anchor, targets: converged.targets }
    }
  }
}

function sameTarget (a: Target, b: Target): boolean {
  if (a.range.start !== b.range.start || a.range.end !== b.range.end || a.root.length !== b.root.length) { return false }
  for (let i = 0; i < a.root.length; i++) {
    if (a.root[i] !== b.root[i]) { return false }
  }
  return true
}
