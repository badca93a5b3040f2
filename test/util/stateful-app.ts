/**
 * A tiny deterministic application for the stateful tests, on two real QMDB
 * databases: `accounts` (an `any` key-value store) and `receipts` (a
 * `keyless` log).
 *
 * Executing a block at height h: increment the `counter` key, write every
 * `{ key, value }` of the block (both hashed to 32 bytes) and append one
 * receipt. The block carries its writes and its per-database sync targets;
 * its digest is SHA-256 of its encoding.
 *
 * `ChainBuilder` computes blocks (and so their targets) on its own in-memory
 * databases, entirely speculatively (nothing is ever applied there), so
 * tests can build arbitrary trees of valid blocks.
 *
 * `TestApp` counts calls and lets tests gate, reject or corrupt execution.
 */

import { createHash } from 'node:crypto'
import { Writer } from '../../src/codec/index.ts'
import { AnyDb, DatabaseSet, KeylessDb, encodeTarget } from '../../src/qmdb/index.ts'
import { digestKey } from '../../src/stateful/index.ts'
import type { AnyBatch, ManagedDb, MerkleizedAnyBatch, MerkleizedKeylessBatch, KeylessBatch, Target, MerkleizedOf, SyncTargetsOf, UnmerkleizedOf } from '../../src/qmdb/index.ts'
import type { Application, Block, Context, Proposed, ReadersOf } from '../../src/stateful/index.ts'

// a type alias (not an interface) so it satisfies `Record<string, ManagedDb>`
export type TestDbs = {
  accounts: ManagedDb<AnyBatch, MerkleizedAnyBatch, Target>
  receipts: ManagedDb<KeylessBatch, MerkleizedKeylessBatch, Target>
}

export interface Write { key: string, value: string }

export interface TestBlock extends Block {
  readonly writes: readonly Write[]
  readonly targets: SyncTargetsOf<TestDbs>
}

export function h (s: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(s).digest())
}

export const COUNTER = h('counter')
export const ZERO_DIGEST = new Uint8Array(32)

function counterValue (n: number): Uint8Array {
  const v = new Uint8Array(32)
  new DataView(v.buffer).setBigUint64(0, BigInt(n))
  return v
}

export function decodeCounter (v: Uint8Array | undefined): number {
  return v === undefined ? 0 : Number(new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0))
}

/** The state transition of a block. */
export async function execute (batches: UnmerkleizedOf<TestDbs>, height: number, writes: readonly Write[]): Promise<MerkleizedOf<TestDbs>> {
  const count = decodeCounter(await batches.accounts.get(COUNTER))
  batches.accounts.update(COUNTER, counterValue(count + 1))
  for (const w of writes) { batches.accounts.update(h(w.key), h(w.value)) }
  batches.receipts.append(h(`receipt:${height}`))
  return { accounts: await batches.accounts.merkleize(), receipts: await batches.receipts.merkleize() }
}

/** The sync target a batch's state has (`current` batches round their floor down to a chunk: `syncBoundary`). */
export function targetOf (m: { opsRoot: Uint8Array, floor: number, size: number, syncBoundary?: number }): Target {
  return { root: m.opsRoot, range: { start: m.syncBoundary ?? m.floor, end: m.size } }
}

export function targetsOf (m: MerkleizedOf<TestDbs>): SyncTargetsOf<TestDbs> {
  return { accounts: targetOf(m.accounts), receipts: targetOf(m.receipts) }
}

export function makeBlock (height: number, ctx: Context, writes: readonly Write[], targets: SyncTargetsOf<TestDbs>): TestBlock {
  const w = new Writer(256).varint(height).raw(ctx.parent.digest).varint(ctx.round.epoch).varint(ctx.round.view)
    .bytes(new TextEncoder().encode(ctx.leader)).varint(ctx.parent.view).varint(writes.length)
  for (const x of writes) { w.bytes(new TextEncoder().encode(x.key)).bytes(new TextEncoder().encode(x.value)) }
  encodeTarget(targets.accounts, w)
  encodeTarget(targets.receipts, w)
  const digest = new Uint8Array(createHash('sha256').update(w.finish()).digest())
  return { digest, height, parent: ctx.parent.digest, context: ctx, writes, targets }
}

export function contextFor (parent: TestBlock, view: number, leader = 'v0'): Context {
  return { round: { epoch: 0, view }, leader, parent: { view: parent.context.round.view, digest: parent.digest } }
}

/** Opens the `accounts` database (an `any`, by default unordered). */
export type AccountsOpener = () => Promise<AnyDb>

export async function openMemoryDbs (openAccounts: AccountsOpener = async () => AnyDb.open()): Promise<DatabaseSet<TestDbs>> {
  return new DatabaseSet<TestDbs>({ accounts: await openAccounts(), receipts: await KeylessDb.open() })
}

/** Builds valid blocks (with correct targets) on a private in-memory database set. */
export class ChainBuilder {
  readonly set: DatabaseSet<TestDbs>
  readonly genesis: TestBlock
  private readonly states = new Map<string, MerkleizedOf<TestDbs>>()

  private constructor (set: DatabaseSet<TestDbs>) {
    this.set = set
    const ctx: Context = { round: { epoch: 0, view: 0 }, leader: 'genesis', parent: { view: 0, digest: ZERO_DIGEST } }
    this.genesis = makeBlock(0, ctx, [], set.initialSyncTargets())
  }

  static async create (openAccounts?: AccountsOpener): Promise<ChainBuilder> {
    return new ChainBuilder(await openMemoryDbs(openAccounts))
  }

  /** A child of `parent` at `view` (default parent view + 1) with `writes` (default one write tagged by view). */
  async child (parent: TestBlock, opts: { view?: number, writes?: Write[], leader?: string } = {}): Promise<TestBlock> {
    const view = opts.view ?? parent.context.round.view + 1
    const writes = opts.writes ?? [{ key: `k${parent.height + 1}`, value: `v${view}` }]
    const base = this.states.get(digestKey(parent.digest))
    const batches = base === undefined ? this.set.newBatches() : this.set.forkBatches(base)
    const m = await execute(batches, parent.height + 1, writes)
    const block = makeBlock(parent.height + 1, contextFor(parent, view, opts.leader), writes, targetsOf(m))
    this.states.set(digestKey(block.digest), m)
    return block
  }

  /** `n` descendants of `parent`, views `firstView, firstView + step, ...`; writes tagged with `tag`. */
  async chain (parent: TestBlock, n: number, opts: { firstView?: number, step?: number, tag?: string } = {}): Promise<TestBlock[]> {
    const out: TestBlock[] = []
    const step = opts.step ?? 1
    let view = opts.firstView ?? parent.context.round.view + 1
    let p = parent
    for (let i = 0; i < n; i++) {
      const writes = opts.tag === undefined ? undefined : [{ key: `k${p.height + 1}`, value: `${opts.tag}${p.height + 1}` }]
      p = await this.child(p, { view, writes })
      out.push(p)
      view += step
    }
    return out
  }

  /** The state after `block` (as computed here). */
  stateOf (block: TestBlock): MerkleizedOf<TestDbs> | undefined {
    return this.states.get(digestKey(block.digest))
  }
}

export type Hook = (block: TestBlock, signal?: AbortSignal) => Promise<void>

/** The test application: `Application` + call counters + knobs. */
export class TestApp implements Application<TestBlock, TestDbs> {
  readonly genesisBlock: TestBlock
  calls = { propose: 0, verify: 0, apply: 0 }
  readonly verified: string[] = []
  readonly applied: string[] = []
  readonly finalizedHeights: number[] = []
  /** Counter value the `finalized` hook read from the databases, per height. */
  readonly finalizedCounters = new Map<number, number>()
  /** Writes of the next proposals (default: one write tagged by view). */
  proposeWrites: (ctx: Context, parent: TestBlock) => Write[] = (ctx, parent) => [{ key: `k${parent.height + 1}`, value: `p${ctx.round.view}` }]
  verifyHook?: Hook
  applyHook?: Hook
  proposeHook?: Hook
  finalizedHook?: Hook
  /** Sees the batches a proposal got, before it executes. */
  observePropose?: (batches: UnmerkleizedOf<TestDbs>) => Promise<void>
  /** Blocks `verify` answers invalid (hex digests). */
  readonly rejectVerify = new Set<string>()
  /** Blocks `apply` re-executes wrongly (hex digests): the result mismatches the block. */
  readonly corruptApply = new Set<string>()
  /** Proposals return state that does not match their block. */
  corruptPropose = false
  /** Proposals return a block that does not extend the requested parent. */
  inconsistentPropose = false

  constructor (genesis: TestBlock) {
    this.genesisBlock = genesis
  }

  syncTargets (block: TestBlock): SyncTargetsOf<TestDbs> {
    return block.targets
  }

  async genesis (): Promise<TestBlock> {
    return this.genesisBlock
  }

  async propose (ctx: Context, ancestry: AsyncIterable<TestBlock>, batches: UnmerkleizedOf<TestDbs>, options: { signal: AbortSignal }): Promise<Proposed<TestBlock, TestDbs> | undefined> {
    this.calls.propose++
    const parent = await first(ancestry)
    if (parent === undefined) { return undefined }
    await this.proposeHook?.(parent, options.signal)
    await this.observePropose?.(batches)
    const writes = this.proposeWrites(ctx, parent)
    const merkleized = await execute(batches, parent.height + 1, writes)
    let targets = targetsOf(merkleized)
    if (this.corruptPropose) { targets = { ...targets, receipts: { ...targets.receipts, range: { start: 0, end: targets.receipts.range.end + 1 } } } }
    const height = this.inconsistentPropose ? parent.height + 2 : parent.height + 1
    return { block: makeBlock(height, ctx, writes, targets), merkleized }
  }

  async verify (ctx: Context, ancestry: AsyncIterable<TestBlock>, batches: UnmerkleizedOf<TestDbs>, options: { signal: AbortSignal }): Promise<MerkleizedOf<TestDbs> | undefined> {
    this.calls.verify++
    const candidate = await first(ancestry)
    if (candidate === undefined) { return undefined }
    this.verified.push(digestKey(candidate.digest))
    await this.verifyHook?.(candidate, options.signal)
    if (this.rejectVerify.has(digestKey(candidate.digest))) { return undefined }
    return execute(batches, candidate.height, candidate.writes)
  }

  async apply (ctx: Context, block: TestBlock, batches: UnmerkleizedOf<TestDbs>, options?: { signal?: AbortSignal }): Promise<MerkleizedOf<TestDbs>> {
    this.calls.apply++
    this.applied.push(digestKey(block.digest))
    await this.applyHook?.(block, options?.signal)
    const writes = this.corruptApply.has(digestKey(block.digest)) ? [...block.writes, { key: 'corrupt', value: 'x' }] : block.writes
    return execute(batches, block.height, writes)
  }

  async finalized (ctx: Context, block: TestBlock, readers: ReadersOf<TestDbs>): Promise<void> {
    this.finalizedHeights.push(block.height)
    const accounts = readers.accounts as unknown as { get(key: Uint8Array): Promise<Uint8Array | undefined> }
    this.finalizedCounters.set(block.height, decodeCounter(await accounts.get(COUNTER)))
    await this.finalizedHook?.(block)
  }
}

async function first<T> (it: AsyncIterable<T>): Promise<T | undefined> {
  const r = await it[Symbol.asyncIterator]().next()
  return r.done === true ? undefined : r.value
}
