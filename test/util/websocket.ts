/**
 * Node 20 has no global `WebSocket` (Node 22 has), which `@libp2p/websockets`
 * dials with; tests that dial a node's `/ws` address from Node install the
 * `ws` package's client, which implements the same browser API. Listening
 * needs nothing: the transport's server side uses `ws` itself.
 */
import { WebSocket } from 'ws'

if (typeof globalThis.WebSocket !== 'function') {
  Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, value: WebSocket })
}
