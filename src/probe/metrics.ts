/**
 * Probe metrics through libp2p's `components.metrics` (absent metrics make
 * every call a no-op): the serving series every request/response service
 * has (`net/metrics.ts` with kind `probe`: `libp2p_qmdb_probe_served_total{outcome}`,
 * `…_blocked_peers`, `…_bytes_total{direction}`, `…_serve_duration_seconds`),
 * and the discovery series:
 * - `libp2p_qmdb_probe_rounds_total`: request rounds started;
 * - `libp2p_qmdb_probe_requests_total`: requests sent;
 * - `libp2p_qmdb_probe_replies_total{outcome}`: replies by outcome.
 */

import { ServiceMetrics } from '../net/metrics.ts'
import type { CounterGroup, Counter, Metrics } from '@libp2p/interface'

export type ReplyOutcome = 'recorded' | 'no_data' | 'stale' | 'unjudgeable' | 'invalid' | 'late' | 'failure'

export class ProbeMetrics extends ServiceMetrics {
  private readonly rounds?: Counter
  private readonly requests?: Counter
  private readonly replies?: CounterGroup<ReplyOutcome>

  constructor (metrics: Metrics | undefined) {
    super(metrics, 'probe', { client: false })
    if (metrics === undefined) { return }
    this.rounds = metrics.registerCounter('libp2p_qmdb_probe_rounds_total', { help: 'probe request rounds started' })
    this.requests = metrics.registerCounter('libp2p_qmdb_probe_requests_total', { help: 'probe requests sent' })
    this.replies = metrics.registerCounterGroup('libp2p_qmdb_probe_replies_total', { label: 'outcome', help: 'probe replies by outcome' })
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
}
