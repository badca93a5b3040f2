/**
 * The proof protocol's decoders under random and mutated input
 * (`util/fuzz.ts`): a request or answer decodes to a value or throws
 * `LightError('Malformed')`, nothing else; every accepted input is the
 * canonical encoding of its value (re-encoding gives the same bytes). And
 * every mutated answer that still decodes either fails verification with a
 * `LightError` or, if it verifies, yields exactly the honest result — a
 * mutation never makes a different value verify.
 */
import { expect } from 'aegir/chai'
import { LightError } from '../../src/light/errors.ts'
import { decodeLightAnswer, decodeLightRequest, encodeLightAnswer, encodeLightRequest } from '../../src/light/protocol.ts'
import { LightValidators, maxFinalizationBytes, verifyAnswer } from '../../src/light/verify.ts'
import { fuzzDecoder } from '../util/fuzz.ts'
import { CHAIN, key, orderedSpec, plainSpec, tinyApplication, tinyChain } from '../util/light-fixtures.ts'
import type { LightAnswer } from '../../src/light/protocol.ts'

const caps = { maxBlockBytes: 128, maxFinalizationBytes: maxFinalizationBytes(4) }

function malformedOnly (err: unknown): void {
  if (!(err instanceof LightError) || err.code !== 'Malformed') { throw err }
}

describe('light: decoder fuzzing', function () {
  this.timeout(120_000)

  it('requests: 100k random and mutated bodies give a canonical request or Malformed', () => {
    const valid = [encodeLightRequest({ key: key(1), height: undefined }), encodeLightRequest({ key: key(2), height: 12345 }), encodeLightRequest({ key: new Uint8Array(0), height: 0 })]
    const res = fuzzDecoder(b => {
      try {
        const r = decodeLightRequest(b)
        expect(encodeLightRequest(r)).to.deep.equal(b)
      } catch (err) { malformedOnly(err); throw err }
    }, valid, 100_000, 15, [LightError])
    expect(res.ok).to.be.greaterThan(0)
    expect(res.rejected).to.be.greaterThan(0)
  })

  it('answers: 100k random and mutated bodies decode canonically or are Malformed; decoded mutations never verify to another result', async () => {
    const chain = await tinyChain()
    const block = await chain.advance(1)
    const answers: Array<{ db: 'plain' | 'ordered', k: number, a: LightAnswer }> = [
      { db: 'plain', k: 5, a: await chain.answer('plain', key(5), block) },
      { db: 'ordered', k: 6, a: await chain.answer('ordered', key(6), block) },
      { db: 'ordered', k: 7, a: await chain.answer('ordered', key(7), block) }
    ]
    const valid = [...answers.map(x => encodeLightAnswer(x.a)), encodeLightAnswer({ type: 'no-value', height: 3 }), encodeLightAnswer({ type: 'unavailable', latest: 9 }), encodeLightAnswer({ type: 'unavailable', latest: undefined })]
    const decoded: Array<LightAnswer & { type: 'answer' }> = []
    const res = fuzzDecoder(b => {
      try {
        const a = decodeLightAnswer(b, caps)
        expect(encodeLightAnswer(a)).to.deep.equal(b)
        if (a.type === 'answer' && decoded.length < 800) { decoded.push(a) }
      } catch (err) { malformedOnly(err); throw err }
    }, valid, 100_000, 16, [LightError])
    expect(res.rejected).to.be.greaterThan(0)
    expect(decoded.length).to.be.greaterThan(100)

    const validators = new LightValidators(CHAIN, chain.ids)
    const honest = await Promise.all(answers.map(async x => verifyAnswer(validators, tinyApplication, x.db, x.db === 'plain' ? plainSpec : orderedSpec, key(x.k), undefined, x.a as LightAnswer & { type: 'answer' })))
    let verified = 0
    for (const a of decoded) {
      for (const [i, x] of answers.entries()) {
        try {
          const v = await verifyAnswer(validators, tinyApplication, x.db, x.db === 'plain' ? plainSpec : orderedSpec, key(x.k), undefined, a)
          expect(v).to.deep.equal(honest[i])
          verified++
        } catch (err) {
          if (!(err instanceof LightError)) { throw err }
        }
      }
    }
    // the unmutated answers among the decoded ones verify (the check above is not vacuous)
    expect(verified).to.be.greaterThan(0)
  })
})
