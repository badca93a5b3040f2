/**
 * The manager's metrics (commonware `glue/src/stateful/actor/metrics.rs`), registered either through a
 * libp2p `Metrics` implementation or directly on a prom-client `Registry`
 * (or nowhere: every update is then a no-op). Names are
 * `<prefix>_<metric>`, prefix default `libp2p_qmdb_stateful`.
 */

import { Counter, Gauge, Histogram } from 'prom-client'
import type { Metrics } from '@libp2p/interface'
import type { Registry } from 'prom-client'

/** Histogram buckets (seconds) of the reference. */
export const DURATION_BUCKETS = [0.001, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0]

export interface GaugeLike { set(value: number): void }
export interface CounterLike { inc(value?: number): void }
export interface HistogramLike { observe(value: number): void }

export interface StatefulMetrics {
  /** 0 until processing starts, then 1. */
  syncDone: GaugeLike
  /** Size of the pending map. */
  pendingBlocks: GaugeLike
  /** Pending entries removed by finalization pruning (winner excluded). */
  prunedForks: CounterLike
  proposeDuration: HistogramLike
  verifyDuration: HistogramLike
  finalizeDuration: HistogramLike
  rebuildPendingDuration: HistogramLike
  /** Blocks replayed by the most recent successful rebuild. */
  rebuildPendingDepth: GaugeLike
}

export interface MetricsOptions {
  /** libp2p metrics (`components.metrics`). */
  metrics?: Metrics
  /** A prom-client registry (used when `metrics` is not given). */
  registry?: Registry
  /** Metric name prefix. */
  prefix?: string
}

const HELP: Record<keyof StatefulMetrics, string> = {
  syncDone: 'Whether the stateful manager entered processing (1) or is still starting or syncing (0)',
  pendingBlocks: 'Speculative block states held above the finalized tip',
  prunedForks: 'Pending block states dropped because a competing block was finalized',
  proposeDuration: 'Seconds to build a proposal (successful proposals only)',
  verifyDuration: 'Seconds to verify a block (accepted blocks only)',
  finalizeDuration: 'Seconds to apply a finalized block to the databases',
  rebuildPendingDuration: 'Seconds to recover missing ancestor states by replay',
  rebuildPendingDepth: 'Blocks replayed by the most recent ancestor recovery'
}

const NAMES: Record<keyof StatefulMetrics, string> = {
  syncDone: 'sync_done',
  pendingBlocks: 'pending_blocks',
  prunedForks: 'pruned_forks',
  proposeDuration: 'propose_duration_seconds',
  verifyDuration: 'verify_duration_seconds',
  finalizeDuration: 'finalize_duration_seconds',
  rebuildPendingDuration: 'rebuild_pending_duration_seconds',
  rebuildPendingDepth: 'rebuild_pending_depth'
}

const noop = { set () {}, inc () {}, observe () {} }

export function createMetrics (options: MetricsOptions = {}): StatefulMetrics {
  const prefix = options.prefix ?? 'libp2p_qmdb_stateful'
  const name = (k: keyof StatefulMetrics): string => `${prefix}_${NAMES[k]}`
  if (options.metrics !== undefined) {
    const m = options.metrics
    const gauge = (k: keyof StatefulMetrics): GaugeLike => {
      const g = m.registerMetric(name(k), { help: HELP[k] })
      return { set: v => { g.update(v) } }
    }
    const histogram = (k: keyof StatefulMetrics): HistogramLike => {
      const h = m.registerHistogram(name(k), { help: HELP[k], buckets: DURATION_BUCKETS })
      return { observe: v => { h.observe(v) } }
    }
    const counter = m.registerCounter(name('prunedForks'), { help: HELP.prunedForks })
    return {
      syncDone: gauge('syncDone'),
      pendingBlocks: gauge('pendingBlocks'),
      prunedForks: { inc: v => { counter.increment(v) } },
      proposeDuration: histogram('proposeDuration'),
      verifyDuration: histogram('verifyDuration'),
      finalizeDuration: histogram('finalizeDuration'),
      rebuildPendingDuration: histogram('rebuildPendingDuration'),
      rebuildPendingDepth: gauge('rebuildPendingDepth')
    }
  }
  if (options.registry !== undefined) {
    const registers = [options.registry]
    const gauge = (k: keyof StatefulMetrics): GaugeLike => new Gauge({ name: name(k), help: HELP[k], registers })
    const histogram = (k: keyof StatefulMetrics): HistogramLike =>
      new Histogram({ name: name(k), help: HELP[k], buckets: DURATION_BUCKETS, registers })
    return {
      syncDone: gauge('syncDone'),
      pendingBlocks: gauge('pendingBlocks'),
      prunedForks: new Counter({ name: name('prunedForks'), help: HELP.prunedForks, registers }),
      proposeDuration: histogram('proposeDuration'),
      verifyDuration: histogram('verifyDuration'),
      finalizeDuration: histogram('finalizeDuration'),
      rebuildPendingDuration: histogram('rebuildPendingDuration'),
      rebuildPendingDepth: gauge('rebuildPendingDepth')
    }
  }
  return {
    syncDone: noop,
    pendingBlocks: noop,
    prunedForks: noop,
    proposeDuration: noop,
    verifyDuration: noop,
    finalizeDuration: noop,
    rebuildPendingDuration: noop,
    rebuildPendingDepth: noop
  }
}
