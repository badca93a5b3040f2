/**
 * Read-only facades over the databases: what the application's `finalized`
 * hook receives (and what any other observer that must not mutate state
 * should be given).
 *
 * A facade keeps its database in an ECMAScript private field and exposes
 * reads and proofs only. A mutating call is therefore impossible at run time,
 * not merely a type error: the facade has no such method and no property
 * that leads back to the database. Getters are live: a facade kept across
 * blocks reads the applied state of the moment.
 *
 * This module depends on the databases only through the structural
 * interfaces below, so the databases can build their own facades without an
 * import cycle.
 */

import type { ProvenOps } from './core.ts'
import type { CompactTarget, Target } from './target.ts'
import type { Digest } from '../merkle/index.ts'

/** Reads and proofs every full database (an operation log) offers. */
export interface LogReader {
  readonly kind: string
  /** Number of operations. */
  readonly size: number
  readonly inactivityFloor: number
  /** Oldest operation still stored. */
  readonly pruningBoundary: number
  /** Metadata of the last commit. */
  readonly metadata: Uint8Array | undefined
  /** The root that block headers commit to. */
  readonly root: Digest
  /** The sync target of the applied state. */
  syncTarget(): Target
  /** Encoded operation at `loc`. */
  readOpBytes(loc: number): Promise<Uint8Array>
  /** Operations `[start, start + maxOps)` proven against the root at `size` (a commit boundary). */
  historicalProof(size: number, start: number, maxOps: number): Promise<ProvenOps>
  /** Operations `[start, start + maxOps)` proven against the current root. */
  proof(start: number, maxOps: number): Promise<ProvenOps>
  /** The smallest size whose sync target this database can still serve. */
  oldestServableSize(): Promise<number>
}

/** An `any` database: current values by key. */
export interface AnyReader extends LogReader {
  /** Number of keys with a value. */
  readonly activeKeys: number
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  getMany(keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>>
}

/** A `current` database: `root` is the canonical root; proofs that a value is current. */
export interface CurrentReader<RangeProof, KeyValueProof> extends AnyReader {
  /** The root of the operation log (what state sync verifies against). */
  readonly opsRoot: Digest
  rangeProof(start: number, maxOps: number): Promise<RangeProof>
  keyValueProof(key: Uint8Array): Promise<KeyValueProof>
}

/** What ordered databases add: next keys, spans and ranges in key order (`Span` is the database's span type). */
export interface OrderedReads<Span> {
  /** The active update of `key` (value and next key), or undefined. */
  getAll(key: Uint8Array): Promise<Span | undefined>
  /** The active update whose span contains `key`; undefined iff the database is empty. */
  getSpan(key: Uint8Array): Promise<Span | undefined>
  /** Active pairs with `from <= key < to` in key order. */
  entries(from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }>
}

/** An ordered `any` database. */
export interface OrderedAnyReader<Span> extends AnyReader, OrderedReads<Span> {}

/** An ordered `current` database: also proofs of a key's next key and of a key's absence. */
export interface OrderedCurrentReader<RangeProof, KeyValueProof, Span, OrderedKeyValueProof, ExclusionProof>
  extends CurrentReader<RangeProof, KeyValueProof>, OrderedReads<Span> {
  orderedKeyValueProof(key: Uint8Array): Promise<OrderedKeyValueProof>
  exclusionProof(key: Uint8Array): Promise<ExclusionProof>
}

/** An `immutable` database: values set once per key. */
export interface ImmutableReader extends LogReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>
}

/** A `keyless` database: values by location. */
export interface KeylessReader extends LogReader {
  get(loc: number): Promise<Uint8Array | undefined>
  getMany(locs: readonly number[]): Promise<Array<Uint8Array | undefined>>
}

/** A compact database: only its tip. */
export interface CompactReader<TipProof> {
  readonly kind: string
  readonly size: number
  readonly inactivityFloor: number
  readonly metadata: Uint8Array | undefined
  readonly root: Digest
  syncTarget(): CompactTarget
  /** The tip commit with its proof and the pinned nodes before it. */
  tipProof(): Promise<TipProof>
}

class LogFacade implements LogReader {
  readonly #db: LogReader

  constructor (db: LogReader) {
    this.#db = db
  }

  get kind (): string { return this.#db.kind }
  get size (): number { return this.#db.size }
  get inactivityFloor (): number { return this.#db.inactivityFloor }
  get pruningBoundary (): number { return this.#db.pruningBoundary }
  get metadata (): Uint8Array | undefined { return this.#db.metadata }
  get root (): Digest { return this.#db.root }
  syncTarget (): Target { return this.#db.syncTarget() }
  async readOpBytes (loc: number): Promise<Uint8Array> { return this.#db.readOpBytes(loc) }
  async historicalProof (size: number, start: number, maxOps: number): Promise<ProvenOps> { return this.#db.historicalProof(size, start, maxOps) }
  async proof (start: number, maxOps: number): Promise<ProvenOps> { return this.#db.proof(start, maxOps) }
  async oldestServableSize (): Promise<number> { return this.#db.oldestServableSize() }
}

class AnyFacade extends LogFacade implements AnyReader {
  readonly #db: AnyReader

  constructor (db: AnyReader) {
    super(db)
    this.#db = db
  }

  get activeKeys (): number { return this.#db.activeKeys }
  async get (key: Uint8Array): Promise<Uint8Array | undefined> { return this.#db.get(key) }
  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> { return this.#db.getMany(keys) }
}

class CurrentFacade<R, K> extends AnyFacade implements CurrentReader<R, K> {
  readonly #db: CurrentReader<R, K>

  constructor (db: CurrentReader<R, K>) {
    super(db)
    this.#db = db
  }

  get opsRoot (): Digest { return this.#db.opsRoot }
  async rangeProof (start: number, maxOps: number): Promise<R> { return this.#db.rangeProof(start, maxOps) }
  async keyValueProof (key: Uint8Array): Promise<K> { return this.#db.keyValueProof(key) }
}

class OrderedAnyFacade<S> extends AnyFacade implements OrderedAnyReader<S> {
  readonly #db: OrderedAnyReader<S>

  constructor (db: OrderedAnyReader<S>) {
    super(db)
    this.#db = db
  }

  async getAll (key: Uint8Array): Promise<S | undefined> { return this.#db.getAll(key) }
  async getSpan (key: Uint8Array): Promise<S | undefined> { return this.#db.getSpan(key) }
  entries (from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }> { return this.#db.entries(from, to) }
}

class OrderedCurrentFacade<R, K, S, OK, E> extends CurrentFacade<R, K> implements OrderedCurrentReader<R, K, S, OK, E> {
  readonly #db: OrderedCurrentReader<R, K, S, OK, E>

  constructor (db: OrderedCurrentReader<R, K, S, OK, E>) {
    super(db)
    this.#db = db
  }

  async getAll (key: Uint8Array): Promise<S | undefined> { return this.#db.getAll(key) }
  async getSpan (key: Uint8Array): Promise<S | undefined> { return this.#db.getSpan(key) }
  entries (from: Uint8Array, to?: Uint8Array): AsyncGenerator<{ key: Uint8Array, value: Uint8Array }> { return this.#db.entries(from, to) }
  async orderedKeyValueProof (key: Uint8Array): Promise<OK> { return this.#db.orderedKeyValueProof(key) }
  async exclusionProof (key: Uint8Array): Promise<E> { return this.#db.exclusionProof(key) }
}

class ImmutableFacade extends LogFacade implements ImmutableReader {
  readonly #db: ImmutableReader

  constructor (db: ImmutableReader) {
    super(db)
    this.#db = db
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> { return this.#db.get(key) }
}

class KeylessFacade extends LogFacade implements KeylessReader {
  readonly #db: KeylessReader

  constructor (db: KeylessReader) {
    super(db)
    this.#db = db
  }

  async get (loc: number): Promise<Uint8Array | undefined> { return this.#db.get(loc) }
  async getMany (locs: readonly number[]): Promise<Array<Uint8Array | undefined>> { return this.#db.getMany(locs) }
}

class CompactFacade<P> implements CompactReader<P> {
  readonly #db: CompactReader<P>

  constructor (db: CompactReader<P>) {
    this.#db = db
  }

  get kind (): string { return this.#db.kind }
  get size (): number { return this.#db.size }
  get inactivityFloor (): number { return this.#db.inactivityFloor }
  get metadata (): Uint8Array | undefined { return this.#db.metadata }
  get root (): Digest { return this.#db.root }
  syncTarget (): CompactTarget { return this.#db.syncTarget() }
  async tipProof (): Promise<P> { return this.#db.tipProof() }
}

export function anyReader (db: AnyReader): AnyReader {
  return Object.freeze(new AnyFacade(db))
}

export function currentReader<R, K> (db: CurrentReader<R, K>): CurrentReader<R, K> {
  return Object.freeze(new CurrentFacade(db))
}

export function orderedAnyReader<S> (db: OrderedAnyReader<S>): OrderedAnyReader<S> {
  return Object.freeze(new OrderedAnyFacade(db))
}

export function orderedCurrentReader<R, K, S, OK, E> (db: OrderedCurrentReader<R, K, S, OK, E>): OrderedCurrentReader<R, K, S, OK, E> {
  return Object.freeze(new OrderedCurrentFacade(db))
}

export function immutableReader (db: ImmutableReader): ImmutableReader {
  return Object.freeze(new ImmutableFacade(db))
}

export function keylessReader (db: KeylessReader): KeylessReader {
  return Object.freeze(new KeylessFacade(db))
}

export function compactReader<P> (db: CompactReader<P>): CompactReader<P> {
  return Object.freeze(new CompactFacade(db))
}
