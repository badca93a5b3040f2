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

  /**
   * A request/response exchange: `serve` runs at `to` after one latency,
   * its answer arrives one latency later; `undefined` if either leg is lost
   * (the caller sees it after the round trip, as a timeout would tell it).
   */
  async request<T>(from: number, to: number, kind: string, serve: () => Promise<T | undefined>): Promise<T | undefined> {
    const answer = await new Promise<{ value: T | undefined } | undefined>(resolve => {
      let settled = false
      this.send(from, to, `${kind}?`, () => {
        void serve().catch(() => undefined).then(value => {
          this.send(to, from, `${kind}!`, () => {
            // a duplicated request or answer arrives after the first: ignored
            if (settled) { return }
            settled = true
            resolve({ value })
          })
        })
      })
      // a lost leg: the caller gives up after a generous round trip
      this.clock.schedule(() => { if (!settled) { resolve(undefined) } }, this.requestTimeoutMs, undefined)
    })
    return answer?.value
  }
}
