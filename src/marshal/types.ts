/**
 * Types of the block store ("marshal"): what it needs to know about blocks
 * and finalization certificates, which belong to the application and the
 * consensus engine respectively (commonware `consensus/src/marshal`).
 *
 * A block's identity is its digest, computed from its bytes by the codec, so
 * a block fetched by digest is self-authenticating; a finalization
 * certificate names the digest of a finalized block and is verified by the
 * consensus scheme; ancestors of a finalized block are finalized by its
 * parent links.
 */

/** A consensus round (epoch, view), ordered lexicographically. */
export interface Round {
  epoch: number
  view: number
}

export function compareRounds (a: Round, b: Round): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.view - b.view
}

/** The block fields marshal relies on. */
export interface MarshalBlock {
  readonly digest: Uint8Array
  readonly height: number
  readonly parent: Uint8Array
}

export interface BlockCodec<B extends MarshalBlock> {
  encode(block: B): Uint8Array
  /** Strict decode; the digest is computed from the bytes. Throws on invalid input. */
  decode(bytes: Uint8Array): B
  /** Largest accepted encoded block. */
  readonly maxBytes: number
}

/** A consensus scheme's finalization certificates. */
export interface FinalizationScheme<F> {
  encode(f: F): Uint8Array
  /** Strict decode; throws on invalid input. */
  decode(bytes: Uint8Array): F
  /** True iff the certificate is valid for the validator set (signatures, quorum). */
  verify(f: F): boolean
  /** Digest of the finalized block. */
  payload(f: F): Uint8Array
  round(f: F): Round
  readonly maxBytes: number
}

export class MarshalError extends Error {
  readonly name = 'MarshalError'
  readonly code: 'DataCorrupted' | 'InvalidFinalization' | 'Stopped' | 'Unavailable' | 'ConflictingFinalization'

  constructor (code: MarshalError['code'], message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options)
    this.code = code
  }
}
