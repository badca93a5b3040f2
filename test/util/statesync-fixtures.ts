/**
 * Fixtures for the state-sync crash tests and the stateful acceptance tests:
 * a strict block codec for the stateful test blocks (so the real marshal and
 * its LevelDB block store can hold them), finalizations of test blocks, the
 * sync members of the two test databases, and a logger that records every
 * line (so tests can check what the manager logged).
 */

import { Reader, Writer } from '../../src/codec/index.ts'
import { decodeTarget, encodeTarget, targetsEqual } from '../../src/qmdb/index.ts'
import { anySync, keylessSync } from '../../src/sync/index.ts'
import { makeBlock } from './stateful-app.ts'
import type { TestBlock } from './stateful-app.ts'
import type { TestFinalization } from './stateful-scheme.ts'
import type { BlockCodec } from '../../src/marshal/index.ts'
import type { Target } from '../../src/qmdb/index.ts'
import type { Context } from '../../src/stateful/index.ts'
import type { MemberSync, Source } from '../../src/sync/index.ts'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

const MAX_FIELD = 1024

/** The bytes `makeBlock` hashes; decoding recomputes the digest from them. */
export const testBlockCodec: BlockCodec<TestBlock> = {
  maxBytes: 1 << 16,
  encode: b => {
    const w = new Writer(256).varint(b.height).raw(b.context.parent.digest).varint(b.context.round.epoch).varint(b.context.round.view)
      .bytes(new TextEncoder().encode(b.context.leader)).varint(b.context.parent.view).varint(b.writes.length)
    for (const x of b.writes) { w.bytes(new TextEncoder().encode(x.key)).bytes(new TextEncoder().encode(x.value)) }
    encodeTarget(b.targets.accounts, w)
    encodeTarget(b.targets.receipts, w)
    return w.finish()
  },
  decode: bytes => {
    const r = new Reader(bytes)
    const height = r.varint()
    const parentDigest = r.raw(32)
    const epoch = r.varint()
    const view = r.varint()
    const leader = new TextDecoder().decode(r.bytes(MAX_FIELD))
    const parentView = r.varint()
    const n = r.varint()
    if (n > MAX_FIELD) { throw new Error('too many writes') }
    const writes = []
    for (let i = 0; i < n; i++) {
      writes.push({ key: new TextDecoder().decode(r.bytes(MAX_FIELD)), value: new TextDecoder().decode(r.bytes(MAX_FIELD)) })
    }
    const accounts = decodeTarget(r)
    const receipts = decodeTarget(r)
    r.finish()
    const ctx: Context = { round: { epoch, view }, leader, parent: { view: parentView, digest: parentDigest } }
    return makeBlock(height, ctx, writes, { accounts, receipts })
  }
}

/** The (always valid) test finalization of `block`. */
export function finalizationOf (block: TestBlock): TestFinalization {
  return { round: block.context.round, payload: block.digest }
}

/** Where the test databases live in a datastore (the synced and the reopened ones must agree). */
export const ACCOUNTS_PREFIX = '/accounts'
export const RECEIPTS_PREFIX = '/receipts'

export interface TestSyncMembers extends Record<string, MemberSync<any, Target>> {
  accounts: MemberSync<any, Target>
  receipts: MemberSync<any, Target>
}

/** Sync members for the two test databases, stored in `datastore` (in memory when omitted). */
export function testSyncMembers (sources: { accounts: Source, receipts: Source }, datastore?: Datastore): TestSyncMembers {
  return {
    accounts: { kind: anySync({ datastore, prefix: ACCOUNTS_PREFIX }), source: sources.accounts, toTarget: (t: Target) => t, equal: targetsEqual },
    receipts: { kind: keylessSync({ datastore, prefix: RECEIPTS_PREFIX }), source: sources.receipts, toTarget: (t: Target) => t, equal: targetsEqual }
  }
}

export interface LogLine {
  level: 'info' | 'error' | 'trace'
  component: string
  message: string
}

function format (formatter: unknown, args: unknown[]): string {
  let i = 0
  const text = String(formatter).replace(/%[sdoOje]/g, () => {
    const a = args[i++]
    if (a instanceof Error) { return a.message }
    if (typeof a === 'object' && a !== null) {
      try { return JSON.stringify(a) } catch { return String(a) }
    }
    return String(a)
  })
  return [text, ...args.slice(i).map(String)].join(' ')
}

/** A `ComponentLogger` that keeps every formatted line. */
export function recordingLogger (): { logger: ComponentLogger, lines: LogLine[] } {
  const lines: LogLine[] = []
  const make = (component: string): Logger => {
    const log = ((formatter: unknown, ...args: unknown[]) => { lines.push({ level: 'info', component, message: format(formatter, args) }) }) as Logger
    log.error = (formatter: unknown, ...args: unknown[]) => { lines.push({ level: 'error', component, message: format(formatter, args) }) }
    log.trace = (formatter: unknown, ...args: unknown[]) => { lines.push({ level: 'trace', component, message: format(formatter, args) }) }
    log.enabled = true
    log.newScope = (name: string) => make(`${component}:${name}`)
    return log
  }
  return { logger: { forComponent: make }, lines }
}

// ---- the state-sync crash child (statesync-crash-child.ts) --------------------------------

/** Height of the simulated chain's tip. */
export const CHAIN_LENGTH = 60
export const FETCH_BATCH = 8

export type KillPoint = 'probe' | 'stall' | 'converged' | 'completed' | 'db-ahead'

export interface CrashChildConfig {
  dir: string
  /** Whether this boot asks for state sync (the node's `stateSync` option). */
  requestSync: boolean
  /** Height of the finalization the probe offers. */
  probe: number
  /** Finalizations fed while starting, up to this height (0: none). */
  feedDuringSync: number
  /** Start feeding them only once the accounts database issued its first operations request. */
  feedAfterFirstRequest?: boolean
  /** Then fed once processing runs, up to this height. */
  feedAfterStart: number
  /** The accounts source answers only once marshal's durable processed height is at least this. */
  gate?: number
  kill?: KillPoint
  stallAfter?: number
  dbAheadAt?: number
}

export interface OpsRequest { size: number, start: number }

export type ChildMessage =
  /**
   * Sent twice: once the plan is read, then once marshal started (fields merge). `dbHeight`: the
   * height both databases have committed (each matched to the chain by its root).
   */
  | { type: 'boot', bootState?: string, resumedFloor?: number, path?: 'state-sync' | 'marshal-sync', probed?: boolean, marshalProcessed?: number, dbHeight?: number }
  | { type: 'point', point: KillPoint, height?: number, synced?: number, start?: number, processed?: number }
  | { type: 'done', processed: number, lastProcessed: number, syncHeight?: number, syncStart?: number, startedFrom?: number, rewound: boolean, applyCalls: number, accountsRequests: number, receiptsRequests: number, accountsOps: OpsRequest[], roots: { accounts: string, receipts: string } }
  | { type: 'fatal', message: string }
