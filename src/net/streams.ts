/**
 * Opening request streams without tripping the remote's early-stream limit.
 *
 * A stream that reaches the remote before its side of a new connection is
 * set up (its muxer has no stream listener yet) is queued as an "early
 * stream"; one more than the muxer's limit (yamux: 10 by default) aborts the
 * whole connection with `MaxEarlyStreamsError`. A client that dials and at
 * once fans out a burst of requests would lose the connection it just made.
 *
 * A stream whose protocol negotiation completed (or was refused with
 * "unsupported protocol") proves the remote is set up: it answered. So until
 * one has on a connection, openers on that connection go one at a time;
 * after that, they open freely. Works against any remote, whatever its
 * muxer configuration.
 */

import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const ready = new WeakSet<Connection>()
const warming = new WeakMap<Connection, Promise<unknown>>()

export interface OpenStreamOptions extends AbortOptions {
  signal: AbortSignal
  runOnLimitedConnection?: boolean
}

/** Open a stream to `peer` on `protocol`, dialling if needed (see the module comment). */
export async function openStream (connectionManager: ConnectionManager, peer: PeerId, protocol: string, options: OpenStreamOptions): Promise<Stream> {
  for (;;) {
    const conn = await connectionManager.openConnection(peer, options)
    if (ready.has(conn)) { return conn.newStream(protocol, options) }
    const pending = warming.get(conn)
    if (pending !== undefined) {
      await settledOrAborted(pending, options.signal)
      options.signal.throwIfAborted()
      if (ready.has(conn)) { return conn.newStream(protocol, options) }
      continue // the first opener failed: try again (maybe as the new first)
    }
    const first = conn.newStream(protocol, options)
    warming.set(conn, first)
    try {
      const stream = await first
      ready.add(conn)
      return stream
    } catch (err) {
      if ((err as Error)?.name === 'UnsupportedProtocolError') { ready.add(conn) }
      throw err
    } finally {
      warming.delete(conn)
    }
  }
}

/** Resolve once `p` settles or `signal` aborts (never rejects; the listener is removed). */
async function settledOrAborted (p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) { return }
  let onAbort: (() => void) | undefined
  await Promise.race([
    p.then(() => {}, () => {}),
    new Promise<void>(resolve => {
      onAbort = resolve
      signal.addEventListener('abort', onAbort, { once: true })
    })
  ])
  if (onAbort !== undefined) { signal.removeEventListener('abort', onAbort) }
}
