/**
 * Small async helpers: promises with external resolvers, racing a promise
 * against an abort signal, parking until a signal aborts, and a wake-up
 * notifier that never loses a wake (a wake before the wait is remembered).
 */

import { AbortError } from '@libp2p/interface'

export interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
  reject(err: unknown): void
}

export function deferred<T> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((_resolve, _reject) => {
    resolve = _resolve
    reject = _reject
  })
  return { promise, resolve, reject }
}

/** A signal that never aborts. */
export const NEVER: AbortSignal = new AbortController().signal

export function abortReason (signal: AbortSignal): unknown {
  return signal.reason ?? new AbortError()
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
export async function raceSignal<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {})
    throw abortReason(signal)
  }
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(abortReason(signal)) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort !== undefined) { signal.removeEventListener('abort', onAbort) }
    promise.catch(() => {})
  }
}

/** Resolves when `signal` aborts ("park until the caller cancels"). */
export async function waitForAbort (signal: AbortSignal): Promise<void> {
  if (signal.aborted) { return }
  await new Promise<void>(resolve => {
    signal.addEventListener('abort', () => { resolve() }, { once: true })
  })
}

/** Wake-ups for a single waiting loop. */
export class Notifier {
  private pending = false
  private waiter: Deferred<void> | undefined

  notify (): void {
    this.pending = true
    const w = this.waiter
    this.waiter = undefined
    w?.resolve()
  }

  /** Resolves at the next `notify` (at once if one happened since the last wait). */
  async wait (): Promise<void> {
    if (this.pending) {
      this.pending = false
      return
    }
    this.waiter ??= deferred<void>()
    await this.waiter.promise
    this.pending = false
  }
}

/** Seconds since `start` (a `performance.now()` value). */
export function secondsSince (start: number): number {
  return (performance.now() - start) / 1000
}
