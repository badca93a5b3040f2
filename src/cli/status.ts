/**
 * `libp2p-qmdb status --url URL`: print a running node's `/status` (served
 * on its metrics port) as one JSON line.
 */

export async function fetchStatus (url: string, timeoutMs = 5000): Promise<unknown> {
  const base = url.replace(/\/+$/, '')
  const target = base.endsWith('/status') ? base : `${base}/status`
  let res: Response
  try {
    res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    // fetch hides the reason (refused, timed out) in `cause`
    const cause = (err as Error & { cause?: Error }).cause
    throw new Error(`cannot reach ${target}: ${cause?.message ?? (err as Error).message}`)
  }
  if (!res.ok) { throw new Error(`${target} answered HTTP ${res.status}`) }
  return res.json()
}
