/**
 * Messages and certificates of the reference simplex-style consensus, and
 * their canonical encodings.
 *
 * A *proposal* is `{ view, parent (view), payload (block digest) }`. Votes
 * are signed by one validator (Ed25519, its libp2p key) over a
 * domain-separated message `"qmdb-consensus" ‖ chainId ‖ kind ‖ body`:
 * - `notarize(proposal)`: the leader's is the proposal itself;
 * - `nullify(view)`: the view produced nothing acceptable in time;
 * - `finalize(proposal)`: sent after seeing a notarization, unless nullified.
 * A *certificate* is a quorum (`n - f`, `f = ⌊(n - 1) / 3⌋`) of votes of
 * distinct validators on the same subject: notarization, nullification,
 * finalization.
 *
 * Decoding caps every count (at most `MAX_VALIDATORS` signatures) and only
 * throws `CodecError`; signature checks are separate (`verifyCertificate`).
 */

import { CodecError, Reader, Writer, hex } from '../codec/index.ts'

export const MAX_VALIDATORS = 1024
export const SIGNATURE_BYTES = 64

export type VoteKind = 'notarize' | 'nullify' | 'finalize'
const KIND_TAGS: Record<VoteKind, number> = { notarize: 0, nullify: 1, finalize: 2 }
const TAG_KINDS: VoteKind[] = ['notarize', 'nullify', 'finalize']

export interface Proposal {
  view: number
  /** View of the parent proposal (0 = genesis). */
  parent: number
  /** Digest of the proposed block. */
  payload: Uint8Array
}

/** What a vote is about: a proposal (notarize/finalize) or a view (nullify). */
export type Subject = { kind: 'notarize' | 'finalize', proposal: Proposal } | { kind: 'nullify', view: number }

export interface Vote {
  subject: Subject
  /** Index of the signer in the validator set. */
  signer: number
  signature: Uint8Array
}

export interface Certificate {
  subject: Subject
  /** Signer indices, strictly increasing. */
  signers: number[]
  signatures: Uint8Array[]
}

export type Notarization = Certificate & { subject: { kind: 'notarize', proposal: Proposal } }
export type Nullification = Certificate & { subject: { kind: 'nullify', view: number } }
export type Finalization = Certificate & { subject: { kind: 'finalize', proposal: Proposal } }

export function subjectView (s: Subject): number {
  return s.kind === 'nullify' ? s.view : s.proposal.view
}

export function writeProposal (w: Writer, p: Proposal): Writer {
  if (p.payload.length !== 32) { throw new RangeError('payload must be a 32-byte digest') }
  return w.varint(p.view).varint(p.parent).raw(p.payload)
}

export function readProposal (r: Reader): Proposal {
  const view = r.varint()
  const parent = r.varint()
  const payload = r.raw(32)
  if (parent >= view) { throw new CodecError('Invalid', `parent view ${parent} not below view ${view}`) }
  return { view, parent, payload }
}

export function writeSubject (w: Writer, s: Subject): Writer {
  w.u8(KIND_TAGS[s.kind])
  return s.kind === 'nullify' ? w.varint(s.view) : writeProposal(w, s.proposal)
}

export function readSubject (r: Reader): Subject {
  const tag = r.u8()
  const kind = TAG_KINDS[tag]
  if (kind === undefined) { throw new CodecError('InvalidEnum', `vote kind ${tag}`) }
  if (kind === 'nullify') {
    const view = r.varint()
    if (view === 0) { throw new CodecError('Invalid', 'view 0 cannot be nullified') }
    return { kind, view }
  }
  return { kind, proposal: readProposal(r) }
}

/** The bytes a validator signs for `subject` on chain `chainId`. */
export function signedMessage (chainId: string, s: Subject): Uint8Array {
  const w = new Writer(96).raw(new TextEncoder().encode('qmdb-consensus')).bytes(new TextEncoder().encode(chainId))
  return writeSubject(w, s).finish()
}

export function subjectKey (s: Subject): string {
  return hex(writeSubject(new Writer(64), s).finish())
}

export function encodeVote (v: Vote): Uint8Array {
  return writeSubject(new Writer(128), v.subject).varint(v.signer).raw(v.signature).finish()
}

export function decodeVote (bytes: Uint8Array): Vote {
  const r = new Reader(bytes)
  const subject = readSubject(r)
  const signer = r.varint()
  if (signer >= MAX_VALIDATORS) { throw new CodecError('Overflow', `signer ${signer}`) }
  const signature = r.raw(SIGNATURE_BYTES)
  r.finish()
  return { subject, signer, signature }
}

export function writeCertificate (w: Writer, c: Certificate): Writer {
  writeSubject(w, c.subject).length32(c.signers.length)
  c.signers.forEach((s, i) => { w.varint(s).raw(c.signatures[i]) })
  return w
}

export function readCertificate (r: Reader): Certificate {
  const subject = readSubject(r)
  const n = r.length(MAX_VALIDATORS)
  if (n > r.remaining) { throw new CodecError('EndOfBuffer', `${n} signatures`) }
  const signers: number[] = []
  const signatures: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const s = r.varint()
    if (s >= MAX_VALIDATORS) { throw new CodecError('Overflow', `signer ${s}`) }
    if (i > 0 && s <= signers[i - 1]) { throw new CodecError('Invalid', 'signers must be strictly increasing') }
    signers.push(s)
    signatures.push(r.raw(SIGNATURE_BYTES))
  }
  return { subject, signers, signatures }
}

export function encodeCertificate (c: Certificate): Uint8Array {
  return writeCertificate(new Writer(128 + c.signers.length * 70), c).finish()
}

export function decodeCertificate (bytes: Uint8Array): Certificate {
  const r = new Reader(bytes)
  const c = readCertificate(r)
  r.finish()
  return c
}

export function isFinalization (c: Certificate): c is Finalization {
  return c.subject.kind === 'finalize'
}

export function isNotarization (c: Certificate): c is Notarization {
  return c.subject.kind === 'notarize'
}

export function isNullification (c: Certificate): c is Nullification {
  return c.subject.kind === 'nullify'
}
