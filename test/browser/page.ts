/**
 * The page `npm run test:browser` loads in headless Chromium (bundled by
 * test/browser/run.ts with esbuild for platform=browser, so any `node:`
 * import reachable from here fails the bundle). It makes a browser libp2p
 * node (WebSockets, Noise, Yamux), and a light client trusting only the
 * validator set in `/config.json`; it reads keys from honest nodes and from
 * a node that forges answers, on their `/ws` addresses, and reports what it
 * observed — never a verdict: the runner compares the observations with
 * what the network wrote.
 *
 * The results go to `window.qmdbResults` (read by the runner) and to the
 * page's table (what a person opening the page sees).
 */
import { noise } from '@libp2p/noise'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { fromString } from 'uint8arrays/from-string'
import { hex } from '../../src/codec/hex.ts'
import { ledgerBlockCodec } from '../../src/examples/ledger/block.ts'
import { lightClient } from '../../src/light/index.ts'
import { currentDatabase } from '../../src/node/application.ts'
import type { PageConfig, PageResults, ReadResult } from './types.ts'
import type { LedgerBlock } from '../../src/examples/ledger/block.ts'
import type { LightApplication, LightClient } from '../../src/light/index.ts'

/** The ledger as a light client sees it: its block codec, its `current` accounts, the root its blocks commit to. */
const ledgerLight: LightApplication<LedgerBlock> = {
  blockCodec: ledgerBlockCodec,
  databases: { accounts: currentDatabase() },
  lightRoot: (block, db) => db === 'accounts' ? block.accountsRoot : undefined
}

function show (what: string, outcome: string): void {
  const row = document.createElement('tr')
  for (const text of [what, outcome]) {
    const cell = document.createElement('td')
    cell.textContent = text
    row.append(cell)
  }
  document.querySelector('#results')?.append(row)
}

async function read (client: LightClient, config: PageConfig, via: string, key: string): Promise<ReadResult> {
  try {
    const v = await client.get(multiaddr(via), config.db, fromString(key, 'base16'), { signal: AbortSignal.timeout(config.timeoutMs) })
    const r: ReadResult = { key, via, value: v.value === undefined ? undefined : hex(v.value), absent: v.absent, height: v.height, blockDigest: hex(v.blockDigest) }
    show(`${config.db} ${key.slice(0, 16)}…`, `${v.absent ? 'absent' : r.value} verified at height ${v.height} (block ${r.blockDigest?.slice(0, 16)}…)`)
    return r
  } catch (err) {
    const e = err as Error & { code?: string }
    show(`${config.db} ${key.slice(0, 16)}…`, `rejected: ${e.name} ${e.code ?? ''}`)
    return { key, via, error: { name: e.name, code: e.code, message: e.message } }
  }
}

async function run (): Promise<PageResults> {
  const config = await (await fetch('/config.json')).json() as PageConfig
  const libp2p = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // browsers refuse private addresses by default; the test network is on 127.0.0.1
    connectionGater: { denyDialMultiaddr: () => false }
  })
  const client = lightClient(libp2p, { validators: config.validators, chain: config.chain, application: ledgerLight, timeout: config.timeoutMs })
  try {
    const reads: ReadResult[] = []
    for (let i = 0; i < config.reads.length; i++) { reads.push(await read(client, config, config.honest[i % config.honest.length], config.reads[i])) }
    const forged: ReadResult[] = []
    for (const key of config.forged) { forged.push(await read(client, config, config.bad, key)) }
    const connections = libp2p.getConnections().map(c => c.remoteAddr.toString())
    return { userAgent: navigator.userAgent, reads, forged, connections }
  } finally {
    await libp2p.stop()
  }
}

run().then(r => { window.qmdbResults = r }, (err: Error) => {
  window.qmdbResults = { userAgent: navigator.userAgent, reads: [], forged: [], connections: [], fatal: `${err.name}: ${err.message}` }
  show('page', `failed: ${err.name}: ${err.message}`)
})
