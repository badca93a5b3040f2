/**
 * The operation log a state sync writes into (commonware `storage/src/qmdb/sync`).
 *
 * A full database syncs *in place*: verified operations go straight into the
 * database's own operation log (`<prefix>/ops/...`), and progress is recorded
 * in `<prefix>/syncmeta` (version u8 ‖ varint start ‖ varint size). The first
 * durable flush atomically replaces the database's `meta` record by
 * `syncmeta`, so a crash mid-sync never leaves a database that looks complete;
 * completion (`QmdbCore.buildFromSync` + commit) atomically does the reverse.
 *
 * Opening for a range reuses matching data already on disk, whether an
 * interrupted sync's journal or a complete database of the same log:
 * - data starting after `range.start` (pruned too far) → cleared to `range.start`;
 * - data reaching past `range.end` (an older target) → rewound to `range.end`;
 * - data ending at or before `range.start` → cleared to `range.start`;
 * - otherwise the prefix below `range.start` is pruned and the rest kept.
 *
 * Nothing is written until the first `flush`.
 */

import { Reader, Writer } from '../codec/index.ts'
import { ItemLog } from '../storage/items.ts'
import { joinKey } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import { QmdbError } from './errors.ts'
import type { DbOptions } from './options.ts'

const SYNC_META_VERSION = 1

export interface SyncRange {
  start: number
  end: number
}

/** What the sync engine appends verified operations to. */
export interface SyncJournal {
  /** First retained location. */
  readonly start: number
  /** Next location (one past the last appended operation). */
  readonly size: number
  append(ops: readonly Uint8Array[]): void
  /** Prepare for a new range start (a target update): prune below it, or clear to it. */
  resize(start: number): Promise<void>
  /** Make appended operations durable (resume after a crash); cheap when nothing changed. */
  flush(): Promise<void>
  /** The encoded operation at `loc`. */
  read(loc: number): Promise<Uint8Array>
}

/** Read the `[start, size)` recorded by a database meta or a sync meta record. */
function decodeBounds (bytes: Uint8Array, what: string): { start: number, size: number } {
  try {
    const r = new Reader(bytes)
    if (r.u8() !== SYNC_META_VERSION) { throw new Error('unknown version') }
    const size = r.varint()
    const start = r.varint()
    r.finish()
    if (start > size) { throw new Error(`start ${start} beyond size ${size}`) }
    return { start, size }
  } catch (err) {
    throw new QmdbError('DataCorrupted', `${what}: ${(err as Error).message}`)
  }
}

export function encodeBounds (size: number, start: number): Uint8Array {
  return new Writer(24).u8(SYNC_META_VERSION).varint(size).varint(start).finish()
}

export class FullSyncJournal implements SyncJournal {
  readonly log: ItemLog
  readonly kv: Kv | undefined
  readonly prefix: string
  readonly options: DbOptions
  private metaReplaced = false
  private flushedSize = -1
  private flushedStart = -1
  private chain: Promise<void> = Promise.resolve()

  private constructor (options: DbOptions, kv: Kv | undefined, prefix: string) {
    this.options = options
    this.kv = kv
    this.prefix = prefix
    this.log = new ItemLog({ kv, prefix: joinKey(prefix, 'ops'), cacheChunks: options.opCacheChunks })
  }

  get start (): number { return this.log.base }
  get size (): number { return this.log.length }

  /** Open the journal for `range` in the storage of a full database. */
  static async open (options: DbOptions, range: SyncRange): Promise<FullSyncJournal> {
    const kv = options.datastore === undefined ? undefined : new Kv(options.datastore)
    const prefix = options.prefix ?? '/qmdb'
    const j = new FullSyncJournal(options, kv, prefix)
    let existing: { start: number, size: number } | undefined
    if (kv !== undefined) {
      const syncMeta = await kv.get(joinKey(prefix, 'syncmeta'))
      const meta = await kv.get(joinKey(prefix, 'meta'))
      if (syncMeta !== undefined) {
        existing = decodeBounds(syncMeta, 'sync meta')
        j.metaReplaced = meta === undefined
      } else if (meta !== undefined) {
        existing = decodeBounds(meta, 'database meta')
      }
    }
    if (existing === undefined || existing.size === existing.start) {
      j.log.open(range.start, range.start)
    } else {
      j.log.open(existing.size, existing.start)
      await j.fit(range)
    }
    return j
  }

  /** Apply the reuse rules of the module comment. */
  private async fit (range: SyncRange): Promise<void> {
    const { base, length } = this.log
    if (base > range.start || length <= range.start) {
      this.log.clear(range.start)
      return
    }
    if (length > range.end) {
      await this.log.truncate(range.end)
    }
    this.log.pruneBelow(range.start)
    await this.log.ensureTail()
  }

  append (ops: readonly Uint8Array[]): void {
    this.log.append(ops)
  }

  async resize (start: number): Promise<void> {
    if (this.log.length <= start || this.log.base > start) {
      this.log.clear(start)
    } else {
      this.log.pruneBelow(start)
    }
  }

  async read (loc: number): Promise<Uint8Array> {
    return this.log.get(loc)
  }

  async flush (): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.kv === undefined) { return }
      if (this.log.length === this.flushedSize && this.log.base === this.flushedStart) { return }
      const batch = this.kv.batch()
      const staged = this.log.stage(batch)
      batch.put(joinKey(this.prefix, 'syncmeta'), encodeBounds(this.log.length, this.log.base))
      if (!this.metaReplaced) { batch.delete(joinKey(this.prefix, 'meta')) }
      const size = this.log.length
      const start = this.log.base
      await batch.commit()
      this.metaReplaced = true
      this.flushedSize = size
      this.flushedStart = start
      this.log.markClean(staged)
    }
    const p = this.chain.then(run)
    this.chain = p.catch(() => {})
    await p
  }

  /** Whether the database meta was replaced by a sync meta (the database is mid-sync on disk). */
  get replacedMeta (): boolean {
    return this.metaReplaced
  }
}
