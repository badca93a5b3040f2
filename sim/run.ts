/**
 * One seeded run of the simulation and its invariants.
 *
 * A run is a pure function of its seed: the seed picks the link model, the
 * application's load, the faults and their times; keys are derived from it;
 * time is virtual (`clock.ts`) and storage in memory, so replaying a seed
 * replays the same events and yields the same trace hash.
 *
 * Phases: validators start at time 0, joiners at a seeded time; during the
 * fault phase the seeded faults happen (partitions that heal, one-way
 * links, crashes with process or power loss and restarts, a silent or
 * lying validator — at most f validators are ever faulty); then every link
 * heals, every crashed node restarts, and the run waits (bounded, in
 * virtual time) until every node has processed a common target height.
 *
 * Invariants checked on every run:
 * - agreement: no two nodes (nor one node across restarts) deliver
 *   different blocks at one height;
 * - state: every node's committed database roots equal the roots its
 *   finalized block at that height commits to, and nodes at one height have
 *   identical roots;
 * - liveness after healing: every node, joiners included, reaches the target;
 * - durability: after a restart (even on power loss) the applied height is
 *   at least the highest height acknowledged before the crash;
 * - every byzantine block server whose garbage reached a node is blamed by it;
 * - no fatal error, no unhandled rejection, no exception from a timer.
 */
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { ledgerApplication } from '../src/cli/ledger.ts'
import { hex } from '../src/codec/index.ts'
import { ValidatorSet, finalizationScheme } from '../src/consensus/index.ts'
import { VirtualClock } from './clock.ts'
import { SimNetwork } from './network.ts'
import { SimNode } from './node.ts'
import { Trace } from './trace.ts'
import { Rng } from '../test/util/rng.ts'
import type { SimContext } from './node.ts'
import type { CrashKind } from './storage.ts'
import type { LedgerBlock, LedgerDbs } from '../src/examples/ledger/index.ts'

export interface SimOptions {
  validators?: number
  joiners?: number
  /** Virtual length of the fault phase (ms). */
  faultMs?: number
  /** Virtual time the network gets to converge after healing (ms). */
  settleMs?: number
  /**
   * Storage that ignores fsync, so a power loss loses acknowledged state:
   * only for checking that the simulator detects it.
   */
  brokenSync?: boolean
}

export const FAULT_KINDS = ['partition', 'one-way', 'crash-process', 'crash-power', 'silent', 'byzantine-blocks', 'joiner-crash'] as const
export type FaultKind = typeof FAULT_KINDS[number]

export interface RunResult {
  seed: number
  /** SHA-256 over the run's event trace (replaying the seed must reproduce it). */
  hash: string
  failures: string[]
  /** Height every node reached (the convergence target). */
  height: number
  faults: Record<FaultKind, number>
  messages: { sent: number, delivered: number, dropped: number }
  virtualMs: number
  realMs: number
  /** The last trace lines (for a failing run). */
  tail: string[]
}

type Node = SimNode<LedgerBlock, LedgerDbs>

function chance (rng: Rng, p: number): boolean {
  return rng.u32() / 0x100000000 < p
}

export async function runSeed (seed: number, options: SimOptions = {}): Promise<RunResult> {
  const started = performance.now()
  const nv = options.validators ?? 4
  const nj = options.joiners ?? 1
  const f = Math.floor((nv - 1) / 3)
  const faultMs = options.faultMs ?? 6000
  const settleMs = options.settleMs ?? 60_000
  const rng = new Rng(seed)
  const trace = new Trace()
  const clock = new VirtualClock()
  const failures: string[] = []
  const faults = Object.fromEntries(FAULT_KINDS.map(k => [k, 0])) as Record<FaultKind, number>
  const fail = (what: string): void => {
    failures.push(what)
    trace.record(clock.now, `FAIL ${what}`)
  }
  const onRejection = (reason: unknown): void => { fail(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`) }

  const keys = await Promise.all(Array.from({ length: nv + nj }, async (_, i) =>
    generateKeyPairFromSeed('Ed25519', new Uint8Array(createHash('sha256').update(`qmdb-sim:${seed}:${i}`).digest()))))
  const net = new SimNetwork(clock, rng, trace, {
    latencyMs: 1 + rng.int(30),
    jitterMs: 1 + rng.int(40),
    dropRate: rng.pick([0, 0, 0.01, 0.05, 0.1])
  })
  const application = ledgerApplication({ autoTransfers: 1 + rng.int(6), accountSpace: 64 })
  const nodes: Node[] = []
  const ctx: SimContext<LedgerBlock, LedgerDbs> = {
    net,
    rng,
    trace,
    now: () => clock.now,
    nodes,
    application,
    set: undefined as unknown as ValidatorSet,
    scheme: undefined as unknown as SimContext<LedgerBlock, LedgerDbs>['scheme'],
    honourSync: options.brokenSync !== true,
    timing: { leaderTimeoutMs: 400, notarizationTimeoutMs: 800, retryMs: 400, blockIntervalMs: 50 + rng.int(100) }
  }
  trace.record(0, `seed ${seed} model ${JSON.stringify(net.model)} timing ${JSON.stringify(ctx.timing)}`)

  clock.install()
  process.on('unhandledRejection', onRejection)
  let height = -1
  try {
    for (let i = 0; i < nv + nj; i++) { nodes.push(new SimNode(ctx, i, keys[i], i < nv)) }
    ctx.set = new ValidatorSet('sim', nodes.slice(0, nv).map(n => n.peerId))
    ctx.scheme = finalizationScheme(ctx.set)
    const all = nodes.map(n => n.index)

    // a node (re)starts; after a restart its applied state must cover what it acknowledged before
    const starting = new Set<Promise<void>>()
    const startingNodes = new Set<number>()
    const start = (n: Node, ackedBefore: number): void => {
      if (n.up || startingNodes.has(n.index)) { return }
      startingNodes.add(n.index)
      const p = (async () => {
        net.setUp(n.index, true)
        await n.start()
        const applied = await n.stateful?.readApplied((_set, h) => h).catch(() => undefined)
        if (applied !== undefined && applied < ackedBefore) { fail(`node ${n.index}: acknowledged height ${ackedBefore} lost after restart (applied ${applied})`) }
      })().catch(err => {
        if (n.up) { fail(`node ${n.index}: start failed: ${(err as Error).message}`) }
      }).finally(() => {
        starting.delete(p)
        startingNodes.delete(n.index)
      })
      starting.add(p)
    }
    const crash = (n: Node, kind: CrashKind): number | undefined => {
      if (!n.up) { return undefined }
      const acked = n.acked
      trace.record(clock.now, `crash ${n.index} ${kind} acked ${acked}`)
      net.setUp(n.index, false)
      n.crash(kind)
      return acked
    }
    const at = (t: number, what: () => void): void => { clock.schedule(what, t, undefined) }

    // the schedule, drawn from the seed before anything runs
    for (let i = 0; i < nv; i++) { start(nodes[i], -1) }
    for (let j = nv; j < nv + nj; j++) { at(rng.int(faultMs), () => { trace.record(clock.now, `join ${j}`); start(nodes[j], -1) }) }
    for (let k = rng.int(3); k > 0; k--) {
      const t = rng.int(faultMs)
      const side = all.filter(() => chance(rng, 0.4))
      const length = 200 + rng.int(2000)
      if (side.length === 0 || side.length === all.length) { continue }
      faults.partition++
      at(t, () => { trace.record(clock.now, `partition ${side.join(',')}`); net.partition(side, all) })
      at(t + length, () => { trace.record(clock.now, 'heal'); net.healAll() })
    }
    for (let k = rng.int(2); k > 0; k--) {
      const a = rng.int(all.length)
      const b = (a + 1 + rng.int(all.length - 1)) % all.length
      const t = rng.int(faultMs)
      faults['one-way']++
      at(t, () => { trace.record(clock.now, `cut ${a}>${b}`); net.cutLink(a, b) })
      at(t + 200 + rng.int(2000), () => { trace.record(clock.now, 'heal'); net.healAll() })
    }
    // at most f faulty validators
    for (const v of Array.from({ length: f }, () => rng.int(nv)).filter((x, i, a) => a.indexOf(x) === i)) {
      const node = nodes[v]
      const mode = rng.pick(['crash', 'crash', 'silent', 'byzantine-blocks', 'none'] as const)
      if (mode === 'crash') {
        let t = rng.int(faultMs / 2)
        for (let k = 1 + rng.int(3); k > 0; k--) {
          const kind: CrashKind = chance(rng, 0.5) ? 'power' : 'process'
          const down = 100 + rng.int(1500)
          faults[kind === 'power' ? 'crash-power' : 'crash-process']++
          at(t, () => {
            const acked = crash(node, kind)
            if (acked !== undefined) { at(down, () => { trace.record(clock.now, `restart ${v}`); start(node, acked) }) }
          })
          t += down + 100 + rng.int(1500)
        }
      } else if (mode === 'silent') {
        faults.silent++
        at(rng.int(faultMs), () => { trace.record(clock.now, `silent ${v}`); node.silence() })
      } else if (mode === 'byzantine-blocks') {
        faults['byzantine-blocks']++
        node.lieAboutBlocks = true
        trace.record(0, `byzantine-blocks ${v}`)
      }
    }
    for (let j = nv; j < nv + nj; j++) {
      if (chance(rng, 0.5)) {
        const node = nodes[j]
        const kind: CrashKind = chance(rng, 0.5) ? 'power' : 'process'
        faults['joiner-crash']++
        at(rng.int(faultMs * 2), () => {
          const acked = crash(node, kind)
          if (acked !== undefined) { at(100 + rng.int(1000), () => { trace.record(clock.now, `restart ${j}`); start(node, acked) }) }
        })
      }
    }

    await clock.run(() => failures.length > 0, faultMs)

    // heal: every link back, every crashed node restarted (joiners that never started start now)
    if (failures.length === 0) {
      net.healAll()
      trace.record(clock.now, 'heal all')
      for (const n of nodes) { if (!n.up) { start(n, n.acked) } }
      await clock.run(() => starting.size === 0 || failures.length > 0, clock.now + settleMs)
      height = Math.max(...nodes.map(n => n.acked)) + 2
      trace.record(clock.now, `target ${height}`)
      const reached = await clock.run(() => failures.length > 0 || nodes.every(n => n.acked >= height), clock.now + settleMs)
      if (!reached && failures.length === 0) {
        fail(`liveness: not every node reached height ${height} within ${settleMs} ms after healing (${nodes.map(n => `${n.index}:${n.acked}`).join(' ')})`)
      }
    }

    // invariants on the final state
    const byHeight = new Map<number, { digest: string, from: number }>()
    for (const n of nodes) {
      for (const c of n.conflicts) { fail(`node ${n.index} delivered two blocks at one height: ${c}`) }
      for (const e of n.fatal) { fail(`node ${n.index}: fatal ${e.message}`) }
      for (const liar of n.lied) { if (!n.blamed.has(liar)) { fail(`node ${n.index} got garbage from ${liar} and did not blame it`) } }
      for (const [h, digest] of n.delivered) {
        const seen = byHeight.get(h)
        if (seen === undefined) { byHeight.set(h, { digest, from: n.index }) } else if (seen.digest !== digest) { fail(`agreement: height ${h}: node ${seen.from} ${seen.digest}, node ${n.index} ${digest}`) }
      }
    }
    const rootsAt = new Map<number, string>()
    for (const n of nodes) {
      const s = n.stateful
      const m = n.marshal
      const app = n.app
      if (s === undefined || m === undefined || app === undefined) { continue }
      const read = s.readApplied((set, h) => ({ h, roots: rootsOf(set.committedTargets()) }))
      await clock.run(() => false, clock.now)
      const got = await Promise.race([read, new Promise<undefined>(resolve => { clock.schedule(() => { resolve(undefined) }, 5000, undefined) })])
      await clock.run(() => false, clock.now + 1)
      if (got === undefined) { fail(`node ${n.index}: applied state unreadable`); continue }
      const block = await m.getFinalizedBlock(got.h)
      if (block === undefined) { fail(`node ${n.index}: no finalized block at its applied height ${got.h}`); continue }
      const expected = rootsOf(app.syncTargets(block))
      if (expected !== got.roots) { fail(`node ${n.index}: roots at ${got.h} ${got.roots} differ from its block's ${expected}`) }
      const other = rootsAt.get(got.h)
      if (other !== undefined && other !== got.roots) { fail(`roots differ between nodes at height ${got.h}`) }
      rootsAt.set(got.h, got.roots)
      trace.record(clock.now, `final ${n.index} h${got.h} ${got.roots}`)
    }
    for (const e of clock.uncaught) { fail(`exception in a timer: ${String((e as Error)?.stack ?? e)}`) }

    const stopping = Promise.all(nodes.map(async n => n.stop()))
    let stopped = false
    void stopping.finally(() => { stopped = true })
    await clock.run(() => stopped, clock.now + 30_000)
  } finally {
    process.off('unhandledRejection', onRejection)
    clock.uninstall()
  }
  return {
    seed,
    hash: trace.digest(),
    failures,
    height,
    faults,
    messages: { ...net.counts },
    virtualMs: clock.now,
    realMs: performance.now() - started,
    tail: trace.last()
  }
}

/** The roots of a set of sync targets, as one comparable string. */
function rootsOf (targets: Record<string, unknown>): string {
  return Object.keys(targets).sort().map(k => `${k}=${hex((targets[k] as { root: Uint8Array }).root).slice(0, 16)}`).join(',')
}
