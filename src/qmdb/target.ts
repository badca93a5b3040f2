/**
 * State-sync targets (commonware `storage/src/qmdb/sync`): the trusted description of a database
 * state, taken from a finalized block.
 *
 * - `Target { root, range: [start, end) }`: the operations `[start, end)` of a
 * log whose root at size `end` is `root` (`end` is a commit boundary).
 * Wire: `root(32) ‖ varint(start) ‖ varint(end)`, `start < end ≤ MAX_LEAVES`.
 * - `CompactTarget { root, size }`: the tip of a compact database.
 * Wire: `root(32) ‖ varint(size)`, `1 ≤ size ≤ MAX_LEAVES`.
 *
 * Targets live here (not in `sync/`) because every database adapter reports
 * and matches them; `sync/` re-exports them.
 */

import { CodecError, Reader, Writer } from '../codec/index.ts'
import { MAX_LEAVES, digestEquals } from '../merkle/index.ts'
import type { Digest } from '../merkle/index.ts'

export interface Target {
  root: Digest
  range: { start: number, end: number }
}

export interface CompactTarget {
  root: Digest
  size: number
}

export class InvalidTargetError extends Error {
  readonly name = 'InvalidTargetError'
}

export function encodeTarget (t: Target, w: Writer = new Writer(48)): Writer {
  return w.raw(t.root).varint(t.range.start).varint(t.range.end)
}

export function decodeTarget (r: Reader): Target {
  const root = r.raw(32)
  const start = r.varint()
  const end = r.varint()
  if (start >= end) { throw new CodecError('Invalid', 'start must be < end') }
  if (end > MAX_LEAVES) { throw new CodecError('Overflow', `target end ${end} exceeds ${MAX_LEAVES}`) }
  return { root, range: { start, end } }
}

export function encodeCompactTarget (t: CompactTarget, w: Writer = new Writer(48)): Writer {
  return w.raw(t.root).varint(t.size)
}

export function decodeCompactTarget (r: Reader): CompactTarget {
  const root = r.raw(32)
  const size = r.varint()
  if (size < 1 || size > MAX_LEAVES) { throw new CodecError('Invalid', `compact target size ${size} outside [1, ${MAX_LEAVES}]`) }
  return { root, size }
}

/**
 * Whether `next` is a strictly newer target than `from`: a larger end and a
 * start that does not move back. Same end with a larger start ("prune only")
 * does not advance.
 */
export function targetAdvances (next: Target, from: Target): boolean {
  return next.range.end <= MAX_LEAVES && next.range.end > from.range.end && next.range.start >= from.range.start
}

/** The standard target a compact target stands for: `[size - 1, size)`. */
export function compactToTarget (t: CompactTarget): Target {
  if (t.size < 1 || t.size > MAX_LEAVES) { throw new InvalidTargetError(`compact target size ${t.size} outside [1, ${MAX_LEAVES}]`) }
  return { root: t.root, range: { start: t.size - 1, end: t.size } }
}

export function targetsEqual (a: Target, b: Target): boolean {
  return a.range.start === b.range.start && a.range.end === b.range.end && digestEquals(a.root, b.root)
}

export function compactTargetsEqual (a: CompactTarget, b: CompactTarget): boolean {
  return a.size === b.size && digestEquals(a.root, b.root)
}
