import { expect } from 'aegir/chai'
import { verifyProofAndPinnedNodes, verifyRangeProof } from '../../src/merkle/index.ts'
import { AnyDb, QmdbError } from '../../src/qmdb/index.ts'
import { LocalSource, toServeError } from '../../src/sync/local-source.ts'
import { decodeResponse, encodeResponse } from '../../src/sync/messages.ts'
import { ServeError } from '../../src/sync/source.ts'
import { DB_KINDS, makeFixture } from '../util/p2p-fixtures.ts'
import { Rng } from '../util/rng.ts'
import type { ServeErrorCode } from '../../src/sync/source.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'

async function serveError (p: Promise<unknown>): Promise<ServeErrorCode> {
  try {
    await p
  } catch (err) {
    expect(err).to.be.instanceOf(ServeError)
    return (err as ServeError).code
  }
  throw new Error('expected a ServeError')
}

/** Serve every (commit size, start) pair of `f` (sampled) and check each proof against the root at that size. */
async function checkAllSizes (f: Fixture, source: LocalSource, rng: Rng): Promise<number> {
  let checked = 0
  for (const [size, root] of f.roots) {
    for (let t = 0; t < 6; t++) {
      const start = rng.int(size)
      const maxOps = 1 + rng.int(20)
      const { response, feedback } = await source.serve({ type: 'operations', size, start, maxOps }, {})
      expect(feedback).to.equal(undefined)
      if (response.type !== 'operations') { throw new Error('wrong variant') }
      expect(response.ops.length).to.equal(Math.min(maxOps, size - start))
      expect(response.proof.leaves).to.equal(size)
      expect(verifyRangeProof(response.proof, start, response.ops, root)).to.equal(true)
      // the exact bytes survive the wire encoding
      const again = decodeResponse(encodeResponse(response), { type: 'operations', size, start, maxOps }, f.codec)
      expect(again).to.deep.equal(response)

      const b = await source.serve({ type: 'boundary', size, start }, {})
      if (b.response.type !== 'boundary') { throw new Error('wrong variant') }
      expect(verifyProofAndPinnedNodes(b.response.proof, start, [b.response.op], b.response.pinnedNodes, root)).to.equal(true)
      expect(decodeResponse(encodeResponse(b.response), { type: 'boundary', size, start }, f.codec)).to.deep.equal(b.response)
      checked++
    }
  }
  return checked
}

describe('sync: local source', () => {
  for (const kind of DB_KINDS) {
    it(`${kind}: historical ranges and boundaries verify against the root at every commit size`, async () => {
      const f = await makeFixture(kind, 3, 12)
      const source = new LocalSource(f.db)
      const checked = await checkAllSizes(f, source, new Rng(11))
      expect(checked).to.equal(f.roots.size * 6)
      await f.db.close()
    })
  }

  it('a tampered response does not verify (what the engine relies on)', async () => {
    const f = await makeFixture('any', 5, 6)
    const source = new LocalSource(f.db)
    const size = f.db.size
    const root = f.roots.get(size)!
    const { response } = await source.serve({ type: 'boundary', size, start: 5 }, {})
    if (response.type !== 'boundary') { throw new Error('wrong variant') }
    const op = response.op.slice()
    op[3] ^= 1
    expect(verifyProofAndPinnedNodes(response.proof, 5, [op], response.pinnedNodes, root)).to.equal(false)
    const pins = response.pinnedNodes.map(p => p.slice())
    pins[0][0] ^= 1
    expect(verifyProofAndPinnedNodes(response.proof, 5, [response.op], pins, root)).to.equal(false)
    await f.db.close()
  })

  it('maps database errors to ServeError codes', async () => {
    const f = await makeFixture('keyless', 9, 8)
    const db = f.db
    const source = new LocalSource(db)
    const size = db.size
    expect(await serveError(source.serve({ type: 'operations', size: size + 1, start: 0, maxOps: 1 }, {}))).to.equal('RangeOutOfBounds')
    expect(await serveError(source.serve({ type: 'boundary', size: size + 5, start: 2 }, {}))).to.equal('RangeOutOfBounds')
    expect(await serveError(source.serve({ type: 'boundary', size: 3, start: 3 }, {}))).to.equal('RangeOutOfBounds')
    // a size that is not a commit boundary has no governing floor
    const nonCommit = [...f.roots.keys()].sort((a, b) => a - b).find((s, i, all) => i > 0 && all[i - 1] + 1 < s)!
    expect(await serveError(source.serve({ type: 'operations', size: nonCommit - 1, start: 0, maxOps: 1 }, {}))).to.equal('HistoricalFloorPruned')
    // pruned history
    await db.prune(db.inactivityFloor)
    expect(db.pruningBoundary).to.be.greaterThan(1)
    expect(await serveError(source.serve({ type: 'operations', size, start: 0, maxOps: 4 }, {}))).to.equal('ItemPruned')
    expect(await serveError(source.serve({ type: 'boundary', size, start: 0 }, {}))).to.equal('ItemPruned')
    // still serves what is retained
    const { response } = await source.serve({ type: 'boundary', size, start: db.inactivityFloor }, {})
    expect(verifyProofAndPinnedNodes(response.proof, db.inactivityFloor, [(response as { op: Uint8Array }).op], (response as { pinnedNodes: Uint8Array[] }).pinnedNodes, f.roots.get(size)!)).to.equal(true)
    await db.close()
    expect(await serveError(source.serve({ type: 'boundary', size, start: db.inactivityFloor }, {}))).to.equal('Unavailable')
  })

  it('absent database, detach, re-attach, abort and lock', async () => {
    const source = new LocalSource()
    const req = { type: 'operations', size: 1, start: 0, maxOps: 1 } as const
    expect(await serveError(source.serve(req, {}))).to.equal('MissingSource')
    const db = await AnyDb.open()
    source.attach(db)
    expect(source.db).to.equal(db)
    expect((await source.serve(req, {})).response.type).to.equal('operations')
    source.detach()
    expect(await serveError(source.serve(req, {}))).to.equal('MissingSource')
    source.attach(db)
    const ac = new AbortController()
    ac.abort()
    expect(await serveError(source.serve(req, { signal: ac.signal }))).to.equal('Aborted')
    let locked = 0
    const withLock = new LocalSource(db, { lock: { read: async (fn) => { locked++; return fn() } } })
    await withLock.serve(req, {})
    expect(locked).to.equal(1)
    expect(toServeError(new QmdbError('DataCorrupted')).code).to.equal('Database')
    expect(toServeError(new Error('x')).code).to.equal('Database')
    await db.close()
  })
})
