/**
 * Metrics of a request/response service (the resolvers, marshal, probe),
 * registered through libp2p's `components.metrics` (absent metrics make every
 * call a no-op). Names are `libp2p_qmdb_<kind>_<metric>` so two services on
 * one node (a standard and a compact resolver, the marshal, the probe) never share a
 * series (docs/PROTOCOLS.md lists them).
 *
 * - `served_total{outcome}`: inbound requests by outcome (response,
 * no_data, malformed, limited, error);
 * - `fetch_total{outcome}`: outbound attempts by outcome (response,
 * no_data, timeout, failure, invalid, aborted);
 * - `verdicts_total{verdict}`: engine verdicts on fetched responses;
 * - `blocked_peers`: peers blocked now — for good (bad data, protocol
 * violations) or for a while by the strike rule — read from the peer book
 * when metrics are scraped (`countBlocked`);
 * - `bytes_total{direction}`: frame bytes received (`in`) and sent (`out`),
 * length prefix included (`frameSize`);
 * - `serve_duration_seconds`, `fetch_duration_seconds`: latency histograms.
 */

import type { CounterGroup, Histogram, Metrics } from '@libp2p/interface'

export type ServeOutcome = 'response' | 'no_data' | 'malformed' | 'limited' | 'error'
export type FetchOutcome = 'response' | 'no_data' | 'timeout' | 'failure' | 'invalid' | 'aborted'

const SERVE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const FETCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** What the request server and the exchange report; `ServiceMetrics` and the probe's metrics provide it. */
export interface ServeMetrics {
  serve(outcome: ServeOutcome, seconds?: number): void
  bytesIn(n: number): void
  bytesOut(n: number): void
}

export class ServiceMetrics implements ServeMetrics {
  private readonly served?: CounterGroup<ServeOutcome>
  private readonly fetches?: CounterGroup<FetchOutcome>
  private readonly verdicts?: CounterGroup<'valid' | 'invalid'>
  private blockedCount: () => number = () => 0
  private readonly bytes?: CounterGroup<'in' | 'out'>
  private readonly serveDuration?: Histogram
  private readonly fetchDuration?: Histogram

  /** `client: false` leaves out the fetching series (`fetch_total`, `verdicts_total`, `fetch_duration_seconds`). */
  constructor (metrics: Metrics | undefined, kind: string, options: { client?: boolean } = {}) {
    if (metrics === undefined) { return }
    const name = (n: string): string => `libp2p_qmdb_${kind}_${n}`
    this.served = metrics.registerCounterGroup(name('served_total'), { label: 'outcome', help: 'inbound requests by outcome' })
    metrics.registerMetric(name('blocked_peers'), {
      help: 'peers blocked now: for good (bad data, protocol violations) or for a while by the strike rule',
      calculate: () => this.blockedCount()
    })
    this.bytes = metrics.registerCounterGroup(name('bytes_total'), { label: 'direction', help: 'frame bytes received and sent' })
    this.serveDuration = metrics.registerHistogram(name('serve_duration_seconds'), { help: 'time to answer an inbound request', buckets: SERVE_BUCKETS })
    if (options.client === false) { return }
    this.fetches = metrics.registerCounterGroup(name('fetch_total'), { label: 'outcome', help: 'outbound requests by outcome' })
    this.verdicts = metrics.registerCounterGroup(name('verdicts_total'), { label: 'verdict', help: 'verification verdicts on fetched responses' })
    this.fetchDuration = metrics.registerHistogram(name('fetch_duration_seconds'), { help: 'round trip of successful outbound requests', buckets: FETCH_BUCKETS })
  }

  serve (outcome: ServeOutcome, seconds?: number): void {
    this.served?.increment({ [outcome]: true })
    if (seconds !== undefined) { this.serveDuration?.observe(seconds) }
  }

  fetch (outcome: FetchOutcome, seconds?: number): void {
    this.fetches?.increment({ [outcome]: true })
    if (seconds !== undefined) { this.fetchDuration?.observe(seconds) }
  }

  verdict (valid: boolean): void {
    this.verdicts?.increment({ [valid ? 'valid' : 'invalid']: true })
  }

  /** Where the `blocked_peers` gauge reads its value at each scrape. */
  countBlocked (count: () => number): void {
    this.blockedCount = count
  }

  bytesIn (n: number): void {
    if (n > 0) { this.bytes?.increment({ in: n }) }
  }

  bytesOut (n: number): void {
    if (n > 0) { this.bytes?.increment({ out: n }) }
  }
}
