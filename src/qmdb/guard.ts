/**
 * Poisoning and serialized commits, shared by the full (`core.ts`) and
 * compact (`compact.ts`) databases:
 * - a mutating step that throws poisons the handle: every later call throws
 * `Poisoned` until the database is reopened (its in-memory state may no
 * longer match what is durable);
 * - commits run one at a time in call order; applies may proceed while one
 * is in flight.
 */

import { QmdbError } from './errors.ts'

export class DbGuard {
  private poisoned: Error | undefined
  private closed = false
  private commits: Promise<void> = Promise.resolve()

  /** Throw if the handle is closed or poisoned. */
  check (): void {
    if (this.closed) { throw new QmdbError('Closed', 'database is closed') }
    if (this.poisoned !== undefined) {
      throw new QmdbError('Poisoned', `an earlier operation failed (${this.poisoned.message}); reopen the database to recover`, { cause: this.poisoned })
    }
  }

  /** Run a mutating step; any failure poisons the handle. */
  async mutate<T>(fn: () => Promise<T> | T): Promise<T> {
    this.check()
    try {
      return await fn()
    } catch (err) {
      this.poisoned = err as Error
      throw err
    }
  }

  /** Run `write` once every earlier commit has settled; a failure poisons the handle. */
  async commit (write: () => Promise<void>): Promise<void> {
    this.check()
    const p = this.commits.then(write)
    this.commits = p.catch(() => {})
    try {
      await p
    } catch (err) {
      this.poisoned = err as Error
      throw err
    }
  }

  /** Wait for in-flight commits; with `close`, every later call throws `Closed`. */
  async settle (close: boolean): Promise<void> {
    await this.commits
    if (close) { this.closed = true }
  }
}
