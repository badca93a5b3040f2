/**
 * What the stateful manager needs from the block store ("marshal",
 * commonware `consensus/src/marshal`). Types only: the real marshal lives in `src/marshal/`.
 *
 * Contract the manager relies on:
 * - `subscribeBlock` finds a block by digest locally, else fetches it from
 * peers, waiting until it is available; it resolves `undefined` once the
 * block can no longer be obtained (shutdown, pruned) and rejects promptly
 * when its signal aborts; a block it returns really has that digest (the
 * provider checks fetched bytes against it);
 * - `getFinalizedBlock` is a local lookup of the finalized block at a height;
 * - finalized blocks are delivered to the manager's `finalized(block, ack)`
 * in strictly increasing, gap-free height order within a process lifetime,
 * at least once across restarts, each only after it is durably stored; at
 * most `maxPendingAcks` delivered blocks are unacknowledged at a time;
 * - `ack.acknowledge()` releases a block (the manager calls it only once the
 * block's state is durable), advancing marshal's processed height; acks are
 * released in height order; `ack.cancel()` means the manager stopped without
 * processing it: marshal must stop delivering and redeliver after restart;
 * - `getProcessedHeight` is marshal's durable processed height (undefined if
 * nothing was ever processed); it never exceeds the databases' durable
 * height because acks wait for durability;
 * - marshal stores the genesis block at height 0 when started from genesis.
 */

import type { Block } from './types.ts'

/** Finds blocks by digest (local store, else peers). */
export interface BlockProvider<B extends Block> {
  /**
   * The block with `digest`, waiting until it is available. `height` is a
   * hint for fetching from peers. Resolves `undefined` when the block can no
   * longer be obtained; rejects when `signal` aborts.
   */
  subscribeBlock(digest: Uint8Array, options: { height?: number, signal?: AbortSignal }): Promise<B | undefined>

  /** The finalized block at `height` if it is stored locally (no network). */
  getFinalizedBlock(height: number): Promise<B | undefined>
}

/** The release handle of one delivered finalized block. */
export interface Acknowledgement {
  /** The block's state is durable: marshal may advance its processed height past it. */
  acknowledge(): void
  /**
   * The manager stopped without processing the block (marshal stops;
   * redelivers after restart). A no-op after `acknowledge` or `cancel`.
   */
  cancel(reason?: Error): void
}

/** Receives finalized blocks from marshal (the manager implements it). */
export interface FinalizedReporter<B extends Block> {
  finalized(block: B, ack: Acknowledgement): void
}

/** Everything the manager consumes from marshal. */
export interface Marshal<B extends Block> extends BlockProvider<B> {
  /** Maximum number of delivered but unacknowledged blocks (the ack window). */
  readonly maxPendingAcks: number

  /** Durable processed height; `undefined` if nothing was ever processed. */
  getProcessedHeight(): Promise<number | undefined>

  /** Hand a block this node proposed to the network (store it and broadcast it). */
  disseminate(block: B): Promise<void> | void

  /** Drop finalized blocks below `height` (ignored above marshal's processed floor). */
  prune(height: number): Promise<void> | void
}
