/**
 * A trivial finalization "certificate" for tests of the state-sync path:
 * `{ round, payload }`, always valid (certificate validation is the consensus
 * scheme's job and is tested there).
 */
import { Reader, Writer } from '../../src/codec/index.ts'
import type { FinalizationScheme, Round } from '../../src/marshal/types.ts'

export interface TestFinalization {
  round: Round
  payload: Uint8Array
}

export const testScheme: FinalizationScheme<TestFinalization> = {
  maxBytes: 64,
  encode: f => new Writer(48).varint(f.round.epoch).varint(f.round.view).raw(f.payload).finish(),
  decode: bytes => {
    const r = new Reader(bytes)
    const round = { epoch: r.varint(), view: r.varint() }
    const payload = r.raw(32)
    r.finish()
    return { round, payload }
  },
  verify: () => true,
  payload: f => f.payload,
  round: f => f.round
}
