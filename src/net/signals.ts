/**
 * Abort signals with an explicit lifetime, for the hot paths of every
 * request/response service and the stateful manager: a derived signal is
 * always disposed, so nothing accumulates on long-lived parents.
 */

import { setMaxListeners } from '@libp2p/interface'

export interface Linked {
  signal: AbortSignal
  /** True iff the deadline (not a parent) aborted it. */
  timedOut(): boolean
  /** Detach from the parents (always call it: a linked signal must not outlive its use). */
  dispose(): void
}

/**
 * A signal aborted by any of `parents` or after `timeoutMs`. Unlike
 * `AbortSignal.any`, which on Node 20 keeps every derived signal that ever had
 * a listener alive as long as a parent lives (a service's shutdown signal
 * lives for the whole process), this one is released by `dispose`.
 */
export function linked (parents: AbortSignal[], timeoutMs?: number): Linked {
  const controller = new AbortController()
  setMaxListeners(Infinity, controller.signal)
  let expired = false
  const onAbort = (): void => { controller.abort() }
  const timer = timeoutMs === undefined
    ? undefined
    : setTimeout(() => {
      expired = true
      controller.abort()
    }, timeoutMs)
  for (const parent of parents) {
    if (parent.aborted) {
      controller.abort()
      break
    }
    parent.addEventListener('abort', onAbort, { once: true })
  }
  return {
    signal: controller.signal,
    timedOut: () => expired,
    dispose: () => {
      clearTimeout(timer)
      for (const parent of parents) { parent.removeEventListener('abort', onAbort) }
    }
  }
}

/** Run `fn` with a signal that aborts after `ms` or with any of `parents` (its timer and listeners are cleared when `fn` settles). */
export async function withDeadline<T> (ms: number, fn: (signal: AbortSignal) => Promise<T>, parents: AbortSignal[] = []): Promise<T> {
  const link = linked(parents, ms)
  try {
    return await fn(link.signal)
  } finally {
    link.dispose()
  }
}

/** Resolve after `ms` or when `signal` aborts (never rejects; the listener is removed either way). */
export async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) { return }
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
