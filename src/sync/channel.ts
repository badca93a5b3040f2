/**
 * A small async channel (many senders, one receiver) used to feed the sync
 * engine and the coordinator: target updates, finish signals, "reached"
 * notices, tip updates.
 *
 * - bounded channels make `send` wait for room (back-pressure); `ring`
 * channels instead drop the oldest queued item (the newest state wins);
 * - `close()` wakes every waiter: queued items are still received, then
 * `recv()` resolves `undefined`; `send` on a closed channel rejects.
 */

export class ChannelClosedError extends Error {
  readonly name = 'ChannelClosedError'
}

export interface ChannelOptions {
  /** Maximum queued items (default unbounded). */
  capacity?: number
  /** When full, drop the oldest queued item instead of waiting. */
  ring?: boolean
}

export type TryRecv<T> = { value: T } | 'empty' | 'closed'

export class Channel<T> {
  private readonly queue: T[] = []
  private readonly capacity: number
  private readonly ring: boolean
  private receivers: Array<() => void> = []
  private senders: Array<() => void> = []
  private _closed = false

  constructor (options: ChannelOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? Infinity)
    this.ring = options.ring === true
  }

  get closed (): boolean { return this._closed }
  get length (): number { return this.queue.length }

  private wake (list: Array<() => void>): void {
    const waiters = list.splice(0)
    for (const w of waiters) { w() }
  }

  /** Queue `value`, waiting for room on a full bounded channel. */
  async send (value: T): Promise<void> {
    for (;;) {
      if (this._closed) { throw new ChannelClosedError('channel closed') }
      if (this.queue.length < this.capacity) { break }
      if (this.ring) {
        this.queue.shift()
        break
      }
      await new Promise<void>(resolve => this.senders.push(resolve))
    }
    this.queue.push(value)
    this.wake(this.receivers)
  }

  /** Queue `value` if there is room (ring channels always have room); false if full or closed. */
  trySend (value: T): boolean {
    if (this._closed) { return false }
    if (this.queue.length >= this.capacity) {
      if (!this.ring) { return false }
      this.queue.shift()
    }
    this.queue.push(value)
    this.wake(this.receivers)
    return true
  }

  tryRecv (): TryRecv<T> {
    if (this.queue.length > 0) {
      const value = this.queue.shift() as T
      this.wake(this.senders)
      return { value }
    }
    return this._closed ? 'closed' : 'empty'
  }

  /** The next item, or `undefined` once the channel is closed and drained. */
  async recv (signal?: AbortSignal): Promise<T | undefined> {
    for (;;) {
      const r = this.tryRecv()
      if (r === 'closed') { return undefined }
      if (r !== 'empty') { return r.value }
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(signal?.reason) }
        signal?.addEventListener('abort', onAbort, { once: true })
        this.receivers.push(() => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        })
      })
    }
  }

  /** Resolves when an item is available or the channel closes (does not consume). */
  async ready (): Promise<void> {
    if (this.queue.length > 0 || this._closed) { return }
    await new Promise<void>(resolve => this.receivers.push(resolve))
  }

  close (): void {
    this._closed = true
    this.wake(this.receivers)
    this.wake(this.senders)
  }
}
