/**
 * The consensus gossip admission shared by the libp2p transport and the
 * simulator (`src/consensus/gossip.ts`): the envelope, the size caps, and
 * the engine's checks on the bytes as they arrive.
 */
import { expect } from 'aegir/chai'
import { admitGossip, deliverGossip, sealGossip } from '../../src/consensus/gossip.ts'
import { encodeCertificate, encodeVote, signedMessage } from '../../src/consensus/index.ts'
import { Bus, until } from '../util/consensus-bus.ts'

describe('consensus: gossip admission (envelope, caps, engine checks)', function () {
  this.timeout(60_000)
  let bus: Bus

  afterEach(async () => { await bus?.stopAll() })

  it('the envelope is varint(seq) then the body, unchanged', () => {
    const body = new Uint8Array([9, 8, 7])
    expect([...sealGossip(0, body)]).to.deep.equal([0, 9, 8, 7])
    // 300 = 0b1_0010_1100: LEB128 0xac 0x02
    expect([...sealGossip(300, body)]).to.deep.equal([0xac, 0x02, 9, 8, 7])
  })

  it('a valid vote is accepted decoded, delivered once, then ignored; broken bytes and bad signatures are rejected', async () => {
    bus = await Bus.create(4)
    for (let i = 0; i < 4; i++) { await bus.start(i) }
    await until(() => bus.nodes[0].finalized.length >= 2, 'two finalizations')
    const engine = bus.nodes[0].engine
    const subject = { kind: 'nullify' as const, view: engine.currentView + 1 }
    const vote = { subject, signer: 2, signature: await bus.keys[2].sign(signedMessage('test', subject)) }
    const bytes = encodeVote(vote)

    const first = admitGossip(engine, 'vote', sealGossip(5, bytes))
    expect(first.admission).to.equal('accept')
    if (first.admission !== 'accept') { return }
    expect(first.kind).to.equal('vote')
    expect(first.message).to.deep.equal(vote)
    await deliverGossip(engine, first)
    // the same vote re-broadcast (another sequence number, so another gossip message) is known now
    expect(admitGossip(engine, 'vote', sealGossip(6, bytes)).admission).to.equal('ignore')

    // a vote for a view nobody voted on yet, its signature not the signer's
    const forged = encodeVote({ subject: { kind: 'nullify', view: subject.view + 1 }, signer: 2, signature: new Uint8Array(64) })
    expect(admitGossip(engine, 'vote', sealGossip(7, forged)).admission).to.equal('reject')
    // the envelope alone, a truncated body, the body without its envelope (its first byte read as the varint)
    expect(admitGossip(engine, 'vote', sealGossip(8, new Uint8Array(0))).admission).to.equal('reject')
    expect(admitGossip(engine, 'vote', sealGossip(9, bytes.subarray(0, bytes.length - 1))).admission).to.equal('reject')
    expect(admitGossip(engine, 'vote', bytes).admission).to.equal('reject')
    // a vote on the certificates topic does not decode as a certificate
    expect(admitGossip(engine, 'cert', sealGossip(10, bytes)).admission).to.equal('reject')
    // over the vote cap: rejected before decoding
    expect(admitGossip(engine, 'vote', new Uint8Array(257)).admission).to.equal('reject')
  })

  it('a known certificate is ignored, a forged one rejected, an oversized message rejected unread', async () => {
    bus = await Bus.create(4)
    for (let i = 0; i < 4; i++) { await bus.start(i) }
    await until(() => bus.nodes[0].finalized.length >= 3, 'three finalizations')
    const engine = bus.nodes[0].engine
    const f = bus.nodes[0].finalized[2]
    expect(admitGossip(engine, 'cert', sealGossip(0, encodeCertificate(f))).admission).to.equal('ignore')
    const forged = { ...f, subject: { kind: 'notarize' as const, proposal: { ...f.subject.proposal, view: engine.currentView + 1 } } }
    expect(admitGossip(engine, 'cert', sealGossip(1, encodeCertificate(forged))).admission).to.equal('reject')
    expect(admitGossip(engine, 'cert', new Uint8Array(128 + 1024 * 80 + 1)).admission).to.equal('reject')
  })
})
