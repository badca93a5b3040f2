/**
 * The light client's typed errors. Every failure of `get` is a `LightError`
 * whose `code` names what failed, so a caller (and the CLI) can tell a
 * forged answer from a node that simply cannot answer:
 *
 * - `Certificate`: the finalization does not verify against the trusted
 * validator set (bad or missing signatures, no quorum), or it finalizes
 * another block than the one sent;
 * - `RootCommitment`: the block does not commit to the root the proof is
 * against (or commits no root for the database);
 * - `Proof`: the key-value or exclusion proof does not verify against that root;
 * - `KeyMismatch`: the proven operation is for another key;
 * - `HeightMismatch`: the answer is for another height than the one asked;
 * - `Malformed`: the peer broke the wire protocol (docs/PROTOCOLS.md, "Light-client proofs");
 * - `HeightUnavailable`: the peer cannot prove the requested height (only its latest applied height);
 * - `Unprovable`: the peer says the key has no value in an unordered database,
 * where absence cannot be proven (only ordered databases have exclusion proofs);
 * - `Unsupported`: a local mistake: the database is not one the client can verify;
 * - `NoAnswer`: the peer could not be reached, reset the stream or timed out.
 */

export type LightErrorCode =
  | 'Certificate' | 'RootCommitment' | 'Proof' | 'KeyMismatch' | 'HeightMismatch' | 'Malformed'
  | 'HeightUnavailable' | 'Unprovable' | 'Unsupported' | 'NoAnswer'

/** A `get` that produced no verified answer; `code` says why (see the module comment). */
export class LightError extends Error {
  static readonly name = 'LightError'
  readonly name = 'LightError'
  readonly code: LightErrorCode

  constructor (code: LightErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options)
    this.code = code
  }
}
