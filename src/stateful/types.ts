/**
 * The types shared by the stateful manager, the application it drives and the
 * consensus engine that drives it (commonware `glue/src/stateful/mod.rs`, docs/ARCHITECTURE.md).
 *
 * Invariants the manager relies on:
 * - a block's identity is its `digest`; `parent` is its parent's digest and
 * `height` is the parent's height + 1 (genesis is height 0);
 * - `context` is the consensus context the block was proposed in; its round
 * strictly increases along a chain (pending-map pruning depends on it,
 *), and the consensus engine checks a block's embedded context against
 * its own before voting (so replays may trust `block.context`);
 * - the application is deterministic: the same block on the same parent state
 * yields the same merkleized state, whichever of `propose`/`verify`/`apply`
 * computed it.
 */

import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { DatabaseRecord, MerkleizedOf, ReadersOf, SyncTargetsOf, UnmerkleizedOf } from '../qmdb/index.ts'

/** A consensus round; compared lexicographically (epoch first). */
export interface Round {
  epoch: number
  view: number
}

/** The consensus context of a proposal (simplex): what the engine hands to propose/verify. */
export interface Context {
  round: Round
  /** The leader of the round (an engine-specific identity, e.g. a peer id string). */
  leader: string
  /** The parent the proposal builds on: its view and its block digest. */
  parent: { view: number, digest: Uint8Array }
}

/** An application block as the manager sees it ("certifiable block"). */
export interface Block {
  readonly digest: Uint8Array
  readonly height: number
  /** Digest of the parent block. */
  readonly parent: Uint8Array
  /** The consensus context embedded in the block. */
  readonly context: Context
}

/** `{ height, round, digest }` of a block (commonware `glue/src/stateful/mod.rs`). */
export interface Anchor {
  height: number
  round: Round
  digest: Uint8Array
  /** Hex of `digest` (map key). */
  key: string
}

/** Read-only facades given to `Application.finalized` (reads and proofs only). */
export type { ReadersOf }

/** What a successful proposal returns. */
export interface Proposed<B extends Block, Dbs extends DatabaseRecord> {
  block: B
  merkleized: MerkleizedOf<Dbs>
}

/**
 * The application the manager drives (commonware `glue/src/stateful/mod.rs`). It must be a
 * stateless deterministic state machine over the batches it is given; every
 * method may run concurrently with the others.
 */
export interface Application<B extends Block, Dbs extends DatabaseRecord> {
  /** The per-database commitments a block declares (its state after execution). */
  syncTargets(block: B): SyncTargetsOf<Dbs>

  /**
   * The genesis block (height 0). Its sync targets must equal the initial
   * targets of freshly created databases. Used by the host (marshal start);
   * the manager itself never calls it.
   */
  genesis(): Promise<B>

  /**
   * Build a child of the first ancestry item (the parent) on `batches`
   * (forked from the parent's state). `undefined` if building failed. Must
   * stop and settle promptly when `signal` aborts.
   */
  propose(ctx: Context, ancestry: AsyncIterable<B>, batches: UnmerkleizedOf<Dbs>, options: { signal: AbortSignal }): Promise<Proposed<B, Dbs> | undefined>

  /**
   * Execute the first ancestry item (the candidate; the second is its parent)
   * on `batches` and return the merkleized result, or `undefined` only if the
   * block is permanently invalid for these inputs. To abstain, stay pending
   * until `signal` aborts (then settle promptly).
   */
  verify(ctx: Context, ancestry: AsyncIterable<B>, batches: UnmerkleizedOf<Dbs>, options: { signal: AbortSignal }): Promise<MerkleizedOf<Dbs> | undefined>

  /**
   * Re-execute a known-good block (lazy recovery, finalization
   * reconstruction). Must produce exactly what `verify` accepted; `ctx` is the
   * block's embedded context. Throwing is fatal (corruption). The signal is
   * aborted when a recovery is abandoned (finalization reconstruction is
   * never abandoned).
   */
  apply(ctx: Context, block: B, batches: UnmerkleizedOf<Dbs>, options?: { signal?: AbortSignal }): Promise<MerkleizedOf<Dbs>>

  /**
   * Observer of every finalized block once the databases reflect it, before
   * its marshal acknowledgement is released (durability may still be
   * pending). At-least-once across crashes. Must not mutate state. Throwing
   * is fatal.
   */
  finalized?(ctx: Context, block: B, readers: ReadersOf<Dbs>): Promise<void>
}

/** Hex of a digest (the key of every digest-keyed map here). */
export function digestKey (digest: Uint8Array): string {
  return uint8ArrayToString(digest, 'base16')
}

export function compareRounds (a: Round, b: Round): number {
  if (a.epoch !== b.epoch) { return a.epoch < b.epoch ? -1 : 1 }
  if (a.view !== b.view) { return a.view < b.view ? -1 : 1 }
  return 0
}

export function roundsEqual (a: Round, b: Round): boolean {
  return a.epoch === b.epoch && a.view === b.view
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) { return false }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) { return false }
  }
  return true
}

/** Whether two consensus contexts are identical. */
export function contextsEqual (a: Context, b: Context): boolean {
  return roundsEqual(a.round, b.round) && a.leader === b.leader && a.parent.view === b.parent.view &&
    bytesEqual(a.parent.digest, b.parent.digest)
}

export function anchorOf (block: Block): Anchor {
  return {
    height: block.height,
    round: { epoch: block.context.round.epoch, view: block.context.round.view },
    digest: block.digest,
    key: digestKey(block.digest)
  }
}
