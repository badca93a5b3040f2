/**
 * The finalized block store ("marshal"): storage, ordered acknowledged
 * delivery, gap filling, and its libp2p protocol.
 */
export { type MarshalBlock, type BlockCodec, type FinalizationScheme, MarshalError } from './types.ts'
export { BlockStore, type ProcessedState } from './store.ts'
export { BlockMarshal, type Acknowledgement as MarshalAcknowledgement, type FinalizedReporter as MarshalReporter, type BlockFetcher, type MarshalStart, type MarshalOptions } from './marshal.ts'
export { MarshalNetwork, MarshalProtocolError, MAX_RANGE, type MarshalNetworkInit } from './network.ts'
