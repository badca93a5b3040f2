/**
 * libp2p resolvers for QMDB state sync: the standard resolver (operation
 * ranges and boundaries) and the compact resolver (database tips), each a
 * libp2p service that serves local databases and fetches from peers.
 * The wire protocol is described in docs/PROTOCOLS.md.
 */
export {
  type ResolverKind, DEFAULT_PROTOCOL_PREFIX, PROTOCOL_VERSION, STATUS_RESPONSE, STATUS_NO_DATA, MAX_REQUEST_FRAME,
  DEFAULT_MAX_RESPONSE_BYTES, NO_DATA_BODY, ProtocolViolation, type ParsedFrame, checkDbName, checkPrefix, protocolId,
  requestShapeProblem, responseShapeProblem, responseBody, parseResponseFrame
} from './protocol.ts'
export { type RateLimit, type AdmitResult, TokenBucket, PeerLimiter } from './limits.ts'
export { PeerBook, Notifier, type PeerBookOptions } from './peers.ts'
export { ResolverMetrics, type ServeOutcome, type FetchOutcome } from './metrics.ts'
export { ResolverServer, RateLimitedError, type ServerConfig } from './server.ts'
export {
  NetworkSource, type NetworkSourceOptions, type NetworkSourceEvents, type StallInfo, type StallReason, type PeerSelection, type PeerProvider,
  type ClientContext, type ResolvedClientOptions
} from './client.ts'
export { DatabaseRegistry, type Servable } from './registry.ts'
export { ConnectedPeers, StaticPeers, FunctionPeers, type ConnectedPeersComponents } from './providers.ts'
export { QmdbResolver, standardResolver, compactResolver, type QmdbResolverInit, type QmdbResolverComponents } from './resolver.ts'
