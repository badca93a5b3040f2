/**
 * The application a node runs, as a parameter of `createNode`: its block
 * encoding, its databases and its logic. The node does everything else
 * (networking, consensus, block store, state sync, serving, status).
 *
 * Each database is described once, by a `NodeDatabase`: how it is opened
 * from the node's datastore, which sync protocol serves it (`standard`: a
 * full database, any historical range with proofs; `compact`: only its tip),
 * the codec of its operations, and how state sync rebuilds it. The
 * constructors below cover every database kind; an application picks one per
 * member of its `DatabaseSet`.
 *
 * Invariant: `create(initialTargets)` must return an application whose
 * genesis block commits to `initialTargets` (the targets of freshly created,
 * empty databases), so a new node reconciles its databases to genesis.
 */

import { AnyDb } from '../qmdb/any.ts'
import { CompactImmutableDb, CompactKeylessDb } from '../qmdb/compact.ts'
import { CurrentDb } from '../qmdb/current.ts'
import { CHUNK_BYTES } from '../qmdb/grafting.ts'
import { ImmutableDb } from '../qmdb/immutable.ts'
import { KeylessDb } from '../qmdb/keyless.ts'
import { AnyOpCodec, ImmutableOpCodec, KeylessOpCodec, fixedField } from '../qmdb/ops.ts'
import { OrderedCurrentDb } from '../qmdb/ordered-current.ts'
import { OrderedAnyDb } from '../qmdb/ordered.ts'
import { compactTargetsEqual, compactToTarget, targetsEqual } from '../qmdb/target.ts'
import { CompactSource } from '../sync/compact-source.ts'
import { anySync, compactSync, currentSync, immutableSync, keylessSync, orderedAnySync, orderedCurrentSync } from '../sync/kinds.ts'
import { LocalSource } from '../sync/local-source.ts'
import type { LightDatabase } from '../light/verify.ts'
import type { BlockCodec } from '../marshal/types.ts'
import type { AnyDbOptions } from '../qmdb/any.ts'
import type { CompactDb, CompactImmutableOptions, CompactKeylessOptions } from '../qmdb/compact.ts'
import type { CurrentDbOptions } from '../qmdb/current.ts'
import type { ImmutableDbOptions } from '../qmdb/immutable.ts'
import type { KeylessDbOptions } from '../qmdb/keyless.ts'
import type { DatabaseRecord, SyncTargetsOf, TargetOfDb } from '../qmdb/managed.ts'
import type { OpCodec } from '../qmdb/ops.ts'
import type { Target } from '../qmdb/target.ts'
import type { Application, Block } from '../stateful/types.ts'
import type { MemberSync } from '../sync/coordinator.ts'
import type { SyncKind } from '../sync/kinds.ts'
import type { Source } from '../sync/source.ts'
import type { Datastore } from 'interface-datastore'

/** Where a database lives: the node's datastore and a key prefix of its own. */
export interface DatabaseStorage {
  datastore: Datastore
  prefix: string
}

/** One database of an application, as the node handles it. */
export interface NodeDatabase<D> {
  /** `standard`: served with historical range proofs; `compact`: only its tip. */
  readonly protocol: 'standard' | 'compact'
  /** Decodes its operations in sync responses. */
  readonly codec: OpCodec<unknown>
  /** Open (or create) it. */
  open(storage: DatabaseStorage): Promise<D>
  /** The state-sync member that rebuilds it in `storage` from `source`. */
  syncMember(storage: DatabaseStorage, source: Source): Promise<MemberSync<D, TargetOfDb<D>>>
  /** What serves it to syncing peers. */
  serve(db: D): Source
  /** How light clients verify its proofs (`current` kinds only: the others cannot prove a key's value now). */
  readonly light?: LightDatabase
}

/** An application chain, ready to run on `createNode`. */
export interface NodeApplication<B extends Block, Dbs extends DatabaseRecord> {
  /** A short name; its databases are stored under `/<name>/<database>` in the node's datastore. */
  readonly name: string
  /** The block encoding (gossip, block store, backfill). */
  readonly blockCodec: BlockCodec<B>
  /** Every database, by member name (the name is also its protocol segment). */
  readonly databases: { readonly [K in keyof Dbs]: NodeDatabase<Dbs[K]> }
  /** The application logic; its genesis commits to `initialTargets`. */
  create(initialTargets: SyncTargetsOf<Dbs>): Application<B, Dbs>
  /**
   * The root `block` commits to for database `db`, for light clients (the
   * canonical root of a `current` database); undefined if it commits none.
   * Without it the node serves no light-client proofs.
   */
  lightRoot?(block: B, db: string): Uint8Array | undefined
}

type Storage<O> = Omit<O, 'datastore' | 'prefix'>

function identity<T> (t: T): T {
  return t
}

function full<DB extends AnyDb | ImmutableDb | KeylessDb, O> (codec: OpCodec<unknown>, open: (o: O & DatabaseStorage) => Promise<DB>, kind: (o: O & DatabaseStorage) => SyncKind<DB>, options: O): NodeDatabase<DB> {
  return {
    protocol: 'standard',
    codec,
    open: async storage => open({ ...options, ...storage }),
    syncMember: async (storage, source) => ({ kind: kind({ ...options, ...storage }), source, toTarget: identity<Target>, equal: targetsEqual }) as MemberSync<DB, TargetOfDb<DB>>,
    serve: db => new LocalSource(db)
  }
}

function compact<DB extends CompactDb<{ type: string }>, O> (codec: OpCodec<unknown>, open: (o: O & DatabaseStorage) => Promise<DB>, options: O): NodeDatabase<DB> {
  return {
    protocol: 'compact',
    codec,
    open: async storage => open({ ...options, ...storage }),
    syncMember: async (storage, source) => {
      const db = await open({ ...options, ...storage })
      return { kind: compactSync(db) as SyncKind<DB>, source, toTarget: compactToTarget, equal: compactTargetsEqual } as MemberSync<DB, TargetOfDb<DB>>
    },
    serve: db => new CompactSource(db)
  }
}

const anyCodec = (o: Storage<AnyDbOptions>, ordered = false): OpCodec<unknown> => new AnyOpCodec(o.key ?? fixedField(32), o.value ?? fixedField(32), o.encoding ?? 'fixed', ordered) as OpCodec<unknown>

export function anyDatabase (options: Storage<AnyDbOptions> = {}): NodeDatabase<AnyDb> {
  return full(anyCodec(options), AnyDb.open, anySync, options)
}

function light (kind: LightDatabase['kind'], codec: OpCodec<unknown>, options: Storage<CurrentDbOptions>): LightDatabase {
  return { kind, codec: codec as AnyOpCodec, chunkBytes: options.chunkBytes ?? CHUNK_BYTES }
}

export function currentDatabase (options: Storage<CurrentDbOptions> = {}): NodeDatabase<CurrentDb> {
  const codec = anyCodec(options)
  return { ...full(codec, CurrentDb.open, currentSync, options), light: light('current', codec, options) }
}

export function orderedAnyDatabase (options: Storage<AnyDbOptions> = {}): NodeDatabase<OrderedAnyDb> {
  return full(anyCodec(options, true), OrderedAnyDb.open, orderedAnySync, options)
}

export function orderedCurrentDatabase (options: Storage<CurrentDbOptions> = {}): NodeDatabase<OrderedCurrentDb> {
  const codec = anyCodec(options, true)
  return { ...full(codec, OrderedCurrentDb.open, orderedCurrentSync, options), light: light('current-ordered', codec, options) }
}

const immutableCodec = (o: Storage<ImmutableDbOptions>): OpCodec<unknown> => new ImmutableOpCodec(o.key ?? fixedField(32), o.value ?? fixedField(32), o.encoding ?? 'fixed') as OpCodec<unknown>
const keylessCodec = (o: Storage<KeylessDbOptions>): OpCodec<unknown> => new KeylessOpCodec(o.value ?? fixedField(32), o.encoding ?? 'fixed') as OpCodec<unknown>

export function immutableDatabase (options: Storage<ImmutableDbOptions> = {}): NodeDatabase<ImmutableDb> {
  return full(immutableCodec(options), ImmutableDb.open, immutableSync, options)
}

export function keylessDatabase (options: Storage<KeylessDbOptions> = {}): NodeDatabase<KeylessDb> {
  return full(keylessCodec(options), KeylessDb.open, keylessSync, options)
}

export function compactImmutableDatabase (options: Storage<CompactImmutableOptions> = {}): NodeDatabase<CompactImmutableDb> {
  return compact(immutableCodec(options), CompactImmutableDb.open, options)
}

export function compactKeylessDatabase (options: Storage<CompactKeylessOptions> = {}): NodeDatabase<CompactKeylessDb> {
  return compact(keylessCodec(options), CompactKeylessDb.open, options)
}
