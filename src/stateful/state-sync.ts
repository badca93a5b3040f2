/**
 * The state-sync startup path (commonware `glue/src/stateful/actor/syncer`): build every database
 * from untrusted peers up to a finalized floor, follow the chain while it
 * keeps finalizing, and hand off to normal processing at one anchor block.
 *
 * 1. The in-progress floor is recorded durably before any database mutation.
 * 2. The floor is resolved to a block: marshal's durable processed
 * position wins when it is at or past the selected floor, because marshal
 * never redelivers acknowledged blocks.
 * 3. The multi-database coordinator syncs every member to the floor block's
 * targets. Finalized deliveries from marshal are held until marshal's ack
 * window is full; then the newest one becomes a tip update, and once the
 * coordinator has recorded it every held block is acknowledged: their state
 * is absorbed into the recorded target (the `finalized` hook is not called
 * for them; applications read synced state from the databases).
 * 4. When every database has converged on an anchor `A`, held deliveries are
 * classified: below `A` covered, at `A` reflected (the digest must
 * match), above `A` applied in consecutive order by normal processing.
 * Completion at `A` is recorded durably (the synced databases are already
 * durable), then covered/reflected blocks are acknowledged.
 *
 * A crash at any point before completion restarts state sync from the
 * persisted floor (the sync journals resume); after completion the node
 * never state-syncs again (the plan's metadata).
 */

import { DatabaseSet } from '../qmdb/managed.ts'
import { Channel } from '../sync/channel.ts'
import { syncDatabaseSet } from '../sync/coordinator.ts'
import { SyncError } from '../sync/errors.ts'
import { StatefulFatalError } from './errors.ts'
import { reportFinalized } from './processor.ts'
import { processedAnchor } from './startup.ts'
import { anchorOf, bytesEqual, compareRounds, digestKey } from './types.ts'
import type { Acknowledgement } from './marshal.ts'
import type { StartupEnv, StartupResult, StartupStrategy } from './startup.ts'
import type { SyncPlan } from './sync-plan.ts'
import type { Anchor, Block, Round } from './types.ts'
import type { FinalizationScheme } from '../marshal/types.ts'
import type { DatabaseRecord, SyncTargetsOf } from '../qmdb/index.ts'
import type { CoordinatorOptions, MemberRecord, MemberTargets, TipUpdate } from '../sync/coordinator.ts'

/** How the databases are synced: the coordinator members (kind, source, target conversion) per database. */
/** The coordinator's tuning passed through (`onAnchor`: each anchor it dispatches, for progress output). */
type PassedThrough = 'fetchBatchSize' | 'maxOutstandingRequests' | 'applyBatchSize' | 'maxRetainedRoots' | 'onProgress' | 'onAnchor'

export interface StateSyncInit<F, M extends MemberRecord> extends Pick<CoordinatorOptions<M, Anchor>, PassedThrough> {
  plan: SyncPlan<F>
  scheme: FinalizationScheme<F>
  /** Marshal's durable position at its start (`Marshal.start`'s result). */
  marshalFloor: { processedHeight: number | undefined, round: Round }
  members: M
}

/** Where a held finalized delivery goes at hand-off. */
export type Handoff = 'covered' | 'reflected' | 'apply'

/**
 * Classify held deliveries against the converged anchor; throws
 * `StatefulFatalError` for a conflicting block at the anchor height or a
 * non-consecutive block above it.
 */
export function classifyHandoffs<B extends Block> (anchor: Anchor, blocks: readonly B[]): Handoff[] {
  let previous = anchor.height
  return blocks.map(block => {
    if (block.height < anchor.height) { return 'covered' }
    if (block.height === anchor.height) {
      if (!bytesEqual(block.digest, anchor.digest)) {
        throw new StatefulFatalError('HandoffDigestMismatch', 'finalized block at sync anchor height must match sync anchor digest', { height: block.height, digest: digestKey(block.digest) })
      }
      return 'reflected'
    }
    if (block.height !== previous + 1) {
      throw new StatefulFatalError('HandoffNotConsecutive', 'finalized blocks must ascend consecutively from the sync anchor', { height: block.height, digest: digestKey(block.digest) })
    }
    previous = block.height
    return 'apply'
  })
}

interface Held<B> {
  block: B
  ack: Acknowledgement
}

/** The state-sync startup strategy. */
export function stateSync<B extends Block, Dbs extends DatabaseRecord, F, M extends MemberRecord> (init: StateSyncInit<F, M>): StartupStrategy<B, Dbs> {
  const held: Array<Held<B>> = []
  let converged = false
  let handedOff = false
  let env: StartupEnv<B, Dbs> | undefined
  let maxPendingAcks = Infinity
  let tips: Channel<TipUpdate<MemberTargets<M>, Anchor>> | undefined

  /** The ack window is full: turn the newest held block into a tip update, ack all once recorded. */
  const retarget = (): void => {
    if (converged || tips === undefined || env === undefined || held.length < maxPendingAcks) { return }
    const batch = held.splice(0)
    const newest = batch[batch.length - 1].block
    const targets = env.application.syncTargets(newest) as unknown as MemberTargets<M>
    let observed = false
    tips.trySend({
      anchor: anchorOf(newest),
      targets,
      observed: () => {
        if (observed) { return }
        observed = true
        for (const h of batch) { h.ack.acknowledge() }
      }
    })
    // if the coordinator converges without recording this tip, the blocks are handed off instead
    pendingTips.push({ batch, isObserved: () => observed })
  }
  const pendingTips: Array<{ batch: Array<Held<B>>, isObserved(): boolean }> = []
  /** Deliveries taken out of `held` for the hand-off and not yet acknowledged or requeued. */
  const inHandoff: Array<Held<B>> = []

  return {
    mode: 'state-sync',
    rejectsProposals: true,
    onFinalized (block, ack) {
      // once the held blocks are handed off, later deliveries go to the manager's mailbox
      // (behind the requeued ones), never to a list nobody reads again
      if (handedOff) { return false }
      if (held.length >= maxPendingAcks) {
        // the caller cancels this delivery's ack; the held ones go with `cancel`
        throw new StatefulFatalError('AckWindowExceeded', 'marshal exceeded its configured pending acknowledgement window', { height: block.height, digest: digestKey(block.digest) })
      }
      held.push({ block, ack })
      retarget()
      return true
    },
    cancel (reason) {
      const pending = [...held.splice(0), ...pendingTips.filter(t => !t.isObserved()).flatMap(t => t.batch), ...inHandoff.splice(0)]
      pendingTips.length = 0
      for (const h of pending) {
        try { h.ack.cancel(reason) } catch { /* marshal is gone */ }
      }
    },
    async run (e): Promise<StartupResult<B, Dbs>> {
      env = e
      maxPendingAcks = e.marshal.maxPendingAcks
      const floor = init.plan.floor()
      if (floor === undefined) { throw new StatefulFatalError('InvariantViolated', 'state sync needs a floor') }
      await writeMetadata('record the in-progress floor', undefined, async () => { await init.plan.metadata.beginSync(floor) })
      const block = await resolveFloor(e, init, floor)
      const anchor = anchorOf(block)
      e.log('state sync from the finalized block at height %d', block.height)
      tips = new Channel({ capacity: 1, ring: true })
      retarget()
      let result
      try {
        result = await syncDatabaseSet<M, Anchor>({
          members: init.members,
          anchor,
          targets: e.application.syncTargets(block) as unknown as MemberTargets<M>,
          tips,
          ...passedThrough(init),
          signal: e.signal
        })
      } catch (err) {
        if (e.signal.aborted) { throw err }
        throw new StatefulFatalError('StateSyncFailed', `state sync task failed: ${(err as Error)?.message ?? String(err)}`, { cause: err, database: err instanceof SyncError ? err.database : undefined })
      } finally {
        converged = true
        tips.close()
      }
      const databases = new DatabaseSet(result.dbs as unknown as Dbs)
      const A = result.anchor
      const committed = databases.committedTargets()
      if (!databases.targetsEqual(committed, result.targets as unknown as SyncTargetsOf<Dbs>)) {
        throw new StatefulFatalError('StateSyncFailed', 'state sync database targets do not match the coordinator target set', { height: A.height })
      }
      // everything still held (never absorbed into a recorded target) is handed off
      const unobserved = pendingTips.filter(t => !t.isObserved()).flatMap(t => t.batch)
      pendingTips.length = 0
      handedOff = true
      inHandoff.push(...[...unobserved, ...held.splice(0)].sort((a, b) => a.block.height - b.block.height))
      const handoff = [...inHandoff]
      const kinds = classifyHandoffs(A, handoff.map(h => h.block))
      await writeMetadata('record the completion', A.height, async () => { await init.plan.metadata.setComplete(A.height) })
      const requeue: Array<Held<B>> = []
      for (let i = 0; i < handoff.length; i++) {
        if (kinds[i] === 'apply') {
          requeue.push(handoff[i])
        } else {
          await reportFinalized(e.application, handoff[i].block, databases)
          handoff[i].ack.acknowledge()
        }
      }
      // from here the requeued deliveries belong to the manager's mailbox
      inHandoff.length = 0
      e.log('state sync complete at height %d; handing off %d blocks', A.height, requeue.length)
      return { anchor: A, databases, requeue, skipFinalizedUntil: A.height }
    }
  }
}

/** A durable sync-metadata write; its failure is `SyncMetadataFailed` (as on the marshal-sync path). */
function passedThrough<M extends MemberRecord> (init: StateSyncInit<unknown, M>): Pick<CoordinatorOptions<M, Anchor>, PassedThrough> {
  const { fetchBatchSize, maxOutstandingRequests, applyBatchSize, maxRetainedRoots, onProgress, onAnchor } = init
  return { fetchBatchSize, maxOutstandingRequests, applyBatchSize, maxRetainedRoots, onProgress, onAnchor }
}

async function writeMetadata (what: string, height: number | undefined, write: () => Promise<void>): Promise<void> {
  try {
    await write()
  } catch (err) {
    throw new StatefulFatalError('SyncMetadataFailed', `failed to ${what}: ${(err as Error)?.message ?? String(err)}`, { height, cause: err })
  }
}

/** the block the sync targets, covering marshal's durable progress. */
async function resolveFloor<B extends Block, Dbs extends DatabaseRecord, F, M extends MemberRecord> (env: StartupEnv<B, Dbs>, init: StateSyncInit<F, M>, floor: F): Promise<B> {
  const { marshal } = env
  const mf = init.marshalFloor
  if (mf.processedHeight !== undefined && compareRounds(mf.round, init.scheme.round(floor)) >= 0) {
    return processedAnchor(marshal, mf.processedHeight)
  }
  const block = await marshal.subscribeBlock(init.scheme.payload(floor), { signal: env.signal })
  if (block === undefined) {
    throw new StatefulFatalError('FloorAnchorMissing', 'marshal must yield floor block', { digest: digestKey(init.scheme.payload(floor)) })
  }
  const processed = await marshal.getProcessedHeight()
  if (processed !== undefined && processed > block.height) { return processedAnchor(marshal, processed) }
  return block
}
