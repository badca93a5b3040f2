/**
 * `libp2p-qmdb status --url URL`: print a running node's `/status` (served
 * on its metrics port) as one JSON line.
 */

export async function fetchStatus (url: string, timeoutMs = 5000): Promise<unknown> {
  const base = url.replace(/\/+$/, '')
  const target = base.endsWith('/status') ? base : `${base}/status`
  // a referenced timer: `AbortSignal.timeout` does not keep the process
  // alive, and a connection dropped without an answer can leave fetch with
  // nothing else pending, so the process would exit 0 without a word
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
  try {
    let res: Response
    try {
      res = await fetch(target, { signal: controller.signal })
    } catch (err) {
      // fetch hides the reason (refused, timed out) in `cause`
      const cause = (err as Error & { cause?: Error }).cause
      throw new Error(`cannot reach ${target}: ${cause?.message ?? (err as Error).message}`)
    }
    if (!res.ok) { throw new Error(`${target} answered HTTP ${res.status}`) }
    return await res.json()
  } finally {
    clearTimeout(timer)
  }
}
