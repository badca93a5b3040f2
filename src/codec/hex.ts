/**
 * Lowercase hex of bytes, the one spelling used in logs, errors, status
 * output and map keys across the package.
 */
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'

export function hex (bytes: Uint8Array): string {
  return uint8ArrayToString(bytes, 'base16')
}
