/**
 * Helpers every kind of test uses: bounded waits, starting and stopping
 * groups of libp2p nodes, and reading the typed code of an expected failure.
 * Waits are bounded by a deadline and poll; nothing here asserts timings.
 */
import { expect } from 'aegir/chai'
import type { Libp2p } from '@libp2p/interface'

/** Dial every node of `others` from `a` (each must listen). */
export async function connectAll (a: Libp2p<any>, others: Array<Libp2p<any>>): Promise<void> {
  for (const b of others) { await a.dial(b.getMultiaddrs()[0]) }
}

/** Stop every node (missing ones are skipped), concurrently. */
export async function stopAll (nodes: Array<Libp2p<any> | undefined>): Promise<void> {
  await Promise.all(nodes.map(async n => { await n?.stop() }))
}

/** Poll `cond` every 10 ms until it holds; throw after `timeoutMs`, naming `what`. */
export async function waitUntil (cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`) }
    await delay(10)
  }
}

export async function delay (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

type ErrorClass = abstract new (...args: any[]) => Error

/**
 * The `code` of the error `p` (a promise or a function) fails with, or 'ok' if
 * it does not fail. With `kind`, the error must be an instance of it.
 */
export async function codeOf (p: Promise<unknown> | (() => unknown), kind?: ErrorClass): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return codeOfError(err, kind)
  }
  return 'ok'
}

/** `codeOf` for a synchronous function. */
export function codeOfSync (fn: () => unknown, kind?: ErrorClass): string {
  try {
    fn()
  } catch (err) {
    return codeOfError(err, kind)
  }
  return 'ok'
}

function codeOfError (err: unknown, kind?: ErrorClass): string {
  if (kind !== undefined) { expect(err).to.be.instanceOf(kind) }
  return (err as { code?: string }).code ?? String(err)
}
