/**
 * Read-only facades over the databases: what the application's `finalized`
 * hook receives (and what any other observer that must not mutate state
 * should be given).
 *
 * A facade reaches its database only through closures and exposes reads
 * and proofs only (one table per reader interface, checked against it by
 * the compiler). A mutating call is therefore impossible at run time,
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

/** How a facade exposes each member of a reader interface: a live getter or a forwarded call (the compiler insists every member is listed). */
type Shape<R> = { readonly [K in keyof R]-?: R[K] extends (...args: never[]) => unknown ? 'call' : 'get' }

const LOG: Shape<LogReader> = {
  kind: 'get',
  size: 'get',
  inactivityFloor: 'get',
  pruningBoundary: 'get',
  metadata: 'get',
  root: 'get',
  syncTarget: 'call',
  readOpBytes: 'call',
  historicalProof: 'call',
  proof: 'call',
  oldestServableSize: 'call'
}
const ANY: Shape<AnyReader> = { ...LOG, activeKeys: 'get', get: 'call', getMany: 'call' }
const CURRENT: Shape<CurrentReader<unknown, unknown>> = { ...ANY, opsRoot: 'get', rangeProof: 'call', keyValueProof: 'call' }
const ORDERED: Shape<OrderedReads<unknown>> = { getAll: 'call', getSpan: 'call', entries: 'call' }
const ORDERED_CURRENT: Shape<OrderedCurrentReader<unknown, unknown, unknown, unknown, unknown>> = {
  ...CURRENT, ...ORDERED, orderedKeyValueProof: 'call', exclusionProof: 'call'
}
const IMMUTABLE: Shape<ImmutableReader> = { ...LOG, get: 'call' }
const KEYLESS: Shape<KeylessReader> = { ...LOG, get: 'call', getMany: 'call' }
const COMPACT: Shape<CompactReader<unknown>> = {
  kind: 'get', size: 'get', inactivityFloor: 'get', metadata: 'get', root: 'get', syncTarget: 'call', tipProof: 'call'
}

/**
 * A frozen object with exactly the members of `shape`, each reaching `db`
 * through a closure (never a property): getters read the database live,
 * calls are forwarded.
 */
function facade<R extends object> (db: R, shape: Shape<R>): R {
  const out: Record<string, unknown> = {}
  for (const name of Object.keys(shape) as Array<keyof R & string>) {
    if (shape[name] === 'get') {
      Object.defineProperty(out, name, { get: () => db[name], enumerable: true })
    } else {
      out[name] = (...args: unknown[]) => (db[name] as (...args: unknown[]) => unknown).apply(db, args)
    }
  }
  return Object.freeze(out) as R
}

export function anyReader (db: AnyReader): AnyReader {
  return facade(db, ANY)
}

export function currentReader<R, K> (db: CurrentReader<R, K>): CurrentReader<R, K> {
  return facade<CurrentReader<unknown, unknown>>(db, CURRENT) as CurrentReader<R, K>
}

export function orderedAnyReader<S> (db: OrderedAnyReader<S>): OrderedAnyReader<S> {
  return facade<OrderedAnyReader<unknown>>(db, { ...ANY, ...ORDERED }) as OrderedAnyReader<S>
}

export function orderedCurrentReader<R, K, S, OK, E> (db: OrderedCurrentReader<R, K, S, OK, E>): OrderedCurrentReader<R, K, S, OK, E> {
  return facade<OrderedCurrentReader<unknown, unknown, unknown, unknown, unknown>>(db, ORDERED_CURRENT) as OrderedCurrentReader<R, K, S, OK, E>
}

export function immutableReader (db: ImmutableReader): ImmutableReader {
  return facade(db, IMMUTABLE)
}

export function keylessReader (db: KeylessReader): KeylessReader {
  return facade(db, KEYLESS)
}

export function compactReader<P> (db: CompactReader<P>): CompactReader<P> {
  return facade<CompactReader<unknown>>(db, COMPACT) as CompactReader<P>
}
