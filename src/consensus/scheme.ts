/**
 * The consensus finalization certificates as a `FinalizationScheme` (what the
 * block store, the sync plan and the probe use to decode and verify floors
 * and finalizations).
 */

import { CodecError } from '../codec/index.ts'
import { decodeCertificate, encodeCertificate, isFinalization } from './types.ts'
import type { Finalization } from './types.ts'
import type { ValidatorSet } from './validators.ts'
import type { FinalizationScheme } from '../marshal/types.ts'

export function finalizationScheme (set: ValidatorSet): FinalizationScheme<Finalization> {
  return {
    maxBytes: 128 + set.n * 80,
    encode: f => encodeCertificate(f),
    decode: bytes => {
      const c = decodeCertificate(bytes)
      if (!isFinalization(c)) { throw new CodecError('Invalid', `expected a finalization, got a ${c.subject.kind} certificate`) }
      return c
    },
    verify: f => set.verifyCertificate(f),
    payload: f => f.subject.proposal.payload,
    round: f => ({ epoch: 0, view: f.subject.proposal.view })
  }
}
