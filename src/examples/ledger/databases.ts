/**
 * Opening the ledger's databases (in memory or in a datastore) and
 * describing how each syncs from peers.
 */

import { AnyDb } from '../../qmdb/any.ts'
import { CompactKeylessDb } from '../../qmdb/compact.ts'
import { DatabaseSet } from '../../qmdb/managed.ts'
import { compactTargetsEqual, compactToTarget, targetsEqual } from '../../qmdb/target.ts'
import { anySync, compactSync } from '../../sync/kinds.ts'
import type { LedgerDbs } from './app.ts'
import type { Source } from '../../sync/source.ts'
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
    accounts: await AnyDb.open({ datastore: storage.datastore, prefix: `${prefix}/accounts` }),
    receipts: await CompactKeylessDb.open({ datastore: storage.datastore, prefix: `${prefix}/receipts` })
  })
}

/**
 * State-sync members for the ledger: `accounts` syncs in place into its
 * storage through `sources.accounts`; `receipts` (compact) imports a
 * witness into an opened compact database.
 */
export async function ledgerSyncMembers (storage: LedgerStorage, sources: { accounts: Source, receipts: Source }): Promise<{
  accounts: { kind: ReturnType<typeof anySync>, source: Source, toTarget: typeof identity, equal: typeof targetsEqual }
  receipts: { kind: ReturnType<typeof compactSync>, source: Source, toTarget: typeof compactToTarget, equal: typeof compactTargetsEqual }
}> {
  const prefix = storage.prefix ?? '/ledger'
  const receipts = await CompactKeylessDb.open({ datastore: storage.datastore, prefix: `${prefix}/receipts` })
  return {
    accounts: { kind: anySync({ datastore: storage.datastore, prefix: `${prefix}/accounts` }), source: sources.accounts, toTarget: identity, equal: targetsEqual },
    receipts: { kind: compactSync(receipts), source: sources.receipts, toTarget: compactToTarget, equal: compactTargetsEqual }
  }
}

function identity<T> (t: T): T {
  return t
}
