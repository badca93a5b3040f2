/**
 * What test/browser/run.ts hands the page (`/config.json`) and what the page
 * reports back (`window.qmdbResults`): plain JSON (bytes as hex), so both
 * sides agree on the shape without sharing code that runs.
 */

export interface PageConfig {
  chain: string
  /** The trusted validator set (peer ids, in order): all the page trusts. */
  validators: string[]
  db: string
  /** `/ws` multiaddrs (with `/p2p/<id>`) of honest nodes; reads go round-robin. */
  honest: string[]
  /** `/ws` multiaddr of the node that forges answers. */
  bad: string
  /** Keys read from the honest nodes. */
  reads: string[]
  /** Keys read from the bad node. */
  forged: string[]
  /** Bound of every network wait in the page (ms). */
  timeoutMs: number
}

export interface ReadResult {
  key: string
  /** The multiaddr read from. */
  via: string
  /** The verified value (absent: undefined) and where it was verified. */
  value?: string
  absent?: boolean
  height?: number
  blockDigest?: string
  /** The read was rejected. */
  error?: { name: string, code?: string, message: string }
}

export interface PageResults {
  userAgent: string
  reads: ReadResult[]
  forged: ReadResult[]
  /** Remote addresses of the page's connections after the reads. */
  connections: string[]
  /** The page itself failed (the bundle did not run, the config was unreadable). */
  fatal?: string
}

declare global {
  interface Window { qmdbResults?: PageResults }
}
