/**
 * Opening the ledger's databases (in memory or in a datastore).
 */

import { CompactKeylessDb } from '../../qmdb/compact.ts'
import { CurrentDb } from '../../qmdb/current.ts'
import { DatabaseSet } from '../../qmdb/managed.ts'
import type { LedgerDbs } from './app.ts'
import type { Datastore } from 'interface-datastore'

export interface LedgerStorage {
  datastore?: Datastore
  /** Key prefix of the databases (default `/ledger`). */
  prefix?: string
}

/** Open (or create) the ledger databases. */
export async function openLedgerDatabases (storage: LedgerStorage = {}): Promise<DatabaseSet<LedgerDbs>> {
  const prefix = storage.prefix ?? '/ledger'
  return new DatabaseSet<LedgerDbs>({
    accounts: await CurrentDb.open({ datastore: storage.datastore, prefix: `${prefix}/accounts` }),
    receipts: await CompactKeylessDb.open({ datastore: storage.datastore, prefix: `${prefix}/receipts` })
  })
}
