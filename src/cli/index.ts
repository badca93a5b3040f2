#!/usr/bin/env node
/**
 * The `libp2p-qmdb` command line: `demo`, `init`, `node`, `status`, `get`.
 * Usage mistakes exit 2 with the usage text; failures exit 1 with one line
 * on stderr (the stack only with DEBUG set).
 */

import { parseArgs } from 'node:util'
import { installPolyfills } from '../polyfill.ts'
import { formatReport, runDemo } from './demo.ts'
import { formatValue, runGet } from './get.ts'
import { initNetwork } from './init.ts'
import { UsageError, info, intOption, toJson } from './output.ts'
import { runNode } from './run-node.ts'
import { fetchStatus } from './status.ts'

// libp2p v3 calls Promise.withResolvers, which Node 20 lacks
installPolyfills()

const USAGE = `usage: libp2p-qmdb <command> [options]

commands:
  demo     run a local network in this process: validators finalize blocks,
           a late joiner state-syncs, every node must end on the same roots
             --validators N (4)  --blocks N (30)  --follow N (10)
             --transfers N (100) --timeout SECONDS (120)  --dir DIR  --json
  init     write keys and one config per node for a local multi-process network
             --dir DIR (required)  --validators N (4)  --joiners N (0)
             --chain-id ID (qmdb-local)  --host IP (127.0.0.1)
             --base-port PORT (40000)  --metrics-base-port PORT
             --ws-base-port PORT (node i also listens on WebSockets at PORT + i)
             --transfers N (100)  --block-interval MS (100)  --mdns
  node     run one node from its config until SIGINT/SIGTERM (JSON lines on stdout)
             --config FILE (required)  --status-interval MS (0)  --control
  status   print a running node's status (from its metrics port)
             --url http://127.0.0.1:PORT (required)
  get      read one key from a node and verify it (light client): prints the
           value in hex (or "absent") and the height and block it is proven at
             <key-hex> --peer MULTIADDR/p2p/ID (required)  --db NAME (accounts)
             --config FILE (required: a node config, for the validator set)
             --height N (latest)  --timeout SECONDS (10)
`

type Parsed = ReturnType<typeof parse>

function parse (args: string[]): { values: Record<string, string | boolean | undefined>, positionals: string[] } {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      control: { type: 'boolean' },
      mdns: { type: 'boolean' },
      dir: { type: 'string' },
      config: { type: 'string' },
      url: { type: 'string' },
      peer: { type: 'string' },
      db: { type: 'string' },
      height: { type: 'string' },
      validators: { type: 'string' },
      joiners: { type: 'string' },
      blocks: { type: 'string' },
      follow: { type: 'string' },
      transfers: { type: 'string' },
      timeout: { type: 'string' },
      'chain-id': { type: 'string' },
      host: { type: 'string' },
      'base-port': { type: 'string' },
      'metrics-base-port': { type: 'string' },
      'ws-base-port': { type: 'string' },
      'status-interval': { type: 'string' },
      'block-interval': { type: 'string' }
    }
  })
}

function str (p: Parsed, name: string): string | undefined {
  const v = p.values[name]
  return typeof v === 'string' ? v : undefined
}

function required (p: Parsed, name: string): string {
  const v = str(p, name)
  if (v === undefined) { throw new UsageError(`--${name} is required`) }
  return v
}

async function main (argv: string[]): Promise<number> {
  let p: Parsed
  try {
    p = parse(argv)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const [command, ...rest] = p.positionals
  if (p.values.help === true || command === undefined || command === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (command === 'get') {
    if (rest.length !== 1) { throw new UsageError('get takes one key (hex)') }
    const height = str(p, 'height')
    const value = await runGet({
      configPath: required(p, 'config'),
      peer: required(p, 'peer'),
      db: str(p, 'db') ?? 'accounts',
      keyHex: rest[0],
      height: height === undefined ? undefined : intOption(height, 'height', 0),
      timeoutMs: intOption(str(p, 'timeout'), 'timeout', 10, 1) * 1000
    })
    process.stdout.write(`${formatValue(value)}\n`)
    return 0
  }
  if (rest.length > 0) { throw new UsageError(`unexpected argument ${rest[0]}`) }
  switch (command) {
    case 'demo': {
      const report = await runDemo({
        validators: intOption(str(p, 'validators'), 'validators', 4, 1, 64),
        blocks: intOption(str(p, 'blocks'), 'blocks', 30, 1),
        follow: intOption(str(p, 'follow'), 'follow', 10, 0),
        transfers: intOption(str(p, 'transfers'), 'transfers', 100, 0, 100_000),
        timeoutMs: intOption(str(p, 'timeout'), 'timeout', 120, 1) * 1000,
        json: p.values.json === true,
        dir: str(p, 'dir')
      })
      if (p.values.json === true) {
        process.stdout.write(`${toJson(report)}\n`)
      } else {
        process.stdout.write(`${formatReport(report)}\n`)
      }
      return report.ok ? 0 : 1
    }
    case 'init': {
      const metrics = str(p, 'metrics-base-port')
      const ws = str(p, 'ws-base-port')
      const nodes = await initNetwork({
        dir: required(p, 'dir'),
        validators: intOption(str(p, 'validators'), 'validators', 4, 1, 64),
        joiners: intOption(str(p, 'joiners'), 'joiners', 0, 0, 64),
        chainId: str(p, 'chain-id') ?? 'qmdb-local',
        host: str(p, 'host') ?? '127.0.0.1',
        basePort: intOption(str(p, 'base-port'), 'base-port', 40000, 1, 65000),
        metricsBasePort: metrics === undefined ? undefined : intOption(metrics, 'metrics-base-port', 0, 1, 65000),
        wsBasePort: ws === undefined ? undefined : intOption(ws, 'ws-base-port', 0, 1, 65000),
        autoTransfers: intOption(str(p, 'transfers'), 'transfers', 100, 0, 100_000),
        blockIntervalMs: intOption(str(p, 'block-interval'), 'block-interval', 100, 0, 999),
        mdns: p.values.mdns === true
      })
      for (const n of nodes) {
        process.stdout.write(`${toJson({ name: n.name, peerId: n.peerId, config: n.configPath, validator: n.config.stateSync !== true })}\n`)
      }
      info('start each node with: libp2p-qmdb node --config <config>')
      return 0
    }
    case 'node':
      return runNode({
        configPath: required(p, 'config'),
        statusIntervalMs: intOption(str(p, 'status-interval'), 'status-interval', 0),
        control: p.values.control === true
      })
    case 'status':
      process.stdout.write(`${toJson(await fetchStatus(required(p, 'url')))}\n`)
      return 0
    default:
      throw new UsageError(`unknown command ${command}`)
  }
}

/** Exit once stdout and stderr are flushed (pipes may be asynchronous). */
function exit (code: number): void {
  process.stdout.write('', () => {
    process.stderr.write('', () => { process.exit(code) })
  })
}

main(process.argv.slice(2)).then(exit, (err: Error) => {
  if (err instanceof UsageError) {
    process.stderr.write(`libp2p-qmdb: ${err.message}\n\n${USAGE}`)
    exit(2)
    return
  }
  process.stderr.write(`libp2p-qmdb: ${process.env.DEBUG !== undefined ? String(err.stack) : err.message}\n`)
  exit(1)
})
