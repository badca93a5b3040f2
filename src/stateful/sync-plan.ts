/**
 * The one-time startup decision between marshal sync (replay finalized
 * blocks from genesis or from the processed height) and peer state sync
 * from a floor, shared by the block store and the stateful manager so both
 * agree (commonware `glue/src/stateful/actor/syncer/plan.rs`).
 *
 * Durable metadata: one record `<prefix>/state_sync_metadata`:
 * - absent: never synced (fresh);
 * - `0x00 ‖ finalization`: state sync in progress from that floor;
 * - `0x01 ‖ varint(height)`: complete at `height` (irreversible).
 *
 * Invariants (violations are `SyncPlanError`, fatal): once complete, a node
 * never state-syncs again and the height never moves back; an in-progress
 * floor is written before any database mutation of the sync, only moves
 * forward, and two floors of the same round must name the same block; an
 * interrupted sync always resumes (a lagging probe cannot move it back).
 */

import { CodecError, Reader, Writer, hex } from '../codec/index.ts'
import { compareRounds } from '../marshal/types.ts'
import { joinKey } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { Datastore } from 'interface-datastore'

export class SyncPlanError extends Error {
  readonly name = 'SyncPlanError'
  readonly code: 'CompletedSyncCannotRestart' | 'HeightMovedBackward' | 'FloorMovedBackward' | 'ConflictingFloor' | 'DataCorrupted'

  constructor (code: SyncPlanError['code'], message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}

export type SyncState<F> =
  | { type: 'fresh' }
  | { type: 'in-progress', floor: F }
  | { type: 'complete', height: number }

/** The durable state-sync record. */
export class StateSyncMetadata<F> {
  private readonly kv: Kv
  private readonly key: string
  private readonly scheme: FinalizationScheme<F>
  private state: SyncState<F> = { type: 'fresh' }

  private constructor (kv: Kv, key: string, scheme: FinalizationScheme<F>) {
    this.kv = kv
    this.key = key
    this.scheme = scheme
  }

  static async open<F> (datastore: Datastore, prefix: string, scheme: FinalizationScheme<F>): Promise<StateSyncMetadata<F>> {
    const m = new StateSyncMetadata(new Kv(datastore), joinKey(prefix, 'state_sync_metadata'), scheme)
    const bytes = await m.kv.get(m.key)
    if (bytes !== undefined) {
      try {
        m.state = m.decode(bytes)
      } catch (err) {
        throw new SyncPlanError('DataCorrupted', `state sync metadata: ${(err as Error).message}`)
      }
    }
    return m
  }

  private decode (bytes: Uint8Array): SyncState<F> {
    const r = new Reader(bytes)
    const tag = r.u8()
    if (tag === 0) {
      const floor = this.scheme.decode(r.bytes(this.scheme.maxBytes))
      r.finish()
      return { type: 'in-progress', floor }
    }
    if (tag === 1) {
      const height = r.varint()
      r.finish()
      return { type: 'complete', height }
    }
    throw new CodecError('InvalidEnum', `sync state tag ${tag}`)
  }

  get current (): SyncState<F> { return this.state }

  syncHeight (): number | undefined {
    return this.state.type === 'complete' ? this.state.height : undefined
  }

  inProgress (): boolean {
    return this.state.type === 'in-progress'
  }

  inProgressFloor (): F | undefined {
    return this.state.type === 'in-progress' ? this.state.floor : undefined
  }

  /** Durably record that state sync runs from `floor` (before any database mutation). */
  async beginSync (floor: F): Promise<void> {
    if (this.state.type === 'complete') { throw new SyncPlanError('CompletedSyncCannotRestart', 'completed state sync cannot be marked in-progress') }
    if (this.state.type === 'in-progress') {
      const existing = this.state.floor
      const c = compareRounds(this.scheme.round(floor), this.scheme.round(existing))
      if (c < 0) { throw new SyncPlanError('FloorMovedBackward', 'selected state sync floor cannot move behind the persisted in-progress floor') }
      if (c === 0 && hex(this.scheme.payload(floor)) !== hex(this.scheme.payload(existing))) {
        throw new SyncPlanError('ConflictingFloor', 'selected state sync floor conflicts with the persisted in-progress round')
      }
    }
    await this.write(new Writer(256).u8(0).bytes(this.scheme.encode(floor)).finish())
    this.state = { type: 'in-progress', floor }
  }

  /** Durably record completion at `height` (irreversible). */
  async setComplete (height: number): Promise<void> {
    if (this.state.type === 'complete' && height < this.state.height) {
      throw new SyncPlanError('HeightMovedBackward', `completed state sync height cannot move backward (${this.state.height} → ${height})`)
    }
    await this.write(new Writer(16).u8(1).varint(height).finish())
    this.state = { type: 'complete', height }
  }

  private async write (value: Uint8Array): Promise<void> {
    await this.kv.batch().put(this.key, value).commit({ sync: true })
  }
}

export type MarshalStartOf<B, F> = { genesis: B } | { floor: F }

/** The startup decision (see the module comment). */
export class SyncPlan<F> {
  readonly metadata: StateSyncMetadata<F>
  private readonly scheme: FinalizationScheme<F>
  private selected: F | undefined

  private constructor (metadata: StateSyncMetadata<F>, scheme: FinalizationScheme<F>) {
    this.metadata = metadata
    this.scheme = scheme
    this.selected = metadata.inProgressFloor()
  }

  static async init<F> (datastore: Datastore, prefix: string, scheme: FinalizationScheme<F>): Promise<SyncPlan<F>> {
    return new SyncPlan(await StateSyncMetadata.open(datastore, prefix, scheme), scheme)
  }

  /** No completed sync height is recorded. */
  mayStateSync (): boolean {
    return this.metadata.syncHeight() === undefined
  }

  syncHeight (): number | undefined {
    return this.metadata.syncHeight()
  }

  /** The selected (or persisted in-progress) floor. */
  floor (): F | undefined {
    return this.selected
  }

  /** An interrupted sync must resume. */
  requiresStateSyncFloor (): boolean {
    return this.metadata.inProgress()
  }

  shouldStateSync (requested: boolean): boolean {
    return this.mayStateSync() && (requested || this.requiresStateSyncFloor())
  }

  /** Adopt `f` as the floor unless sync is impossible or `f` is not newer than the current one. */
  withFloor (f: F): this {
    if (!this.mayStateSync()) { return this }
    if (this.selected !== undefined && compareRounds(this.scheme.round(f), this.scheme.round(this.selected)) <= 0) { return this }
    this.selected = f
    return this
  }

  marshalStart<B> (genesis: B): MarshalStartOf<B, F> {
    return this.selected !== undefined ? { floor: this.selected } : { genesis }
  }
}
