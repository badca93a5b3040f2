/**
 * Keeps the node connected to its configured peers (validators, bootstrap
 * nodes): dials each one that is not connected, again every `intervalMs`,
 * for as long as the node runs. libp2p's own keep-alive reconnects give up
 * after a few retries; a chain node must instead heal after any outage or
 * partition, however long. Peers the gate currently blocks are skipped.
 */

import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface PeerKeeperOptions {
  intervalMs?: number
  dialTimeoutMs?: number
  /** Peers not to dial right now (see `PeerGate`). */
  blocked?(peerId: string): boolean
  log: Logger
}

export class PeerKeeper {
  private targets: Array<{ addr: Multiaddr, peerId: string | undefined }>
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private readonly intervalMs: number
  private readonly dialTimeoutMs: number
  private readonly libp2p: Libp2p
  private readonly opts: PeerKeeperOptions

  constructor (libp2p: Libp2p, addrs: string[], opts: PeerKeeperOptions) {
    this.libp2p = libp2p
    this.opts = opts
    this.targets = this.parse(addrs)
    this.intervalMs = opts.intervalMs ?? 2000
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 3000
  }

  private parse (addrs: string[]): Array<{ addr: Multiaddr, peerId: string | undefined }> {
    const self = this.libp2p.peerId.toString()
    return addrs.map(a => {
      const addr = multiaddr(a)
      return { addr, peerId: addr.getComponents().find(c => c.name === 'p2p')?.value }
    }).filter(t => t.peerId !== self)
  }

  /** Keep these peers connected too (a peer's new address replaces its old one); dials them now. */
  async add (addrs: string[]): Promise<void> {
    const added = this.parse(addrs)
    const ids = new Set(added.map(t => t.peerId).filter(id => id !== undefined))
    this.targets = [...this.targets.filter(t => t.peerId === undefined || !ids.has(t.peerId)), ...added]
    if (!this.stopped) { await this.round() }
  }

  /** Dial every target once (in parallel) and keep doing so periodically. */
  async start (): Promise<void> {
    await this.round()
    this.schedule()
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private schedule (): void {
    if (this.stopped) { return }
    this.timer = setTimeout(() => {
      void this.round().finally(() => { this.schedule() })
    }, this.intervalMs)
    this.timer.unref?.()
  }

  private async round (): Promise<void> {
    const connected = new Set(this.libp2p.getPeers().map(p => p.toString()))
    await Promise.all(this.targets.map(async t => {
      if (this.stopped) { return }
      if (t.peerId !== undefined && (connected.has(t.peerId) || this.opts.blocked?.(t.peerId) === true)) { return }
      try {
        await this.libp2p.dial(t.addr, { signal: AbortSignal.timeout(this.dialTimeoutMs) })
      } catch (err) {
        this.opts.log('dial %a failed: %e', t.addr, err)
      }
    }))
  }
}
