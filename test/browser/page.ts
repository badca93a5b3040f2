/**
 * The page `npm run test:browser` loads in headless Chromium (bundled by
 * test/browser/run.ts with esbuild for platform=browser, so any `node:`
 * import reachable from here fails the bundle). It makes a browser libp2p
 * node (WebSockets, Noise, Yamux), dials the nodes named in `/config.json`
 * on their `/ws` addresses and reports what it observed — never a verdict:
 * the runner compares the observations with what the network wrote.
 *
 * The results go to `window.qmdbResults` (read by the runner) and to the
 * page's table (what a person opening the page sees).
 */
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { PageConfig, PageResults } from './types.ts'

function show (what: string, outcome: string): void {
  const row = document.createElement('tr')
  for (const text of [what, outcome]) {
    const cell = document.createElement('td')
    cell.textContent = text
    row.append(cell)
  }
  document.querySelector('#results')?.append(row)
}

async function run (): Promise<PageResults> {
  const config = await (await fetch('/config.json')).json() as PageConfig
  const libp2p = await createLibp2p({
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // browsers refuse private addresses by default; the test network is on 127.0.0.1
    connectionGater: { denyDialMultiaddr: () => false },
    services: { ping: ping() }
  })
  const results: PageResults = { userAgent: navigator.userAgent, pings: [] }
  try {
    for (const addr of config.honest) {
      try {
        await libp2p.services.ping.ping(multiaddr(addr), { signal: AbortSignal.timeout(config.timeoutMs) })
        const peer = libp2p.getConnections().find(c => addr.endsWith(`/p2p/${c.remotePeer.toString()}`))
        results.pings.push({ addr, remoteAddr: peer?.remoteAddr.toString() })
        show(`ping ${addr}`, 'answered')
      } catch (err) {
        results.pings.push({ addr, error: `${(err as Error).name}: ${(err as Error).message}` })
        show(`ping ${addr}`, `${(err as Error).name}`)
      }
    }
  } finally {
    await libp2p.stop()
  }
  return results
}

run().then(r => { window.qmdbResults = r }, (err: Error) => {
  window.qmdbResults = { userAgent: navigator.userAgent, pings: [], fatal: `${err.name}: ${err.message}` }
  show('page', `failed: ${err.name}: ${err.message}`)
})
