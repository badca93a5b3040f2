/**
 * Datastore key layout helpers.
 *
 * Integers in keys are 16-digit lowercase hex so that lexicographic key order
 * equals numeric order (range scans and prefix deletes rely on it).
 */

export function hex16 (n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) { throw new RangeError(`key index out of range: ${n}`) }
  return n.toString(16).padStart(16, '0')
}

/** Parse the 16-hex suffix of a key, or undefined if it is not one. */
export function parseHex16 (s: string): number | undefined {
  if (!/^[0-9a-f]{16}$/.test(s)) { return undefined }
  const n = parseInt(s, 16)
  return Number.isSafeInteger(n) ? n : undefined
}

/** Join key segments under a prefix: `joinKey('/db/a', 'meta')` → `/db/a/meta`. */
export function joinKey (prefix: string, ...parts: string[]): string {
  const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix
  return [base, ...parts].join('/')
}
