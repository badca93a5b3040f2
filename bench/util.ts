/**
 * Benchmark helpers: timing, baselines measured in the same run, and a
 * uniform line format so figures can be compared across machines by ratio.
 */
import { createHash } from 'node:crypto'

export function now (): number {
  return Number(process.hrtime.bigint()) / 1e6
}

/** Run `fn` once to warm up, then time it; returns milliseconds. */
export function time (fn: () => void, warmup = true): number {
  if (warmup) { fn() }
  const t = now()
  fn()
  return now() - t
}

export async function timeAsync (fn: () => Promise<void>): Promise<number> {
  const t = now()
  await fn()
  return now() - t
}

export function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function line (label: string, value: string, extra = ''): void {
  process.stdout.write(`  ${label.padEnd(58)} ${value.padStart(16)}${extra !== '' ? '  ' + extra : ''}\n`)
}

export function header (title: string): void {
  process.stdout.write(`\n== ${title}\n`)
}

/** Nanoseconds per 64-byte SHA-256 block of a large node:crypto hash, best of 7 passes (the native bound). */
export function nativeNsPerBlock (): number {
  // a bound, so the fastest of several passes: one slow pass on a busy machine would flatter every ratio to it
  const big = Buffer.alloc(16 << 20, 7)
  createHash('sha256').update(big.subarray(0, 1 << 20)).digest()
  let best = Infinity
  for (let i = 0; i < 7; i++) {
    best = Math.min(best, time(() => { createHash('sha256').update(big).digest() }, false))
  }
  return (best * 1e6) / (big.length / 64)
}

/** SHA-256 blocks needed for a message of `len` bytes. */
export function blocksFor (len: number): number {
  return Math.ceil((len + 9) / 64)
}

/** Nanoseconds per one-call-per-hash node:crypto over messages of `len` bytes (the per-call bound). */
export function perCallNs (len: number, iterations = 200_000): number {
  const msg = Buffer.alloc(len, 3)
  for (let i = 0; i < 10_000; i++) { createHash('sha256').update(msg).digest() }
  const t = now()
  for (let i = 0; i < iterations; i++) {
    msg[0] = i
    createHash('sha256').update(msg).digest()
  }
  return ((now() - t) * 1e6) / iterations
}

/** A floor or target of issue 14: `min` (the figure must reach it) or `max` (must not exceed it). */
export interface Floor {
  name: string
  value: number
  limit: number
  kind: 'min' | 'max'
  /** `floor`: resolves the issue; `target`: reported only. */
  level: 'floor' | 'target'
  unit?: string
}

/** `PASS` or `BELOW` for one floor (data printed next to the figure, never a test). */
export function verdict (f: Floor): 'PASS' | 'BELOW' {
  return (f.kind === 'min' ? f.value >= f.limit : f.value <= f.limit) ? 'PASS' : 'BELOW'
}

/** Every floor and target a section measured, printed together at the end of the run. */
export const floors: Floor[] = []

/** Record `f` and return its verdict text for the figure's line. */
export function judge (f: Floor): string {
  floors.push(f)
  return `${f.level} ${f.kind === 'min' ? '>=' : '<='} ${fmt(f.limit, f.limit < 10 ? 2 : 0)}${f.unit ?? ''}: ${verdict(f)}`
}

/** The summary of every recorded floor and target. */
export function printFloors (): void {
  if (floors.length === 0) { return }
  header('issue 14 floors (resolve the issue) and targets (reported), this run')
  for (const f of floors) {
    const digits = Math.abs(f.value) < 10 ? 2 : 0
    line(`${f.level === 'floor' ? 'FLOOR ' : 'target'} ${f.name}`, `${fmt(f.value, digits)}${f.unit ?? ''}`, `${f.kind === 'min' ? '>=' : '<='} ${fmt(f.limit, f.limit < 10 ? 2 : 0)}${f.unit ?? ''}  ${verdict(f)}`)
  }
}
