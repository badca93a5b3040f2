/**
 * Probe metrics through libp2p's `components.metrics` (absent metrics make
 * every call a no-op):
 * - `libp2p_qmdb_probe_rounds_total`: request rounds started;
 * - `libp2p_qmdb_probe_requests_total`: requests sent;
 * - `libp2p_qmdb_probe_replies_total{outcome}`: replies by outcome;
 * - `libp2p_qmdb_probe_served_total{outcome}`: inbound requests by outcome;
 * - `libp2p_qmdb_probe_blocked_peers`: peers blocked for misbehaving.
 */

import type { CounterGroup, Counter, Metric, Metrics } from '@libp2p/interface'

export type ReplyOutcome = 'recorded' | 'no_data' | 'stale' | 'unjudgeable' | 'invalid' | 'late' | 'failure'
export type ProbeServeOutcome = 'response' | 'no_data' | 'malformed' | 'limited' | 'error'

export class ProbeMetrics {
  private readonly rounds?: Counter
  private readonly requests?: Counter
  private readonly replies?: CounterGroup<ReplyOutcome>
  private readonly served?: CounterGroup<ProbeServeOutcome>
  private readonly blocked?: Metric

  constructor (metrics: Metrics | undefined) {
    if (metrics === undefined) { return }
    this.rounds = metrics.registerCounter('libp2p_qmdb_probe_rounds_total', { help: 'probe request rounds started' })
    this.requests = metrics.registerCounter('libp2p_qmdb_probe_requests_total', { help: 'probe requests sent' })
    this.replies = metrics.registerCounterGroup('libp2p_qmdb_probe_replies_total', { label: 'outcome', help: 'probe replies by outcome' })
    this.served = metrics.registerCounterGroup('libp2p_qmdb_probe_served_total', { label: 'outcome', help: 'inbound probe requests by outcome' })
    this.blocked = metrics.registerMetric('libp2p_qmdb_probe_blocked_peers', { help: 'peers blocked by the probe' })
  }

  round (): void {
    this.rounds?.increment()
  }

  request (): void {
    this.requests?.increment()
  }

  reply (outcome: ReplyOutcome): void {
    this.replies?.increment({ [outcome]: true })
  }

  serve (outcome: ProbeServeOutcome): void {
    this.served?.increment({ [outcome]: true })
  }

  blockedPeers (n: number): void {
    this.blocked?.update(n)
  }
}
