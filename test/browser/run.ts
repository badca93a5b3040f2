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
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { initNetwork } from '../../src/cli/init.ts'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { createNode } from '../../src/node/node.ts'
import type { PageConfig, PageResults } from './types.ts'
import type { QmdbNode } from '../../src/node/node.ts'
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
  const configs = await initNetwork({ dir, validators: VALIDATORS, joiners: 0, chainId: 'qmdb-browser', host: '127.0.0.1', autoTransfers: 10, wsBasePort: 0 })
  const application = ledgerApplication({ autoTransfers: 10, accountSpace: 6 })
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
async function inChromium (url: string, profile: string, errors: string[]): Promise<{ results: PageResults, table: string, version: string }> {
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: BROWSER_MS })
  try {
    const page = context.pages()[0] ?? await context.newPage()
    page.on('pageerror', err => { errors.push(`page error: ${err.message}`) })
    page.on('console', msg => { if (msg.type() === 'error') { errors.push(`console: ${msg.text()}`) } })
    await page.goto(url, { timeout: BROWSER_MS })
    await page.waitForFunction(() => window.qmdbResults !== undefined, undefined, { timeout: BROWSER_MS })
    const results = await page.evaluate(() => window.qmdbResults) as PageResults
    const table = await page.textContent('#results', { timeout: BROWSER_MS }) ?? ''
    return { results, table, version: context.browser()?.version() ?? 'unknown' }
  } finally {
    await context.close()
  }
}

async function main (): Promise<number> {
  if (!existsSync(CHROMIUM)) {
    check('chromium is installed', false, `${CHROMIUM} is missing: install the Debian package \`chromium\` (apt-get install -y --no-install-recommends chromium)`)
    return summary()
  }
  const dir = await mkdtemp(join(tmpdir(), 'qmdb-browser-'))
  let nodes: QmdbNode[] = []
  let server: Server | undefined
  try {
    const bundle = await bundlePage().then(b => b, (err: Error) => err)
    if (!check('the page bundles for platform=browser (no node: imports reachable)', !(bundle instanceof Error), bundle instanceof Error ? bundle.message : undefined) || bundle instanceof Error) {
      return summary()
    }
    process.stdout.write(`# bundle: ${(bundle.js.length / 1024).toFixed(0)} KiB, ${bundle.inputs.length} modules\n`)

    nodes = await startNetwork(dir)
    await until('every validator to apply 3 blocks', NETWORK_MS, async () => {
      const heights = await Promise.all(nodes.map(async n => (await n.status()).appliedHeight ?? 0))
      return Math.min(...heights) >= 3
    })
    const wsAddrs = nodes.map(n => n.libp2p.getMultiaddrs().map(String).find(a => a.includes('/ws/')))
    if (!check('every node listens on a /ws address', wsAddrs.every(a => a !== undefined), wsAddrs.join(' '))) { return summary() }
    const config: PageConfig = { honest: wsAddrs as string[], timeoutMs: 20_000 }

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
    for (const p of page.results.pings) {
      check(`the page connects over WebSockets and pings ${p.addr}`, p.error === undefined && p.remoteAddr?.includes('/ws') === true, p.error ?? p.remoteAddr)
    }
    check('no page errors', errors.length === 0, errors.join(' | '))
    return summary()
  } finally {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
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
