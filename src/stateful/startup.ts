/**
 * Startup strategies: how the manager brings its databases to a finalized
 * anchor before processing (commonware `glue/src/stateful/actor/syncer`).
 *
 * A strategy runs once at `start()`; it returns the anchor the databases
 * reflect (the processed block) and how far redelivered finalized blocks are
 * only reported, not re-applied (`skipFinalizedUntil`). While it
 * runs, the manager queues verifications (they run once processing starts)
 * and either queues proposals or, if the strategy says so, answers them
 * `undefined` at once; finalized deliveries are queued unless the strategy
 * takes them (`onFinalized`, for state sync, which absorbs blocks into its
 * targets). The state-sync path plugs in here as another
 * strategy; this module provides the marshal-sync path.
 */

import { StatefulFatalError } from './errors.ts'
import { anchorOf, digestKey } from './types.ts'
import type { Acknowledgement, Marshal } from './marshal.ts'
import type { Anchor, Application, Block } from './types.ts'
import type { DatabaseRecord, DatabaseSet } from '../qmdb/index.ts'
import type { Logger } from '@libp2p/interface'

/** The durable state-sync record, as far as the marshal-sync path needs it (`SyncPlan.metadata`). */
export interface SyncMetadata {
  /** Height recorded by a completed state sync (or a marshal-sync start), if any. */
  syncHeight(): number | undefined
  /** A state sync was started and not completed: only the state-sync strategy may resume it. */
  inProgress(): boolean
  /** Durably record completion at `height` (never moves backward). */
  setComplete(height: number): Promise<void>
}

export interface StartupEnv<B extends Block, Dbs extends DatabaseRecord> {
  application: Application<B, Dbs>
  /** The opened databases (absent when the strategy builds them, as state sync does). */
  databases: DatabaseSet<Dbs> | undefined
  marshal: Marshal<B>
  metadata?: SyncMetadata
  log: Logger
  /** Aborts when the manager stops. */
  signal: AbortSignal
}

export interface StartupResult<B extends Block, Dbs extends DatabaseRecord> {
  /** The finalized block the databases reflect: the processed anchor. */
  anchor: Anchor
  /** Finalized deliveries up to this height are only reported and acknowledged. */
  skipFinalizedUntil?: number
  /** Replacement databases (a strategy that builds them, e.g. state sync). */
  databases?: DatabaseSet<Dbs>
  /** Finalized deliveries the strategy held, processed first (in order) once processing starts. */
  requeue?: Array<{ block: B, ack: Acknowledgement }>
}

export interface StartupStrategy<B extends Block, Dbs extends DatabaseRecord> {
  readonly mode: string
  /** Answer proposals `undefined` while starting (state sync) instead of queueing them. */
  readonly rejectsProposals?: boolean
  run(env: StartupEnv<B, Dbs>): Promise<StartupResult<B, Dbs>>
  /**
   * Take a finalized delivery that arrives while starting; `false` leaves it
   * queued. May throw a `StatefulFatalError` (the manager then stops).
   */
  onFinalized?(block: B, ack: Acknowledgement): boolean
  /** The manager is stopping: cancel every acknowledgement the strategy still holds. */
  cancel?(reason: Error): void
}

/**
 * Whether a redelivered finalized block at `height` is only reported (not
 * re-applied) given the skip window `until`, and the window after it.
 */
export function skipFinalizedBlock (until: number | undefined, height: number): { skip: boolean, until: number | undefined } {
  if (until === undefined) { return { skip: false, until } }
  if (height > until) { return { skip: false, until: undefined } }
  if (height === until) { return { skip: true, until: undefined } }
  return { skip: true, until }
}

/**
 * The block backing marshal's processed height: the block at `height`, else
 * the one after it (marshal installed a floor and records its predecessor
 * as processed).
 */
export async function processedAnchor<B extends Block> (marshal: Marshal<B>, height: number): Promise<B> {
  const block = await marshal.getFinalizedBlock(height) ?? await marshal.getFinalizedBlock(height + 1)
  if (block === undefined) {
    throw new StatefulFatalError('FloorAnchorMissing', 'marshal must return floor anchor after processed height', { height })
  }
  return block
}

/**
 * Make the databases reflect `block` (step 7): rewind them to its
 * targets if they differ (the databases may be ahead of marshal after a
 * crash between a flush and marshal persisting the ack). Fatal if the
 * rewind cannot make them equal.
 */
export async function reconcileToBlock<B extends Block, Dbs extends DatabaseRecord> (env: StartupEnv<B, Dbs>, block: B): Promise<void> {
  const { databases, application } = env
  if (databases === undefined) { throw new StatefulFatalError('InvariantViolated', 'the marshal-sync path needs opened databases', { height: block.height }) }
  const target = application.syncTargets(block)
  if (databases.targetsEqual(databases.committedTargets(), target)) { return }
  const details = { digest: digestKey(block.digest), height: block.height }
  env.log('databases differ from the block at height %d: rewinding', block.height)
  try {
    await databases.rewindToTargets(target)
  } catch (err) {
    throw new StatefulFatalError('DatabaseRewindFailed', `rewinding to the processed block failed: ${(err as Error)?.message}`, { ...details, database: (err as { database?: string }).database, cause: err })
  }
  const committed = databases.committedTargets()
  const member = databases.members.find(n => !databases.dbs[n].targetsEqual(committed[n], target[n]))
  if (member !== undefined) {
    throw new StatefulFatalError('RewindMismatch', 'databases must be consistent with marshal floor after rewind', { ...details, database: member })
  }
}

/**
 * The marshal-sync path: fresh genesis start, or any restart after a
 * completed sync. Reconciles the databases to the block at
 * `max(stored sync height, marshal processed height)`.
 */
export function marshalSync<B extends Block, Dbs extends DatabaseRecord> (): StartupStrategy<B, Dbs> {
  return {
    mode: 'marshal-sync',
    async run (env) {
      const { marshal, metadata } = env
      if (metadata?.inProgress() === true) {
        // marking it complete here would make the node skip the sync for good, on partial databases
        throw new StatefulFatalError('StateSyncInProgress', 'the sync plan records an interrupted state sync: start with the state-sync strategy (the plan\'s floor) to resume it, not with marshal sync')
      }
      const syncHeight = metadata?.syncHeight()
      const processed = await marshal.getProcessedHeight()
      let skip = syncHeight !== undefined && (processed === undefined || processed < syncHeight) ? syncHeight : undefined
      const floor = Math.max(syncHeight ?? 0, processed ?? 0)
      let block: B
      if (processed === floor) {
        block = await processedAnchor(marshal, floor)
      } else {
        const b = await marshal.getFinalizedBlock(floor)
        if (b === undefined) {
          throw new StatefulFatalError('SyncBlockMissing', 'marshal must return completed state sync block', { height: floor })
        }
        block = b
      }
      if (block.height > floor) { skip = Math.max(skip ?? 0, block.height) }
      await reconcileToBlock(env, block)
      if (metadata !== undefined) {
        try {
          await metadata.setComplete(block.height)
        } catch (err) {
          throw new StatefulFatalError('SyncMetadataFailed', `failed to set state sync state to complete: ${(err as Error)?.message}`, { height: block.height, cause: err })
        }
      }
      env.log('starting from the finalized block at height %d', block.height)
      return { anchor: anchorOf(block), skipFinalizedUntil: skip }
    }
  }
}
