/**
 * Lying sources against the sync engine: a wrapper tampers the answers of an
 * honest `LocalSource` over a real database (wrong, shifted or reordered
 * operations, tampered / extra / missing proof digests, a wrong `leaves`, a
 * proof for another size, a wrong inactive-peak count, too many or zero
 * operations, the wrong response variant, tampered / missing / extra pinned
 * nodes, garbage). For every kind and every lie:
 *
 * - with feedback, every lie gets exactly one verdict, `false`, every honest
 * answer at most one, `true`, and the sync completes with the target root
 * and the server's exact operation bytes (nothing a liar sent was applied);
 * - without feedback, a lie ends the sync with `InvalidResponse`, what was
 * persisted is only honest data, and a later honest sync completes;
 * - liars mixed with an honest source (round-robin or random) still converge;
 * - random type-valid mutations never make the engine throw anything but a
 * `SyncError`; sources throwing anything give `SyncError('Source')`.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { CompactImmutableDb, CompactKeylessDb, FullSyncJournal } from '../../src/qmdb/index.ts'
import { LocalSource, ServeError, SyncError, compactSync, compactToTarget, syncDatabase } from '../../src/sync/index.ts'
import { flip } from '../util/bytes.ts'
import { tamperOp } from '../util/p2p-malicious.ts'
import { Rng } from '../util/rng.ts'
import { FULL_KINDS, isCurrent, expectSynced, rejection, serverWith, settle, syncFull, until } from '../util/sync-fixtures.ts'
import { LyingSource, MixedSource } from '../util/sync-sources.ts'
import type { CompactDb, DbOptions, OpCodec, Target } from '../../src/qmdb/index.ts'
import type { Request, Response, Source } from '../../src/sync/index.ts'
import type { FullKind, Server } from '../util/sync-fixtures.ts'
import type { Tamper, Verdict } from '../util/sync-sources.ts'

const client = (): DbOptions => ({ datastore: new MemoryDatastore(), prefix: '/client' })
const digest = (b: number): Uint8Array => new Uint8Array(32).fill(b)

async function syncError (p: Promise<unknown>): Promise<SyncError> {
  const err = await rejection(p)
  expect(err, String(err)).to.be.instanceOf(SyncError)
  return err as SyncError
}

interface Ctx {
  server: Server
  inner: LocalSource
  codec: OpCodec<unknown>
  rng: Rng
}

/** Tamper one operation (still decodable, so only the proof can catch it). */
function tamperOneOp (c: Ctx, h: Response): Response {
  if (h.type === 'boundary') { return { ...h, op: tamperOp(h.op, c.codec) ?? flip(h.op, 0) } }
  const ops = h.ops.slice()
  const i = c.rng.int(ops.length)
  ops[i] = tamperOp(ops[i], c.codec) ?? flip(ops[i], 0)
  return { ...h, ops }
}

/** The honest answer to another request (a valid proof of something else). */
async function answer (c: Ctx, r: Request): Promise<Response> {
  return (await c.inner.serve(r, {})).response
}

/** Every way to lie; each always returns a response that differs from the honest one. */
const TAMPERS: Record<string, (c: Ctx) => Tamper> = {
  'wrong operation bytes': c => (_r, h) => tamperOneOp(c, h),
  'operations of another range (valid proof for another start)': c => async (r, h) => {
    const start = r.start + 1 < r.size ? r.start + 1 : r.start - 1
    if (start < c.server.db.pruningBoundary) { return tamperOneOp(c, h) }
    return answer(c, { ...r, start })
  },
  'reordered operations': c => (_r, h) => {
    if (h.type !== 'operations' || h.ops.length < 2) { return tamperOneOp(c, h) }
    const ops = h.ops.slice()
    const i = c.rng.int(ops.length - 1);
    [ops[i], ops[i + 1]] = [ops[i + 1], ops[i]]
    return { ...h, ops }
  },
  'tampered proof digest': c => (_r, h) => {
    if (h.proof.digests.length === 0) { return tamperOneOp(c, h) }
    const digests = h.proof.digests.slice()
    const i = c.rng.int(digests.length)
    digests[i] = flip(digests[i], c.rng.int(32), 1 << c.rng.int(8))
    return { ...h, proof: { ...h.proof, digests } }
  },
  'extra proof digest': c => (_r, h) => ({ ...h, proof: { ...h.proof, digests: [...h.proof.digests, c.rng.bytes(32)] } }),
  'missing proof digest': c => (_r, h) => h.proof.digests.length === 0 ? tamperOneOp(c, h) : { ...h, proof: { ...h.proof, digests: h.proof.digests.slice(1) } },
  'wrong leaves in the proof': c => (_r, h) => ({ ...h, proof: { ...h.proof, leaves: h.proof.leaves + (c.rng.int(2) === 0 ? 1 : -1) } }),
  'proof for another commit size': c => async (r, h) => {
    const base = c.server.db.pruningBoundary
    const sizes = [...c.server.targets.keys()].filter(s => s !== r.size && s > r.start && s - 1 >= base)
    if (sizes.length === 0) { return { ...h, proof: { ...h.proof, leaves: h.proof.leaves + 1 } } }
    return answer(c, { ...r, size: c.rng.pick(sizes) })
  },
  'wrong inactive-peak count': c => (_r, h) => ({ ...h, proof: { ...h.proof, inactivePeaks: h.proof.inactivePeaks === 0 ? 1 : h.proof.inactivePeaks - 1 } }),
  'too many operations (a valid proof of maxOps + 1)': c => async (r, h) => {
    if (r.type !== 'operations' || h.type !== 'operations') { return tamperOneOp(c, h) }
    if (r.start + r.maxOps < r.size) { return answer(c, { ...r, maxOps: r.maxOps + 1 }) }
    return { ...h, ops: [...h.ops, h.ops[h.ops.length - 1]] }
  },
  'zero operations': c => (_r, h) => h.type === 'operations' ? { ...h, ops: [] } : tamperOneOp(c, h),
  'wrong response variant': c => async (r, h) => {
    if (h.type === 'operations') { return { type: 'boundary', proof: h.proof, op: h.ops[0], pinnedNodes: await c.server.db.pinnedNodesAt(r.start) } }
    return { type: 'operations', proof: h.proof, ops: [h.op] }
  },
  'tampered pinned node': c => (_r, h) => {
    if (h.type !== 'boundary' || h.pinnedNodes.length === 0) { return tamperOneOp(c, h) }
    const pins = h.pinnedNodes.slice()
    const i = c.rng.int(pins.length)
    pins[i] = flip(pins[i], c.rng.int(32))
    return { ...h, pinnedNodes: pins }
  },
  'missing or extra pinned node': c => (_r, h) => {
    if (h.type !== 'boundary') { return tamperOneOp(c, h) }
    return { ...h, pinnedNodes: h.pinnedNodes.length > 0 && c.rng.int(2) === 0 ? h.pinnedNodes.slice(1) : [...h.pinnedNodes, digest(5)] }
  },
  garbage: c => r => {
    const proof = { leaves: r.size, inactivePeaks: c.rng.int(3), digests: Array.from({ length: c.rng.int(8) }, () => c.rng.bytes(32)) }
    if (r.type === 'boundary') { return { type: 'boundary', proof, op: c.rng.bytes(1 + c.rng.int(80)), pinnedNodes: Array.from({ length: c.rng.int(6) }, () => c.rng.bytes(32)) } }
    return { type: 'operations', proof, ops: Array.from({ length: 1 + c.rng.int(r.maxOps) }, () => c.rng.bytes(1 + c.rng.int(80))) }
  }
}
const TAMPER_NAMES = Object.keys(TAMPERS)

/** Pruned server (floor > 0, so boundaries and pins are exercised). */
async function prunedServer (kind: FullKind, seed: number): Promise<Server> {
  const server = await serverWith(kind, isCurrent(kind) ? 420 : 140, { seed })
  await server.db.prune(server.db.syncBoundary)
  expect(server.target().range.start).to.be.greaterThan(0)
  return server
}

function ctx (server: Server, seed: number): Ctx {
  return { server, inner: new LocalSource(server.db), codec: server.db.codec as OpCodec<unknown>, rng: new Rng(seed) }
}

/** Each lie got exactly one verdict, false; each honest answer at most one, true. */
function expectVerdicts (verdicts: Verdict[]): void {
  for (const v of verdicts) {
    if (v.lie) {
      expect(v.calls, `verdict on a lie for ${JSON.stringify(v.request)}`).to.deep.equal([false])
    } else {
      expect(v.calls.length).to.be.at.most(1)
      expect(v.calls.every(c => c)).to.equal(true)
    }
  }
}

/** Everything persisted in the client's journal is the server's data. */
async function expectOnlyHonestPersisted (opts: DbOptions, server: Server, target: Target): Promise<number> {
  await settle()
  const journal = await FullSyncJournal.open(opts, target.range)
  for (let loc = journal.start; loc < journal.size; loc++) {
    expect(await journal.read(loc)).to.deep.equal(await server.db.readOpBytes(loc), `persisted operation ${loc}`)
  }
  return journal.size - journal.start
}

describe('sync engine: lying sources', function () {
  this.timeout(60_000)

  for (const kind of FULL_KINDS) {
    describe(`${kind}, with feedback: every other answer is a lie`, () => {
      const fixture: { server?: Server } = {}
      before(async () => { fixture.server = await prunedServer(kind, 80) })

      for (const [i, name] of TAMPER_NAMES.entries()) {
        it(name, async () => {
          const server = fixture.server as Server
          const c = ctx(server, 100 + i)
          const liar = new LyingSource(c.inner, TAMPERS[name](c), { lieOn: n => n % 2 === 0 })
          const target = server.target()
          const db = await syncFull(kind, target, liar, { db: client(), fetchBatchSize: 6, maxOutstandingRequests: 3 })
          await expectSynced(db, server, target)
          expectVerdicts(liar.verdicts)
          expect(liar.lies.length).to.be.greaterThan(2)
          // the first request is the boundary: the pins were lied about too
          expect(liar.lies.some(v => v.request.type === 'boundary')).to.equal(true)
          expect(liar.truths.filter(v => v.calls[0]).length).to.be.greaterThan(0)
        })
      }
    })
  }

  for (const kind of ['any', 'keyless'] as const) {
    describe(`${kind}, without feedback: a lie is terminal, nothing lied about is persisted`, () => {
      const fixture: { server?: Server } = {}
      before(async () => { fixture.server = await prunedServer(kind, 81) })

      for (const [i, name] of TAMPER_NAMES.entries()) {
        it(name, async () => {
          const server = fixture.server as Server
          const c = ctx(server, 200 + i)
          const target = server.target()
          const opts = client()
          // two honest answers (the boundary and a batch), then a lie
          const liar = new LyingSource(c.inner, TAMPERS[name](c), { feedback: false, lieOn: n => n === 2 })
          const err = await syncError(syncFull(kind, target, liar, { db: opts, fetchBatchSize: 6, maxOutstandingRequests: 1 }))
          expect(err.code).to.equal('InvalidResponse')
          expect(liar.lies.length).to.equal(1)
          const kept = await expectOnlyHonestPersisted(opts, server, target)
          expect(kept).to.be.at.most(7)
          // an honest source then completes the sync from what was kept
          const db = await syncFull(kind, target, c.inner, { db: opts, fetchBatchSize: 6 })
          await expectSynced(db, server, target)
        })
      }
    })
  }

  describe('liars mixed with an honest source', () => {
    for (const kind of FULL_KINDS) {
      it(`${kind}: round-robin over two liars and an honest source, and a random mix`, async () => {
        const server = await prunedServer(kind, 82)
        const target = server.target()
        for (const mode of ['round-robin', 'random'] as const) {
          const c = ctx(server, 300)
          const liars = [TAMPERS['tampered proof digest'](c), TAMPERS['tampered pinned node'](c), TAMPERS['operations of another range (valid proof for another start)'](c), TAMPERS.garbage(c)]
            .map(t => new LyingSource(c.inner, t, { lieOn: () => true }))
          const honest = new LyingSource(c.inner, () => undefined, { lieOn: () => false })
          const all = mode === 'round-robin' ? [liars[0], liars[1], honest] : [...liars, honest]
          const rng = new Rng(301)
          const mixed = new MixedSource(all, mode === 'round-robin' ? undefined : () => rng.int(all.length))
          const db = await syncFull(kind, target, mixed, { db: client(), fetchBatchSize: 8, maxOutstandingRequests: 4 })
          await expectSynced(db, server, target)
          for (const s of all) { expectVerdicts(s.verdicts) }
          expect(all.filter(s => s !== honest).every(s => s.verdicts.length === 0 || s.lies.length === s.verdicts.length)).to.equal(true)
          expect(liars.reduce((n, s) => n + s.lies.length, 0)).to.be.greaterThan(3)
        }
      })
    }
  })

  describe('random type-valid mutations only ever produce typed errors', () => {
    /** A number a liar might put in a proof field. */
    const weird = (rng: Rng, r: Request): number => rng.pick([-1, 0.5, Number.NaN, Number.MAX_SAFE_INTEGER, 2 ** 53, 1e300, rng.int(64), r.size, r.start])
    const bytes = (rng: Rng): Uint8Array => rng.bytes(rng.pick([0, 1, 31, 32, 33, 64, rng.int(100)]))

    /** Replace, insert or delete one element of `list`. */
    function mutateList (rng: Rng, list: Uint8Array[]): void {
      const k = rng.int(3)
      if (k === 0 && list.length > 0) {
        list[rng.int(list.length)] = bytes(rng)
      } else if (k === 1) {
        list.splice(rng.int(list.length + 1), 0, bytes(rng))
      } else {
        list.splice(rng.int(list.length), 1)
      }
    }

    /** One random mutation of `m` (in place, or a new response of the other variant). */
    function mutateOnce (rng: Rng, r: Request, m: Response): Response {
      switch (rng.int(8)) {
        case 0: m.proof.leaves = rng.int(4) === 0 ? weird(rng, r) : r.size + rng.pick([-1, 1]); return m
        case 1: m.proof.inactivePeaks = weird(rng, r); return m
        case 2: mutateList(rng, m.proof.digests); return m
        case 3:
          if (m.type === 'operations') { mutateList(rng, m.ops) } else { m.op = bytes(rng) }
          return m
        case 4:
          if (m.type === 'boundary') { mutateList(rng, m.pinnedNodes) } else { mutateList(rng, m.ops) }
          return m
        case 5:
          return m.type === 'operations'
            ? { type: 'boundary', proof: m.proof, op: m.ops[0] ?? bytes(rng), pinnedNodes: [bytes(rng)] }
            : { type: 'operations', proof: m.proof, ops: [m.op] }
        case 6:
          if (m.type === 'operations') { m.ops.reverse() }
          return m
        default:
          if (m.proof.digests.length > 0) { m.proof.digests.reverse() }
          return m
      }
    }

    /** Apply 1-3 random mutations to a copy of `h`. */
    function mutate (rng: Rng, r: Request, h: Response): Response {
      let m: Response = h.type === 'operations'
        ? { ...h, proof: { ...h.proof, digests: h.proof.digests.slice() }, ops: h.ops.slice() }
        : { ...h, proof: { ...h.proof, digests: h.proof.digests.slice() }, pinnedNodes: h.pinnedNodes.slice() }
      for (let n = 1 + rng.int(3); n > 0; n--) { m = mutateOnce(rng, r, m) }
      return m
    }

    const same = (a: Response, b: Response): boolean => {
      try {
        expect(a).to.deep.equal(b)
        return true
      } catch {
        return false
      }
    }

    for (const kind of FULL_KINDS) {
      it(`${kind}: 40 mutated syncs with feedback complete; 40 without feedback fail only with InvalidResponse`, async () => {
        const server = await prunedServer(kind, 83)
        const target = server.target()
        const inner = new LocalSource(server.db)
        for (let seed = 0; seed < 40; seed++) {
          const rng = new Rng(1000 + seed)
          const tamper: Tamper = (r, h) => {
            const m = mutate(rng, r, h)
            return same(m, h) ? undefined : m
          }
          const liar = new LyingSource(inner, tamper, { lieOn: () => rng.int(3) === 0 })
          const db = await syncFull(kind, target, liar, { fetchBatchSize: 1 + rng.int(12), maxOutstandingRequests: 1 + rng.int(4) })
          await expectSynced(db, server, target)
          expectVerdicts(liar.verdicts)

          const final = new LyingSource(inner, tamper, { feedback: false, lieOn: () => rng.int(2) === 0 })
          try {
            await syncFull(kind, target, final, { fetchBatchSize: 1 + rng.int(12), maxOutstandingRequests: 1 + rng.int(4) })
            expect(final.lies.length, `seed ${seed}: completed although lied to`).to.equal(0)
          } catch (err) {
            expect(err, `seed ${seed}: ${String(err)}`).to.be.instanceOf(SyncError)
            expect((err as SyncError).code, `seed ${seed}`).to.equal('InvalidResponse')
            expect(final.lies.length).to.be.greaterThan(0)
          }
        }
      })
    }
  })

  describe('failing and silent sources', () => {
    it('a source throwing anything ends the sync with SyncError(Source) carrying the cause', async () => {
      const server = await prunedServer('keyless', 84)
      const target = server.target()
      const inner = new LocalSource(server.db)
      const throws: unknown[] = [new ServeError('ItemPruned', 'gone'), new TypeError('bad'), 'a string', undefined, 42]
      for (const thrown of throws) {
        let n = 0
        const source: Source = {
          async serve (r, o) {
            if (n++ === 1) { throw thrown }
            return inner.serve(r, o)
          }
        }
        const err = await syncError(syncFull('keyless', target, source, { maxOutstandingRequests: 1 }))
        expect(err.code).to.equal('Source')
        expect(err.cause).to.equal(thrown)
      }
    })

    it('a silent source and an aborted sync: SyncError(Aborted)', async () => {
      const server = await prunedServer('any', 85)
      const ac = new AbortController()
      let asked = 0
      const source: Source = {
        async serve (_r, o) {
          asked++
          return new Promise((_resolve, reject) => { o.signal?.addEventListener('abort', () => { reject(new ServeError('Aborted')) }) })
        }
      }
      const run = syncFull('any', server.target(), source, { signal: ac.signal })
      await until(() => asked > 0, 'a request')
      ac.abort()
      expect((await syncError(run)).code).to.equal('Aborted')
    })
  })

  describe('compact sync from lying sources', () => {
    const compacts: Array<['immutable' | 'keyless', (o?: DbOptions) => Promise<CompactDb<any>>]> = [
      ['immutable', async o => CompactImmutableDb.open(o)],
      ['keyless', async o => CompactKeylessDb.open(o)]
    ]
    for (const [kind, open] of compacts) {
      it(`compact ${kind}: every lie is rejected (feedback) or terminal (no feedback) and leaves the durable state untouched`, async () => {
        const server = await serverWith(kind, 120, { seed: 86 })
        await server.db.prune(server.db.syncBoundary)
        const ct = { root: server.db.opsRoot, size: server.db.size }
        for (const [i, name] of TAMPER_NAMES.entries()) {
          const c = ctx(server, 400 + i)
          const liar = new LyingSource(c.inner, TAMPERS[name](c), { lieOn: n => n < 2 })
          const db = await open()
          await syncDatabase({ kind: compactSync(db), target: compactToTarget(ct), source: liar })
          expect(db.root, name).to.deep.equal(ct.root)
          expect(liar.verdicts.map(v => [v.lie, v.calls]), name).to.deep.equal([[true, [false]], [true, [false]], [false, [true]]])

          const opts = client()
          const dest = await open(opts)
          const before = dest.syncTarget()
          const final = new LyingSource(c.inner, TAMPERS[name](c), { feedback: false, lieOn: () => true })
          const err = await syncError(syncDatabase({ kind: compactSync(dest), target: compactToTarget(ct), source: final }))
          expect(err.code, name).to.equal('InvalidResponse')
          expect(dest.syncTarget()).to.deep.equal(before)
          expect((await open(opts)).syncTarget()).to.deep.equal(before)
        }
      })
    }
  })
})
