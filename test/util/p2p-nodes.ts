/**
 * In-process libp2p nodes for resolver tests: TCP on 127.0.0.1, Noise,
 * Yamux, identify, and a standard and a compact resolver.
 */
import './polyfill.ts'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { compactResolver, standardResolver } from '../../src/p2p/index.ts'
import type { QmdbResolver, QmdbResolverInit } from '../../src/p2p/index.ts'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, Metrics } from '@libp2p/interface'

export type ResolverServices = {
  identify: Identify
  standard: QmdbResolver
  compact: QmdbResolver
}

export type TestNode = Libp2p<ResolverServices>

export interface TestNodeOptions {
  standard?: QmdbResolverInit
  compact?: QmdbResolverInit
  metrics?(components: any): Metrics
  /** Accept many inbound connections from 127.0.0.1 at once (libp2p limits them by default). */
  manyInbound?: boolean
}

/** Every database name the resolver specs fetch (a source is refused for an undeclared name). */
export const TEST_DATABASES = ['any', 'current', 'anyOrdered', 'currentOrdered', 'immutable', 'keyless']

export async function createTestNode (options: TestNodeOptions = {}): Promise<TestNode> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    metrics: options.metrics,
    connectionManager: options.manyInbound === true
      ? { inboundConnectionThreshold: 10_000, maxIncomingPendingConnections: 1000, maxConnections: 1000 }
      : undefined,
    services: {
      identify: identify(),
      standard: standardResolver({ databases: TEST_DATABASES, ...options.standard }),
      compact: compactResolver({ databases: TEST_DATABASES, ...options.compact })
    }
  })
}

/** Connect `a` to every node in `others` (so `a` can ask them by peer id). */
export async function connectAll (a: Libp2p<any>, others: Array<Libp2p<any>>): Promise<void> {
  for (const b of others) { await a.dial(b.getMultiaddrs()[0]) }
}

export async function stopAll (nodes: Array<Libp2p<any> | undefined>): Promise<void> {
  await Promise.all(nodes.map(async n => { await Promise.resolve(n?.stop()) }))
}

export async function waitUntil (cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`) }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
