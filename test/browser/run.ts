/**
 * `npm run test:browser`: the light client in a real browser (README,
 * "Browser light client").
 *
 * A small network runs in this process: three ledger validators listening
 * on TCP and WebSockets, port 0 (the real addresses are read back).
 * test/browser/page.ts is bundled by esbuild for platform=browser: a `node:`
 * import anywhere the page reaches fails the bundle, which is how the
 * browser-safety of the light client is checked. The page is served on
 * 127.0.0.1 port 0 and opened in Debian's headless `/usr/bin/chromium`
 * (package `chromium`) through playwright-core, with a fresh profile;
 * nothing here downloads a browser. The page reports what it observed; this
 * runner checks the observations against the network, prints one line per
 * check and `N passed, N failed`, and exits 1 on any failure.
 *
 * Every wait is bounded, and a watchdog ends the run after `OVERALL_MS`.
 */
import '../util/polyfill.ts'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LevelDatastore } from 'datastore-level'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { hex } from '../../src/codec/index.ts'
import { accountId } from '../../src/examples/ledger/index.ts'
import { currentDatabase } from '../../src/node/application.ts'
import { createNode } from '../../src/node/node.ts'
import { FORGERIES, startTamperingNode } from './tampering-node.ts'
import type { Forgery } from './tampering-node.ts'
import type { PageConfig, PageResults } from './types.ts'
import type { QmdbNode } from '../../src/node/node.ts'
import type { Libp2p } from '@libp2p/interface'
import type { Server } from 'node:http'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]
const OVERALL_MS = 240_000
const NETWORK_MS = 90_000
const BROWSER_MS = 60_000
const VALIDATORS = 3
/** Accounts the generated transfers move tokens between (all read by the page). */
const ACCOUNTS = 6
const CHAIN = 'qmdb-browser'

interface Check { name: string, ok: boolean, detail?: string }
const checks: Check[] = []

function check (name: string, ok: boolean, detail?: string): boolean {
  checks.push({ name, ok, detail })
  process.stdout.write(`${ok ? 'ok' : 'not ok'} - ${name}${!ok && detail !== undefined ? `: ${detail}` : ''}\n`)
  return ok
}

function summary (): number {
  const failed = checks.filter(c => !c.ok).length
  process.stdout.write(`${checks.length - failed} passed, ${failed} failed\n`)
  return failed === 0 ? 0 : 1
}

async function until (what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) { throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`) }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

/** The validators, started one after another, each dialling those already running. */
async function startNetwork (dir: string): Promise<QmdbNode[]> {
  const configs = await initNetwork({ dir, validators: VALIDATORS, joiners: 0, chainId: CHAIN, host: '127.0.0.1', autoTransfers: 10, wsBasePort: 0 })
  const application = ledgerApplication({ autoTransfers: 10, accountSpace: ACCOUNTS })
  const nodes: QmdbNode[] = []
  for (const { config } of configs) {
    const bootstrap = nodes.flatMap(n => n.libp2p.getMultiaddrs().map(String).filter(a => !a.includes('/ws/')))
    nodes.push(await createNode({ ...config, bootstrap, consensus: { blockIntervalMs: 50 } }, application))
  }
  return nodes
}

/** The bundled page: throws esbuild's messages if the page reaches a module browsers cannot load. */
async function bundlePage (): Promise<{ js: string, inputs: string[] }> {
  const entry = fileURLToPath(new URL('./page.js', import.meta.url))
  const out = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', target: 'chrome120', write: false, metafile: true, logLevel: 'silent' })
  return { js: out.outputFiles[0].text, inputs: Object.keys(out.metafile.inputs) }
}

const HTML = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>libp2p-qmdb light client</title>' +
  '<table><thead><tr><th>read</th><th>outcome</th></tr></thead><tbody id="results"></tbody></table>' +
  '<script type="module" src="/page.js"></script>\n'

async function serve (files: Record<string, { type: string, body: string }>): Promise<{ server: Server, url: string }> {
  const server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://127.0.0.1').pathname]
    if (file === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') { throw new Error('the page server has no TCP address') }
  return { server, url: `http://127.0.0.1:${addr.port}/` }
}

/** Open the page in a fresh headless Chromium profile and return its report and its table's text. */
async function inChromium (url: string, profile: string, errors: string[]): Promise<{ results: PageResults, table: string }> {
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: BROWSER_MS })
  try {
    const page = context.pages()[0] ?? await context.newPage()
    page.on('pageerror', err => { errors.push(`page error: ${err.message}`) })
    page.on('console', msg => { if (msg.type() === 'error') { errors.push(`console: ${msg.text()}`) } })
    await page.goto(url, { timeout: BROWSER_MS })
    await page.waitForFunction(() => window.qmdbResults !== undefined, undefined, { timeout: BROWSER_MS })
    const results = await page.evaluate(() => window.qmdbResults) as PageResults
    const table = await page.textContent('#results', { timeout: BROWSER_MS }) ?? ''
    return { results, table }
  } finally {
    await context.close()
  }
}

/** Pause consensus everywhere and wait until every node has applied the same, last height. */
async function settle (nodes: QmdbNode[]): Promise<void> {
  await Promise.all(nodes.map(async n => n.pauseConsensus()))
  let last = ''
  await until('the validators to agree on a last applied height', NETWORK_MS, async () => {
    const seen = JSON.stringify(await Promise.all(nodes.map(async n => (await n.status()).appliedHeight)))
    const agreed = seen === last && new Set(JSON.parse(seen)).size === 1
    last = seen
    if (!agreed) { await new Promise(resolve => setTimeout(resolve, 500)) }
    return agreed
  })
}

/** What the network wrote: the accounts read straight from a stopped node's database (as the ledger opens it; no proof involved). */
async function writtenValues (dataDir: string, keys: Uint8Array[]): Promise<Array<string | undefined>> {
  const datastore = new LevelDatastore(join(dataDir, 'db'))
  await datastore.open()
  try {
    const db = await currentDatabase().open({ datastore, prefix: '/ledger/accounts' })
    try {
      return await Promise.all(keys.map(async k => { const v = await db.get(k); return v === undefined ? undefined : hex(v) }))
    } finally {
      await db.close()
    }
  } finally {
    await datastore.close()
  }
}

async function main (): Promise<number> {
  if (!existsSync(CHROMIUM)) {
    check('chromium is installed', false, `${CHROMIUM} is missing: install the Debian package \`chromium\` (apt-get install -y --no-install-recommends chromium)`)
    return summary()
  }
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-browser-'))
  let nodes: QmdbNode[] = []
  let bad: Libp2p | undefined
  let server: Server | undefined
  try {
    const bundle = await bundlePage().then(b => b, (err: Error) => err)
    if (!check('the page bundles for platform=browser (no node: imports reachable)', !(bundle instanceof Error), bundle instanceof Error ? bundle.message : undefined) || bundle instanceof Error) {
      return summary()
    }
    process.stdout.write(`# bundle: ${(bundle.js.length / 1024).toFixed(0)} KiB, ${bundle.inputs.length} modules\n`)
    check('the bundle holds the light client (src/light)', bundle.inputs.some(i => i.includes('src/light/client.js')))

    nodes = await startNetwork(dir)
    await until('every validator to apply 3 blocks', NETWORK_MS, async () => {
      const heights = await Promise.all(nodes.map(async n => (await n.status()).appliedHeight ?? 0))
      return Math.min(...heights) >= 3
    })
    await settle(nodes)
    const status = await nodes[0].status()
    const addrs = (n: { getMultiaddrs(): Array<{ toString(): string }> }, ws: boolean): string[] => n.getMultiaddrs().map(String).filter(a => a.includes('/ws/') === ws)
    const honest = nodes.map(n => addrs(n.libp2p, true)[0])
    if (!check('every node listens on a /ws address', honest.every(a => a !== undefined), honest.join(' '))) { return summary() }

    const forgeries = Object.keys(FORGERIES) as Forgery[]
    const forgedKeys = forgeries.map((_, i) => accountId(i))
    bad = await startTamperingNode({
      chain: CHAIN,
      db: 'accounts',
      honest: addrs(nodes[0].libp2p, false)[0],
      forgeries: new Map(forgeries.map((f, i) => [hex(forgedKeys[i]), f]))
    })
    // every account the generated transfers can touch, and one they never touch
    const readKeys = [...Array.from({ length: ACCOUNTS }, (_, i) => accountId(i)), accountId(ACCOUNTS + 1000)]
    const config: PageConfig = {
      chain: CHAIN,
      validators: nodes.map(n => n.peerId),
      db: 'accounts',
      honest,
      bad: addrs(bad, true)[0],
      reads: readKeys.map(hex),
      forged: forgedKeys.map(hex),
      timeoutMs: 20_000
    }

    const served = await serve({
      '/': { type: 'text/html; charset=utf-8', body: HTML },
      '/page.js': { type: 'text/javascript; charset=utf-8', body: bundle.js },
      '/config.json': { type: 'application/json', body: JSON.stringify(config) }
    })
    server = served.server
    const profile = await mkdtemp(join(tmpdir(), 'qmdb-chromium-'))
    const errors: string[] = []
    let page
    try {
      page = await inChromium(served.url, profile, errors)
    } finally {
      await rm(profile, { recursive: true, force: true })
    }
    process.stdout.write(`# ${page.results.userAgent}\n`)
    if (!check('the page ran', page.results.fatal === undefined, page.results.fatal)) { return summary() }

    await Promise.all(nodes.map(async n => n.stop()))
    nodes = []
    const written = await writtenValues(join(dir, 'node-0'), readKeys)
    check(`the network wrote at least ${ACCOUNTS - 1} of the ${ACCOUNTS} accounts`, written.filter(v => v !== undefined).length >= ACCOUNTS - 1, JSON.stringify(written))
    check('the page made every read', page.results.reads.length === readKeys.length && page.results.forged.length === forgedKeys.length)
    page.results.reads.forEach((r, i) => {
      const want = written[i]
      const name = `read ${r.key.slice(0, 12)}… via ${r.via.split('/')[4]}/ws`
      if (want === undefined) {
        // the accounts database is unordered: a key never written cannot be proven absent
        check(`${name}: never written, so unprovable`, r.error?.code === 'Unprovable', JSON.stringify(r))
      } else {
        check(`${name}: the value the network wrote, verified at height ${status.appliedHeight} (block ${status.digest?.slice(0, 12)}…)`,
          r.error === undefined && r.value === want && r.height === status.appliedHeight && r.blockDigest === status.digest, JSON.stringify({ r, want }))
      }
    })
    page.results.forged.forEach((r, i) => {
      const code = FORGERIES[forgeries[i]]
      check(`forged ${forgeries[i]} from the bad node: rejected with LightError ${code}, shown on the page`,
        r.error?.name === 'LightError' && r.error.code === code && page.table.includes(`rejected: LightError ${code}`), JSON.stringify(r))
    })
    check('every connection of the page is a WebSocket', page.results.connections.length > 0 && page.results.connections.every(a => a.includes('/ws')), page.results.connections.join(' '))
    check('no page errors', errors.length === 0, errors.join(' | '))
    return summary()
  } finally {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await bad?.stop()
    await new Promise(resolve => server === undefined ? resolve(undefined) : server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  }
}

const watchdog = setTimeout(() => {
  check(`the run ends within ${OVERALL_MS / 1000} s`, false, 'watchdog fired')
  process.exit(summary())
}, OVERALL_MS)
watchdog.unref()

main().then(code => {
  process.exit(code)
}, (err: Error) => {
  check('the run completes', false, `${err.name}: ${err.message}`)
  process.exit(summary())
})
