/**
 * libp2p resolvers for QMDB state sync: the standard resolver (operation
 * ranges and boundaries) and the compact resolver (database tips), each a
 * libp2p service that serves local databases and fetches from peers, built
 * on the request/response kit in `src/net/`.
 * The wire protocol is described in docs/PROTOCOLS.md.
 */
export {
  type ResolverKind, DEFAULT_PROTOCOL_PREFIX, PROTOCOL_VERSION, STATUS_RESPONSE, STATUS_NO_DATA, MAX_REQUEST_FRAME,
  DEFAULT_MAX_RESPONSE_BYTES, NO_DATA_BODY, ProtocolViolation, type ParsedFrame, checkDbName, checkPrefix, protocolId,
  requestShapeProblem, responseShapeProblem, responseBody, parseResponseFrame
} from './protocol.ts'
export { type RateLimit } from '../net/limits.ts'
export { RateLimitedError } from '../net/protocol.ts'
export { ConnectedPeers, StaticPeers, FunctionPeers, type PeerSelection, type PeerProvider, type ConnectedPeersComponents } from '../net/providers.ts'
export {
  NetworkSource, type NetworkSourceOptions, type NetworkSourceEvents, type StallInfo, type StallReason, type SourceSettings
} from './client.ts'
export { DatabaseRegistry, type Servable } from './registry.ts'
export { QmdbResolver, standardResolver, compactResolver, type QmdbResolverInit, type QmdbResolverComponents } from './resolver.ts'
