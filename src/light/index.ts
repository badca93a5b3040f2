/**
 * Light clients: verified key-value reads of a chain's `current` databases
 * over libp2p, trusting only a validator set (docs/PROTOCOLS.md,
 * "Light-client proofs"). Browser-safe: no `node:` modules, no storage; the
 * client takes a libp2p node made by the caller.
 */
export { lightClient, type LightClient, type LightClientInit, type GetOptions } from './client.ts'
export { LightError, type LightErrorCode } from './errors.ts'
export {
  lightProtocolId, encodeLightRequest, decodeLightRequest, encodeLightAnswer, decodeLightAnswer,
  MAX_KEY_BYTES, MAX_LIGHT_REQUEST_FRAME, DEFAULT_MAX_LIGHT_RESPONSE, type LightRequest, type LightAnswer, type AnswerCaps
} from './protocol.ts'
export { lightServer, LightServer, type LightBackend, type LightServerInit, type LightServerComponents } from './server.ts'
export { LightValidators, verifyAnswer, maxFinalizationBytes, type LightApplication, type LightBlock, type LightDatabase, type LightValue } from './verify.ts'
export { proveKey } from './prove.ts'
