/**
 * The finalized block store ("marshal", commonware `consensus/src/marshal`) and its network
 * layer: the core (`Marshal`, `BlockStore`, types) delivers finalized blocks
 * in order with acknowledgements; the libp2p service (`marshalService`)
 * serves blocks and finalizations on `/<prefix>/<chain>/marshal/1.0.0` and
 * fetches missing ones from peers for its marshal.
 */
export {
  type Round, type MarshalBlock, type BlockCodec, type FinalizationScheme, MarshalError, compareRounds
} from './types.ts'
export { BlockStore, type ProcessedState } from './store.ts'
export {
  Marshal, type Acknowledgement, type FinalizedReporter, type BlockFetcher, type MarshalStart, type MarshalOptions
} from './marshal.ts'
export {
  MARSHAL_PROTOCOL_VERSION, MAX_MARSHAL_REQUEST_FRAME, MAX_DIGEST_BYTES, MARSHAL_NO_DATA, type MarshalRequest, type RangeEntry,
  type Parsed, marshalProtocolId, encodeMarshalRequest, decodeMarshalRequest, marshalRequestKey,
  blockBody, finalizedBody, latestBody, rangeEntrySize, payloadOf, verifiedFinalization, parseBlockResponse, parseFinalizedResponse,
  parseLatestResponse
} from './protocol.ts'
export { MarshalServer, type MarshalReader, type MarshalServerConfig } from './server.ts'
export {
  MarshalClient, type MarshalClientOptions, type Fetched, type LatestFinalization
} from './client.ts'
export { MarshalService, marshalService, type MarshalServiceInit, type MarshalServiceComponents } from './service.ts'
