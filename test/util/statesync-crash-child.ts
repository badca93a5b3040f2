/**
 * Child process of the state-sync crash tests (commonware `glue/src/stateful/actor/syncer`): one node
 * on a LevelDB folder (block store, sync metadata and both test databases in
 * one datastore) that starts the way `createNode` does — sync plan, probe,
 * marshal start, then the stateful manager on the state-sync or the
 * marshal-sync path — against a simulated network: a deterministic chain
 * whose finalizations are fed to the real marshal, and a serving node that
 * holds the chain's tip state.
 *
 * It reports over IPC and, when told to, stops at an exact point and waits
 * there to be killed (SIGKILL) by the parent:
 * - `probe`: before a floor is chosen (nothing durable yet);
 * - `stall`: in the middle of the sync, once `stallAfter` operation
 * responses of the `accounts` database are durably journaled;
 * - `converged`: every database converged, before completion is recorded;
 * - `completed`: right after completion is recorded (before any handed-off
 * block is acknowledged);
 * - `db-ahead`: while processing, when marshal is about to persist a
 * processed height >= `dbAheadAt` (the databases are durable through it,
 * marshal's record is not).
 * Without a kill point it runs to `feedAfterStart` and reports `done` with
 * the roots it ended on.
 */

import './polyfill.ts'
import { LevelDatastore } from 'datastore-level'
import { Reader } from '../../src/codec/index.ts'
import { BlockStore, Marshal } from '../../src/marshal/index.ts'
import { AnyDb, DatabaseSet, KeylessDb } from '../../src/qmdb/index.ts'
import { Stateful, SyncPlan, digestKey, marshalSync, stateSync } from '../../src/stateful/index.ts'
import { Kv } from '../../src/storage/kv.ts'
import { LocalSource } from '../../src/sync/index.ts'
import { ChainBuilder, TestApp } from './stateful-app.ts'
import { testScheme } from './stateful-scheme.ts'
import { ACCOUNTS_PREFIX, CHAIN_LENGTH, FETCH_BATCH, RECEIPTS_PREFIX, finalizationOf, recordingLogger, testBlockCodec, testSyncMembers } from './statesync-fixtures.ts'
import type { TestBlock, TestDbs } from './stateful-app.ts'
import type { TestFinalization } from './stateful-scheme.ts'
import type { ChildMessage, CrashChildConfig, OpsRequest } from './statesync-fixtures.ts'
import type { Request, ServeOptions, Served, Source, SyncProgress } from '../../src/sync/index.ts'

const cfg = JSON.parse(process.argv[2]) as CrashChildConfig

async function send (msg: ChildMessage): Promise<void> {
  await new Promise<void>(resolve => { process.send?.(msg, () => { resolve() }) })
}

/** Report the kill point and wait there for the parent's SIGKILL. */
async function stopAt (msg: ChildMessage): Promise<never> {
  await send(msg)
  return new Promise<never>(() => {})
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

function hex (d: Uint8Array): string {
  return Buffer.from(d).toString('hex')
}

// ---- the network: a deterministic chain and a node serving its tip state ----------------

const builder = await ChainBuilder.create()
const chain: TestBlock[] = [builder.genesis, ...await builder.chain(builder.genesis, CHAIN_LENGTH)]
await builder.set.apply(builder.stateOf(chain[CHAIN_LENGTH]) as never)
const heightOf = new Map(chain.map(b => [digestKey(b.digest), b.height]))
// per database, the first height whose block commits to each root
const heightOfRoot = { accounts: new Map<string, number>(), receipts: new Map<string, number>() }
for (const b of [...chain].reverse()) {
  heightOfRoot.accounts.set(hex(b.targets.accounts.root), b.height)
  heightOfRoot.receipts.set(hex(b.targets.receipts.root), b.height)
}

// ---- this node's storage ----------------------------------------------------------------

const ds = new LevelDatastore(cfg.dir)
await ds.open()
const kv = new Kv(ds)

/** The accounts sync journal's durable `[start, size)` (`<prefix>/syncmeta`: version, size, start). */
async function journaled (): Promise<{ start: number, size: number } | undefined> {
  const bytes = await kv.get(`${ACCOUNTS_PREFIX}/syncmeta`)
  if (bytes === undefined) { return undefined }
  const r = new Reader(bytes)
  r.u8()
  const size = r.varint()
  const start = r.varint()
  return { start, size }
}

const plan = await SyncPlan.init<TestFinalization>(ds, '/stateful', testScheme)
const bootState = plan.metadata.current.type
const persisted = plan.floor()
const resumedFloor = persisted === undefined ? undefined : heightOf.get(digestKey(persisted.payload))
const shouldSync = plan.shouldStateSync(cfg.requestSync)
await send({ type: 'boot', bootState, resumedFloor, path: shouldSync ? 'state-sync' : 'marshal-sync' })
let probed = false
if (shouldSync && plan.floor() === undefined) {
  if (cfg.kill === 'probe') { await stopAt({ type: 'point', point: 'probe' }) }
  plan.withFloor(finalizationOf(chain[cfg.probe]))
  probed = true
}

const store = new BlockStore<TestBlock, TestFinalization>(kv, '/marshal', testBlockCodec, testScheme)
if (cfg.kill === 'db-ahead') {
  const setProcessed = store.setProcessed.bind(store)
  let durable: number | undefined
  store.setProcessed = async (height, round) => {
    if (height >= (cfg.dbAheadAt as number)) {
      return stopAt({ type: 'point', point: 'db-ahead', height, processed: durable })
    }
    await setProcessed(height, round)
    durable = height
  }
}
// every block was gossiped to this node already; finalizations arrive below
for (const b of chain) { await store.putBlock(b) }
const marshal = new Marshal<TestBlock, TestFinalization>({ store, codec: testBlockCodec, scheme: testScheme, maxPendingAcks: 2 })
const marshalFloor = await marshal.start(plan.marshalStart(chain[0]))

// ---- sources of the serving node, scripted ----------------------------------------------

const firstOps = Promise.withResolvers<void>()
let lastProgress: SyncProgress | undefined
const accountsOps: OpsRequest[] = []

class ScriptedSource implements Source {
  requests = 0
  private readonly inner: Source
  private readonly before?: (req: Request) => Promise<void>

  constructor (inner: Source, before?: (req: Request) => Promise<void>) {
    this.inner = inner
    this.before = before
  }

  async serve (req: Request, options: ServeOptions): Promise<Served> {
    this.requests++
    await this.before?.(req)
    return this.inner.serve(req, options)
  }
}

const accountsSource = new ScriptedSource(new LocalSource(builder.set.dbs.accounts as never), async req => {
  if (req.type === 'operations') {
    accountsOps.push({ size: req.size, start: req.start })
    firstOps.resolve()
    if (cfg.kill === 'stall' && accountsOps.length > (cfg.stallAfter as number)) {
      // wait until what was verified so far is durably journaled, then stop here
      const synced = lastProgress?.synced ?? 0
      const start = lastProgress?.target.range.start ?? 0
      for (;;) {
        const j = await journaled()
        if (j !== undefined && j.size - j.start >= synced) { break }
        await sleep(2)
      }
      await stopAt({ type: 'point', point: 'stall', synced, start })
    }
  }
  if (cfg.gate !== undefined) {
    while (((await marshal.getProcessedHeight()) ?? -1) < cfg.gate) { await sleep(2) }
  }
})
const receiptsSource = new ScriptedSource(new LocalSource(builder.set.dbs.receipts as never))

// ---- the manager ------------------------------------------------------------------------

const app = new TestApp(chain[0])
const { logger, lines } = recordingLogger()
let databases: DatabaseSet<TestDbs> | undefined
let dbHeight: number | undefined
if (!shouldSync) {
  databases = new DatabaseSet<TestDbs>({
    accounts: await AnyDb.open({ datastore: ds, prefix: ACCOUNTS_PREFIX }),
    receipts: await KeylessDb.open({ datastore: ds, prefix: RECEIPTS_PREFIX })
  })
  // the databases commit one by one, so a kill can leave them at different heights: the lower one
  const t = databases.committedTargets()
  const accounts = heightOfRoot.accounts.get(hex(t.accounts.root))
  const receipts = heightOfRoot.receipts.get(hex(t.receipts.root))
  dbHeight = accounts === undefined || receipts === undefined ? undefined : Math.min(accounts, receipts)
}
if (cfg.kill === 'converged' || cfg.kill === 'completed') {
  const metadata = plan.metadata
  const setComplete = metadata.setComplete.bind(metadata)
  metadata.setComplete = async (height: number) => {
    const processed = await marshal.getProcessedHeight()
    if (cfg.kill === 'converged') { return stopAt({ type: 'point', point: 'converged', height, processed }) }
    await setComplete(height)
    return stopAt({ type: 'point', point: 'completed', height, processed })
  }
}
const stateful = new Stateful<TestBlock, TestDbs>({
  application: app,
  databases,
  marshal,
  metadata: plan.metadata,
  logger,
  startup: shouldSync
    ? stateSync({
      plan,
      scheme: testScheme,
      marshalFloor,
      members: testSyncMembers({ accounts: accountsSource, receipts: receiptsSource }, ds),
      fetchBatchSize: FETCH_BATCH,
      maxOutstandingRequests: 1,
      onProgress: p => { if (p.database === 'accounts') { lastProgress = p } }
    })
    : marshalSync(),
  onFatal: err => {
    void send({ type: 'fatal', message: err.message }).then(() => process.exit(1))
  }
})

await send({ type: 'boot', probed, marshalProcessed: marshalFloor.processedHeight, dbHeight })

/** Finalize heights up to `to` (certificates from consensus; blocks are local). */
async function feed (to: number): Promise<void> {
  const from = Math.max(1, ((await marshal.getProcessedHeight()) ?? 0) + 1)
  for (let h = from; h <= to; h++) { await marshal.finalized(finalizationOf(chain[h])) }
}

const started = stateful.start()
marshal.attach(stateful)
if (cfg.feedDuringSync > 0) {
  if (cfg.feedAfterFirstRequest === true) { await firstOps.promise }
  await feed(cfg.feedDuringSync)
}
await started
await feed(cfg.feedAfterStart)
while ((await marshal.getProcessedHeight()) !== cfg.feedAfterStart) { await sleep(2) }
const roots = await stateful.readApplied(dbs => {
  const t = dbs.committedTargets()
  return { accounts: hex(t.accounts.root), receipts: hex(t.receipts.root) }
})
const numberIn = (pattern: RegExp): number | undefined => {
  for (const l of lines) {
    const m = pattern.exec(l.message)
    if (m !== null) { return Number(m[1]) }
  }
  return undefined
}
await send({
  type: 'done',
  processed: (await marshal.getProcessedHeight()) as number,
  lastProcessed: stateful.lastProcessed?.height as number,
  syncHeight: plan.syncHeight(),
  syncStart: numberIn(/^state sync from the finalized block at height (\d+)/),
  startedFrom: numberIn(/^starting from the finalized block at height (\d+)/),
  rewound: lines.some(l => /rewinding/.test(l.message)),
  applyCalls: app.calls.apply,
  accountsRequests: accountsSource.requests,
  receiptsRequests: receiptsSource.requests,
  accountsOps,
  roots
})
process.exit(0)
