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
  private readonly targets: Array<{ addr: Multiaddr, peerId: string | undefined }>
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private readonly intervalMs: number
  private readonly dialTimeoutMs: number

  constructor (private readonly libp2p: Libp2p, addrs: string[], private readonly opts: PeerKeeperOptions) {
    const self = libp2p.peerId.toString()
    this.targets = addrs.map(a => {
      const addr = multiaddr(a)
      return { addr, peerId: addr.getComponents().find(c => c.name === 'p2p')?.value }
    }).filter(t => t.peerId !== self)
    this.intervalMs = opts.intervalMs ?? 2000
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 3000
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
