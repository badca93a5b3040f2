/**
 * The application the command line runs: the example token ledger as a
 * `NodeApplication` — `accounts` (a `current` database, served with range
 * proofs on the standard sync protocol and with key-value proofs to light
 * clients against the canonical root each block commits to) and `receipts` (a compact `keyless`
 * database, only its tip, on the compact protocol). Its settings come from
 * the config file's `application` section.
 */

import { LedgerApp, ledgerBlockCodec } from '../examples/ledger/index.ts'
import { compactKeylessDatabase, currentDatabase, optionalInts } from '../node/index.ts'
import type { LedgerBlock, LedgerDbs } from '../examples/ledger/index.ts'
import type { NodeApplication } from '../node/index.ts'

export interface LedgerSettings {
  /** Generated transfers each proposal adds (default 0). */
  autoTransfers?: number
  /** Accounts generated transfers move tokens between (default 1000). */
  accountSpace?: number
  /** Mempool transfers per block (default 1000). */
  maxTransfers?: number
}

/** Validate the config file's `application` section for the ledger (a typed `ConfigError` names a bad field). */
export function ledgerSettings (raw: Record<string, unknown> | undefined): LedgerSettings {
  return optionalInts(raw, 'application', ['autoTransfers', 'accountSpace', 'maxTransfers']) ?? {}
}

/** The ledger, ready for `createNode`. */
export function ledgerApplication (settings: LedgerSettings = {}): NodeApplication<LedgerBlock, LedgerDbs> {
  return {
    name: 'ledger',
    blockCodec: ledgerBlockCodec,
    databases: {
      accounts: currentDatabase(),
      receipts: compactKeylessDatabase()
    },
    create: initialTargets => new LedgerApp(initialTargets, settings),
    lightRoot: (block, db) => db === 'accounts' ? block.accountsRoot : undefined
  }
}
