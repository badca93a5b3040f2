/**
 * Compact `immutable` and `keyless` databases (commonware `storage/src/qmdb/compact`): the same batch
 * API, operations and roots as the full variants, but no history — only the
 * MMR frontier (peaks) and a *witness* of the tip:
 *
 * `Witness { opBytes (the last commit, encoded), size, pinnedNodes = nodesToPin(size - 1) }`,
 * wire: `varint(len) ‖ opBytes ‖ varint(size) ‖ varint(count ≤ 64) ‖ 32·count`.
 *
 * From a witness the state is rebuilt exactly: MMR(size - 1) from its peaks,
 * plus the commit as the last leaf; the root uses the commit's floor.
 *
 * Persistence under `prefix`: `<prefix>/w/<size:16hex>` one witness per
 * applied batch (each is a rewind checkpoint), `<prefix>/cmeta` = version u8 ‖
 * varint tipSize ‖ varint oldestSize. `commit()` writes pending witnesses and
 * the meta atomically. Importing a synced witness replaces the whole journal
 * in one atomic write, so a rejected or interrupted import leaves the previous
 * durable state intact. Without a datastore the witnesses live in a
 * `MemoryDatastore`, so rewind checkpoints behave exactly as on LevelDB
 * (only nothing survives the process).
 */

import { MemoryDatastore } from 'datastore-core'
import { CodecError, Reader, Writer } from '../codec/index.ts'
import { Mmr, MAX_PINNED_NODES, computeRoot, inactivePeaks, leafDigest, markApplied, nodesToPin, unappliedChain } from '../merkle/index.ts'
import { hex16, joinKey, parseHex16 } from '../storage/keys.ts'
import { Kv } from '../storage/kv.ts'
import { QmdbError } from './errors.ts'
import { DbGuard } from './guard.ts'
import { SealedBatch, forkPoint } from './merkleized.ts'
import { FloorBatch } from './open-batch.ts'
import { ImmutableOpCodec, KeylessOpCodec, compareBytes, fixedField, keyId } from './ops.ts'
import { compactReader } from './readers.ts'
import { compactTargetsEqual } from './target.ts'
import type { ManagedDb } from './managed.ts'
import type { ForkPoint } from './merkleized.ts'
import type { Encoding, FieldCodec, ImmutableOp, KeylessOp, OpCodec } from './ops.ts'
import type { CompactReader } from './readers.ts'
import type { CompactTarget } from './target.ts'
import type { Digest, Proof } from '../merkle/index.ts'
import type { Datastore } from 'interface-datastore'

const META_VERSION = 1

export interface Witness {
  opBytes: Uint8Array
  size: number
  pinnedNodes: Digest[]
}

export function encodeWitness (w: Witness): Uint8Array {
  const out = new Writer(w.opBytes.length + 16 + 32 * w.pinnedNodes.length).bytes(w.opBytes).varint(w.size).length32(w.pinnedNodes.length)
  for (const p of w.pinnedNodes) { out.raw(p) }
  return out.finish()
}

export function decodeWitness (bytes: Uint8Array, maxOpBytes = 1 << 20): Witness {
  const r = new Reader(bytes)
  const opBytes = r.bytes(maxOpBytes)
  const size = r.varint()
  const pinnedNodes = r.fixedVec(MAX_PINNED_NODES, 32)
  r.finish()
  return { opBytes, size, pinnedNodes }
}

/** A witness's rebuilt state. */
interface TipState {
  witness: Witness
  mmr: Mmr
  floor: number
  metadata: Uint8Array | undefined
  root: Digest
}

export interface CompactDbOptions {
  /** Where witnesses are kept (default: a private `MemoryDatastore`). */
  datastore?: Datastore
  prefix?: string
}

interface CompactOp { type: string, metadata?: Uint8Array, floor?: number }

/** A sealed compact batch: only its commit is kept (it becomes the witness when applied). */
export class MerkleizedCompactBatch<Op extends CompactOp, B extends CompactBatch<Op> = CompactBatch<Op>> extends SealedBatch<CompactDb<Op, B>, MerkleizedCompactBatch<Op, B>> {
  /** The encoded commit (last operation). */
  readonly commitBytes: Uint8Array

  constructor (db: CompactDb<Op, B>, fork: ForkPoint<MerkleizedCompactBatch<Op, B>>, ops: Uint8Array[], floor: number, metadata: Uint8Array | undefined) {
    super(db, fork, ops, floor, metadata)
    this.commitBytes = ops[ops.length - 1]
  }

  /** A child batch building on this one. */
  newBatch (): B {
    return this.owner.forkBatch(this)
  }
}

/**
 * The shared compact database. `Op` is the operation type of the full
 * variant whose roots it reproduces.
 */
export abstract class CompactDb<Op extends CompactOp, B extends CompactBatch<Op> = CompactBatch<Op>> implements ManagedDb<B, MerkleizedCompactBatch<Op, B>, CompactTarget> {
  abstract readonly kind: string
  readonly codec: OpCodec<Op>
  private readonly kv: Kv
  private readonly prefix: string
  private tip!: TipState
  private _state: object = {}
  private readonly guard = new DbGuard()
  /** witnesses not yet durable (size → bytes), oldest first */
  private pending = new Map<number, Uint8Array>()
  /** durable witnesses to delete at the next commit */
  private deletions = new Set<number>()
  /** the journal must be wiped before the pending witnesses are written (import) */
  private replaceAll = false
  private oldest = 1

  protected constructor (codec: OpCodec<Op>, options: CompactDbOptions) {
    this.codec = codec
    this.kv = new Kv(options.datastore ?? new MemoryDatastore())
    this.prefix = options.prefix ?? '/qmdb'
  }

  get size (): number { return this.tip.witness.size }
  get root (): Digest { return this.tip.root }
  get inactivityFloor (): number { return this.tip.floor }
  get metadata (): Uint8Array | undefined { return this.tip.metadata }
  get state (): object { return this._state }
  /** The tip witness. */
  get witness (): Witness { return this.tip.witness }

  private check (): void {
    this.guard.check()
  }

  private witnessKey (size: number): string {
    return joinKey(this.prefix, 'w', hex16(size))
  }

  /** Rebuild the state a witness describes; any inconsistency is `DataCorrupted`. */
  protected rebuild (witness: Witness): TipState {
    if (witness.size === 0) { throw new QmdbError('DataCorrupted', 'witness of size 0') }
    let op: Op
    try {
      op = this.codec.decode(witness.opBytes)
    } catch (err) {
      throw new QmdbError('DataCorrupted', `witness operation does not decode: ${(err as Error).message}`)
    }
    const floor = this.codec.floorOf(op)
    if (floor === undefined) { throw new QmdbError('DataCorrupted', 'witness operation is not a commit') }
    if (floor > witness.size - 1) { throw new QmdbError('DataCorrupted', `witness floor ${floor} beyond ${witness.size - 1}`) }
    let mmr: Mmr
    try {
      mmr = Mmr.fromPeaks(witness.size - 1, witness.pinnedNodes)
    } catch (err) {
      throw new QmdbError('DataCorrupted', `witness pins: ${(err as Error).message}`)
    }
    mmr.append([witness.opBytes])
    return { witness, mmr, floor, metadata: op.metadata, root: mmr.root(inactivePeaks(witness.size, floor)) }
  }

  protected async openCompact (): Promise<this> {
    const meta = await this.kv.get(joinKey(this.prefix, 'cmeta'))
    if (meta === undefined) {
      const bootstrap = this.codec.encodeCommit(undefined, 0)
      this.tip = this.rebuild({ opBytes: bootstrap, size: 1, pinnedNodes: [] })
      this.pending.set(1, encodeWitness(this.tip.witness))
      this.oldest = 1
      await this.commit({ sync: true })
      return this
    }
    let tipSize: number
    try {
      const r = new Reader(meta)
      if (r.u8() !== META_VERSION) { throw new Error('unknown version') }
      tipSize = r.varint()
      this.oldest = r.varint()
      r.finish()
    } catch (err) {
      throw new QmdbError('DataCorrupted', `compact meta under ${this.prefix}: ${(err as Error).message}`)
    }
    this.tip = this.rebuild(await this.loadWitness(tipSize))
    return this
  }

  private async loadWitness (size: number): Promise<Witness> {
    const pending = this.pending.get(size)
    const bytes = pending ?? (this.deletions.has(size) || this.replaceAll ? undefined : await this.kv.get(this.witnessKey(size)))
    if (bytes === undefined) { throw new QmdbError('RewindBeyondHistory', `no witness for size ${size}`) }
    try {
      const w = decodeWitness(bytes)
      if (w.size !== size) { throw new CodecError('Invalid', `witness key ${size} holds size ${w.size}`) }
      return w
    } catch (err) {
      throw new QmdbError('DataCorrupted', `witness ${size}: ${(err as Error).message}`)
    }
  }

  // ---- batches ----------------------------------------------------------------

  newBatch (): B {
    this.check()
    return this.createBatch(undefined)
  }

  forkBatch (parent: MerkleizedCompactBatch<Op, B>): B {
    return this.createBatch(parent)
  }

  /** The variant's batch type: `set` for immutable, `append` for keyless. */
  protected abstract createBatch (parent: MerkleizedCompactBatch<Op, B> | undefined): B

  async merkleize (batch: B): Promise<MerkleizedCompactBatch<Op, B>> {
    return batch.merkleize()
  }

  batchRoot (batch: MerkleizedCompactBatch<Op, B>): Digest {
    return batch.root
  }

  /** The MMR frontier batches are built on. */
  get merkle (): Mmr { return this.tip.mmr }

  /** @returns the unapplied chain, oldest first (StaleBatch if not built on the current state) */
  chainOf (tip: MerkleizedCompactBatch<Op, B>): Array<MerkleizedCompactBatch<Op, B>> {
    if (tip.owner !== this) { throw new QmdbError('StaleBatch', 'batch belongs to another database') }
    const chain = unappliedChain(tip, this._state)
    if (chain === undefined) { throw new QmdbError('StaleBatch', `batch is not built on the current state (size ${this.size})`) }
    return chain
  }

  validateBatch (tip: MerkleizedCompactBatch<Op, B>): void {
    this.check()
    let prev = this.tip.floor
    for (const b of this.chainOf(tip)) {
      if (b.floor < prev) { throw new QmdbError('FloorRegressed', `batch floor ${b.floor} below ${prev}`) }
      if (b.floor > b.size - 1) { throw new QmdbError('FloorBeyondSize', `floor ${b.floor} beyond commit ${b.size - 1}`) }
      prev = b.floor
    }
  }

  /** Apply `tip` and its unapplied ancestors; each becomes a (not yet durable) rewind checkpoint. */
  async apply (tip: MerkleizedCompactBatch<Op, B>): Promise<{ start: number, end: number }> {
    this.validateBatch(tip)
    const start = this.size
    await this.guard.mutate(async () => {
      const chain = this.chainOf(tip)
      for (const b of chain) {
        const pins = await b.mmr.getNodes(nodesToPin(b.size - 1))
        const witness: Witness = { opBytes: b.commitBytes, size: b.size, pinnedNodes: pins }
        this.pending.set(b.size, encodeWitness(witness))
        this._state = markApplied(b)
      }
      if (chain.length > 0) {
        this.tip.mmr.apply(tip.mmr)
        await this.tip.mmr.prune(this.tip.mmr.leaves) // back to the frontier
        const last = chain[chain.length - 1]
        this.tip = { witness: { opBytes: last.commitBytes, size: last.size, pinnedNodes: await this.pinsOf(last) }, mmr: this.tip.mmr, floor: last.floor, metadata: last.metadata, root: last.root }
      }
    })
    return { start, end: this.size }
  }

  private async pinsOf (b: MerkleizedCompactBatch<Op, B>): Promise<Digest[]> {
    return decodeWitness(this.pending.get(b.size) as Uint8Array).pinnedNodes
  }

  // ---- durability, prune, rewind ----------------------------------------------

  /** Make every applied checkpoint durable (one atomic write). */
  async commit (options: { sync?: boolean } = {}): Promise<void> {
    await this.guard.commit(async () => {
      const batch = this.kv.batch()
      if (this.replaceAll) {
        for await (const k of this.kv.keys(joinKey(this.prefix, 'w') + '/')) { batch.delete(k) }
      }
      for (const size of this.deletions) { batch.delete(this.witnessKey(size)) }
      const written = [...this.pending.entries()]
      for (const [size, bytes] of written) { batch.put(this.witnessKey(size), bytes) }
      batch.put(joinKey(this.prefix, 'cmeta'), new Writer(24).u8(META_VERSION).varint(this.size).varint(this.oldest).finish())
      const deleted = [...this.deletions]
      const wasReplace = this.replaceAll
      await batch.commit(options)
      for (const [size, bytes] of written) {
        if (this.pending.get(size) === bytes) { this.pending.delete(size) }
      }
      for (const size of deleted) { this.deletions.delete(size) }
      if (wasReplace) { this.replaceAll = false }
    })
  }

  async sync (): Promise<void> {
    await this.commit({ sync: true })
  }

  /** Drop checkpoints committing fewer than `size` operations (never the tip); durable on return. */
  async prune (size: number): Promise<void> {
    this.check()
    if (size > this.size) { throw new QmdbError('PruneBeyondMinRequired', `prune to ${size} beyond ${this.size}`) }
    if (this.replaceAll) { throw new QmdbError('DataCorrupted', 'compact-sync import not applied') }
    if (size <= this.oldest) { return }
    for (const s of [...this.pending.keys()]) {
      if (s < size) { this.pending.delete(s) }
    }
    for await (const k of this.kv.keys(joinKey(this.prefix, 'w') + '/')) {
      const s = parseHex16(k.slice(k.lastIndexOf('/') + 1))
      if (s !== undefined && s < size) { this.deletions.add(s) }
    }
    this.oldest = size
    await this.commit()
  }

  /** Rewind to the checkpoint of `size` operations; durable on return. */
  async rewind (size: number): Promise<void> {
    this.check()
    // a pending import is not durable: nothing can be rewound to, not even its own size
    if (this.replaceAll) { throw new QmdbError('DataCorrupted', 'compact-sync import not applied') }
    if (size === this.size) { return }
    if (size > this.size || size < this.oldest) { throw new QmdbError('RewindBeyondHistory', `no checkpoint for size ${size}`) }
    const witness = await this.loadWitness(size)
    await this.guard.mutate(async () => {
      this.tip = this.rebuild(witness)
      for (const s of [...this.pending.keys()]) {
        if (s > size) { this.pending.delete(s) }
      }
      for await (const k of this.kv.keys(joinKey(this.prefix, 'w') + '/')) {
        const s = parseHex16(k.slice(k.lastIndexOf('/') + 1))
        if (s !== undefined && s > size) { this.deletions.add(s) }
      }
      this._state = {}
    })
    await this.commit({ sync: true })
  }

  /**
   * Adopt a verified witness from compact sync. Nothing is written until the
   * next commit, which replaces the whole journal atomically.
   */
  importWitness (witness: Witness): void {
    this.check()
    const state = this.rebuild(witness)
    this.tip = state
    this.pending = new Map([[witness.size, encodeWitness(witness)]])
    this.deletions.clear()
    this.replaceAll = true
    this.oldest = witness.size
    this._state = {}
  }

  /** State of a witness (for sync: check a root before importing). */
  rootOfWitness (witness: Witness): Digest {
    return this.rebuild(witness).root
  }

  // ---- serving the tip (compact sync source) ------------------------------------

  /** Proof of the tip commit (`[size - 1, size)`) against the current root. */
  async tipProof (): Promise<{ proof: Proof, op: Uint8Array, pinnedNodes: Digest[] }> {
    this.check()
    const { witness, floor } = this.tip
    const mmr = Mmr.fromPeaks(witness.size - 1, witness.pinnedNodes)
    mmr.append([witness.opBytes])
    const proof = await mmr.proof(witness.size - 1, witness.size, inactivePeaks(witness.size, floor))
    return { proof, op: witness.opBytes, pinnedNodes: witness.pinnedNodes }
  }

  // ---- ManagedDb ----------------------------------------------------------------

  /** Reads and the tip proof only (see `readers.ts`). */
  reader (): CompactReader<{ proof: Proof, op: Uint8Array, pinnedNodes: Digest[] }> {
    return compactReader(this)
  }

  syncTarget (): CompactTarget {
    return { root: this.tip.root, size: this.size }
  }

  matchesSyncTarget (batch: MerkleizedCompactBatch<Op, B>, target: CompactTarget): boolean {
    return target.size === batch.size && compactTargetsEqual({ root: batch.root, size: batch.size }, target)
  }

  initialSyncTarget (): CompactTarget {
    const leaf = leafDigest(0, this.codec.encodeCommit(undefined, 0))
    return { root: computeRoot(1, 0, [leaf]), size: 1 }
  }

  targetsEqual (a: CompactTarget, b: CompactTarget): boolean {
    return compactTargetsEqual(a, b)
  }

  /** Persist every applied checkpoint with an fsync (see `QmdbCore.finalize`). */
  async finalize (): Promise<void> {
    await this.commit({ sync: true })
  }

  async pruneTo (target: CompactTarget): Promise<void> {
    await this.prune(target.size)
  }

  async rewindToTarget (target: CompactTarget): Promise<void> {
    await this.rewind(target.size)
    if (!compactTargetsEqual(this.syncTarget(), target)) {
      throw new QmdbError('RootMismatch', `after rewinding to ${target.size} the database does not match the target`)
    }
  }

  async close (): Promise<void> {
    await this.guard.settle(true)
  }
}

/**
 * A batch on a compact database: its operations, metadata, floor. The base
 * holds what both variants share; `CompactImmutableBatch` only sets keys and
 * `CompactKeylessBatch` only appends values, so using the wrong operation is a
 * type error.
 */
export abstract class CompactBatch<Op extends CompactOp> extends FloorBatch<CompactDb<Op, CompactBatch<Op>>, MerkleizedCompactBatch<Op, CompactBatch<Op>>> {
  /** The encoded operations before the commit, in the order the full variant emits them. */
  protected abstract encodeItems (): Uint8Array[]

  async merkleize (): Promise<MerkleizedCompactBatch<Op, this>> {
    const db = this.db
    const parent = this.parent
    if (parent !== undefined) { db.chainOf(parent) }
    const ops = this.encodeItems()
    ops.push(db.codec.encodeCommit(this.meta, this.floor))
    const sealed = new MerkleizedCompactBatch(db, forkPoint(db, parent), ops, this.floor, this.meta)
    // sound: `db` created this batch through its own `createBatch`, so its batch type is this one's
    return sealed as unknown as MerkleizedCompactBatch<Op, this>
  }
}

/** A batch on a compact `immutable` database: keys are set once. */
export class CompactImmutableBatch extends CompactBatch<ImmutableOp> {
  private readonly sets = new Map<string, { key: Uint8Array, value: Uint8Array }>()

  /** Set a key that has never been set. */
  set (key: Uint8Array, value: Uint8Array): this {
    this.sets.set(keyId(key), { key, value })
    return this
  }

  /** `Set`s in key order, as `ImmutableBatch` emits them. */
  protected encodeItems (): Uint8Array[] {
    const sets = [...this.sets.values()].sort((a, b) => compareBytes(a.key, b.key))
    return sets.map(({ key, value }) => this.db.codec.encode({ type: 'set', key, value }))
  }
}

/** A batch on a compact `keyless` database: values are appended. */
export class CompactKeylessBatch extends CompactBatch<KeylessOp> {
  private readonly values: Uint8Array[] = []

  /** Append a value. */
  append (value: Uint8Array): this {
    this.values.push(value)
    return this
  }

  protected encodeItems (): Uint8Array[] {
    return this.values.map(value => this.db.codec.encode({ type: 'append', value }))
  }
}

export interface CompactImmutableOptions extends CompactDbOptions {
  key?: FieldCodec
  value?: FieldCodec
  encoding?: Encoding
}

/** Compact `immutable`: same roots as `ImmutableDb`, only the tip witness. */
export class CompactImmutableDb extends CompactDb<ImmutableOp, CompactImmutableBatch> {
  readonly kind = 'immutable-compact'

  private constructor (options: CompactImmutableOptions) {
    super(new ImmutableOpCodec(options.key ?? fixedField(32), options.value ?? fixedField(32), options.encoding ?? 'fixed'), options)
  }

  static async open (options: CompactImmutableOptions = {}): Promise<CompactImmutableDb> {
    return new CompactImmutableDb(options).openCompact()
  }

  protected createBatch (parent: MerkleizedCompactBatch<ImmutableOp, CompactImmutableBatch> | undefined): CompactImmutableBatch {
    return new CompactImmutableBatch(this, parent)
  }
}

export interface CompactKeylessOptions extends CompactDbOptions {
  value?: FieldCodec
  encoding?: Encoding
}

/** Compact `keyless`: same roots as `KeylessDb`, only the tip witness. */
export class CompactKeylessDb extends CompactDb<KeylessOp, CompactKeylessBatch> {
  readonly kind = 'keyless-compact'

  private constructor (options: CompactKeylessOptions) {
    super(new KeylessOpCodec(options.value ?? fixedField(32), options.encoding ?? 'fixed'), options)
  }

  static async open (options: CompactKeylessOptions = {}): Promise<CompactKeylessDb> {
    return new CompactKeylessDb(options).openCompact()
  }

  protected createBatch (parent: MerkleizedCompactBatch<KeylessOp, CompactKeylessBatch> | undefined): CompactKeylessBatch {
    return new CompactKeylessBatch(this, parent)
  }
}
