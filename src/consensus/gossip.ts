/**
 * What a node does with one consensus gossip message, apart from gossipsub
 * itself: the envelope (`varint(seq) ‖ vote-or-certificate`, the sequence
 * number making a re-broadcast — e.g. a repeated nullify — a distinct
 * message to gossipsub's seen-cache) and the admission every message passes
 * before it is relayed or delivered: a size cap, decoding, and the engine's
 * signature and age checks (`admitVote` / `admitCertificate`).
 *
 * Shared by the libp2p transport (`network.ts`, as the topics' validator)
 * and the simulator, so both run the same checks on the same bytes.
 *
 * Invariants: `admitGossip` never throws; only an accepted message comes
 * back decoded, and delivering it does not verify it again.
 */

import { Reader, Writer } from '../codec/index.ts'
import { MAX_VALIDATORS, decodeCertificate, decodeVote } from './types.ts'
import type { SimplexEngine } from './engine.ts'
import type { Certificate, Vote } from './types.ts'
import type { Admission } from '../net/admission.ts'

export type GossipKind = 'vote' | 'cert'

// a vote is tag ‖ proposal ‖ signer ‖ signature (< 128 bytes); a certificate carries at most MAX_VALIDATORS signatures
const MAX_VOTE_MESSAGE = 256
const MAX_CERT_MESSAGE = 128 + MAX_VALIDATORS * 80

/** One admitted message, decoded, or why it was not admitted. */
export type GossipAdmission =
  | { admission: 'accept', kind: 'vote', message: Vote }
  | { admission: 'accept', kind: 'cert', message: Certificate }
  | { admission: Exclude<Admission, 'accept'> }

/** The gossip message carrying `body` (an encoded vote or certificate) as its sender's `seq`-th broadcast. */
export function sealGossip (seq: number, body: Uint8Array): Uint8Array {
  return new Writer(body.length + 10).varint(seq).raw(body).finish()
}

/**
 * Judge a gossip message of `kind` for `engine`: 'reject' (the sender is at
 * fault: oversized, undecodable, a signer outside the set), 'ignore'
 * (stale, too far ahead, already known) or 'accept' with the decoded vote or
 * certificate, whose signatures the engine has checked.
 */
export function admitGossip (engine: SimplexEngine, kind: GossipKind, data: Uint8Array): GossipAdmission {
  if (data.length > (kind === 'vote' ? MAX_VOTE_MESSAGE : MAX_CERT_MESSAGE)) { return { admission: 'reject' } }
  try {
    const r = new Reader(data)
    r.varint()
    const body = r.raw(r.remaining)
    if (kind === 'vote') {
      const message = decodeVote(body)
      const admission = engine.admitVote(message)
      return admission === 'accept' ? { admission, kind, message } : { admission }
    }
    const message = decodeCertificate(body)
    const admission = engine.admitCertificate(message)
    return admission === 'accept' ? { admission, kind, message } : { admission }
  } catch {
    return { admission: 'reject' }
  }
}

/** Hand an admitted message to `engine` (resolves when the engine has taken it). */
export async function deliverGossip (engine: SimplexEngine, admitted: Extract<GossipAdmission, { admission: 'accept' }>): Promise<void> {
  if (admitted.kind === 'vote') {
    await engine.receiveVote(admitted.message, { verified: true })
  } else {
    await engine.receiveCertificate(admitted.message)
  }
}
