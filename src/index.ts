/**
 * libp2p-qmdb: verifiable application state (QMDB), speculative forks and
 * peer-to-peer state sync for chains built on js-libp2p.
 */

export * from './codec/index.ts'
export * from './merkle/index.ts'
export * from './storage/index.ts'
export * from './qmdb/index.ts'
export * from './sync/index.ts'
export * from './p2p/index.ts'
export * from './stateful/index.ts'
export * from './examples/ledger/index.ts'
export * from './consensus/index.ts'
export * from './marshal/index.ts'
// The stateful manager's marshal contract and the marshal implementation share
// a few names; the manager's are the public ones, the implementation's are
// re-exported under qualified names.
export { type Marshal, type Round, compareRounds, type Acknowledgement, type FinalizedReporter } from './stateful/index.ts'
export {
  Marshal as BlockMarshal, type Acknowledgement as MarshalAcknowledgement, type FinalizedReporter as MarshalReporter
} from './marshal/index.ts'
export * from './probe/index.ts'
export * from './node/index.ts'
export { installPolyfills } from './polyfill.ts'
