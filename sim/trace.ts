/**
 * The event trace of one run: every seeded decision (link delays and drops,
 * faults) and every outcome (finalized blocks per node) is folded into a
 * SHA-256 hash, so two runs of one seed can be compared by a single hex
 * string. The last lines are kept to print when a run fails.
 */
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'

export class Trace {
  private readonly hash: Hash = createHash('sha256')
  private readonly tail: string[] = []
  private readonly keep: number
  events = 0

  constructor (keep = 40) {
    this.keep = keep
  }

  record (at: number, line: string): void {
    const entry = `${at} ${line}`
    this.hash.update(entry).update('\n')
    this.events++
    this.tail.push(entry)
    if (this.tail.length > this.keep) { this.tail.shift() }
  }

  /** The last recorded lines (oldest first). */
  last (): string[] {
    return [...this.tail]
  }

  /** The hash of everything recorded (call once, at the end). */
  digest (): string {
    return this.hash.digest('hex')
  }
}
