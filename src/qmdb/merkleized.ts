/**
 * The sealed (merkleized) batch of every QMDB database, full and compact: its
 * place in the batch chain (`merkle/chain.ts`), the MMR batch of its
 * operations, the floor and metadata its commit declares, and the ops root
 * (commonware `storage/src/qmdb/batch_chain.rs`).
 *
 * Invariants: `size = baseSize + ops hashed = mmr.leaves`; the root uses
 * `inactivePeaks(size, floor)` as the applied database does, so a batch's
 * root is the database's root once the batch is applied.
 */

import { inactivePeaks } from '../merkle/index.ts'
import type { ChainLink, Digest, MerkleizedMmrBatch, Mmr } from '../merkle/index.ts'

/**
 * Where a batch forks: a parent batch, or the applied state of its database.
 * Taken before any await of a merkleize, so a batch built while the database
 * moved on is detected as stale when applied.
 */
export interface ForkPoint<Self> {
  readonly parent: Self | undefined
  /** the database's state token (root batches only) */
  readonly baseToken: object | undefined
  /** the database size before the batch */
  readonly baseSize: number
}

export function forkPoint<Self extends { readonly size: number }> (db: { readonly state: object, readonly size: number }, parent: Self | undefined): ForkPoint<Self> {
  return parent === undefined ? { parent, baseToken: db.state, baseSize: db.size } : { parent, baseToken: undefined, baseSize: parent.size }
}

/** A database whose batches grow its MMR. */
export interface MerkleOwner {
  readonly merkle: Mmr
}

export class SealedBatch<Owner extends MerkleOwner, Self extends SealedBatch<Owner, Self>> implements ChainLink {
  /** The database the batch was built for. */
  readonly owner: Owner
  parent: Self | undefined
  baseToken: object | undefined
  appliedToken: object | undefined = undefined
  readonly mmr: MerkleizedMmrBatch
  /** Database size before / after this batch. */
  readonly baseSize: number
  readonly size: number
  /** Inactivity floor declared by the batch's commit. */
  readonly floor: number
  readonly metadata: Uint8Array | undefined
  /** Root of the operations tree (what sync targets use). */
  readonly opsRoot: Digest

  /** Hash `ops` (the last one is the commit) on top of `fork`. */
  constructor (owner: Owner, fork: ForkPoint<Self>, ops: readonly Uint8Array[], floor: number, metadata: Uint8Array | undefined) {
    const mmr = fork.parent !== undefined ? fork.parent.mmr.newBatch() : owner.merkle.newBatch()
    for (let i = 0; i < ops.length; i++) { mmr.add(ops[i]) }
    this.owner = owner
    this.parent = fork.parent
    this.baseToken = fork.baseToken
    this.mmr = mmr.merkleize()
    this.baseSize = fork.baseSize
    this.size = fork.baseSize + ops.length
    this.floor = floor
    this.metadata = metadata
    this.opsRoot = this.mmr.root(inactivePeaks(this.size, floor))
  }

  /** The root of the state after this batch (`current` overrides: the canonical root). */
  get root (): Digest { return this.opsRoot }
}

/** A sealed batch of a full database, which also keeps its encoded operations (appended to the log on apply). */
export class MerkleizedBatch<Owner extends MerkleOwner, Self extends MerkleizedBatch<Owner, Self>> extends SealedBatch<Owner, Self> {
  readonly ops: Uint8Array[]

  constructor (owner: Owner, fork: ForkPoint<Self>, ops: Uint8Array[], floor: number, metadata: Uint8Array | undefined) {
    super(owner, fork, ops, floor, metadata)
    this.ops = ops
  }
}
