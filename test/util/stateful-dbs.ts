/**
 * Database helpers for the stateful tests: real QMDB databases in memory or
 * in LevelDB (a temp dir), and `GatedDb`, a `ManagedDb` wrapper around a
 * real database whose flushes can be held, failed or counted and whose
 * prunes are recorded (the test double of a slow or failing disk).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelDatastore } from 'datastore-level'
import { AnyDb, DatabaseSet, KeylessDb } from '../../src/qmdb/index.ts'
import type { TestDbs } from './stateful-app.ts'
import type { AnyBatch, KeylessBatch, ManagedDb, MerkleizedAnyBatch, MerkleizedKeylessBatch, Target } from '../../src/qmdb/index.ts'

/** Controls the flushes of every `GatedDb` sharing it. */
export class FlushControl {
  /** Hold flushes until released. */
  gated = false
  /** Make the next flush fail with this error. */
  failNext: Error | undefined
  started = 0
  completed = 0
  private held: Array<() => void> = []
  private readonly startWaiters: Array<() => void> = []

  /** Called by a wrapper when a flush starts; resolves when it may complete. */
  async admit (): Promise<void> {
    this.started++
    for (const w of this.startWaiters.splice(0)) { w() }
    if (this.failNext !== undefined) {
      const err = this.failNext
      this.failNext = undefined
      throw err
    }
    if (!this.gated) { return }
    await new Promise<void>(resolve => { this.held.push(resolve) })
  }

  /** Flushes currently held. */
  get holding (): number {
    return this.held.length
  }

  /** Release every held flush (and stop holding new ones if `ungate`). */
  release (ungate = false): void {
    if (ungate) { this.gated = false }
    for (const r of this.held.splice(0)) { r() }
  }

  /** Resolves once at least `n` flushes started. */
  async waitStarted (n: number): Promise<void> {
    while (this.started < n) {
      await new Promise<void>(resolve => { this.startWaiters.push(resolve) })
    }
  }
}

export class GatedDb<U, M, T> implements ManagedDb<U, M, T> {
  readonly inner: ManagedDb<U, M, T>
  readonly control: FlushControl
  readonly kind: string
  readonly pruned: T[] = []
  /** Make the next apply / prune fail. */
  applyError: Error | undefined
  pruneError: Error | undefined
  /** Rewinds do nothing (a database that cannot reach the requested target). */
  rewindNoop = false
  /** Runs at the start of every prune. */
  onPrune?: () => void

  constructor (inner: ManagedDb<U, M, T>, control: FlushControl) {
    this.inner = inner
    this.control = control
    this.kind = `gated-${inner.kind}`
  }

  newBatch (): U { return this.inner.newBatch() }
  forkBatch (parent: M): U { return this.inner.forkBatch(parent) }
  async merkleize (batch: U): Promise<M> { return this.inner.merkleize(batch) }
  batchRoot (batch: M): Uint8Array { return this.inner.batchRoot(batch) }
  matchesSyncTarget (batch: M, target: T): boolean { return this.inner.matchesSyncTarget(batch, target) }
  async apply (batch: M): Promise<unknown> {
    if (this.applyError !== undefined) { throw this.applyError }
    return this.inner.apply(batch)
  }

  async finalize (): Promise<void> {
    const flushing = this.inner.finalize()
    flushing.catch(() => {})
    await this.control.admit()
    await flushing
    this.control.completed++
  }

  async pruneTo (target: T): Promise<void> {
    this.onPrune?.()
    if (this.pruneError !== undefined) { throw this.pruneError }
    this.pruned.push(target)
    await this.inner.pruneTo(target)
  }

  syncTarget (): T { return this.inner.syncTarget() }
  async rewindToTarget (target: T): Promise<void> {
    if (this.rewindNoop) { return }
    await this.inner.rewindToTarget(target)
  }

  initialSyncTarget (): T { return this.inner.initialSyncTarget() }
  targetsEqual (a: T, b: T): boolean { return this.inner.targetsEqual(a, b) }
  reader (): object { return this.inner.reader() }
  async close (): Promise<void> { await this.inner.close() }

  /** Reads pass through to the real database. */
  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    return (this.inner as unknown as { get(k: Uint8Array): Promise<Uint8Array | undefined> }).get(key)
  }
}

/** In-memory databases wrapped in `GatedDb`s sharing one `FlushControl`. */
export interface GatedDbs {
  set: DatabaseSet<TestDbs>
  accounts: AnyDb
  receipts: KeylessDb
  gatedAccounts: GatedDb<AnyBatch, MerkleizedAnyBatch, Target>
  gatedReceipts: GatedDb<KeylessBatch, MerkleizedKeylessBatch, Target>
}

export async function openGatedDbs (control: FlushControl): Promise<GatedDbs> {
  const accounts = await AnyDb.open()
  const receipts = await KeylessDb.open()
  const gatedAccounts = new GatedDb(accounts, control)
  const gatedReceipts = new GatedDb(receipts, control)
  const set = new DatabaseSet<TestDbs>({ accounts: gatedAccounts, receipts: gatedReceipts })
  return { set, accounts, receipts, gatedAccounts, gatedReceipts }
}

/** A LevelDB folder in a temp dir holding both test databases. */
export class LevelDbs {
  readonly dir: string
  private datastore: LevelDatastore | undefined

  private constructor (dir: string) {
    this.dir = dir
  }

  static async create (): Promise<LevelDbs> {
    return new LevelDbs(await mkdtemp(join(tmpdir(), 'qmdb-stateful-')))
  }

  /** Open (or reopen) the databases. */
  async open (): Promise<{ set: DatabaseSet<TestDbs>, accounts: AnyDb, receipts: KeylessDb }> {
    const datastore = new LevelDatastore(join(this.dir, 'db'))
    await datastore.open()
    this.datastore = datastore
    const accounts = await AnyDb.open({ datastore, prefix: '/accounts' })
    const receipts = await KeylessDb.open({ datastore, prefix: '/receipts' })
    return { set: new DatabaseSet<TestDbs>({ accounts, receipts }), accounts, receipts }
  }

  /** Close the databases of `set` and the datastore. */
  async close (set: DatabaseSet<TestDbs>): Promise<void> {
    await set.close()
    await this.datastore?.close()
    this.datastore = undefined
  }

  async remove (): Promise<void> {
    await this.datastore?.close().catch(() => {})
    await rm(this.dir, { recursive: true, force: true })
  }
}
