/**
 * The simplex engine on an in-memory network: agreement, leader failures,
 * restarts without equivocation, and certificate validation.
 */
import { expect } from 'aegir/chai'
import { encodeCertificate, decodeCertificate, decodeVote, encodeVote, signedMessage, subjectView } from '../../src/consensus/index.ts'
import { Bus, until } from '../util/consensus-bus.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import type { Certificate, Finalization, Vote } from '../../src/consensus/index.ts'
import type { BusNode } from '../util/consensus-bus.ts'

function digests (fs: Finalization[]): string[] {
  return fs.map(f => `${f.subject.proposal.view}:${Buffer.from(f.subject.proposal.payload).toString('hex').slice(0, 8)}`)
}

/** Finalized (view → payload) must agree between every pair of nodes. */
function assertAgreement (lists: Finalization[][]): void {
  const seen = new Map<number, string>()
  for (const list of lists) {
    for (const f of list) {
      const v = f.subject.proposal.view
      const p = Buffer.from(f.subject.proposal.payload).toString('hex')
      const prev = seen.get(v)
      if (prev !== undefined) { expect(p).to.equal(prev, `view ${v}`) }
      seen.set(v, p)
    }
  }
}

describe('consensus: simplex engine (in-memory network)', function () {
  this.timeout(60_000)
  let bus: Bus

  afterEach(async () => { await bus?.stopAll() })

  it('4 validators finalize 20 views, reported once each in increasing view order, identically', async () => {
    bus = await Bus.create(4)
    for (let i = 0; i < 4; i++) { await bus.start(i) }
    await until(() => bus.nodes.every(n => n.finalized.length >= 20), '20 finalizations everywhere')
    for (const n of bus.nodes) {
      const views = n.finalized.map(f => f.subject.proposal.view)
      expect(views).to.deep.equal([...views].sort((a, b) => a - b))
      expect(new Set(views).size).to.equal(views.length)
      for (const f of n.finalized) { expect(bus.set.verifyCertificate(f)).to.equal(true) }
    }
    assertAgreement(bus.nodes.map(n => n.finalized))
    // finalized payloads chain: each proposal's parent view is a finalized or nullified earlier view
    const first = bus.nodes[0].finalized
    expect(first[1].subject.proposal.parent).to.equal(first[0].subject.proposal.view)
  })

  it('a stopped validator: the others keep finalizing through nullified views; it restarts and catches up', async () => {
    bus = await Bus.create(4)
    const nodes: BusNode[] = []
    for (let i = 0; i < 4; i++) { nodes.push(await bus.start(i)) }
    await until(() => nodes[0].finalized.length >= 5, 'warm-up')
    const ds = nodes[2].datastore
    await bus.stop(2)
    const before = nodes[0].finalized.length
    await until(() => nodes[0].finalized.length >= before + 8, 'progress without validator 2')
    const restarted = await bus.start(2, ds)
    const target = nodes[0].engine.finalizedView + 4
    await until(() => restarted.engine.finalizedView >= target, 'restarted validator catches up')
    assertAgreement(bus.nodes.map(n => n.finalized))
  })

  it('a paused validator stops voting but keeps following; pausing more than f halts finalization', async () => {
    bus = await Bus.create(4)
    const nodes: BusNode[] = []
    for (let i = 0; i < 4; i++) { nodes.push(await bus.start(i)) }
    await until(() => nodes[0].finalized.length >= 3, 'warm-up')
    nodes[3].engine.pause()
    const before = nodes[3].finalized.length
    // the other three are still a quorum; the paused one still learns every finalization
    await until(() => nodes[3].finalized.length >= before + 6, 'paused validator keeps following')
    assertAgreement(bus.nodes.map(n => n.finalized))
    nodes[2].engine.pause()
    nodes[1].engine.pause()
    nodes[0].engine.pause()
    // in-flight certificates settle, then nothing more is finalized anywhere
    await new Promise(resolve => setTimeout(resolve, 500))
    const settled = nodes.map(n => n.finalized.length)
    await new Promise(resolve => setTimeout(resolve, 1500))
    expect(nodes.map(n => n.finalized.length)).to.deep.equal(settled)
  })

  /**
   * A node that does not vote and that gossip stops reaching, then every validator paused: no validator times out
   * or re-broadcasts any more, so only the node's own requests can bring it to the quiet tip.
   */
  const catchesUpOnceQuiet = async (who: 'an observer' | 'a paused validator'): Promise<void> => {
    bus = await Bus.create(4)
    const validators: BusNode[] = []
    for (let i = 0; i < 4; i++) { validators.push(await bus.start(i)) }
    const follower = who === 'an observer' ? await bus.observe() : validators[3]
    const voters = validators.filter(v => v !== follower)
    await until(() => follower.finalized.length >= 3, 'warm-up: it follows by gossip')
    if (who === 'a paused validator') { follower.engine.pause() }
    bus.deaf.add(follower.index)
    const missed = voters[0].engine.finalizedView + 6
    await until(() => voters[0].engine.finalizedView >= missed, 'finalizations it misses')
    for (const v of voters) { v.engine.pause() }
    await new Promise(resolve => setTimeout(resolve, 200))
    const tip = Math.max(...voters.map(v => v.engine.finalizedView))
    await until(() => follower.engine.finalizedView === tip, `it reaches the quiet tip ${tip}`, 20_000)
    assertAgreement(bus.nodes.map(n => n.finalized))
    const views = follower.finalized.map(f => f.subject.proposal.view)
    expect(views).to.deep.equal([...views].sort((a, b) => a - b))
  }

  it('an observer that gossip stops reaching catches up by asking, once the chain has gone quiet', async () => { await catchesUpOnceQuiet('an observer') })
  it('a paused validator that gossip stops reaching catches up by asking, once the chain has gone quiet', async () => { await catchesUpOnceQuiet('a paused validator') })

  it('an abstaining verifier majority forces nullifications, then progress resumes', async () => {
    bus = await Bus.create(4)
    const nodes: BusNode[] = []
    for (let i = 0; i < 4; i++) { nodes.push(await bus.start(i)) }
    await until(() => nodes[0].finalized.length >= 3, 'warm-up')
    for (const n of nodes) { n.automaton.stall = true }
    const view = nodes[0].engine.currentView
    await until(() => nodes[0].engine.currentView >= view + 3, 'views advance by nullification')
    const stuck = nodes[0].finalized.length
    for (const n of nodes) { n.automaton.stall = false }
    await until(() => nodes[0].finalized.length >= stuck + 3, 'finalizing again')
    assertAgreement(bus.nodes.map(n => n.finalized))
  })

  it('an equivocating leader (two signed proposals in one view, sent to different halves) never gets both finalized', async () => {
    bus = await Bus.create(4)
    bus.down.add(0) // validator 0 is the adversary: no honest engine runs for it
    const honest: BusNode[] = []
    for (let i = 1; i < 4; i++) {
      const n = await bus.start(i)
      n.automaton.acceptAll = true
      honest.push(n)
    }
    // wait for a view led by the adversary (view % 4 === 0), then equivocate in it
    await until(() => honest.every(n => n.engine.currentView >= 4), 'view 4')
    const adversary = bus.keys[0]
    const view = Math.ceil(Math.max(...honest.map(n => n.engine.currentView)) / 4) * 4 + 4
    await until(() => honest.some(n => n.engine.currentView === view), `adversary view ${view}`, 30_000)
    const parentView = view - 1
    const parentCerts = honest[0].engine.certificatesFor(parentView)
    const notar = parentCerts.find(c => c.subject.kind === 'notarize')
    const parent = notar !== undefined ? parentView : parentView - 1
    const send = async (payloadByte: number, to: number[]): Promise<void> => {
      const subject = { kind: 'notarize' as const, proposal: { view, parent, payload: new Uint8Array(32).fill(payloadByte) } }
      const signature = await adversary.sign(signedMessage('test', subject))
      bus.sendVoteTo(encodeVote({ subject, signer: 0, signature }), to)
    }
    await send(1, [1, 2])
    await send(2, [3])
    await until(() => honest.every(n => n.finalized.some(f => f.subject.proposal.view > view)), 'progress past the equivocation')
    assertAgreement(honest.map(n => n.finalized))
    const atView = new Set(honest.flatMap(n => n.finalized.filter(f => f.subject.proposal.view === view).map(f => Buffer.from(f.subject.proposal.payload).toString('hex'))))
    expect(atView.size).to.be.at.most(1)
  })

  it('replayed certificates older than the retained window are ignored: no new votes, not relayed (issue 18 finding 6)', async () => {
    bus = await Bus.create(4)
    // what validator 0 broadcasts, decoded
    const sent: Vote[] = []
    const base = bus.transport.bind(bus)
    bus.transport = from => {
      const t = base(from)
      return from !== 0 ? t : { ...t, broadcastVote: async bytes => { sent.push(decodeVote(bytes)); await t.broadcastVote(bytes) } }
    }
    const notarizations: Certificate[] = []
    const timings = { leaderTimeoutMs: 150, notarizationTimeoutMs: 300, retryMs: 150, retainViews: 8 }
    for (let i = 0; i < 4; i++) { await bus.start(i, undefined, timings) }
    // keep every notarization that reaches validator 1 (validator 0 is the one replayed to)
    const n1 = bus.nodes[1].engine
    const original = n1.receiveCertificate.bind(n1)
    n1.receiveCertificate = async c => {
      if (c.subject.kind === 'notarize') { notarizations.push(c) }
      await original(c)
    }
    await until(() => bus.nodes.every(n => n.engine.finalizedView >= 40), 'finalized view 40 everywhere')
    await bus.stop(1)
    await bus.stop(2)
    await bus.stop(3)
    const engine = bus.nodes[0].engine
    const floor = engine.finalizedView - 8
    const old = notarizations.filter(c => subjectView(c.subject) < floor - 2)
    expect(old.length).to.be.greaterThan(10)
    // the gossip validator ignores them (no relay, no penalty: an honest peer may be behind)
    for (const c of old) { expect(engine.admitCertificate(c)).to.equal('ignore') }
    const before = sent.length
    for (const c of old) { await engine.receiveCertificate(c) }
    await new Promise(resolve => setTimeout(resolve, 200))
    const revoted = sent.slice(before).filter(v => subjectView(v.subject) < floor)
    expect(revoted.map(v => `${v.subject.kind}@${subjectView(v.subject)}`)).to.deep.equal([])
  })

  it('admission before relay: bad signatures, non-validators and forged certificates are rejected; duplicates and stale votes ignored (issue 18 finding 4)', async () => {
    bus = await Bus.create(4)
    for (let i = 0; i < 4; i++) { await bus.start(i) }
    await until(() => bus.nodes[0].finalized.length >= 3, 'three finalizations')
    const engine = bus.nodes[0].engine
    const f = bus.nodes[0].finalized[2]
    expect(engine.admitCertificate(f)).to.equal('ignore') // known already
    const forged = { ...f, subject: { kind: 'notarize' as const, proposal: { ...f.subject.proposal, view: engine.currentView + 1 } } }
    expect(engine.admitCertificate(forged)).to.equal('reject')
    const wide = { subject: forged.subject, signers: Array.from({ length: 1024 }, (_, i) => i), signatures: Array.from({ length: 1024 }, () => new Uint8Array(64)) }
    expect(engine.admitCertificate(wide)).to.equal('reject')
    const short = { ...forged, signers: forged.signers.slice(0, 2), signatures: forged.signatures.slice(0, 2) }
    expect(engine.admitCertificate(short)).to.equal('reject')
    const subject = { kind: 'nullify' as const, view: engine.currentView + 1 }
    const good = { subject, signer: 2, signature: await bus.keys[2].sign(signedMessage('test', subject)) }
    expect(engine.admitVote(good)).to.equal('accept')
    expect(engine.admitVote({ ...good, signer: 3 })).to.equal('reject')
    expect(engine.admitVote({ ...good, signer: 7 })).to.equal('reject')
    expect(engine.admitVote({ ...good, signature: new Uint8Array(64) })).to.equal('reject')
    await engine.receiveVote(good)
    expect(engine.admitVote(good)).to.equal('ignore')
    const far = { kind: 'nullify' as const, view: engine.currentView + 5000 }
    expect(engine.admitVote({ subject: far, signer: 2, signature: await bus.keys[2].sign(signedMessage('test', far)) })).to.equal('ignore')
  })

  it('certificates: encoding round-trips, forged or short ones are rejected, the decoder is strict', async () => {
    bus = await Bus.create(4)
    for (let i = 0; i < 4; i++) { await bus.start(i) }
    await until(() => bus.nodes[0].finalized.length >= 2, 'a finalization')
    const f = bus.nodes[0].finalized[1]
    const bytes = encodeCertificate(f)
    expect(decodeCertificate(bytes)).to.deep.equal(f)
    expect(bus.set.verifyCertificate(decodeCertificate(bytes))).to.equal(true)
    // too few signers
    expect(bus.set.verifyCertificate({ ...f, signers: f.signers.slice(1), signatures: f.signatures.slice(1) })).to.equal(false)
    // duplicate signer
    expect(bus.set.verifyCertificate({ ...f, signers: [f.signers[0], f.signers[0], f.signers[1]], signatures: [f.signatures[0], f.signatures[0], f.signatures[1]] })).to.equal(false)
    // a different payload
    const other = { ...f, subject: { ...f.subject, proposal: { ...f.subject.proposal, payload: new Uint8Array(32).fill(9) } } }
    expect(bus.set.verifyCertificate(other)).to.equal(false)
    // a signature from outside the set (index beyond n)
    const outsider = await (await import('@libp2p/crypto/keys')).generateKeyPair('Ed25519')
    const sig = await outsider.sign(signedMessage('test', f.subject))
    expect(bus.set.verifyCertificate({ ...f, signers: [...f.signers.slice(0, 2), 7], signatures: [...f.signatures.slice(0, 2), sig] })).to.equal(false)
    // a notarization is not a finalization
    expect(digests([f])).to.have.lengthOf(1)
    fuzzDecoder(decodeCertificate, [bytes], 100_000, 21)
  })
})
