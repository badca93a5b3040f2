/**
 * In-memory consensus network for engine tests: engines exchange votes and
 * certificates through a bus that delivers asynchronously, can drop a node
 * (crash / partition) or let gossip miss it (deaf), and answers backfill
 * from the other engines.
 */
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { SimplexEngine, ValidatorSet, decodeCertificate, decodeVote, encodeCertificate } from '../../src/consensus/index.ts'
import type { Automaton, ConsensusContext, ConsensusTransport, EngineOptions, Finalization } from '../../src/consensus/index.ts'
import type { PrivateKey } from '@libp2p/interface'

export function payloadFor (ctx: ConsensusContext): Uint8Array {
  const h = createHash('sha256').update(Buffer.from(`${ctx.round.view}:`)).update(ctx.parent.digest)
  return new Uint8Array(h.digest())
}

/** Payload = H(view ‖ parent digest); verify recomputes it. */
export class HashAutomaton implements Automaton {
  proposals = 0
  verifications = 0
  /** make verify hang (abstain) */
  stall = false
  /** accept any payload (lets an equivocating leader's two proposals both verify) */
  acceptAll = false
  async genesis (): Promise<Uint8Array> { return new Uint8Array(32) }
  async propose (ctx: ConsensusContext): Promise<Uint8Array | undefined> {
    this.proposals++
    return payloadFor(ctx)
  }

  async verify (ctx: ConsensusContext, payload: Uint8Array, options: { signal: AbortSignal }): Promise<boolean> {
    this.verifications++
    if (this.stall) {
      await new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(new Error('aborted')) }, { once: true }) })
    }
    return this.acceptAll || Buffer.from(payload).equals(Buffer.from(payloadFor(ctx)))
  }
}

export type EngineTimings = Pick<EngineOptions, 'leaderTimeoutMs' | 'notarizationTimeoutMs' | 'retryMs' | 'retainViews'>

export interface BusNode {
  index: number
  key: PrivateKey
  engine: SimplexEngine
  automaton: HashAutomaton
  finalized: Finalization[]
  datastore: MemoryDatastore
}

const DEFAULT_TIMINGS: EngineTimings = { leaderTimeoutMs: 150, notarizationTimeoutMs: 300, retryMs: 150 }

export class Bus {
  readonly nodes: BusNode[] = []
  readonly down = new Set<number>()
  /** Nodes that gossip does not reach (lost messages); they can still ask for certificates. */
  readonly deaf = new Set<number>()
  set!: ValidatorSet
  keys: PrivateKey[] = []

  static async create (n: number, chainId = 'test'): Promise<Bus> {
    const bus = new Bus()
    bus.keys = await Promise.all(Array.from({ length: n }, async () => generateKeyPair('Ed25519')))
    bus.set = new ValidatorSet(chainId, bus.keys.map(k => peerIdFromPrivateKey(k).toString()))
    return bus
  }

  transport (from: number): ConsensusTransport {
    const deliver = (fn: (node: BusNode) => void): void => {
      if (this.down.has(from)) { return }
      for (const node of this.nodes) {
        if (node === undefined || node.index === from || this.down.has(node.index) || this.deaf.has(node.index)) { continue }
        setImmediate(() => { fn(node) })
      }
    }
    return {
      broadcastVote: async bytes => { deliver(node => { void node.engine.receiveVote(decodeVote(bytes)) }) },
      broadcastCertificate: async bytes => { deliver(node => { void node.engine.receiveCertificate(decodeCertificate(bytes)) }) },
      fetchCertificates: async (lo, hi) => {
        if (this.down.has(from)) { return [] }
        const out: Uint8Array[] = []
        for (const node of this.nodes) {
          if (node === undefined || node.index === from || this.down.has(node.index)) { continue }
          for (let v = lo; v <= hi; v++) { out.push(...node.engine.certificatesFor(v).map(encodeCertificate)) }
        }
        return out
      }
    }
  }

  async start (index: number, datastore = new MemoryDatastore(), timeouts: EngineTimings = DEFAULT_TIMINGS): Promise<BusNode> {
    const key = this.keys[index]
    return this.launch(index, key, { index, sign: async m => key.sign(m) }, datastore, timeouts)
  }

  /** Start an observer (no signing key) on the bus, after the validators. */
  async observe (timeouts: EngineTimings = DEFAULT_TIMINGS): Promise<BusNode> {
    const index = Math.max(this.nodes.length, this.keys.length)
    return this.launch(index, await generateKeyPair('Ed25519'), undefined, new MemoryDatastore(), timeouts)
  }

  private async launch (index: number, key: PrivateKey, signer: EngineOptions['signer'], datastore: MemoryDatastore, timeouts: EngineTimings): Promise<BusNode> {
    const automaton = new HashAutomaton()
    const finalized: Finalization[] = []
    const engine = new SimplexEngine({
      validators: this.set,
      automaton,
      reporter: { finalized: f => { finalized.push(f) } },
      transport: this.transport(index),
      signer,
      datastore,
      ...timeouts
    })
    const node = { index, key, engine, automaton, finalized, datastore }
    this.nodes[index] = node
    this.down.delete(index)
    await engine.start()
    return node
  }

  /** Deliver an encoded vote only to the nodes in `to` (an adversary's targeted sends). */
  sendVoteTo (bytes: Uint8Array, to: number[]): void {
    for (const i of to) {
      const node = this.nodes[i]
      if (node !== undefined && !this.down.has(i)) { setImmediate(() => { void node.engine.receiveVote(decodeVote(bytes)) }) }
    }
  }

  async stop (index: number): Promise<void> {
    this.down.add(index)
    await this.nodes[index].engine.stop()
  }

  async stopAll (): Promise<void> {
    for (const n of this.nodes) { await n?.engine.stop() }
  }
}

export async function until (cond: () => boolean, what: string, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!cond()) {
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`) }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
