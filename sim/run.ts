/**
 * One seeded run of the simulation and its invariants.
 *
 * A run is a pure function of its seed: the seed picks the link model, the
 * application's load, the faults and their times; keys are derived from it;
 * time is virtual (`clock.ts`) and storage in memory, so replaying a seed
 * replays the same events and yields the same trace hash.
 *
 * Nodes: `validators` validators, then one joiner that replays blocks from
 * genesis (marshal sync) and one that state-syncs from a floor. Validators
 * start at time 0, joiners at seeded times. During the fault phase the
 * seeded faults happen: partitions that heal, one-way links, crashes with
 * process or power loss (at a seeded time, or right after a seeded fsync:
 * between a commit and what follows it) and restarts, a silent validator, a byzantine
 * validator serving garbage blocks or bad state-sync data (lies, stalls,
 * `NoData` to everything; on odd seeds a staller answers a request it sat
 * on with altered data when asked it again), or an equivocating validator (two signed votes
 * for one view) — at most f validators are ever faulty. The network may
 * deliver any message twice. Then
 * every link heals, every crashed node restarts, and the run waits (bounded,
 * in virtual time) until every node has processed a common target height.
 *
 * Invariants checked on every run:
 * - agreement: no two nodes (nor one node across restarts) deliver
 * different blocks at one height;
 * - state: every node's committed database roots equal the roots of its
 * finalized block at that height, and nodes at one height agree;
 * - convergence: after healing every node, joiners included, reaches the
 * target height, and the state-sync joiner handed off from a sync;
 * - durability: after a restart (even on power loss) the applied height is
 * at least the highest height acknowledged before the crash;
 * - every byzantine server whose misbehaviour reached a node ends blocked
 * in that node's peer book, and no honest node is ever blocked, for good or
 * for a while: bad data (garbage blocks, altered sync responses) blocks for
 * good; a stalling server (it never answers a state-sync or marshal
 * request) that sat on one request another peer answered is asked again
 * until the strike rule blocks it (`src/net/recheck.ts`): it ends struck
 * out at least once, or — one that answers the re-ask with altered data,
 * which the re-ask judges against what the node verified — blocked for
 * good (the run waits, bounded, for the re-asks under way); a
 * `NoData` server (nothing for every request) reached a node when it had
 * nothing, on as many separate occasions as the strike rule's limit, for
 * requests other peers answered, and is then blocked by the rule
 * (`src/net/peers.ts`) — a no-data answer is not re-asked, since an honest
 * peer behind or pruned gives the same one;
 * - gossip: every vote, certificate and block is judged on arrival by the
 * topic validators' own checks, and nothing an honest node sends is ever
 * rejected (only a byzantine block server's garbage is);
 * - no fatal error, no unhandled rejection, no exception from a timer;
 * - hygiene: the simulator's own plumbing never fails (`sim/wire.ts`), and
 * after every node stopped nothing keeps running — the timers still armed
 * fire and none is armed again, and no wall-clock timer is left behind — so
 * a leak fails the run that leaks, not a run hundreds of seeds later.
 */
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { ledgerApplication } from '../src/cli/ledger.ts'
import { hex } from '../src/codec/index.ts'
import { ValidatorSet, finalizationScheme } from '../src/consensus/index.ts'
import { DEFAULT_STRIKES } from '../src/net/peers.ts'
import { Rng } from '../test/util/rng.ts'
import { VirtualClock } from './clock.ts'
import { SimNetwork } from './network.ts'
import { SimNode } from './node.ts'
import { Trace } from './trace.ts'
import type { SimContext } from './node.ts'
import type { CrashKind } from './storage.ts'
import type { LedgerBlock, LedgerDbs } from '../src/examples/ledger/index.ts'
import type { PrivateKey } from '@libp2p/interface'

export interface SimOptions {
  validators?: number
  /** Virtual length of the fault phase (ms). */
  faultMs?: number
  /** Virtual time the network gets to converge after healing (ms). */
  settleMs?: number
  /**
   * Storage that ignores fsync, so a power loss loses acknowledged state:
   * only for checking that the simulator detects it.
   */
  brokenSync?: boolean
  /**
   * Arm an interval nothing ever clears, as a component whose stop forgets
   * one would: only for checking that the hygiene check detects it.
   */
  leakInterval?: boolean
}

export const FAULT_KINDS = [
  'partition', 'one-way', 'duplicate', 'crash-process', 'crash-power', 'crash-at-fsync', 'joiner-crash', 'silent', 'equivocate', 'byzantine-blocks', 'sync-lie', 'sync-stall', 'sync-no-data'
] as const
export type FaultKind = typeof FAULT_KINDS[number]

export interface RunResult {
  seed: number
  /** SHA-256 over the run's event trace (replaying the seed must reproduce it). */
  hash: string
  failures: string[]
  /** Height every node reached (the convergence target). */
  height: number
  faults: Record<FaultKind, number>
  messages: { sent: number, delivered: number, dropped: number, duplicated: number }
  /**
   * (node, byzantine peer) pairs: bad data that reached the node, and blocks
   * it gave (marshal and state sync together); stalling / `NoData`
   * servers a node asked in vain on requests others answered, and the
   * strike rule's blocks of them.
   */
  byzantine: { reached: number, blamed: number, stalled: number, struck: number }
  /** Gossip messages (votes, certificates, blocks) the receivers' topic validators accepted, ignored and rejected. */
  gossip: { accept: number, ignore: number, reject: number }
  /** Height the state-sync joiner handed off at (its last sync). */
  syncHeight: number | undefined
  virtualMs: number
  realMs: number
  /** The last trace lines (for a failing run). */
  tail: string[]
}

type Node = SimNode<LedgerBlock, LedgerDbs>

class Run {
  readonly seed: number
  readonly rng: Rng
  readonly trace = new Trace()
  readonly clock = new VirtualClock()
  readonly failures: string[] = []
  readonly faults = Object.fromEntries(FAULT_KINDS.map(k => [k, 0])) as Record<FaultKind, number>
  readonly net: SimNetwork
  readonly nodes: Node[] = []
  readonly faultMs: number
  readonly settleMs: number
  private readonly ctx: SimContext<LedgerBlock, LedgerDbs>
  private readonly starting = new Map<number, Promise<void>>()
  /** Set once every node stopped: the run's own scheduled events no longer fire. */
  private over = false
  height = -1

  constructor (seed: number, options: SimOptions, keys: PrivateKey[]) {
    this.seed = seed
    this.rng = new Rng(seed)
    this.faultMs = options.faultMs ?? 6000
    this.settleMs = options.settleMs ?? 60_000
    const nv = options.validators ?? 4
    const rng = this.rng
    this.net = new SimNetwork(this.clock, rng, this.trace, {
      latencyMs: 1 + rng.int(30),
      jitterMs: 1 + rng.int(40),
      dropRate: rng.pick([0, 0, 0.01, 0.05, 0.1]),
      dupRate: rng.pick([0, 0.01, 0.05, 0.2])
    })
    this.ctx = {
      net: this.net,
      rng,
      trace: this.trace,
      now: () => this.clock.now,
      nodes: this.nodes,
      application: ledgerApplication({ autoTransfers: 1 + rng.int(6), accountSpace: 64 }),
      set: undefined as unknown as ValidatorSet,
      scheme: undefined as unknown as SimContext<LedgerBlock, LedgerDbs>['scheme'],
      honourSync: options.brokenSync !== true,
      fault: what => { this.fail(`simulator: ${what}`) },
      timing: { leaderTimeoutMs: 400, notarizationTimeoutMs: 800, retryMs: 400, blockIntervalMs: 50 + rng.int(100) }
    }
    const roleOf = (i: number): 'validator' | 'marshal-sync' | 'state-sync' => {
      if (i < nv) { return 'validator' }
      return i === nv ? 'marshal-sync' : 'state-sync'
    }
    keys.forEach((key, i) => { this.nodes.push(new SimNode(this.ctx, i, key, roleOf(i))) })
    this.ctx.set = new ValidatorSet('sim', this.nodes.slice(0, nv).map(n => n.peerId))
    this.ctx.scheme = finalizationScheme(this.ctx.set)
    this.trace.record(0, `seed ${seed} model ${JSON.stringify(this.net.model)} timing ${JSON.stringify(this.ctx.timing)}`)
  }

  get validators (): Node[] {
    return this.nodes.filter(n => n.validator)
  }

  get joiners (): Node[] {
    return this.nodes.filter(n => !n.validator)
  }

  fail (what: string): void {
    this.failures.push(what)
    this.trace.record(this.clock.now, `FAIL ${what}`)
  }

  private at (t: number, what: string, fn: () => void): void {
    this.clock.schedule(() => {
      if (this.over) { return }
      this.trace.record(this.clock.now, what)
      fn()
    }, t, undefined)
  }

  private chance (p: number): boolean {
    return this.rng.u32() / 0x100000000 < p
  }

  /** (Re)start `n`; after a restart its applied state must cover what it acknowledged before. */
  start (n: Node, ackedBefore: number): void {
    if (n.up || this.starting.has(n.index)) { return }
    const p = (async () => {
      this.net.setUp(n.index, true)
      await n.start()
      const applied = await n.stateful?.readApplied((_set, h) => h).catch(() => undefined)
      if (applied !== undefined && applied < ackedBefore) { this.fail(`node ${n.index}: acknowledged height ${ackedBefore} lost after restart (applied ${applied})`) }
    })().catch(err => {
      if (n.up) { this.fail(`node ${n.index}: start failed: ${(err as Error).message}`) }
    }).finally(() => { if (this.starting.get(n.index) === p) { this.starting.delete(n.index) } })
    this.starting.set(n.index, p)
  }

  /** Crash `n` now and restart it `down` ms later. */
  private crashAndRestart (n: Node, kind: CrashKind, down: number): void {
    if (!n.up) { return }
    const acked = n.acked
    this.trace.record(this.clock.now, `crash ${n.index} ${kind} acked ${acked}`)
    this.net.setUp(n.index, false)
    n.crash(kind)
    // a start cut short by the crash never settles (its store is dead)
    this.starting.delete(n.index)
    this.at(down, `restart ${n.index}`, () => { this.start(n, acked) })
  }

  /** Draw every fault from the seed (before anything runs) and schedule it. */
  schedule (): void {
    const rng = this.rng
    const all = this.nodes.map(n => n.index)
    for (const v of this.validators) { this.start(v, -1) }
    const [replayer, syncer] = this.joiners
    this.at(rng.int(this.faultMs), `join ${replayer.index}`, () => { this.start(replayer, -1) })
    // the state-sync joiner comes once there is a floor worth syncing to
    this.at(this.faultMs / 4 + rng.int(this.faultMs / 2), `join ${syncer.index}`, () => { this.start(syncer, -1) })
    for (let k = rng.int(3); k > 0; k--) {
      const t = rng.int(this.faultMs)
      const side = all.filter(() => this.chance(0.4))
      const length = 200 + rng.int(2000)
      if (side.length === 0 || side.length === all.length) { continue }
      this.faults.partition++
      this.at(t, `partition ${side.join(',')}`, () => { this.net.partition(side, all) })
      this.at(t + length, 'heal', () => { this.net.healAll() })
    }
    for (let k = rng.int(2); k > 0; k--) {
      const a = rng.int(all.length)
      const b = (a + 1 + rng.int(all.length - 1)) % all.length
      const t = rng.int(this.faultMs)
      this.faults['one-way']++
      this.at(t, `cut ${a}>${b}`, () => { this.net.cutLink(a, b) })
      this.at(t + 200 + rng.int(2000), 'heal', () => { this.net.healAll() })
    }
    this.scheduleFaultyValidators()
    for (const j of this.joiners) {
      if (this.chance(0.5)) {
        const kind: CrashKind = this.chance(0.5) ? 'power' : 'process'
        const down = 100 + rng.int(1000)
        const syncs = this.chance(0.5) ? 1 + rng.int(30) : 0
        this.faults['joiner-crash']++
        this.at(rng.int(this.faultMs * 2), `joiner-crash ${j.index} after ${syncs} syncs`, () => {
          if (syncs === 0) { this.crashAndRestart(j, kind, down) } else { j.afterSyncs(syncs, () => { this.crashAndRestart(j, kind, down) }) }
        })
      }
    }
  }

  /** At most f validators misbehave, each in one seeded way. */
  private scheduleFaultyValidators (): void {
    const rng = this.rng
    const nv = this.validators.length
    const f = Math.floor((nv - 1) / 3)
    const chosen = new Set(Array.from({ length: f }, () => rng.int(nv)))
    for (const v of chosen) {
      const node = this.nodes[v]
      const mode = rng.pick(['crash', 'crash', 'silent', 'equivocate', 'byzantine-blocks', 'sync-lie', 'sync-stall', 'sync-no-data', 'none'] as const)
      if (mode === 'crash') {
        let t = rng.int(this.faultMs / 2)
        for (let k = 1 + rng.int(3); k > 0; k--) {
          const kind: CrashKind = this.chance(0.5) ? 'power' : 'process'
          const down = 100 + rng.int(1500)
          if (this.chance(0.5)) {
            this.faults[kind === 'power' ? 'crash-power' : 'crash-process']++
            this.at(t, `crash-fault ${v}`, () => { this.crashAndRestart(node, kind, down) })
          } else {
            // at a storage step: right after one of the next synced writes
            const syncs = 1 + rng.int(30)
            this.faults['crash-at-fsync']++
            this.at(t, `arm-crash ${v} after ${syncs} syncs`, () => {
              node.afterSyncs(syncs, () => { this.crashAndRestart(node, kind, down) })
            })
          }
          t += down + 100 + rng.int(1500)
        }
      } else if (mode === 'silent') {
        this.faults.silent++
        this.at(rng.int(this.faultMs), `silent ${v}`, () => { node.silence() })
      } else if (mode === 'equivocate') {
        node.equivocate = true
        this.trace.record(0, `equivocate ${v}`)
      } else if (mode === 'byzantine-blocks') {
        this.faults['byzantine-blocks']++
        node.lieAboutBlocks = true
        this.trace.record(0, `byzantine-blocks ${v}`)
      } else if (mode !== 'none') {
        this.faults[mode]++
        node.syncFault = ({ 'sync-lie': 'lie', 'sync-stall': 'stall', 'sync-no-data': 'no-data' } as const)[mode]
        // on odd seeds (no draw from the generator, so every run keeps its course until the first re-ask) a staller
        // answers a request it sat on with altered data when asked it again: the re-ask must judge the data
        node.lieWhenAskedAgain = mode === 'sync-stall' && this.seed % 2 === 1
        this.trace.record(0, `${mode} ${v}${node.lieWhenAskedAgain ? ' lies-when-asked-again' : ''}`)
      }
    }
  }

  private async runUntil (done: () => boolean, forMs: number): Promise<boolean> {
    return this.clock.run(() => this.failures.length > 0 || done(), this.clock.now + forMs)
  }

  /** Heal every link, restart every node that is down, and wait until all reach a common height. */
  async converge (): Promise<void> {
    this.net.healAll()
    this.trace.record(this.clock.now, 'heal all')
    await this.runUntil(() => this.starting.size === 0, this.settleMs)
    for (const n of this.nodes) { this.start(n, n.acked) }
    await this.runUntil(() => this.starting.size === 0, this.settleMs)
    this.height = Math.max(...this.nodes.map(n => n.acked)) + 2
    this.trace.record(this.clock.now, `target ${this.height}`)
    const reached = await this.runUntil(() => this.nodes.every(n => n.acked >= this.height), this.settleMs)
    if (!reached && this.failures.length === 0) {
      this.fail(`liveness: not every node reached height ${this.height} within ${this.settleMs} ms after healing (${this.nodes.map(n => `${n.index}:${n.acked}`).join(' ')})`)
    }
    // suspected stallers are asked again until they answer or strike out: let those re-asks finish (bounded)
    await this.runUntil(() => this.nodes.every(n => n.rechecking === 0), this.settleMs / 4)
  }

  /** Invariants on what every node recorded during the run. */
  checkHistory (): void {
    const byHeight = new Map<number, { digest: string, from: number }>()
    const byzantine = new Set(this.nodes.filter(n => n.lieAboutBlocks || n.syncFault !== undefined).map(n => n.index))
    for (const n of this.nodes) {
      for (const c of n.conflicts) { this.fail(`node ${n.index} delivered two blocks at one height: ${c}`) }
      for (const e of n.fatal) { this.fail(`node ${n.index}: fatal ${e.message}`) }
      this.checkBlocking(n, byzantine)
      for (const [h, digest] of n.delivered) {
        const seen = byHeight.get(h)
        if (seen === undefined) { byHeight.set(h, { digest, from: n.index }) } else if (seen.digest !== digest) { this.fail(`agreement: height ${h}: node ${seen.from} ${seen.digest}, node ${n.index} ${digest}`) }
      }
      if (n.stateSync && n.syncHeight === undefined && this.failures.length === 0) { this.fail(`node ${n.index} never handed off from a state sync`) }
    }
    for (const e of this.clock.uncaught) { this.fail(`exception in a timer: ${String((e as Error)?.stack ?? e)}`) }
  }

  /**
   * Liars end blocked for good in `n`'s peer books; a stalling server that
   * sat on a request of `n` another peer answered ends struck out by `n` at
   * least once (or blocked now); a `NoData` server whose misbehaviour reached
   * `n` — it had nothing, on as many separate occasions as the strike rule's
   * limit, for requests other peers answered, in one book of one
   * incarnation — ends blocked there by the rule; no honest node is ever
   * blocked, for good or for a while.
   */
  private checkBlocking (n: Node, byzantine: Set<number>): void {
    for (const liar of n.lied) { if (!n.marshalPeers.isBlocked(this.nodes[liar].peerId)) { this.fail(`node ${n.index} got garbage blocks from ${liar} and did not block it`) } }
    for (const liar of n.syncLied) { if (!n.syncPeers.isBlocked(this.nodes[liar].peerId)) { this.fail(`node ${n.index} got bad sync data from ${liar} and did not block it`) } }
    for (const [what, book, vain] of [['state sync', n.syncPeers, n.vain.sync], ['marshal', n.marshalPeers, n.vain.marshal]] as const) {
      for (const [p, { times }] of vain) {
        const blocked = book.isBlocked(this.nodes[p].peerId)
        if (times >= DEFAULT_STRIKES.limit && !blocked) { this.fail(`node ${n.index}: ${what} got nothing from ${p} on ${times} requests others answered, and it is not blocked`) }
        if (this.nodes[p].syncFault === 'stall' && !blocked && !n.struckOut.has(p)) { this.fail(`node ${n.index}: ${what} was stalled by ${p} on a request others answered, and never struck it out`) }
      }
    }
    for (const p of n.struckOut) { if (!byzantine.has(p)) { this.fail(`node ${n.index}: the strike rule blocked honest node ${p}`) } }
    for (const p of n.blamed) { if (!byzantine.has(p)) { this.fail(`node ${n.index}: marshal blocked honest node ${p}`) } }
    for (const p of n.syncBlamed) { if (!byzantine.has(p)) { this.fail(`node ${n.index}: state sync blocked honest node ${p}`) } }
    for (const p of n.gossipRejected) { if (!byzantine.has(p)) { this.fail(`node ${n.index}: the topic validator rejected gossip from honest node ${p}`) } }
  }

  /** Every node's committed roots equal its finalized block's at that height, and agree across nodes. */
  async checkRoots (): Promise<void> {
    const rootsAt = new Map<number, string>()
    for (const n of this.nodes) {
      const s = n.stateful
      const m = n.marshal
      const app = n.app
      if (s === undefined || m === undefined || app === undefined) { continue }
      let got: { h: number, roots: string } | undefined
      void s.readApplied((set, h) => ({ h, roots: rootsOf(set.committedTargets()) })).then(r => { got = r }, () => {})
      await this.runUntil(() => got !== undefined, 5000)
      if (got === undefined) {
        this.fail(`node ${n.index}: applied state unreadable`)
        continue
      }
      const block = await m.getFinalizedBlock(got.h)
      if (block === undefined) {
        this.fail(`node ${n.index}: no finalized block at its applied height ${got.h}`)
        continue
      }
      const expected = rootsOf(app.syncTargets(block))
      if (expected !== got.roots) { this.fail(`node ${n.index}: roots at ${got.h} ${got.roots} differ from its block's ${expected}`) }
      const other = rootsAt.get(got.h)
      if (other !== undefined && other !== got.roots) { this.fail(`roots differ between nodes at height ${got.h}`) }
      rootsAt.set(got.h, got.roots)
      this.trace.record(this.clock.now, `final ${n.index} h${got.h} ${got.roots}`)
    }
  }

  async stopAll (): Promise<void> {
    let stopped = false
    void Promise.all(this.nodes.map(async n => n.stop())).finally(() => { stopped = true })
    await this.clock.run(() => stopped, this.clock.now + 30_000)
  }

  /**
   * After every node stopped, nothing may keep running: what is still armed
   * (messages in flight, deadlines of abandoned requests) fires within
   * `QUIET_MS` of virtual time and arms nothing new, and the run leaves no
   * more wall-clock timers than there were before it (`realBefore`). A stop
   * that leaves a loop or an interval behind, or work that escaped the
   * virtual clock, would otherwise pile up across a sweep unseen.
   */
  async checkQuiet (realBefore: number): Promise<void> {
    this.over = true
    const fired = this.clock.fired
    await this.clock.run(() => this.clock.pending === 0 || this.clock.fired - fired > QUIET_FIRES, this.clock.now + QUIET_MS)
    if (this.clock.pending > 0) { this.fail(`hygiene: ${this.clock.pending} virtual timer(s) still armed after every node stopped (${this.clock.fired - fired} fired meanwhile)`) }
    const real = realTimers() - realBefore
    if (real > 0) { this.fail(`hygiene: the run left ${real} wall-clock timer(s) behind`) }
  }
}

/** How long (virtual) and how many timer firings the stopped nodes get to go quiet. */
const QUIET_MS = 600_000
const QUIET_FIRES = 10_000

/** Wall-clock timers and immediates holding the process open now. */
function realTimers (): number {
  return process.getActiveResourcesInfo().filter(r => r === 'Timeout' || r === 'Immediate').length
}

export async function runSeed (seed: number, options: SimOptions = {}): Promise<RunResult> {
  const started = performance.now()
  const count = (options.validators ?? 4) + 2
  const keys = await Promise.all(Array.from({ length: count }, async (_, i) =>
    generateKeyPairFromSeed('Ed25519', new Uint8Array(createHash('sha256').update(`qmdb-sim:${seed}:${i}`).digest()))))
  const run = new Run(seed, options, keys)
  const realBefore = realTimers()
  const onRejection = (reason: unknown): void => { run.fail(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`) }
  run.clock.install()
  process.on('unhandledRejection', onRejection)
  try {
    run.schedule()
    if (options.leakInterval === true) { setInterval(() => {}, 1000) }
    await run.clock.run(() => run.failures.length > 0, run.faultMs)
    if (run.failures.length === 0) { await run.converge() }
    run.checkHistory()
    await run.checkRoots()
    await run.stopAll()
    if (run.failures.length === 0) { await run.checkQuiet(realBefore) }
  } finally {
    process.off('unhandledRejection', onRejection)
    run.clock.uninstall()
  }
  run.faults.duplicate = run.net.counts.duplicated
  run.faults.equivocate = run.nodes.reduce((a, n) => a + n.equivocations, 0)
  return {
    seed,
    hash: run.trace.digest(),
    failures: run.failures,
    height: run.height,
    faults: run.faults,
    messages: { ...run.net.counts },
    byzantine: {
      reached: run.nodes.reduce((a, n) => a + n.lied.size + n.syncLied.size, 0),
      blamed: run.nodes.reduce((a, n) => a + n.blamed.size + n.syncBlamed.size, 0),
      stalled: run.nodes.reduce((a, n) => a + new Set([...n.vain.sync.keys(), ...n.vain.marshal.keys()]).size, 0),
      struck: run.nodes.reduce((a, n) => a + n.struckOut.size, 0)
    },
    gossip: {
      accept: run.nodes.reduce((a, n) => a + n.gossip.accept, 0),
      ignore: run.nodes.reduce((a, n) => a + n.gossip.ignore, 0),
      reject: run.nodes.reduce((a, n) => a + n.gossip.reject, 0)
    },
    syncHeight: run.nodes.find(n => n.stateSync)?.syncHeight,
    virtualMs: run.clock.now,
    realMs: performance.now() - started,
    tail: run.trace.last()
  }
}

/** The roots of a set of sync targets, as one comparable string. */
function rootsOf (targets: Record<string, unknown>): string {
  return Object.keys(targets).sort().map(k => `${k}=${hex((targets[k] as { root: Uint8Array }).root).slice(0, 16)}`).join(',')
}
