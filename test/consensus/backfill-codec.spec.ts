/**
 * The backfill wire codec shared by the consensus network and the simulator
 * (`src/consensus/network.ts`), and the probe's serving handler
 * (`src/probe/protocol.ts`): what they accept, and typed errors for bytes
 * that break the protocol.
 */
import { expect } from 'aegir/chai'
import { CodecError, Reader, Writer } from '../../src/codec/index.ts'
import { MAX_BACKFILL_VIEWS, decodeBackfillResponse, encodeBackfillRequest } from '../../src/consensus/network.ts'
import { PROBE_NONE, PROBE_REQUEST, ProbeViolation, probeHandler } from '../../src/probe/index.ts'

/** A response body of `certs`, built by hand: varint count, then each as varint length ‖ bytes. */
function body (certs: number[][]): Uint8Array {
  const w = new Writer(64).varint(certs.length)
  for (const c of certs) { w.varint(c.length); for (const b of c) { w.u8(b) } }
  return w.finish()
}

describe('consensus: backfill codec; probe handler', () => {
  it('a request is varint(from) ‖ varint(to)', () => {
    const r = new Reader(encodeBackfillRequest(300, 555))
    expect([r.varint(), r.varint()]).to.deep.equal([300, 555])
    r.finish()
  })

  it('a response decodes to its certificates, in order; the empty answer to none', () => {
    expect(decodeBackfillResponse(body([[1, 2, 3], [], [9]])).map(c => [...c])).to.deep.equal([[1, 2, 3], [], [9]])
    expect(decodeBackfillResponse(new Uint8Array([0]))).to.deep.equal([])
  })

  it('truncated, trailing or over-long responses are CodecErrors', () => {
    const good = body([[1, 2, 3]])
    expect(() => decodeBackfillResponse(good.subarray(0, good.length - 1))).to.throw(CodecError)
    expect(() => decodeBackfillResponse(new Uint8Array([...good, 0]))).to.throw(CodecError)
    // at most three certificates per view of the largest request
    const empties = (n: number): number[][] => Array.from({ length: n }, () => [])
    expect(decodeBackfillResponse(body(empties(MAX_BACKFILL_VIEWS * 3)))).to.have.length(MAX_BACKFILL_VIEWS * 3)
    expect(() => decodeBackfillResponse(body(empties(MAX_BACKFILL_VIEWS * 3 + 1)))).to.throw(CodecError)
  })

  it('the probe handler takes only the one-byte request and answers what it is given', async () => {
    const answer = new Uint8Array([1, 7])
    const h = probeHandler(async () => answer)
    expect(h.decode(PROBE_REQUEST)).to.equal(true)
    expect(() => h.decode(new Uint8Array([1]))).to.throw(ProbeViolation)
    expect(() => h.decode(new Uint8Array([0, 0]))).to.throw(ProbeViolation)
    expect(await h.answer(true, 'peer', new AbortController().signal)).to.equal(answer)
    expect(h.isNoData(PROBE_NONE)).to.equal(true)
    expect(h.isNoData(answer)).to.equal(false)
  })
})
