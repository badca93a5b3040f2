/**
 * What the sync engine needs from each kind of database (commonware `storage/src/qmdb/sync`):
 * a journal to append verified operations to, a way to find pinned nodes
 * locally (a node that already has the target needs no network), and a way to
 * build the database from a completed journal, check its root and persist it.
 *
 * Full databases sync in place into their own storage (`FullSyncJournal`);
 * compact databases use an in-memory journal and import a witness.
 */

import { Mmr, digestEquals, inactivePeaks } from '../merkle/index.ts'
import { AnyDb } from '../qmdb/any.ts'
import { CurrentDb } from '../qmdb/current.ts'
import { QmdbError } from '../qmdb/errors.ts'
import { ImmutableDb } from '../qmdb/immutable.ts'
import { KeylessDb } from '../qmdb/keyless.ts'
import { AnyOpCodec, ImmutableOpCodec, KeylessOpCodec, fixedField } from '../qmdb/ops.ts'
import { OrderedCurrentDb } from '../qmdb/ordered-current.ts'
import { OrderedAnyDb } from '../qmdb/ordered.ts'
import { FullSyncJournal } from '../qmdb/sync-journal.ts'
import { joinKey } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import type { Digest } from '../merkle/index.ts'
import type { AnyDbOptions } from '../qmdb/any.ts'
import type { CompactDb } from '../qmdb/compact.ts'
import type { CurrentDbOptions } from '../qmdb/current.ts'
import type { ImmutableDbOptions } from '../qmdb/immutable.ts'
import type { KeylessDbOptions } from '../qmdb/keyless.ts'
import type { OpCodec } from '../qmdb/ops.ts'
import type { SyncJournal, SyncRange } from '../qmdb/sync-journal.ts'
import type { Target } from '../qmdb/target.ts'

/** A rebuilt database whose root the engine checks before making it durable. */
export interface SyncBuilt<DB> {
  /** The ops root of the rebuilt state. */
  readonly root: Digest
  /** Persist the result and hand over the database. */
  commit(): Promise<DB>
}

export interface SyncKind<DB> {
  readonly name: string
  /** The operation codec (decodes network responses). */
  readonly codec: OpCodec<unknown>
  openJournal(range: SyncRange): Promise<SyncJournal>
  /** Pinned nodes at `target.range.start` from local data that already matches the target, if any. */
  localPinnedNodes(journal: SyncJournal, target: Target): Promise<Digest[] | undefined>
  build(journal: SyncJournal, pins: Digest[] | undefined, target: Target, applyBatchSize: number): Promise<SyncBuilt<DB>>
}

type FromSync<DB, O> = (options: O, journal: FullSyncJournal, pins: Digest[] | undefined, range: SyncRange, expectedRoot: Digest, applyBatchSize: number) => Promise<DB>

/** What a full database offers once rebuilt from a sync journal. */
interface SyncedDb {
  readonly opsRoot: Digest
  commitSyncResult(): Promise<void>
}

function fullKind<DB extends SyncedDb, O extends AnyDbOptions | ImmutableDbOptions | KeylessDbOptions> (name: string, options: O, codec: OpCodec<unknown>, fromSync: FromSync<DB, O>): SyncKind<DB> {
  return {
    name,
    codec,
    async openJournal (range) {
      return FullSyncJournal.open(options, range)
    },
    async localPinnedNodes (journal, target) {
      const { start, end } = target.range
      if (start === 0 || journal.start > start || journal.size !== end || options.datastore === undefined) { return undefined }
      try {
        const mmr = await Mmr.open(new Kv(options.datastore), joinKey(options.prefix ?? '/qmdb', 'mmr'))
        if (mmr.leaves !== end || mmr.prunedLoc > start) { return undefined }
        const floor = codec.floorOf(codec.decode(await journal.read(end - 1)))
        if (floor === undefined || !digestEquals(mmr.root(inactivePeaks(end, floor)), target.root)) { return undefined }
        return await mmr.pinnedNodesAt(start)
      } catch {
        // an unreadable or interrupted local structure just means "fetch them"
        return undefined
      }
    },
    async build (journal, pins, target, applyBatchSize) {
      if (!(journal instanceof FullSyncJournal)) { throw new QmdbError('UnexpectedData', 'full databases sync into a FullSyncJournal') }
      const db = await fromSync(options, journal, pins, target.range, target.root, applyBatchSize)
      return {
        root: db.opsRoot,
        commit: async () => {
          await db.commitSyncResult()
          return db
        }
      }
    }
  }
}

const anyCodec = (o: AnyDbOptions, ordered = false): OpCodec<unknown> => new AnyOpCodec(o.key ?? fixedField(32), o.value ?? fixedField(32), o.encoding ?? 'fixed', ordered) as OpCodec<unknown>

/** State sync into an `any` database stored with `options`. */
export function anySync (options: AnyDbOptions = {}): SyncKind<AnyDb> {
  return fullKind('any', options, anyCodec(options), AnyDb.fromSyncResult)
}

/** State sync into a `current` database (the target root is its ops root). */
export function currentSync (options: CurrentDbOptions = {}): SyncKind<CurrentDb> {
  return fullKind('current', options, anyCodec(options), CurrentDb.fromSyncResult)
}

/** State sync into an ordered `any` database (operations carry next keys). */
export function orderedAnySync (options: AnyDbOptions = {}): SyncKind<OrderedAnyDb> {
  return fullKind('any-ordered', options, anyCodec(options, true), OrderedAnyDb.fromSyncResult)
}

/** State sync into an ordered `current` database (the target root is its ops root). */
export function orderedCurrentSync (options: CurrentDbOptions = {}): SyncKind<OrderedCurrentDb> {
  return fullKind('current-ordered', options, anyCodec(options, true), OrderedCurrentDb.fromSyncResult)
}

export function immutableSync (options: ImmutableDbOptions = {}): SyncKind<ImmutableDb> {
  const codec = new ImmutableOpCodec(options.key ?? fixedField(32), options.value ?? fixedField(32), options.encoding ?? 'fixed') as OpCodec<unknown>
  return fullKind('immutable', options, codec, ImmutableDb.fromSyncResult)
}

export function keylessSync (options: KeylessDbOptions = {}): SyncKind<KeylessDb> {
  const codec = new KeylessOpCodec(options.value ?? fixedField(32), options.encoding ?? 'fixed') as OpCodec<unknown>
  return fullKind('keyless', options, codec, KeylessDb.fromSyncResult)
}

/** The journal of a compact sync: operations held in memory. */
export class MemoryJournal implements SyncJournal {
  private _start: number
  private ops: Uint8Array[] = []

  constructor (start: number) {
    this._start = start
  }

  get start (): number { return this._start }
  get size (): number { return this._start + this.ops.length }

  append (ops: readonly Uint8Array[]): void {
    this.ops.push(...ops)
  }

  async resize (start: number): Promise<void> {
    if (this.size <= start || this._start > start) {
      this._start = start
      this.ops = []
    } else {
      this.ops = this.ops.slice(start - this._start)
      this._start = start
    }
  }

  async flush (): Promise<void> {}

  async read (loc: number): Promise<Uint8Array> {
    const op = this.ops[loc - this._start]
    if (op === undefined) { throw new QmdbError('LocationOutOfBounds', `location ${loc} not in the journal`) }
    return op
  }
}

/**
 * Compact sync into an open compact database (commonware `storage/src/qmdb/sync`): the journal
 * must end up holding exactly the commit at `size - 1`; the witness is
 * imported only after the root check, so a rejected sync leaves the
 * database's durable state untouched.
 */
export function compactSync<Op extends { type: string }> (db: CompactDb<Op>): SyncKind<CompactDb<Op>> {
  return {
    name: db.kind,
    codec: db.codec as OpCodec<unknown>,
    async openJournal (range) {
      return new MemoryJournal(range.start)
    },
    async localPinnedNodes () {
      return undefined
    },
    async build (journal, pins, target) {
      const size = target.range.end
      if (journal.start !== size - 1 || journal.size !== size) {
        throw new QmdbError('UnexpectedData', `compact sync journal holds [${journal.start}, ${journal.size}), expected [${size - 1}, ${size})`)
      }
      const witness = { opBytes: await journal.read(size - 1), size, pinnedNodes: pins ?? [] }
      const root = db.rootOfWitness(witness)
      return {
        root,
        commit: async () => {
          db.importWitness(witness)
          await db.commit({ sync: true })
          return db
        }
      }
    }
  }
}
