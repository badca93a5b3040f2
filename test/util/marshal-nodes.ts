/**
 * In-process libp2p nodes for marshal and probe tests (TCP on 127.0.0.1,
 * Noise, Yamux, identify), chain seeding, a recording reporter, and raw
 * protocol peers that answer with arbitrary frames.
 */
import './polyfill.ts'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { marshalService } from '../../src/marshal/index.ts'
import { probeService } from '../../src/probe/index.ts'
import type { TestBlock, TestFinalization, Validators } from './marshal-fixtures.ts'
import type { Acknowledgement, BlockStore, FinalizationScheme, FinalizedReporter, MarshalService, MarshalServiceInit } from '../../src/marshal/index.ts'
import type { Probe, ProbeInit } from '../../src/probe/index.ts'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, Stream } from '@libp2p/interface'

export type TestMarshalService = MarshalService<TestBlock, TestFinalization>
export type TestProbe = Probe<TestFinalization>

export type MarshalNode = Libp2p<{ identify: Identify, marshal: TestMarshalService }>
export type ProbeNode = Libp2p<{ identify: Identify, probe: TestProbe }>
export type BareNode = Libp2p<{ identify: Identify }>

export const CHAIN = 'testchain'

const base = {
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // every test node dials from 127.0.0.1: lift libp2p's per-host inbound connection rate limit
  connectionManager: { inboundConnectionThreshold: 10_000, maxIncomingPendingConnections: 1000, maxConnections: 1000 }
}

export type MarshalNodeInit = Omit<MarshalServiceInit<TestBlock, TestFinalization>, 'chain' | 'codec' | 'scheme'>

export async function createMarshalNode (validators: Validators, codec: MarshalServiceInit<TestBlock, TestFinalization>['codec'], init: MarshalNodeInit = {}, registry?: Registry): Promise<MarshalNode> {
  return createLibp2p({
    ...base,
    metrics: registry === undefined ? undefined : prometheusMetrics({ registry, collectDefaultMetrics: false }),
    services: {
      identify: identify(),
      marshal: marshalService<TestBlock, TestFinalization>({
        chain: CHAIN, codec, scheme: validators.scheme, retryDelay: 10, maxRetryDelay: 100, timeout: 2000, pollInterval: 50, ...init
      })
    }
  })
}

export type ProbeNodeInit = Omit<ProbeInit<TestFinalization>, 'chain' | 'scheme'>

export async function createProbeNode (scheme: FinalizationScheme<TestFinalization>, init: ProbeNodeInit, registry?: Registry): Promise<ProbeNode> {
  return createLibp2p({
    ...base,
    metrics: registry === undefined ? undefined : prometheusMetrics({ registry, collectDefaultMetrics: false }),
    services: {
      identify: identify(),
      probe: probeService<TestFinalization>({ chain: CHAIN, scheme, retryTimeout: 250, ...init })
    }
  })
}

export async function createBareNode (): Promise<BareNode> {
  return createLibp2p({ ...base, services: { identify: identify() } })
}

/** Connect `a` to every node in `others`. */
export async function connectAll (a: Libp2p<any>, others: Array<Libp2p<any>>): Promise<void> {
  for (const b of others) { await a.dial(b.getMultiaddrs()[0]) }
}

export async function stopAll (nodes: Array<Libp2p<any> | undefined>): Promise<void> {
  await Promise.all(nodes.map(async n => { await n?.stop() }))
}

export async function waitUntil (cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`) }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

export async function delay (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Store `chain[0..upTo]` as finalized in `store`, with a certificate (view =
 * height) for every height in `certified` (default: all).
 */
export async function seedChain (store: BlockStore<TestBlock, TestFinalization>, chain: TestBlock[], validators: Validators, upTo: number, certified?: (h: number) => boolean): Promise<void> {
  for (let h = 0; h <= upTo; h++) {
    const cert = (certified?.(h) ?? true) ? validators.finalize(h, chain[h].digest) : undefined
    await store.setFinalized(chain[h], cert)
  }
}

/** Records delivered blocks; acknowledges each unless `hold(height)` says to keep it. */
export class RecordingReporter implements FinalizedReporter<TestBlock> {
  readonly heights: number[] = []
  readonly held: Array<{ height: number, ack: Acknowledgement }> = []
  private readonly hold: (height: number) => boolean

  constructor (hold: (height: number) => boolean = () => false) {
    this.hold = hold
  }

  finalized (block: TestBlock, ack: Acknowledgement): void {
    this.heights.push(block.height)
    if (this.hold(block.height)) {
      this.held.push({ height: block.height, ack })
    } else {
      ack.acknowledge()
    }
  }

  /** True iff the heights delivered are exactly `from..to` in order. */
  deliveredInOrder (from: number, to: number): boolean {
    if (this.heights.length !== to - from + 1) { return false }
    return this.heights.every((h, i) => h === from + i)
  }
}

/**
 * Handle `protocol` on `node` with a raw responder: it reads the request
 * frame and writes `respond()`'s frame body (after `delayMs`), or resets
 * the stream when it returns undefined. Returns the number of requests seen.
 */
export async function rawResponder (node: Libp2p<any>, protocol: string, respond: () => Uint8Array | undefined, delayMs = 0): Promise<{ requests(): number }> {
  let requests = 0
  await node.handle(protocol, async (stream: Stream) => {
    const lp = lpStream(stream)
    try {
      await lp.read()
      requests++
      if (delayMs > 0) { await delay(delayMs) }
      const body = respond()
      if (body === undefined) {
        stream.abort(new Error('reset by test'))
        return
      }
      await lp.write(body)
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  return { requests: () => requests }
}

export function uvarint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Open a stream, write raw `bytes`, half-close, and collect what comes back (empty after a reset). */
export async function sendRaw (from: Libp2p<any>, to: Libp2p<any>, protocol: string, bytes: Uint8Array): Promise<Uint8Array> {
  const stream = await from.dialProtocol(to.peerId, protocol, { signal: AbortSignal.timeout(5000) })
  const chunks: Uint8Array[] = []
  try {
    stream.send(bytes)
    await stream.close({ signal: AbortSignal.timeout(5000) })
    for await (const chunk of stream) { chunks.push(chunk.subarray()) }
  } catch {
    stream.abort(new Error('test'))
  }
  return concat(...chunks)
}

/** A length-prefixed frame. */
export function frame (body: Uint8Array): Uint8Array {
  return concat(uvarint(body.length), body)
}

export type FullNode = Libp2p<{ identify: Identify, marshal: TestMarshalService, probe: TestProbe }>

/** A node with both a marshal service and a probe. */
export async function createFullNode (validators: Validators, codec: MarshalServiceInit<TestBlock, TestFinalization>['codec'], marshal: MarshalNodeInit, probe: ProbeNodeInit): Promise<FullNode> {
  return createLibp2p({
    ...base,
    services: {
      identify: identify(),
      marshal: marshalService<TestBlock, TestFinalization>({
        chain: CHAIN, codec, scheme: validators.scheme, retryDelay: 10, maxRetryDelay: 100, timeout: 2000, pollInterval: 50, ...marshal
      }),
      probe: probeService<TestFinalization>({ chain: CHAIN, scheme: validators.scheme, retryTimeout: 250, ...probe })
    }
  })
}

/** Sum of a metric's values (optionally only those with `label` among their label values). */
export async function metricValue (registry: Registry, name: string, label?: string): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) { return 0 }
  const { values } = await metric.get()
  return values.filter(v => label === undefined || Object.values(v.labels).includes(label)).reduce((s, v) => s + v.value, 0)
}

/** The body of the first frame in a raw answer, or undefined when the stream was reset/closed without one. */
export function unframe (raw: Uint8Array): Uint8Array | undefined {
  if (raw.length === 0) { return undefined }
  let len = 0
  let mul = 1
  let i = 0
  for (; i < raw.length; i++) {
    len += (raw[i] & 0x7f) * mul
    mul *= 128
    if ((raw[i] & 0x80) === 0) { break }
  }
  return raw.subarray(i + 1, i + 1 + len)
}
