/**
 * The reference simplex-style consensus engine: validator set, votes and
 * certificates, the engine, and its libp2p transport.
 */
export * from './types.ts'
export { ValidatorSet, ValidatorSetError } from './validators.ts'
export { SimplexEngine, type Automaton, type Reporter, type ConsensusTransport, type Signer, type EngineOptions, type Context as ConsensusContext } from './engine.ts'
export { ConsensusNetwork, MAX_BACKFILL_VIEWS, consensusNames, type BackfillBlocker, type ConsensusNetworkInit } from './network.ts'
export { finalizationScheme } from './scheme.ts'
