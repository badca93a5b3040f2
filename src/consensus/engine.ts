/**
 * The reference simplex-style BFT engine (docs/ARCHITECTURE.md): views with
 * round-robin leaders; the leader proposes a payload (a block digest) built
 * on the latest notarized view whose successors up to its own view are all
 * nullified; validators verify and notarize; a notarization moves everyone to
 * the next view and triggers finalize votes; a view that produces nothing
 * acceptable in time is nullified; a quorum of finalize votes finalizes.
 *
 * Safety (f < n/3): an honest validator notarizes at most one proposal per
 * view, never finalizes a view it nullified and never nullifies a view it
 * finalized; every vote is persisted before it is sent, so a restart cannot
 * make it equivocate. Quorums of `n - f` intersect in an honest validator,
 * so a view has at most one notarization and never both a finalization and a
 * nullification; hence every later notarized proposal descends from a
 * finalized one.
 *
 * The engine only sees payload digests: blocks are built, disseminated and
 * checked by the automaton (the stateful manager over the block store).
 * An engine without a signing key is an observer: it follows certificates
 * and reports finalizations (non-validator nodes).
 */

import { Reader, Writer, hex } from '../codec/index.ts'
import { hex16, joinKey, parseHex16 } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import {
  decodeCertificate, encodeCertificate, encodeVote, isFinalization, isNotarization, isNullification, signedMessage, subjectKey, subjectView
} from './types.ts'
import type { Certificate, Finalization, Notarization, Nullification, Proposal, Subject, Vote } from './types.ts'
import type { ValidatorSet } from './validators.ts'
import type { Context } from '../chain/index.ts'
import type { Admission } from '../net/admission.ts'
import type { Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export type { Context } from '../chain/index.ts'

/** What consensus drives (the stateful manager implements it). */
export interface Automaton {
  /** Payload of view 0. */
  genesis(): Promise<Uint8Array>
  /** Build a payload on `ctx.parent`; undefined = nothing to propose. */
  propose(ctx: Context, options: { signal: AbortSignal }): Promise<Uint8Array | undefined>
  /** Whether `payload` is a valid proposal in `ctx`; may stay pending (abstain) until aborted. */
  verify(ctx: Context, payload: Uint8Array, options: { signal: AbortSignal }): Promise<boolean>
}

/** Receives consensus outputs. Finalizations arrive once each, in increasing view order. */
export interface Reporter {
  notarized?(n: Notarization): void
  nullified?(n: Nullification): void
  finalized(f: Finalization): void
}

/** How the engine talks to the other validators. */
export interface ConsensusTransport {
  /** Broadcast an encoded vote / certificate to every validator. */
  broadcastVote(bytes: Uint8Array): Promise<void>
  broadcastCertificate(bytes: Uint8Array): Promise<void>
  /** Ask peers for the certificates of views `[from, to]` (encoded); resolves with whatever arrives. */
  fetchCertificates(from: number, to: number, options: { signal: AbortSignal }): Promise<Uint8Array[]>
}

export interface Signer {
  /** Index in the validator set. */
  index: number
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>
}

export interface EngineOptions {
  validators: ValidatorSet
  automaton: Automaton
  reporter: Reporter
  transport: ConsensusTransport
  /** Absent for an observer. */
  signer?: Signer
  /** Where votes and certificates are persisted (required for validators). */
  datastore?: Datastore
  /** Time to wait for the leader's proposal before nullifying (default 1000 ms). */
  leaderTimeoutMs?: number
  /** Time to wait for a notarization before nullifying (default 2000 ms). */
  notarizationTimeoutMs?: number
  /** Interval of re-broadcasts while stuck in a view (default 1000 ms). */
  retryMs?: number
  /** Views kept behind the last finalization (default 256). */
  retainViews?: number
  /** Votes for views further ahead of the current view are ignored (default 1024). */
  maxViewsAhead?: number
  log?: Logger
}

/** What this validator has voted in one view (persisted before sending). */
interface MyVotes {
  notarized?: string
  nullified: boolean
  finalized: boolean
}

interface ViewState {
  /** votes by subject key → signer → signature */
  notarize: Map<string, Map<number, Uint8Array>>
  finalize: Map<string, Map<number, Uint8Array>>
  nullify: Map<number, Uint8Array>
  /** proposals by subject key */
  proposals: Map<string, Proposal>
  /** the leader's proposal, once seen */
  leaderProposal?: Proposal
  verifying?: AbortController
}

/** Views asked for per catch-up request of a node that does not vote. */
const CATCH_UP_VIEWS = 32

export class SimplexEngine {
  private readonly opts: EngineOptions
  private readonly set: ValidatorSet
  private readonly kv?: Kv
  private readonly prefix: string
  private view = 1
  private genesisPayload!: Uint8Array
  private readonly notarizations = new Map<number, Notarization>()
  private readonly nullifications = new Map<number, Nullification>()
  private readonly finalizations = new Map<number, Finalization>()
  private readonly views = new Map<number, ViewState>()
  private readonly mine = new Map<number, MyVotes>()
  private lastFinalized = 0
  private lastReported = 0
  private running = false
  private timers: Array<ReturnType<typeof setTimeout>> = []
  private readonly stopController = new AbortController()
  private queue: Promise<void> = Promise.resolve()
  private proposing: AbortController | undefined
  private backfilling = false
  private paused = false

  constructor (options: EngineOptions) {
    this.opts = options
    this.set = options.validators
    this.kv = options.datastore === undefined ? undefined : new Kv(options.datastore)
    this.prefix = joinKey('/consensus', this.set.chainId)
  }

  /** Current view. */
  get currentView (): number { return this.view }
  /** Highest finalized view. */
  get finalizedView (): number { return this.lastFinalized }
  get isValidator (): boolean { return this.opts.signer !== undefined }

  private get notarizationTimeout (): number { return this.opts.notarizationTimeoutMs ?? 2000 }

  /** The notarization, nullification or finalization certificates known for `view`. */
  certificatesFor (view: number): Certificate[] {
    const out: Certificate[] = []
    for (const c of [this.notarizations.get(view), this.nullifications.get(view), this.finalizations.get(view)]) {
      if (c !== undefined) { out.push(c) }
    }
    return out
  }

  latestFinalization (): Finalization | undefined {
    return this.finalizations.get(this.lastFinalized)
  }

  // ---- lifecycle -------------------------------------------------------------------

  async start (): Promise<void> {
    if (this.running) { return }
    this.genesisPayload = await this.opts.automaton.genesis()
    await this.load()
    this.running = true
    this.enterView(this.view)
  }

  /**
   * Stop voting and proposing for good; the engine keeps following the
   * certificates of others (an observer from now on).
   */
  pause (): void {
    if (this.paused) { return }
    this.paused = true
    this.clearTimers()
    this.proposing?.abort()
    if (this.running) { this.scheduleCatchUp(this.view, this.notarizationTimeout) }
  }

  get isPaused (): boolean { return this.paused }

  async stop (): Promise<void> {
    this.running = false
    this.stopController.abort()
    this.proposing?.abort()
    for (const v of this.views.values()) { v.verifying?.abort() }
    this.clearTimers()
    await this.queue.catch(() => {})
  }

  /** Serialize event handling (votes are persisted before they are sent). */
  private enqueue (fn: () => Promise<void> | void): Promise<void> {
    const p = this.queue.then(async () => { if (this.running) { await fn() } })
    this.queue = p.catch(err => { this.opts.log?.error('consensus event failed: %e', err) })
    return this.queue
  }

  // ---- persistence ---------------------------------------------------------------------

  private async load (): Promise<void> {
    if (this.kv === undefined) { return }
    let maxView = 0
    for await (const k of this.kv.keys(joinKey(this.prefix, 'cert') + '/')) {
      const bytes = await this.kv.get(k)
      if (bytes === undefined) { continue }
      try {
        const c = decodeCertificate(bytes)
        if (this.set.verifyCertificate(c)) {
          this.store(c)
          maxView = Math.max(maxView, subjectView(c.subject))
        }
      } catch {
        // an unreadable certificate is just not used; peers have it
      }
    }
    for await (const k of this.kv.keys(joinKey(this.prefix, 'vote') + '/')) {
      const view = parseHex16(k.slice(k.lastIndexOf('/') + 1))
      const bytes = await this.kv.get(k)
      if (view === undefined || bytes === undefined) { continue }
      try {
        const r = new Reader(bytes)
        const notarized = r.option(r => hex(r.bytes(256)))
        const flags = r.u8()
        this.mine.set(view, { notarized, nullified: (flags & 1) !== 0, finalized: (flags & 2) !== 0 })
        maxView = Math.max(maxView, view)
      } catch {
        // a corrupt vote record must not let us vote again in that view: treat it as "voted everything"
        this.mine.set(view, { notarized: 'unknown', nullified: true, finalized: true })
        maxView = Math.max(maxView, view)
      }
    }
    this.view = Math.max(1, maxView + (this.notarizations.has(maxView) || this.nullifications.has(maxView) ? 1 : 0))
    this.lastReported = this.lastFinalized
  }

  private async persistVote (view: number): Promise<void> {
    if (this.kv === undefined) { return }
    const m = this.mine.get(view) as MyVotes
    const w = new Writer(96).option(m.notarized, (w, s) => { w.bytes(Buffer.from(s, 'hex')) }).u8((m.nullified ? 1 : 0) | (m.finalized ? 2 : 0))
    await this.kv.batch().put(joinKey(this.prefix, 'vote', hex16(view)), w.finish()).commit({ sync: true })
  }

  private async persistCertificate (c: Certificate): Promise<void> {
    if (this.kv === undefined) { return }
    await this.kv.batch().put(joinKey(this.prefix, 'cert', hex16(subjectView(c.subject)), c.subject.kind), encodeCertificate(c)).commit()
  }

  // ---- views and timers -----------------------------------------------------------------------

  private clearTimers (): void {
    for (const t of this.timers) { clearTimeout(t) }
    this.timers = []
  }

  private state (view: number): ViewState {
    let s = this.views.get(view)
    if (s === undefined) {
      s = { notarize: new Map(), finalize: new Map(), nullify: new Map(), proposals: new Map() }
      this.views.set(view, s)
    }
    return s
  }

  private myVotes (view: number): MyVotes {
    let m = this.mine.get(view)
    if (m === undefined) {
      m = { nullified: false, finalized: false }
      this.mine.set(view, m)
    }
    return m
  }

  private enterView (view: number): void {
    this.view = view
    this.clearTimers()
    this.proposing?.abort()
    for (const [v, s] of this.views) {
      if (v < view) { s.verifying?.abort() }
    }
    if (!this.running) { return }
    const notarizationTimeout = this.notarizationTimeout
    if (!this.isValidator || this.paused) {
      this.scheduleCatchUp(view, notarizationTimeout)
      return
    }
    const leaderTimeout = this.opts.leaderTimeoutMs ?? 1000
    this.timers.push(setTimeout(() => { void this.enqueue(async () => this.onTimeout(view, 'leader')) }, leaderTimeout))
    this.timers.push(setTimeout(() => { void this.enqueue(async () => this.onTimeout(view, 'notarization')) }, notarizationTimeout))
    if (this.set.leader(view) === this.opts.signer?.index) { void this.propose(view) }
    // a proposal for this view may already be waiting (received while we were behind)
    const lp = this.state(view).leaderProposal
    if (lp !== undefined) { void this.consider(lp) }
  }

  /**
   * A node that does not vote (an observer, or paused) has no timeouts of
   * its own and learns views only from others' certificates: one missed
   * gossip message just before the chain goes quiet (validators paused or
   * halted) would strand it behind for good. So while no certificate moves
   * its view it asks peers for the certificates past it, backing off to
   * 8 × the notarization timeout; after a fetch that moved it, at once again.
   */
  private scheduleCatchUp (view: number, delayMs: number): void {
    this.timers.push(setTimeout(() => { void this.catchUp(view, delayMs) }, delayMs))
  }

  private async catchUp (view: number, delayMs: number): Promise<void> {
    if (!this.running || view !== this.view) { return }
    await this.backfill(view, view + CATCH_UP_VIEWS - 1)
    if (!this.running) { return }
    const base = this.notarizationTimeout
    if (this.view > view) {
      // entering the new view scheduled a full delay: more may be waiting now
      this.clearTimers()
      this.scheduleCatchUp(this.view, 0)
    } else if (this.view === view) {
      this.scheduleCatchUp(view, Math.min(Math.max(base, delayMs * 2), base * 8))
    }
  }

  private async onTimeout (view: number, which: 'leader' | 'notarization'): Promise<void> {
    if (view !== this.view) { return }
    const s = this.state(view)
    if (which === 'leader' && s.leaderProposal !== undefined) { return }
    await this.nullify(view)
    // keep re-broadcasting (and asking for help) until the view changes
    const retry = this.opts.retryMs ?? 1000
    this.timers.push(setTimeout(() => { void this.enqueue(async () => this.retry(view)) }, retry))
  }

  private async retry (view: number): Promise<void> {
    if (view !== this.view) { return }
    const m = this.myVotes(view)
    if (m.nullified) { await this.sendVote({ kind: 'nullify', view }) }
    // peers may have missed certificates of the previous view
    for (const c of this.certificatesFor(view - 1)) { await this.opts.transport.broadcastCertificate(encodeCertificate(c)).catch(() => {}) }
    void this.backfill(Math.max(1, view - 8), view + 8)
    this.timers.push(setTimeout(() => { void this.enqueue(async () => this.retry(view)) }, this.opts.retryMs ?? 1000))
  }

  // ---- proposing and verifying ----------------------------------------------------------------------

  /** The parent for a proposal at `view`: latest notarized view below it with only nullified views between. */
  private parentFor (view: number): { view: number, digest: Uint8Array } | undefined {
    for (let w = view - 1; w >= 0; w--) {
      if (w === 0) { return { view: 0, digest: this.genesisPayload } }
      const n = this.notarizations.get(w)
      if (n !== undefined) { return { view: w, digest: n.subject.proposal.payload } }
      if (!this.nullifications.has(w)) { return undefined }
    }
    return undefined
  }

  private contextFor (view: number, parent: { view: number, digest: Uint8Array }): Context {
    return { round: { epoch: 0, view }, leader: this.set.ids[this.set.leader(view)], parent }
  }

  private async propose (view: number): Promise<void> {
    const parent = this.parentFor(view)
    if (parent === undefined) {
      this.opts.log?.('view %d: no parent yet (certificates missing), backfilling', view)
      void this.backfill(Math.max(1, view - 16), view - 1)
      return
    }
    const controller = new AbortController()
    this.proposing = controller
    let payload: Uint8Array | undefined
    try {
      payload = await this.opts.automaton.propose(this.contextFor(view, parent), { signal: controller.signal })
    } catch (err) {
      if (!controller.signal.aborted) { this.opts.log?.error('proposal for view %d failed: %e', view, err) }
      return
    }
    if (payload === undefined || controller.signal.aborted) {
      this.opts.log?.('view %d: nothing proposed on parent view %d', view, parent.view)
      return
    }
    await this.enqueue(async () => {
      if (view !== this.view) { return }
      const proposal: Proposal = { view, parent: parent.view, payload }
      // the leader's notarize vote is the proposal
      await this.notarize(proposal)
    })
  }

  /** Check a leader's proposal and notarize it if the automaton accepts it. */
  private async consider (p: Proposal): Promise<void> {
    if (!this.isValidator || p.view !== this.view) { return }
    const s = this.state(p.view)
    if (s.verifying !== undefined || this.myVotes(p.view).notarized !== undefined || this.myVotes(p.view).nullified) { return }
    // the parent rule: notarized parent (or genesis), every view in between nullified
    let parentDigest: Uint8Array
    if (p.parent === 0) {
      parentDigest = this.genesisPayload
    } else {
      const n = this.notarizations.get(p.parent)
      if (n === undefined) {
        this.opts.log?.('view %d: parent view %d not notarized here yet, backfilling', p.view, p.parent)
        void this.backfill(p.parent, p.view - 1)
        return
      }
      parentDigest = n.subject.proposal.payload
    }
    for (let w = p.parent + 1; w < p.view; w++) {
      if (!this.nullifications.has(w)) {
        this.opts.log?.('view %d: view %d between it and its parent not nullified here yet, backfilling', p.view, w)
        void this.backfill(w, p.view - 1)
        return
      }
    }
    const controller = new AbortController()
    s.verifying = controller
    let ok = false
    try {
      ok = await this.opts.automaton.verify(this.contextFor(p.view, { view: p.parent, digest: parentDigest }), p.payload, { signal: controller.signal })
    } catch (err) {
      if (!controller.signal.aborted) { this.opts.log?.error('verifying view %d failed: %e', p.view, err) }
      ok = false
    }
    s.verifying = undefined
    if (!ok || controller.signal.aborted) {
      this.opts.log?.('view %d: proposal not accepted (%s)', p.view, controller.signal.aborted ? 'verification aborted' : 'invalid')
      return
    }
    await this.enqueue(async () => {
      if (p.view === this.view) { await this.notarize(p) }
    })
  }

  // ---- voting ------------------------------------------------------------------------------------------

  private async notarize (p: Proposal): Promise<void> {
    const m = this.myVotes(p.view)
    if (m.notarized !== undefined || m.nullified) { return }
    const subject: Subject = { kind: 'notarize', proposal: p }
    m.notarized = subjectKey(subject)
    await this.persistVote(p.view)
    await this.sendVote(subject)
  }

  private async nullify (view: number): Promise<void> {
    const m = this.myVotes(view)
    if (m.finalized || m.nullified) { return }
    m.nullified = true
    this.state(view).verifying?.abort()
    await this.persistVote(view)
    await this.sendVote({ kind: 'nullify', view })
  }

  private async finalizeVote (p: Proposal): Promise<void> {
    const m = this.myVotes(p.view)
    if (m.nullified || m.finalized) { return }
    m.finalized = true
    await this.persistVote(p.view)
    await this.sendVote({ kind: 'finalize', proposal: p })
  }

  private async sendVote (subject: Subject): Promise<void> {
    const signer = this.opts.signer
    if (signer === undefined || this.paused) { return }
    const signature = await signer.sign(signedMessage(this.set.chainId, subject))
    const vote: Vote = { subject, signer: signer.index, signature }
    await this.recordVote(vote)
    await this.opts.transport.broadcastVote(encodeVote(vote)).catch(err => { this.opts.log?.trace('broadcast failed: %e', err) })
  }

  // ---- inputs ------------------------------------------------------------------------------------------

  /** Lowest view whose votes and certificates are still used: older ones were pruned and are never acted on again. */
  private get floor (): number {
    return Math.max(0, this.lastFinalized - (this.opts.retainViews ?? 256))
  }

  /**
   * Whether a vote from the network is worth relaying, checked before it is
   * relayed (the gossip topic validator): 'reject' for a signer outside the
   * validator set or a bad signature (the sender is penalised), 'ignore' for
   * a view outside the window this engine acts on (older than
   * `retainViews` behind the current view or the pruned floor, or more than
   * `maxViewsAhead` ahead) or a vote already recorded.
   */
  admitVote (vote: Vote): Admission {
    if (vote.signer >= this.set.n) { return 'reject' }
    const view = subjectView(vote.subject)
    if (view < this.floor || view + (this.opts.retainViews ?? 256) < this.view || view > this.view + (this.opts.maxViewsAhead ?? 1024)) { return 'ignore' }
    if (this.hasVote(vote)) { return 'ignore' }
    return this.set.verifyVote(vote) ? 'accept' : 'reject'
  }

  /**
   * Whether a certificate from the network is worth relaying: 'reject' when
   * it names a signer outside the validator set, has fewer than a quorum of
   * signers or a bad signature; 'ignore' when its view is below the pruned
   * floor (a replayed old certificate must not make this validator vote
   * again) or this engine already has a certificate of that kind for the
   * view.
   */
  admitCertificate (c: Certificate): Admission {
    if (c.signers.length < this.set.quorum || c.signers.length > this.set.n || c.signers[c.signers.length - 1] >= this.set.n) { return 'reject' }
    const view = subjectView(c.subject)
    if (view === 0 || view < this.floor || this.hasCertificate(c)) { return 'ignore' }
    return this.set.verifyCertificate(c) ? 'accept' : 'reject'
  }

  private hasVote (vote: Vote): boolean {
    const s = this.views.get(subjectView(vote.subject))
    if (s === undefined) { return false }
    const subject = vote.subject
    if (subject.kind === 'nullify') { return s.nullify.has(vote.signer) }
    const table = subject.kind === 'notarize' ? s.notarize : s.finalize
    return table.get(subjectKey(subject))?.has(vote.signer) === true
  }

  private hasCertificate (c: Certificate): boolean {
    return this.certificatesFor(subjectView(c.subject)).some(x => x.subject.kind === c.subject.kind)
  }

  /**
   * A vote from the network (already decoded). Invalid signatures and views
   * outside the window are dropped; `verified` skips the signature check
   * when `admitVote` just accepted it.
   */
  async receiveVote (vote: Vote, options: { verified?: boolean } = {}): Promise<void> {
    await this.enqueue(async () => {
      const view = subjectView(vote.subject)
      if (view < this.floor || view + (this.opts.retainViews ?? 256) < this.view) { return }
      if (options.verified !== true && !this.set.verifyVote(vote)) { return }
      await this.recordVote(vote)
    })
  }

  /** A certificate from the network; verified before use. */
  async receiveCertificate (c: Certificate): Promise<void> {
    await this.enqueue(async () => { await this.handleCertificate(c, true) })
  }

  private async recordVote (vote: Vote): Promise<void> {
    const view = subjectView(vote.subject)
    const s = this.state(view)
    const subject = vote.subject
    if (subject.kind === 'nullify') {
      s.nullify.set(vote.signer, vote.signature)
      if (s.nullify.size >= this.set.quorum && !this.nullifications.has(view)) {
        await this.handleCertificate(certificateOf(subject, s.nullify), false)
      }
      return
    }
    const key = subjectKey(subject)
    const table = subject.kind === 'notarize' ? s.notarize : s.finalize
    let votes = table.get(key)
    if (votes === undefined) {
      votes = new Map()
      table.set(key, votes)
    }
    votes.set(vote.signer, vote.signature)
    s.proposals.set(key, subject.proposal)
    if (subject.kind === 'notarize' && vote.signer === this.set.leader(view) && s.leaderProposal === undefined) {
      s.leaderProposal = subject.proposal
      if (view === this.view) { void this.consider(subject.proposal) }
    }
    if (votes.size >= this.set.quorum) {
      const have = subject.kind === 'notarize' ? this.notarizations.has(view) : this.finalizations.has(view)
      if (!have) { await this.handleCertificate(certificateOf(subject, votes), false) }
    }
  }

  private store (c: Certificate): void {
    const view = subjectView(c.subject)
    if (isNotarization(c)) { this.notarizations.set(view, c) } else if (isNullification(c)) { this.nullifications.set(view, c) } else if (isFinalization(c)) {
      this.finalizations.set(view, c)
      this.lastFinalized = Math.max(this.lastFinalized, view)
    }
  }

  private async handleCertificate (c: Certificate, untrusted: boolean): Promise<void> {
    const view = subjectView(c.subject)
    // below the floor this engine no longer knows what it voted: acting on an old certificate could make it vote twice
    if (this.hasCertificate(c) || view === 0 || view < this.floor) { return }
    if (untrusted && !this.set.verifyCertificate(c)) { return }
    this.store(c)
    await this.persistCertificate(c)
    if (!untrusted) { await this.opts.transport.broadcastCertificate(encodeCertificate(c)).catch(() => {}) }
    if (isNotarization(c)) {
      this.opts.reporter.notarized?.(c)
      if (this.isValidator) { await this.finalizeVote(c.subject.proposal) }
      if (view >= this.view) { this.enterView(view + 1) }
    } else if (isNullification(c)) {
      this.opts.reporter.nullified?.(c)
      if (view >= this.view) { this.enterView(view + 1) }
    } else if (isFinalization(c)) {
      this.reportFinalizations()
      if (view >= this.view) { this.enterView(view + 1) }
      this.prune()
    }
  }

  private reportFinalizations (): void {
    const views = [...this.finalizations.keys()].filter(v => v > this.lastReported).sort((a, b) => a - b)
    for (const v of views) {
      this.lastReported = v
      this.opts.reporter.finalized(this.finalizations.get(v) as Finalization)
    }
  }

  private prune (): void {
    const keep = this.lastFinalized - (this.opts.retainViews ?? 256)
    if (keep <= 0) { return }
    for (const map of [this.notarizations, this.nullifications, this.finalizations, this.views, this.mine] as Array<Map<number, unknown>>) {
      for (const v of map.keys()) {
        if (v < keep && v !== this.lastFinalized) { map.delete(v) }
      }
    }
    void this.deleteStoredBelow(keep)
  }

  private async deleteStoredBelow (view: number): Promise<void> {
    if (this.kv === undefined) { return }
    const batch = this.kv.batch()
    for (const sub of ['cert', 'vote']) {
      for await (const k of this.kv.keys(joinKey(this.prefix, sub) + '/')) {
        const parts = k.slice(joinKey(this.prefix, sub).length + 1).split('/')
        const v = parseHex16(parts[0])
        if (v !== undefined && v < view && v !== this.lastFinalized) { batch.delete(k) }
      }
    }
    await batch.commit().catch(() => {})
  }

  /** Fetch certificates of `[from, to]` from peers and absorb the valid ones. */
  private async backfill (from: number, to: number): Promise<void> {
    if (this.backfilling || from > to || !this.running) { return }
    this.backfilling = true
    try {
      const got = await this.opts.transport.fetchCertificates(from, to, { signal: AbortSignal.timeout(this.notarizationTimeout) })
      for (const bytes of got) {
        try {
          await this.receiveCertificate(decodeCertificate(bytes))
        } catch {
          // undecodable: the transport's peer gets no credit; ignore
        }
      }
    } catch {
      // no peer answered in time: the next timeout retries
    } finally {
      this.backfilling = false
    }
  }
}

function certificateOf (subject: Subject, votes: Map<number, Uint8Array>): Certificate {
  const signers = [...votes.keys()].sort((a, b) => a - b)
  return { subject, signers, signatures: signers.map(s => votes.get(s) as Uint8Array) }
}
