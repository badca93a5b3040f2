/**
 * A datastore that can lose power: an in-memory store whose writes become
 * durable only when a write asks to be synced (`{ sync: true }`, what the
 * storage layer passes for commits that must survive an OS crash, see
 * `src/storage/kv.ts`) — a synced write makes everything written before it
 * durable too, like an fsync of LevelDB's log.
 *
 * `crash('process')` keeps every write (the OS still has them),
 * `crash('power')` keeps only the durable ones. After a crash the store is
 * dead: every call on it never settles, as if the process had stopped in it,
 * so work still running in the crashed node cannot write behind the
 * restarted one's back; the restarted node opens a new store over what
 * `crash` returned.
 *
 * The store exposes a LevelDB-like `db` (batch with a sync flag, get,
 * getMany) so `Kv` routes its atomic batches through it and the sync flag
 * reaches the store.
 */

import { BaseDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import type { KeyQuery, Pair, Query } from 'interface-datastore'

type Op = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

class NotFoundError extends Error {
  readonly name = 'NotFoundError'
  readonly code = 'ERR_NOT_FOUND'
}

const never = async <T>(): Promise<T> => new Promise<T>(() => {})

export type CrashKind = 'process' | 'power'

export class PowerLossDatastore extends BaseDatastore {
  /** What a reader sees. */
  private readonly data: Map<string, Uint8Array>
  /** What survives a power loss. */
  private readonly durable: Map<string, Uint8Array>
  /** Keys written since the last sync (`undefined`: deleted). */
  private readonly dirty = new Map<string, Uint8Array | undefined>()
  private dead = false
  /** Synced writes (batches and single writes) so far. */
  syncs = 0
  /**
   * Called right after a synced write became durable, before its caller
   * resumes: a crash from here lands between an fsync and whatever the
   * caller does next (e.g. between a database commit and its acknowledgement).
   */
  onSync?: () => void

  /** The LevelDB-like face `Kv` uses for atomic, optionally synced batches. */
  readonly db = {
    batch: async (ops: Op[], options?: { sync?: boolean }): Promise<void> => {
      if (this.dead) { return never() }
      for (const op of ops) {
        if (op.type === 'put') { this.write(norm(op.key), op.value) } else { this.write(norm(op.key), undefined) }
      }
      if (options?.sync === true && this.honourSync) { this.sync() }
      if (options?.sync === true) { this.onSync?.() }
      // crashed by `onSync`: the caller never resumes
      if (this.dead) { return never() }
    },
    get: async (key: string): Promise<Uint8Array | undefined> => {
      if (this.dead) { return never() }
      return this.data.get(norm(key))
    },
    getMany: async (keys: string[]): Promise<Array<Uint8Array | undefined>> => {
      if (this.dead) { return never() }
      return keys.map(k => this.data.get(norm(k)))
    }
  }

  /** When false the sync flag is ignored (a store that lies about fsync: the simulator's own self-check). */
  private readonly honourSync: boolean

  constructor (survivor?: Map<string, Uint8Array>, options: { honourSync?: boolean } = {}) {
    super()
    this.honourSync = options.honourSync ?? true
    this.data = new Map(survivor)
    this.durable = new Map(survivor)
  }

  private write (key: string, value: Uint8Array | undefined): void {
    if (value === undefined) { this.data.delete(key) } else { this.data.set(key, value) }
    this.dirty.set(key, value)
  }

  private sync (): void {
    for (const [k, v] of this.dirty) {
      if (v === undefined) { this.durable.delete(k) } else { this.durable.set(k, v) }
    }
    this.dirty.clear()
    this.syncs++
  }

  /** Writes not yet durable. */
  get unsynced (): number {
    return this.dirty.size
  }

  /** Stop the store: every later call hangs. Returns what survives. */
  crash (kind: CrashKind): Map<string, Uint8Array> {
    this.dead = true
    return new Map(kind === 'power' ? this.durable : this.data)
  }

  put (key: Key, val: Uint8Array): Key | Promise<Key> {
    if (this.dead) { return never() }
    this.write(key.toString(), val)
    return key
  }

  get (key: Key): Uint8Array | Promise<Uint8Array> {
    if (this.dead) { return never() }
    const v = this.data.get(key.toString())
    if (v === undefined) { throw new NotFoundError('Not Found') }
    return v
  }

  has (key: Key): boolean | Promise<boolean> {
    if (this.dead) { return never() }
    return this.data.has(key.toString())
  }

  delete (key: Key): void | Promise<void> {
    if (this.dead) { return never() }
    this.write(key.toString(), undefined)
  }

  * _all (_q: Query): Generator<Pair> {
    if (this.dead) { return }
    for (const [key, value] of [...this.data.entries()]) { yield { key: new Key(key), value } }
  }

  * _allKeys (_q: KeyQuery): Generator<Key> {
    if (this.dead) { return }
    for (const key of [...this.data.keys()]) { yield new Key(key) }
  }
}

function norm (key: string): string {
  return new Key(key).toString()
}
