/**
 * An example application on two QMDB databases: a token ledger.
 *
 * - `accounts` (`current`): account id (32 bytes) → `u64be(balance) ‖ u64be(nonce) ‖ 16 zero bytes`;
 * an account never written holds `initialBalance` with nonce 0. Blocks commit
 * to its sync target and to its canonical root, so a light client can verify
 * an account's balance now (`src/light`).
 * - `receipts` (compact `keyless`): one `SHA256(transferId ‖ status)` per
 * transfer; only the tip is kept (the floor is each commit's own location).
 *
 * A transfer succeeds iff its nonce is the sender's next nonce, the sender
 * holds the amount, sender and receiver differ and the receiver does not
 * overflow; otherwise it still produces a receipt, with a failure status.
 * Execution is deterministic, so `propose`, `verify` and `apply` agree.
 *
 * Proposals take transfers from the mempool and, for demos and benchmarks,
 * can top blocks up with generated valid transfers between `accountSpace`
 * accounts (nonces read from the parent state, so they are always valid).
 */

import { hex } from '../../codec/index.ts'
import { sha256 } from '../../merkle/index.ts'
import { CurrentDb } from '../../qmdb/current.ts'
import { DatabaseSet } from '../../qmdb/managed.ts'
import { bytesEqual } from '../../stateful/types.ts'
import { makeBlock, transferId } from './block.ts'
import type { LedgerBlock, LedgerTargets, Transfer } from './block.ts'
import type { Mempool } from './mempool.ts'
import type { AnyBatch, MerkleizedAnyBatch } from '../../qmdb/any.ts'
import type { CompactKeylessBatch, MerkleizedCompactBatch } from '../../qmdb/compact.ts'
import type { CompactTarget, KeylessOp, MerkleizedOf, Target, UnmerkleizedOf } from '../../qmdb/index.ts'
import type { ManagedDb } from '../../qmdb/managed.ts'
import type { Application, Context, Proposed, ReadersOf } from '../../stateful/types.ts'

// a type alias (not an interface): it must satisfy `Record<string, ManagedDb>`
export type LedgerDbs = {
  accounts: ManagedDb<AnyBatch, MerkleizedAnyBatch, Target>
  receipts: ManagedDb<CompactKeylessBatch, MerkleizedCompactBatch<KeylessOp, CompactKeylessBatch>, CompactTarget>
}

export const STATUS_OK = 0
export const STATUS_BAD_NONCE = 1
export const STATUS_SELF = 2
export const STATUS_INSUFFICIENT = 3
export const STATUS_OVERFLOW = 4

const U64_MAX = 2n ** 64n - 1n

export interface Account {
  balance: bigint
  nonce: bigint
}

export function encodeAccount (a: Account): Uint8Array {
  const v = new Uint8Array(32)
  const view = new DataView(v.buffer)
  view.setBigUint64(0, a.balance)
  view.setBigUint64(8, a.nonce)
  return v
}

export function decodeAccount (v: Uint8Array | undefined, initialBalance: bigint): Account {
  if (v === undefined) { return { balance: initialBalance, nonce: 0n } }
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength)
  return { balance: view.getBigUint64(0), nonce: view.getBigUint64(8) }
}

/** The id of demo account number `i`. */
export function accountId (i: number): Uint8Array {
  return sha256(new TextEncoder().encode(`account:${i}`))
}

export interface LedgerOptions {
  /** Balance of an account never written (default 1,000,000). */
  initialBalance?: bigint
  mempool?: Mempool
  /** Transfers per block taken from the mempool (default 1000). */
  maxTransfers?: number
  /** Generated transfers added to each proposal (default 0). */
  autoTransfers?: number
  /** Accounts the generated transfers move tokens between (default 1000). */
  accountSpace?: number
}

async function first<T> (it: AsyncIterable<T>): Promise<T | undefined> {
  const r = await it[Symbol.asyncIterator]().next()
  return r.done === true ? undefined : r.value
}

export class LedgerApp implements Application<LedgerBlock, LedgerDbs> {
  readonly initialBalance: bigint
  readonly maxTransfers: number
  readonly autoTransfers: number
  readonly accountSpace: number
  readonly mempool?: Mempool
  private readonly initial: LedgerTargets
  private genesisBlock: LedgerBlock | undefined

  constructor (initialTargets: LedgerTargets, options: LedgerOptions = {}) {
    this.initial = initialTargets
    this.initialBalance = options.initialBalance ?? 1_000_000n
    this.maxTransfers = options.maxTransfers ?? 1000
    this.autoTransfers = options.autoTransfers ?? 0
    this.accountSpace = Math.max(2, options.accountSpace ?? 1000)
    this.mempool = options.mempool
  }

  /** The application for databases opened as `set` (the genesis block commits to their initial targets). */
  static forDatabases (set: DatabaseSet<LedgerDbs>, options: LedgerOptions = {}): LedgerApp {
    return new LedgerApp(set.initialSyncTargets(), options)
  }

  syncTargets (block: LedgerBlock): LedgerTargets {
    return block.targets
  }

  async genesis (): Promise<LedgerBlock> {
    if (this.genesisBlock === undefined) {
      // the canonical root of the empty accounts database (the initial targets carry only its ops root)
      const empty = await CurrentDb.open()
      const ctx: Context = { round: { epoch: 0, view: 0 }, leader: 'genesis', parent: { view: 0, digest: new Uint8Array(32) } }
      this.genesisBlock = makeBlock(0, ctx, [], this.initial, empty.root)
      await empty.close()
    }
    return this.genesisBlock
  }

  /** Execute `transfers` on `batches`; returns the merkleized state and the block targets. */
  async execute (batches: UnmerkleizedOf<LedgerDbs>, transfers: readonly Transfer[]): Promise<{ merkleized: MerkleizedOf<LedgerDbs>, targets: LedgerTargets, accountsRoot: Uint8Array }> {
    const { accounts, receipts } = batches
    for (const t of transfers) {
      const status = await this.transfer(accounts, t)
      receipts.append(sha256(transferId(t), new Uint8Array([status])))
    }
    const a = await accounts.merkleize()
    // receipts are only needed at the tip: the floor is the commit's own location
    const commitLoc = (receipts.parent?.size ?? receipts.db.size) + transfers.length
    receipts.withInactivityFloor(commitLoc)
    const r = await receipts.merkleize()
    return {
      merkleized: { accounts: a, receipts: r },
      targets: {
        // a `current` database syncs from its floor rounded down to a bitmap chunk
        accounts: { root: a.opsRoot, range: { start: a.floor - (a.floor % (a.graft?.chunkBits ?? 1)), end: a.size } },
        receipts: { root: r.root, size: r.size }
      },
      accountsRoot: a.root
    }
  }

  private async transfer (accounts: AnyBatch, t: Transfer): Promise<number> {
    if (hex(t.from) === hex(t.to)) { return STATUS_SELF }
    const from = decodeAccount(await accounts.get(t.from), this.initialBalance)
    if (t.nonce !== from.nonce) { return STATUS_BAD_NONCE }
    if (t.amount > from.balance) { return STATUS_INSUFFICIENT }
    const to = decodeAccount(await accounts.get(t.to), this.initialBalance)
    if (to.balance + t.amount > U64_MAX) { return STATUS_OVERFLOW }
    accounts.update(t.from, encodeAccount({ balance: from.balance - t.amount, nonce: from.nonce + 1n }))
    accounts.update(t.to, encodeAccount({ balance: to.balance + t.amount, nonce: to.nonce }))
    return STATUS_OK
  }

  /** Valid generated transfers for a proposal at `view` (nonces read from the parent state). */
  private async generate (accounts: AnyBatch, view: number, count: number): Promise<Transfer[]> {
    const out: Transfer[] = []
    const nonces = new Map<number, bigint>()
    for (let i = 0; i < count; i++) {
      const s = (view * 7919 + i * 104729) % this.accountSpace
      const r = (s + 1 + ((view + i) % (this.accountSpace - 1))) % this.accountSpace
      let nonce = nonces.get(s)
      if (nonce === undefined) { nonce = decodeAccount(await accounts.get(accountId(s)), this.initialBalance).nonce }
      nonces.set(s, nonce + 1n)
      out.push({ from: accountId(s), to: accountId(r), amount: BigInt(1 + ((view + i) % 100)), nonce })
    }
    return out
  }

  async propose (ctx: Context, ancestry: AsyncIterable<LedgerBlock>, batches: UnmerkleizedOf<LedgerDbs>): Promise<Proposed<LedgerBlock, LedgerDbs> | undefined> {
    const parent = await first(ancestry)
    if (parent === undefined) { return undefined }
    const transfers = this.mempool?.take(this.maxTransfers) ?? []
    if (this.autoTransfers > 0) { transfers.push(...await this.generate(batches.accounts, ctx.round.view, this.autoTransfers)) }
    const { merkleized, targets, accountsRoot } = await this.execute(batches, transfers)
    return { block: makeBlock(parent.height + 1, ctx, transfers, targets, accountsRoot), merkleized }
  }

  async verify (_ctx: Context, ancestry: AsyncIterable<LedgerBlock>, batches: UnmerkleizedOf<LedgerDbs>): Promise<MerkleizedOf<LedgerDbs> | undefined> {
    const block = await first(ancestry)
    if (block === undefined) { return undefined }
    const { merkleized, accountsRoot } = await this.execute(batches, block.transfers)
    // the manager checks the sync targets; the canonical root is the ledger's own commitment
    return bytesEqual(accountsRoot, block.accountsRoot) ? merkleized : undefined
  }

  async apply (_ctx: Context, block: LedgerBlock, batches: UnmerkleizedOf<LedgerDbs>): Promise<MerkleizedOf<LedgerDbs>> {
    return (await this.execute(batches, block.transfers)).merkleized
  }

  async finalized (_ctx: Context, block: LedgerBlock, _readers: ReadersOf<LedgerDbs>): Promise<void> {
    this.mempool?.remove(block.transfers)
  }
}
