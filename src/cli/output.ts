/**
 * Output conventions of the command line: machine-readable JSON lines on
 * stdout (one object per line, bigints as decimal strings, bytes as hex),
 * human progress on stderr, so `… | jq` and the interop harness only ever see
 * JSON.
 */

import { hex } from '../codec/index.ts'

export function toJson (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') { return v.toString() }
    if (v instanceof Uint8Array) { return hex(v) }
    return v
  })
}

export function emit (event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${toJson({ event, ...fields })}\n`)
}

export function info (message: string): void {
  process.stderr.write(`${message}\n`)
}

/** Raised for a command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  readonly name = 'UsageError'
}

/** Parse a decimal integer option within bounds. */
export function intOption (value: string | undefined, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) { return fallback }
  if (!/^\d+$/.test(value)) { throw new UsageError(`--${name} must be a non-negative integer (got ${value})`) }
  const n = Number(value)
  if (n < min || n > max) { throw new UsageError(`--${name} must be in [${min}, ${max}] (got ${value})`) }
  return n
}

/** `[#########.........]  45%  513/1,232` — a text progress bar. */
export function progressBar (done: number, total: number, width = 24): string {
  const f = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total))
  const filled = Math.round(f * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(f * 100)).padStart(3)}%  ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`
}
