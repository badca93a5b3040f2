/**
 * Blocking a peer that broke a protocol or served data that failed
 * verification, shared by the sync resolvers, the marshal service and the
 * probe: record it in the peer book (permanent for the service's lifetime),
 * tag it in the peer store, optionally close its connections, and tell the
 * subscribers. Blocking twice is a no-op. A peer the strike rule blocks for
 * a while (`src/net/peers.ts`) is only logged and told to the subscribers
 * (with how long): it is not tagged or disconnected, since it may be an
 * honest peer that fell behind. The blocked-peers gauge is read from the book
 * when metrics are scraped, so it also counts struck-out peers while their
 * block lasts.
 */

import type { PeerBook } from './peers.ts'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export interface PeerBlockerInit {
  book: PeerBook
  components: { peerStore: PeerStore, connectionManager: ConnectionManager }
  /** Peer-store tag put on blocked peers. */
  tag: string
  /** Also close connections to a blocked peer. */
  disconnect?: boolean
  log: Logger
}

/** Told of each block: `forMs` is undefined for a block for good, else how long a struck-out peer is blocked. */
export type BlockHook = (peer: PeerId, reason: string, forMs?: number) => void

export class PeerBlocker {
  private readonly hooks = new Set<BlockHook>()

  private readonly init: PeerBlockerInit

  constructor (init: PeerBlockerInit) {
    this.init = init
  }

  /** Block `peer` for good; false if it already was. */
  block (peer: PeerId, reason: string): boolean {
    const { book, components, log } = this.init
    if (!book.block(peer.toString(), reason)) { return false }
    log('blocking %p: %s', peer, reason)
    components.peerStore.merge(peer, { tags: { [this.init.tag]: { value: 0 } } })
      .catch(err => { log.trace('cannot tag %p: %s', peer, (err as Error)?.message) })
    if (this.init.disconnect === true) {
      components.connectionManager.closeConnections(peer)
        .catch(err => { log.trace('cannot disconnect %p: %s', peer, (err as Error)?.message) })
    }
    this.tell(peer, reason)
    return true
  }

  /** The strike rule blocked `peer` for `ms`: log it and tell the subscribers. */
  struck (peer: PeerId, reason: string, ms: number): void {
    this.init.log('blocking %p for %d ms: %s', peer, ms, reason)
    this.tell(peer, reason, ms)
  }

  private tell (peer: PeerId, reason: string, forMs?: number): void {
    for (const hook of this.hooks) {
      try {
        hook(peer, reason, forMs)
      } catch (err) {
        this.init.log.error('block hook failed: %s', (err as Error)?.message)
      }
    }
  }

  /** Be told whenever a peer gets blocked; returns an unsubscribe function. */
  onBlock (hook: BlockHook): () => void {
    this.hooks.add(hook)
    return () => { this.hooks.delete(hook) }
  }
}
