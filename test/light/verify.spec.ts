/**
 * What a light client accepts and rejects, without a network: honest
 * answers from a tiny chain (`util/light-fixtures.ts`) verify after an
 * encode/decode round trip — values of an unordered and an ordered `current`
 * database, and an ordered database's absent key — and every tampered
 * answer is rejected with the code naming what failed: the certificate, the
 * block it certifies, the root commitment, the proof, the key, the height.
 */
import { expect } from 'aegir/chai'
import { decodeCertificate, encodeCertificate } from '../../src/consensus/types.ts'
import { LightError } from '../../src/light/errors.ts'
import { decodeLightAnswer, encodeLightAnswer } from '../../src/light/protocol.ts'
import { LightValidators, maxFinalizationBytes, verifyAnswer } from '../../src/light/verify.ts'
import { codeOf } from '../util/common.ts'
import { CHAIN, key, orderedSpec, plainSpec, tinyApplication, tinyBlock, tinyChain, value } from '../util/light-fixtures.ts'
import type { LightAnswer } from '../../src/light/protocol.ts'
import type { LightValue } from '../../src/light/verify.ts'
import type { TinyBlock, TinyChain } from '../util/light-fixtures.ts'

type Answer = LightAnswer & { type: 'answer' }

describe('light: answer verification', function () {
  this.timeout(60_000)
  let chain: TinyChain
  let validators: LightValidators
  let block: TinyBlock

  before(async () => {
    chain = await tinyChain()
    validators = new LightValidators(CHAIN, chain.ids)
    await chain.advance(1)
    block = await chain.advance(2)
  })

  async function honest (db: 'plain' | 'ordered', i: number): Promise<Answer> {
    const a = await chain.answer(db, key(i), block)
    // what crosses the wire
    const back = decodeLightAnswer(encodeLightAnswer(a), { maxBlockBytes: 128, maxFinalizationBytes: maxFinalizationBytes(4) })
    expect(back).to.deep.equal(a)
    if (back.type !== 'answer') { throw new Error(`expected an answer, got ${back.type}`) }
    return back
  }

  async function verify (db: 'plain' | 'ordered', k: Uint8Array, a: Answer, height?: number): Promise<LightValue> {
    return verifyAnswer(validators, tinyApplication, db, db === 'plain' ? plainSpec : orderedSpec, k, height, a)
  }

  it('verifies values (unordered and ordered) and an ordered absence at the block height', async () => {
    expect(await verify('plain', key(5), await honest('plain', 5))).to.deep.equal({ absent: false, value: value(5, 2), height: 2, blockDigest: block.digest })
    expect(await verify('ordered', key(6), await honest('ordered', 6), 2)).to.deep.equal({ absent: false, value: value(6, 2), height: 2, blockDigest: block.digest })
    const absent = await honest('ordered', 7)
    expect(absent.result).to.equal('absent')
    expect(await verify('ordered', key(7), absent)).to.deep.equal({ absent: true, value: undefined, height: 2, blockDigest: block.digest })
    // an unordered database cannot prove absence: the honest node says "no value" without a proof
    expect((await chain.answer('plain', key(3), block)).type).to.equal('no-value')
  })

  it('Certificate: a bad signature, too few signers, or a certificate of another block', async () => {
    const a = await honest('plain', 5)
    const badSig = a.finalization.slice()
    badSig[badSig.length - 1] ^= 1
    expect(await codeOf(verify('plain', key(5), { ...a, finalization: badSig }), LightError)).to.equal('Certificate')
    expect(await codeOf(verify('plain', key(5), { ...a, finalization: await chain.finalize(block, [0, 1]) }), LightError)).to.equal('Certificate')
    // a signer index outside the set
    const cert = decodeCertificate(a.finalization)
    const outsider = encodeCertificate({ ...cert, signers: [0, 1, 5] })
    expect(await codeOf(verify('plain', key(5), { ...a, finalization: outsider }), LightError)).to.equal('Certificate')
    // undecodable
    expect(await codeOf(verify('plain', key(5), { ...a, finalization: a.finalization.subarray(0, 10) }), LightError)).to.equal('Certificate')
    // the block sent is not the one the (valid) certificate finalizes
    const other = tinyBlock(2, block.plainRoot, block.orderedRoot.map(b => b ^ 1))
    expect(await codeOf(verify('plain', key(5), { ...a, block: other.bytes }), LightError)).to.equal('Certificate')
    // a valid certificate from validators the client does not trust
    const strangers = await tinyChain()
    const foreign = await strangers.finalize(block)
    expect(await codeOf(verify('plain', key(5), { ...a, finalization: foreign }), LightError)).to.equal('Certificate')
  })

  it('RootCommitment: a proof against a root the certified block does not commit to', async () => {
    const a = await honest('plain', 5)
    // another real root (the ordered database's)
    expect(await codeOf(verify('plain', key(5), { ...a, root: block.orderedRoot }), LightError)).to.equal('RootCommitment')
    // a database the block commits no root for
    expect(await codeOf(verifyAnswer(validators, tinyApplication, 'log', plainSpec, key(5), undefined, a), LightError)).to.equal('RootCommitment')
  })

  it('Proof: a flipped proof byte, a changed value, an exclusion proof for a present key', async () => {
    const a = await honest('plain', 5)
    const proof = a.proof.slice()
    proof[proof.length - 1] ^= 1 // the ops root folded into the canonical root
    expect(await codeOf(verify('plain', key(5), { ...a, proof }), LightError)).to.equal('Proof')
    const op = a.value.slice()
    op[op.length - 1] ^= 1 // the value inside the update operation
    expect(await codeOf(verify('plain', key(5), { ...a, value: op }), LightError)).to.equal('Proof')
    const o = await honest('ordered', 6)
    expect(await codeOf(verify('ordered', key(6), { ...o, value: value(6, 1) }), LightError)).to.equal('Proof')
    // key 6 has a value; the exclusion proof of key 7 does not cover it
    const excl = await honest('ordered', 7)
    expect(await codeOf(verify('ordered', key(6), excl), LightError)).to.equal('Proof')
  })

  it('KeyMismatch and HeightMismatch: a valid proof of another key, a block at another height', async () => {
    const a = await honest('plain', 5)
    expect(await codeOf(verify('plain', key(8), a), LightError)).to.equal('KeyMismatch')
    expect(await codeOf(verify('plain', key(5), a, 1), LightError)).to.equal('HeightMismatch')
    // an exclusion proof from an unordered database is not something an honest node sends
    const excl = await honest('ordered', 7)
    expect(await codeOf(verify('plain', key(7), { ...excl, root: block.plainRoot }), LightError)).to.equal('Malformed')
  })

  it('a proof of an older state is refused against the newer block (RootCommitment)', async () => {
    const stale = await honest('plain', 5)
    const newer = await chain.advance(3)
    const f = await chain.finalize(newer)
    expect(await codeOf(verify('plain', key(5), { ...stale, block: newer.bytes, finalization: f }), LightError)).to.equal('RootCommitment')
    block = newer
  })
})
