/**
 * Peer providers: where a client finds the peers to ask.
 *
 * - `ConnectedPeers`: connected peers that advertise the protocol. libp2p's
 * registrar topology reports peers as identify completes and as they
 * disconnect; a scan of the current connections against the peer store
 * catches peers connected before the source existed. Needs identify.
 * - `StaticPeers`: a list given by the caller (dialled on demand), which can
 * be replaced at any time.
 * - `FunctionPeers`: a callback asked every time.
 * - `SwitchablePeers`: one of the above, replaced on every start of a
 * service whose client outlives a stop (a closed provider cannot reopen).
 */

import { Notifier } from './peers.ts'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

/**
 * Which peers a client asks: `'connected'` (every connected peer that
 * advertises the protocol, learned through identify), a fixed list (dialled
 * on demand), or a function called whenever a peer is needed.
 */
export type PeerSelection = 'connected' | PeerId[] | (() => Iterable<PeerId>)

/** A list of candidate peers that can say when it changes. */
export interface PeerProvider {
  peers(): PeerId[]
  /** Resolves when the list may have changed, or after `ms`. */
  changed(ms: number, signal: AbortSignal): Promise<void>
  /** The peer does not speak the protocol (forget it until it says otherwise). */
  unsupported(peer: PeerId): void
  /** Replace the list (only providers built from a fixed list support it). */
  set?(peers: PeerId[]): void
  close(): void
}

export interface ConnectedPeersComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  peerStore: PeerStore
}

/** Rescan connections at most this often while peers are being asked for. */
const RESCAN_MS = 2000

export class ConnectedPeers implements PeerProvider {
  private readonly protocol: string
  private readonly components: ConnectedPeersComponents
  private readonly log: Logger
  private readonly known = new Map<string, PeerId>()
  private readonly notifier = new Notifier()
  private topologyId: string | undefined
  private lastScan = 0
  private scanning: Promise<void> | undefined
  private closed = false

  constructor (protocol: string, components: ConnectedPeersComponents, log: Logger) {
    this.protocol = protocol
    this.components = components
    this.log = log
  }

  async start (): Promise<void> {
    const id = await this.components.registrar.register(this.protocol, {
      onConnect: (peer) => { this.add(peer) },
      onDisconnect: (peer) => { this.known.delete(peer.toString()) }
    })
    if (this.closed) {
      this.components.registrar.unregister(id)
      return
    }
    this.topologyId = id
    await this.scan()
  }

  private add (peer: PeerId): void {
    if (this.closed) { return }
    const id = peer.toString()
    if (!this.known.has(id)) {
      this.known.set(id, peer)
      this.notifier.notify()
    }
  }

  /** Add every connected peer whose peer store record lists the protocol. */
  async scan (): Promise<void> {
    if (this.scanning !== undefined) { return this.scanning }
    this.lastScan = Date.now()
    const run = async (): Promise<void> => {
      const seen = new Set<string>()
      for (const conn of this.components.connectionManager.getConnections()) {
        const id = conn.remotePeer.toString()
        if (seen.has(id) || this.known.has(id) || conn.status !== 'open') { continue }
        seen.add(id)
        try {
          const peer = await this.components.peerStore.get(conn.remotePeer)
          if (peer.protocols.includes(this.protocol)) { this.add(conn.remotePeer) }
        } catch (err) {
          // not identified yet: the topology will report it
          this.log.trace('scan: %s not in the peer store: %s', id, (err as Error)?.message)
        }
      }
    }
    this.scanning = run().finally(() => { this.scanning = undefined })
    return this.scanning
  }

  peers (): PeerId[] {
    if (Date.now() - this.lastScan > RESCAN_MS) { void this.scan() }
    return [...this.known.values()]
  }

  async changed (ms: number, signal: AbortSignal): Promise<void> {
    const waiting = this.notifier.wait(ms, signal)
    void this.scan()
    await waiting
  }

  unsupported (peer: PeerId): void {
    this.known.delete(peer.toString())
  }

  close (): void {
    this.closed = true
    if (this.topologyId !== undefined) {
      this.components.registrar.unregister(this.topologyId)
      this.topologyId = undefined
    }
    this.notifier.notify()
  }
}

export class StaticPeers implements PeerProvider {
  private list: PeerId[]
  private readonly notifier = new Notifier()

  constructor (peers: PeerId[]) {
    this.list = [...peers]
  }

  /** Replace the list. */
  set (peers: PeerId[]): void {
    this.list = [...peers]
    this.notifier.notify()
  }

  peers (): PeerId[] {
    return this.list
  }

  async changed (ms: number, signal: AbortSignal): Promise<void> {
    await this.notifier.wait(ms, signal)
  }

  unsupported (): void {}

  close (): void {
    this.notifier.notify()
  }
}

export class FunctionPeers implements PeerProvider {
  private readonly fn: () => Iterable<PeerId>
  private readonly notifier = new Notifier()

  constructor (fn: () => Iterable<PeerId>) {
    this.fn = fn
  }

  peers (): PeerId[] {
    return [...this.fn()]
  }

  async changed (ms: number, signal: AbortSignal): Promise<void> {
    await this.notifier.wait(ms, signal)
  }

  unsupported (): void {}

  close (): void {
    this.notifier.notify()
  }
}

/** The provider for `selection` on `protocol` (a `ConnectedPeers` is started here). */
export function peerProvider (selection: PeerSelection, protocol: string, components: ConnectedPeersComponents, log: Logger): PeerProvider {
  if (selection === 'connected') {
    const provider = new ConnectedPeers(protocol, components, log)
    provider.start().catch(err => { log.error('cannot track peers for %s: %s', protocol, (err as Error)?.message) })
    return provider
  }
  if (typeof selection === 'function') { return new FunctionPeers(selection) }
  return new StaticPeers(selection)
}

/** A provider that is replaced on every start (a closed provider cannot be reopened). */
export class SwitchablePeers implements PeerProvider {
  current: PeerProvider | undefined
  private readonly idle = new Notifier()

  peers (): PeerId[] {
    return this.current?.peers() ?? []
  }

  async changed (ms: number, signal: AbortSignal): Promise<void> {
    await (this.current === undefined ? this.idle.wait(ms, signal) : this.current.changed(ms, signal))
  }

  unsupported (peer: PeerId): void {
    this.current?.unsupported(peer)
  }

  set (peers: PeerId[]): void {
    if (this.current?.set === undefined) { throw new TypeError('this service discovers its peers; it has no fixed list to replace') }
    this.current.set(peers)
  }

  close (): void {
    this.current?.close()
    this.current = undefined
    this.idle.notify()
  }
}
