/**
 * The one error type every decoder in this package throws.
 *
 * Invariant: decoding untrusted bytes either returns a value or throws a
 * `CodecError`; no other exception type may escape a decoder (tests fuzz this).
 */

export type CodecErrorCode =
  | 'EndOfBuffer' // fewer bytes than the value needs
  | 'InvalidVarint' // non-canonical encoding or more than 64 bits
  | 'Overflow' // a value that does not fit the type (or the safe integer range)
  | 'InvalidBool' // a bool byte other than 0x00 / 0x01
  | 'InvalidEnum' // an unknown tag / context byte
  | 'InvalidLength' // a length above the caller's cap
  | 'NonZeroPadding' // fixed-size padding that is not all zeros
  | 'ExtraData' // bytes left after a value that must consume the whole buffer
  | 'Invalid' // a semantic rule of the type (e.g. start >= end)

export class CodecError extends Error {
  static readonly name = 'CodecError'
  readonly name = 'CodecError'
  readonly code: CodecErrorCode

  constructor (code: CodecErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}
