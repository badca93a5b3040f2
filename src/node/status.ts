/**
 * The per-database part of a node's status: what a state-sync client needs
 * to start a sync from this node without decoding any block — the protocol
 * id that serves the database, the sync target of the applied state, and
 * how far back the node can still serve.
 */

import { hex } from '../codec/index.ts'
import type { CompactReader, LogReader } from '../qmdb/readers.ts'

export interface DatabaseStatus {
  /** The database kind (`any`, `keyless-compact`, ...). */
  kind: string
  /** The protocol id serving it (standard or compact sync). */
  protocol: string
  /**
   * The sync target of the applied state: a full database's root and range
   * `[start, end)` (start = inactivity floor), or a compact database's root
   * and size.
   */
  target: { root: string, start: number, end: number } | { root: string, size: number }
  /** The smallest target size this node can still serve (a compact database: only its tip). */
  oldestServableSize: number
}

function isLog (reader: LogReader | CompactReader<unknown>): reader is LogReader {
  return 'oldestServableSize' in reader
}

/** A prune may run between the status read and this scan: then scan again from the new boundary. */
async function oldestServable (reader: LogReader): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await reader.oldestServableSize()
    } catch (err) {
      if (attempt === 2) { throw err }
    }
  }
}

/** The status of the database behind `reader`, served on `protocol`. */
export async function databaseStatus (reader: LogReader | CompactReader<unknown>, protocol: string): Promise<DatabaseStatus> {
  if (isLog(reader)) {
    const t = reader.syncTarget()
    return { kind: reader.kind, protocol, target: { root: hex(t.root), start: t.range.start, end: t.range.end }, oldestServableSize: await oldestServable(reader) }
  }
  const t = reader.syncTarget()
  return { kind: reader.kind, protocol, target: { root: hex(t.root), size: t.size }, oldestServableSize: t.size }
}
