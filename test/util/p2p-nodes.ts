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
import type { Libp2pOptions } from 'libp2p'

export { connectAll, stopAll, waitUntil } from './common.ts'

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

/** A node on 127.0.0.1 over TCP (port 0), Noise and Yamux: the options every in-process test node shares. */
export function tcpBase (): Pick<Libp2pOptions, 'addresses' | 'transports' | 'connectionEncrypters' | 'streamMuxers'> {
  return {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  }
}

/** Every database name the resolver specs fetch (a source is refused for an undeclared name). */
export const TEST_DATABASES = ['any', 'current', 'anyOrdered', 'currentOrdered', 'immutable', 'keyless']

export async function createTestNode (options: TestNodeOptions = {}): Promise<TestNode> {
  return createLibp2p({
    ...tcpBase(),
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
