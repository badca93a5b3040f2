/**
 * The example token ledger: block codec, transfer rules, and two managers
 * (a proposer and a verifier) agreeing block after block.
 */
import { expect } from 'aegir/chai'
import {
  LedgerApp, Mempool, openLedgerDatabases, decodeBlock, makeBlock, accountId, decodeAccount, ledgerBlockCodec,
  STATUS_OK, STATUS_BAD_NONCE, STATUS_INSUFFICIENT, STATUS_SELF
} from '../../src/examples/ledger/index.ts'
import { Stateful } from '../../src/stateful/index.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import { eventually } from '../util/stateful-harness.ts'
import { MockMarshal } from '../util/stateful-marshal.ts'
import type { LedgerBlock, LedgerDbs, Transfer } from '../../src/examples/ledger/index.ts'
import type { Context } from '../../src/stateful/index.ts'

function ctxFor (parent: LedgerBlock, view: number): Context {
  return { round: { epoch: 0, view }, leader: 'v0', parent: { view: parent.context.round.view, digest: parent.digest } }
}

async function node (app: LedgerApp): Promise<{ stateful: Stateful<LedgerBlock, LedgerDbs>, marshal: MockMarshal<LedgerBlock> }> {
  const databases = await openLedgerDatabases()
  const marshal = new MockMarshal<LedgerBlock>({ genesis: await app.genesis(), maxPendingAcks: 4 })
  const stateful = new Stateful<LedgerBlock, LedgerDbs>({ application: app, databases, marshal })
  await stateful.start()
  marshal.attach(stateful)
  return { stateful, marshal }
}

describe('examples: token ledger', function () {
  this.timeout(60_000)

  it('blocks round-trip through their encoding and the digest covers every field', async () => {
    const app = LedgerApp.forDatabases(await openLedgerDatabases())
    const genesis = await app.genesis()
    const t: Transfer = { from: accountId(1), to: accountId(2), amount: 5n, nonce: 0n }
    const b = makeBlock(1, ctxFor(genesis, 1), [t], genesis.targets, genesis.accountsRoot)
    const back = decodeBlock(b.bytes)
    expect(back.digest).to.deep.equal(b.digest)
    expect(back.transfers).to.deep.equal([t])
    expect(back.context).to.deep.equal(b.context)
    expect(back.accountsRoot).to.deep.equal(genesis.accountsRoot)
    const other = makeBlock(1, ctxFor(genesis, 2), [t], genesis.targets, genesis.accountsRoot)
    expect(other.digest).to.not.deep.equal(b.digest)
    expect(ledgerBlockCodec.decode(ledgerBlockCodec.encode(b)).height).to.equal(1)
    fuzzDecoder(decodeBlock, [b.bytes, genesis.bytes], 100_000, 11)
  })

  it('executes transfers with nonces, balances and failure receipts', async () => {
    const set = await openLedgerDatabases()
    const app = LedgerApp.forDatabases(set, { initialBalance: 100n })
    const a = accountId(1)
    const b = accountId(2)
    const batches = set.newBatches()
    const ok: Transfer = { from: a, to: b, amount: 60n, nonce: 0n }
    await app.execute(batches, [ok, { ...ok, nonce: 0n }, { ...ok, nonce: 1n, amount: 50n }, { from: a, to: a, amount: 1n, nonce: 1n }])
    const from = decodeAccount(await batches.accounts.get(a), 100n)
    const to = decodeAccount(await batches.accounts.get(b), 100n)
    expect(from).to.deep.equal({ balance: 40n, nonce: 1n })
    expect(to).to.deep.equal({ balance: 160n, nonce: 0n })
    expect([STATUS_OK, STATUS_BAD_NONCE, STATUS_INSUFFICIENT, STATUS_SELF]).to.have.lengthOf(4)
  })

  it('a proposer and a verifier agree on 12 blocks of generated transfers and end with identical state', async () => {
    const mempool = new Mempool()
    const proposerApp = LedgerApp.forDatabases(await openLedgerDatabases(), { mempool, autoTransfers: 50, accountSpace: 40 })
    const verifierApp = LedgerApp.forDatabases(await openLedgerDatabases(), { autoTransfers: 50, accountSpace: 40 })
    const p = await node(proposerApp)
    const v = await node(verifierApp)
    mempool.add({ from: accountId(1000), to: accountId(1001), amount: 3n, nonce: 0n }) // outside the generated accounts
    let parent = await proposerApp.genesis()
    for (let view = 1; view <= 12; view++) {
      const digest = await p.stateful.propose(ctxFor(parent, view), { signal: AbortSignal.timeout(10_000) })
      expect(digest).to.not.equal(undefined)
      const block = p.marshal.disseminated[p.marshal.disseminated.length - 1]
      expect(block.digest).to.deep.equal(digest)
      v.marshal.put(decodeBlock(block.bytes))
      expect(await v.stateful.verify(block.context, block.digest, { signal: AbortSignal.timeout(10_000) })).to.equal(true)
      p.marshal.finalize(block)
      v.marshal.finalize(decodeBlock(block.bytes))
      parent = block
    }
    await eventually(() => p.marshal.processed === 12 && v.marshal.processed === 12, 'both processed 12')
    const pd = await p.stateful.subscribeDatabases()
    const vd = await v.stateful.subscribeDatabases()
    expect(pd.targetsEqual(pd.committedTargets(), vd.committedTargets())).to.equal(true)
    expect(pd.targetsEqual(pd.committedTargets(), proposerApp.syncTargets(parent))).to.equal(true)
    // the mempool transfer was included and removed once finalized
    expect(mempool.size).to.equal(0)
    expect(decodeAccount(await pd.dbs.accounts.newBatch().get(accountId(1001)), 1_000_000n)).to.deep.equal({ balance: 1_000_003n, nonce: 0n })
    expect(decodeAccount(await pd.dbs.accounts.newBatch().get(accountId(1000)), 1_000_000n)).to.deep.equal({ balance: 999_997n, nonce: 1n })
    // a block with a wrong state commitment is rejected by the verifier
    const forged = makeBlock(parent.height + 1, ctxFor(parent, 13), [], parent.targets, parent.accountsRoot)
    v.marshal.put(forged)
    expect(await v.stateful.verify(forged.context, forged.digest, { signal: AbortSignal.timeout(10_000) })).to.equal(false)
    // right sync targets but a wrong canonical accounts root (what light clients trust): rejected too
    const next = await verifierApp.execute(vd.newBatches(), [])
    const wrongRoot = makeBlock(parent.height + 1, ctxFor(parent, 14), [], next.targets, new Uint8Array(32).fill(7))
    v.marshal.put(wrongRoot)
    expect(await v.stateful.verify(wrongRoot.context, wrongRoot.digest, { signal: AbortSignal.timeout(10_000) })).to.equal(false)
    const honest = makeBlock(parent.height + 1, ctxFor(parent, 15), [], next.targets, next.accountsRoot)
    v.marshal.put(honest)
    expect(await v.stateful.verify(honest.context, honest.digest, { signal: AbortSignal.timeout(10_000) })).to.equal(true)
    await p.stateful.stop()
    await v.stateful.stop()
  })
})
