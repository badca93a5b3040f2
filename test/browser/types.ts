/**
 * What test/browser/run.ts hands the page (`/config.json`) and what the page
 * reports back (`window.qmdbResults`): plain JSON, so both sides agree on
 * the shape without sharing code that runs.
 */

export interface PageConfig {
  /** `/ws` multiaddrs (with `/p2p/<id>`) of honest nodes. */
  honest: string[]
  /** Bound of every network wait in the page (ms). */
  timeoutMs: number
}

export interface PingResult {
  addr: string
  /** The connection's remote address, when the ping was answered. */
  remoteAddr?: string
  /** `<error name>: <message>` when it was not. */
  error?: string
}

export interface PageResults {
  userAgent: string
  pings: PingResult[]
  /** The page itself failed (the bundle did not run, the config was unreadable). */
  fatal?: string
}

declare global {
  interface Window { qmdbResults?: PageResults }
}
