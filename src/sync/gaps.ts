/**
 * Gap finding for the sync engine (commonware `storage/src/qmdb/sync`): the first sub-range of
 * `[lo, hi)` covered neither by fetched operations nor by an outstanding
 * request. Outstanding ranges are upper bounds (a source may return fewer
 * operations; the remainder becomes a new gap).
 */

export interface Covered {
  start: number
  /** number of locations covered (fetched ops, or a request's maxOps) */
  count: number
}

/**
 * `fetched` and `outstanding` must each be sorted by `start`. Returns the
 * first gap `[start, end)` or `undefined`.
 */
export function findNextGap (lo: number, hi: number, fetched: readonly Covered[], outstanding: readonly Covered[]): { start: number, end: number } | undefined {
  if (lo >= hi) { return undefined }
  let next = lo
  let i = 0
  let j = 0
  while (i < fetched.length || j < outstanding.length) {
    let c: Covered
    if (j >= outstanding.length || (i < fetched.length && fetched[i].start <= outstanding[j].start)) {
      c = fetched[i++]
    } else {
      c = outstanding[j++]
    }
    if (next < c.start) { return { start: next, end: Math.min(c.start, hi) } }
    next = Math.max(next, c.start + c.count)
    if (next >= hi) { return undefined }
  }
  return next < hi ? { start: next, end: hi } : undefined
}
