/**
 * Peer providers: where a network source finds the peers to ask.
 *
 * - `ConnectedPeers`: connected peers that advertise the protocol. libp2p's
 * registrar topology reports peers as identify completes and as they
 * disconnect; a scan of the current connections against the peer store
 * catches peers connected before the source existed. Needs identify.
 * - `StaticPeers`: a list given by the caller (dialled on demand), which can
 * be replaced at any time.
 * - `FunctionPeers`: a callback asked every time.
 */

import { Notifier } from './peers.ts'
import type { PeerProvider } from './client.ts'
import type { Logger, PeerId, PeerStore } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

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
