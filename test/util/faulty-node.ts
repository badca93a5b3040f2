/**
 * A node process whose application throws: the ledger, except that
 * `propose` throws from view `--fail-at` on. Speaks the same command line
 * as `libp2p-qmdb node`; used to check that a node stops on an application
 * failure and exits non-zero with a clear message.
 *
 * Usage: node dist/test/util/faulty-node.js --config FILE --fail-at VIEW
 */

import './polyfill.ts'
import { parseArgs } from 'node:util'
import { ledgerApplication } from '../../src/cli/ledger.ts'
import { runNode } from '../../src/cli/run-node.ts'
import type { NodeApplication } from '../../src/node/application.ts'
import type { DatabaseRecord } from '../../src/qmdb/managed.ts'
import type { Block } from '../../src/stateful/types.ts'

const { values } = parseArgs({ args: process.argv.slice(2), options: { config: { type: 'string' }, 'fail-at': { type: 'string' } } })
const failAt = Number(values['fail-at'] ?? 3)
const ledger = ledgerApplication({ autoTransfers: 5 })
const faulty: typeof ledger = {
  ...ledger,
  create: targets => {
    const app = ledger.create(targets)
    const propose = app.propose.bind(app)
    app.propose = async (ctx, ancestry, batches, options) => {
      if (ctx.round.view >= failAt) { throw new Error(`injected failure at view ${ctx.round.view}`) }
      return propose(ctx, ancestry, batches, options)
    }
    return app
  }
}
const code = await runNode({
  configPath: values.config ?? '',
  statusIntervalMs: 0,
  control: false,
  application: faulty as unknown as NodeApplication<Block, DatabaseRecord>
})
process.exit(code)
