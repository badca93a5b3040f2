/**
 * libp2p-qmdb: verifiable application state (QMDB), speculative forks and
 * peer-to-peer state sync for chains built on js-libp2p.
 */
import './polyfill.ts' // must stay first: libp2p v3 needs Promise.withResolvers on Node 20

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
export * from './probe/index.ts'
