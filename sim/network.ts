/**
 * The simulated network between the nodes of one run: a directed link per
 * pair of nodes with a seeded latency (base + jitter) and drop rate, links
 * cut in one direction (one-way) or both (partitions) until healed, and
 * nodes that are down. A message is judged twice: when sent (dropped, or
 * delayed by its latency) and when it arrives (dropped if the link was cut
 * or the receiver went down meanwhile). Jitter reorders messages on a link.
 * A message may be delivered twice (`dupRate`, each copy with its own
 * latency): a whole message is what libp2p can repeat — gossipsub may hand
 * the same message on twice before its seen-cache has it, a retried
 * request is served again — never bytes inside a stream, so a duplicate is
 * a whole gossip message or a whole leg of a request/response exchange
 * (a repeated request runs the server twice; the caller takes the first
 * answer). Every decision comes from the run's seeded generator and is
 * recorded in the trace.
 */
import type { VirtualClock } from './clock.ts'
import type { Trace } from './trace.ts'
import type { Rng } from '../test/util/rng.ts'

export interface LinkModel {
  /** Minimum one-way latency (virtual ms). */
  latencyMs: number
  /** Extra latency, uniform in [0, jitterMs). */
  jitterMs: number
  /** Probability (0..1) that a message is lost. */
  dropRate: number
  /** Probability (0..1) that a delivered message is delivered a second time. */
  dupRate: number
}

export class SimNetwork {
  readonly model: LinkModel
  /** messages sent / delivered / dropped / delivered twice */
  readonly counts = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 }
  private readonly clock: VirtualClock
  private readonly rng: Rng
  private readonly trace: Trace
  private readonly cut = new Set<string>()
  private readonly down = new Set<number>()
  /** Bumped each time a node goes down or up. */
  private readonly epochs = new Map<number, number>()

  constructor (clock: VirtualClock, rng: Rng, trace: Trace, model: LinkModel) {
    this.clock = clock
    this.rng = rng
    this.trace = trace
    this.model = model
  }

  /** Whether `from` can reach `to` right now. */
  reachable (from: number, to: number): boolean {
    return from !== to && !this.down.has(from) && !this.down.has(to) && !this.cut.has(`${from}>${to}`)
  }

  isUp (node: number): boolean {
    return !this.down.has(node)
  }

  setUp (node: number, up: boolean): void {
    if (up) { this.down.delete(node) } else { this.down.add(node) }
    // a node going down ends what it was serving: its exchanges in flight are lost, not stalled
    this.epochs.set(node, (this.epochs.get(node) ?? 0) + 1)
  }

  /** Cut the link `from → to` (one way). */
  cutLink (from: number, to: number): void {
    this.cut.add(`${from}>${to}`)
  }

  /** Cut every link between `side` and the other nodes of `all`, both ways. */
  partition (side: number[], all: number[]): void {
    for (const a of side) {
      for (const b of all) {
        if (!side.includes(b)) {
          this.cutLink(a, b)
          this.cutLink(b, a)
        }
      }
    }
  }

  healAll (): void {
    this.cut.clear()
  }

  /** How long a requester waits for an answer (a generous round trip). */
  get requestTimeoutMs (): number {
    return 4 * (this.model.latencyMs + this.model.jitterMs) + 50
  }

  /** One link's latency for the next message. */
  latency (): number {
    return this.model.latencyMs + this.rng.int(Math.max(1, this.model.jitterMs))
  }

  private lost (): boolean {
    return this.rng.u32() / 0x100000000 < this.model.dropRate
  }

  /** Send a message: `deliver` runs at the receiver after the link's latency, unless it is lost. */
  send (from: number, to: number, kind: string, deliver: () => void): void {
    this.counts.sent++
    if (!this.reachable(from, to) || this.lost()) {
      this.counts.dropped++
      this.trace.record(this.clock.now, `drop ${kind} ${from}>${to}`)
      return
    }
    this.deliverAfter(from, to, kind, deliver)
    if (this.model.dupRate > 0 && this.rng.u32() / 0x100000000 < this.model.dupRate) {
      this.counts.duplicated++
      this.deliverAfter(from, to, `${kind}(dup)`, deliver)
    }
  }

  private deliverAfter (from: number, to: number, kind: string, deliver: () => void): void {
    const delay = this.latency()
    this.trace.record(this.clock.now, `send ${kind} ${from}>${to} +${delay}`)
    this.clock.schedule(() => {
      if (!this.reachable(from, to)) {
        this.counts.dropped++
        return
      }
      this.counts.delivered++
      deliver()
    }, delay, undefined)
  }

  /** The answer of `exchange`, or undefined if it brought none. */
  async request<T>(from: number, to: number, kind: string, serve: () => Promise<T | undefined>): Promise<T | undefined> {
    const r = await this.exchange(from, to, kind, serve)
    return r.type === 'answer' ? r.value : undefined
  }

  /**
   * A request/response exchange: `serve` runs at `to` after one latency,
   * its answer arrives one latency later. The caller learns after a
   * generous round trip when no answer came: `lost` if a leg was dropped,
   * the link was cut or `to` went down meanwhile (what a reset stream tells
   * a libp2p client), `timeout` if `to` got the request and, still up and
   * reachable, never answered (a stall).
   */
  async exchange<T>(from: number, to: number, kind: string, serve: () => Promise<T | undefined>): Promise<Exchanged<T>> {
    const epoch = this.epochs.get(to) ?? 0
    return new Promise<Exchanged<T>>(resolve => {
      let settled = false
      let arrived = false
      let served = false
      this.send(from, to, `${kind}?`, () => {
        arrived = true
        void serve().catch(() => undefined).then(value => {
          served = true
          this.send(to, from, `${kind}!`, () => {
            // a duplicated request or answer arrives after the first: ignored
            if (settled) { return }
            settled = true
            resolve({ type: 'answer', value })
          })
        })
      })
      this.clock.schedule(() => {
        if (settled) { return }
        settled = true
        const stalled = arrived && !served && (this.epochs.get(to) ?? 0) === epoch && this.reachable(from, to) && this.reachable(to, from)
        resolve({ type: stalled ? 'timeout' : 'lost' })
      }, this.requestTimeoutMs, undefined)
    })
  }
}

/** How a request/response exchange ended (see `SimNetwork.exchange`). */
export type Exchanged<T> = { type: 'answer', value: T | undefined } | { type: 'lost' | 'timeout' }
