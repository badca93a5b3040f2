/**
 * Blocking a peer that broke a protocol or served data that failed
 * verification, shared by the sync resolvers, the marshal service and the
 * probe: record it in the peer book (permanent for the service's lifetime),
 * update the blocked-peers gauge, tag it in the peer store, optionally close
 * its connections, and tell the subscribers. Blocking twice is a no-op.
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
  /** Called with the number of blocked peers after each new block (metrics). */
  onCount?(count: number): void
  log: Logger
}

export type BlockHook = (peer: PeerId, reason: string) => void

export class PeerBlocker {
  private readonly hooks = new Set<BlockHook>()

  constructor (private readonly init: PeerBlockerInit) {}

  /** Block `peer` for good; false if it already was. */
  block (peer: PeerId, reason: string): boolean {
    const { book, components, log } = this.init
    if (!book.block(peer.toString(), reason)) { return false }
    log('blocking %p: %s', peer, reason)
    this.init.onCount?.(book.blockedCount)
    components.peerStore.merge(peer, { tags: { [this.init.tag]: { value: 0 } } })
      .catch(err => { log.trace('cannot tag %p: %s', peer, (err as Error)?.message) })
    if (this.init.disconnect === true) {
      components.connectionManager.closeConnections(peer)
        .catch(err => { log.trace('cannot disconnect %p: %s', peer, (err as Error)?.message) })
    }
    for (const hook of this.hooks) {
      try {
        hook(peer, reason)
      } catch (err) {
        log.error('block hook failed: %s', (err as Error)?.message)
      }
    }
    return true
  }

  /** Be told whenever a peer gets blocked; returns an unsubscribe function. */
  onBlock (hook: BlockHook): () => void {
    this.hooks.add(hook)
    return () => { this.hooks.delete(hook) }
  }
}
