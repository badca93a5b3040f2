/**
 * The contract between the stateful manager and a database (commonware `glue/src/stateful/db/mod.rs`), and `DatabaseSet`, a named record of databases operated
 * as one.
 *
 * `ManagedDb` semantics:
 * - `apply` publishes a merkleized batch (and its unapplied ancestors); it does
 * not start durability; each applied batch is a rewindable checkpoint;
 * - `finalize` starts persisting everything applied so far; the returned
 * promise resolves once that is durable with an fsync (it precedes a
 * marshal acknowledgement, so it must survive a power loss); later applies
 * may proceed meanwhile;
 * - `prune` and `rewindToTarget` are durable on return;
 * - `syncTarget` is the latest applied target (durability not implied);
 * `matchesSyncTarget(batch, t)` is true iff applying `batch` yields `t`.
 *
 * `DatabaseSet` runs `apply`/`finalize`/`prune`/`rewindToTargets`
 * concurrently per member and names the failing member in its error
 * (`DatabaseSetError`): after a partial apply or prune the set is no longer
 * consistent, so callers must treat these errors as fatal.
 */

import type { Digest } from '../merkle/index.ts'

export interface ManagedDb<U, M, T> {
  /** A short type label for errors and logs (e.g. `any`, `keyless-compact`). */
  readonly kind: string
  /** A new batch on the applied state. */
  newBatch(): U
  /** A child batch reading through `parent`. */
  forkBatch(parent: M): U
  /** Resolve a batch and compute its root (without writing). */
  merkleize(batch: U): Promise<M>
  /** The root a merkleized batch puts in block headers. */
  batchRoot(batch: M): Digest
  /** True iff applying `batch` would produce exactly `target`. */
  matchesSyncTarget(batch: M, target: T): boolean
  apply(batch: M): Promise<unknown>
  /** Persist everything applied so far (fsynced); resolves when durable. */
  finalize(): Promise<void>
  /** Discard history no longer needed for `target`; durable on return. */
  pruneTo(target: T): Promise<void>
  /** The latest applied target. */
  syncTarget(): T
  /** Rewind to an earlier applied target; durable on return. */
  rewindToTarget(target: T): Promise<void>
  /** The target of a freshly created (empty) database of this kind. */
  initialSyncTarget(): T
  targetsEqual(a: T, b: T): boolean
  /** A read-only facade (reads and proofs, no way to mutate); see `readers.ts`. */
  reader(): object
  close(): Promise<void>
}

/** Structural "any managed database" used as a type bound. */
export type SomeManagedDb = ManagedDb<any, any, any>

export type UnmerkleizedOfDb<D> = D extends ManagedDb<infer U, any, any> ? U : never
export type MerkleizedOfDb<D> = D extends ManagedDb<any, infer M, any> ? M : never
export type TargetOfDb<D> = D extends ManagedDb<any, any, infer T> ? T : never
export type ReaderOfDb<D> = D extends { reader(): infer R } ? R : never

export type DatabaseRecord = Record<string, SomeManagedDb>
export type UnmerkleizedOf<Dbs extends DatabaseRecord> = { [K in keyof Dbs]: UnmerkleizedOfDb<Dbs[K]> }
export type MerkleizedOf<Dbs extends DatabaseRecord> = { [K in keyof Dbs]: MerkleizedOfDb<Dbs[K]> }
export type SyncTargetsOf<Dbs extends DatabaseRecord> = { [K in keyof Dbs]: TargetOfDb<Dbs[K]> }
/** The read-only facades of a set, by member name. */
export type ReadersOf<Dbs extends DatabaseRecord> = { readonly [K in keyof Dbs]: ReaderOfDb<Dbs[K]> }

export class DatabaseSetError extends Error {
  readonly name = 'DatabaseSetError'
  /** Which member failed. */
  readonly database: string
  readonly kind: string
  readonly operation: string

  constructor (operation: string, database: string, kind: string, cause: unknown) {
    super(`database ${operation} failed (${database}, type ${kind}): ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.operation = operation
    this.database = database
    this.kind = kind
  }
}

/** A durability barrier over every member of a set. */
export interface Barrier {
  /** Resolves when every member's state is durable; rejects (naming the member) if one failed. */
  durable(): Promise<void>
}

export class DatabaseSet<Dbs extends DatabaseRecord> {
  readonly dbs: Dbs
  private readonly names: Array<keyof Dbs & string>
  private facades: ReadersOf<Dbs> | undefined

  constructor (dbs: Dbs) {
    this.dbs = dbs
    this.names = Object.keys(dbs) as Array<keyof Dbs & string>
  }

  /** Member names, in a stable order. */
  get members (): Array<keyof Dbs & string> {
    return this.names
  }

  private map<R>(fn: (db: SomeManagedDb, name: keyof Dbs & string) => R): { [K in keyof Dbs]: R } {
    const out: Partial<Record<keyof Dbs, R>> = {}
    for (const n of this.names) { out[n] = fn(this.dbs[n], n) }
    return out as { [K in keyof Dbs]: R }
  }

  private async all (operation: string, fn: (db: SomeManagedDb, name: keyof Dbs & string) => Promise<unknown>): Promise<void> {
    const results = await Promise.allSettled(this.names.map(async n => fn(this.dbs[n], n)))
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        const n = this.names[i]
        throw new DatabaseSetError(operation, n, this.dbs[n].kind, r.reason)
      }
    })
  }

  /** Read-only facades of every member (what observers such as the `finalized` hook get). */
  readers (): ReadersOf<Dbs> {
    this.facades ??= Object.freeze(this.map(db => db.reader())) as ReadersOf<Dbs>
    return this.facades
  }

  newBatches (): UnmerkleizedOf<Dbs> {
    return this.map(db => db.newBatch()) as UnmerkleizedOf<Dbs>
  }

  forkBatches (parent: MerkleizedOf<Dbs>): UnmerkleizedOf<Dbs> {
    return this.map((db, n) => db.forkBatch(parent[n])) as UnmerkleizedOf<Dbs>
  }

  async merkleize (batches: UnmerkleizedOf<Dbs>): Promise<MerkleizedOf<Dbs>> {
    const out: Partial<Record<keyof Dbs, unknown>> = {}
    await Promise.all(this.names.map(async n => { out[n] = await this.dbs[n].merkleize(batches[n]) }))
    return out as MerkleizedOf<Dbs>
  }

  roots (batches: MerkleizedOf<Dbs>): { [K in keyof Dbs]: Digest } {
    return this.map((db, n) => db.batchRoot(batches[n]))
  }

  matchesSyncTargets (batches: MerkleizedOf<Dbs>, targets: SyncTargetsOf<Dbs>): boolean {
    return this.names.every(n => this.dbs[n].matchesSyncTarget(batches[n], targets[n]))
  }

  /** The first member whose batch does not match its target, if any. */
  mismatchedTarget (batches: MerkleizedOf<Dbs>, targets: SyncTargetsOf<Dbs>): (keyof Dbs & string) | undefined {
    return this.names.find(n => !this.dbs[n].matchesSyncTarget(batches[n], targets[n]))
  }

  async apply (batches: MerkleizedOf<Dbs>): Promise<void> {
    await this.all('apply', async (db, n) => db.apply(batches[n]))
  }

  /** Start persisting every member; await `durable()` before the next finalize or a prune. */
  finalize (): Barrier {
    const pending = this.names.map(n => ({ n, p: this.dbs[n].finalize() }))
    for (const { p } of pending) { p.catch(() => {}) }
    return {
      durable: async () => {
        const results = await Promise.allSettled(pending.map(async x => x.p))
        results.forEach((r, i) => {
          if (r.status === 'rejected') {
            const n = pending[i].n
            throw new DatabaseSetError('sync', n, this.dbs[n].kind, r.reason)
          }
        })
      }
    }
  }

  async prune (targets: SyncTargetsOf<Dbs>): Promise<void> {
    await this.all('prune', async (db, n) => db.pruneTo(targets[n]))
  }

  committedTargets (): SyncTargetsOf<Dbs> {
    return this.map(db => db.syncTarget()) as SyncTargetsOf<Dbs>
  }

  initialSyncTargets (): SyncTargetsOf<Dbs> {
    return this.map(db => db.initialSyncTarget()) as SyncTargetsOf<Dbs>
  }

  targetsEqual (a: SyncTargetsOf<Dbs>, b: SyncTargetsOf<Dbs>): boolean {
    return this.names.every(n => this.dbs[n].targetsEqual(a[n], b[n]))
  }

  /** Rewind every member (unconditionally, even one already at its target). */
  async rewindToTargets (targets: SyncTargetsOf<Dbs>): Promise<void> {
    await this.all('rewind', async (db, n) => db.rewindToTarget(targets[n]))
  }

  async close (): Promise<void> {
    await this.all('close', async db => db.close())
  }
}
