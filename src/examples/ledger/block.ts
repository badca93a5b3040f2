/**
 * Blocks and transfers of the example token ledger, and their canonical
 * encoding (the block digest is SHA-256 of the encoding, so a block fetched
 * by digest is self-authenticating).
 *
 * Block = height ‖ parent digest ‖ context (epoch, view, leader, parent view)
 * ‖ transfers ‖ accounts target ‖ receipts compact target ‖ accounts canonical root.
 * The accounts database is a `current` one: its target (ops root) is what
 * state sync verifies against, its canonical root (ops root plus activity
 * bitmap) what light clients verify a balance against.
 * Transfer = from(32) ‖ to(32) ‖ u64 amount ‖ u64 nonce.
 *
 * Every length is capped before allocation; decoding only throws `CodecError`.
 */

import { CodecError, Reader, Writer } from '../../codec/index.ts'
import { sha256 } from '../../merkle/index.ts'
import { decodeCompactTarget, decodeTarget, encodeCompactTarget, encodeTarget } from '../../qmdb/target.ts'
import type { CompactTarget, Target } from '../../qmdb/target.ts'
import type { Block, Context } from '../../stateful/types.ts'

export const MAX_TRANSFERS_PER_BLOCK = 10_000
export const MAX_LEADER_BYTES = 128
export const MAX_BLOCK_BYTES = 64 + MAX_LEADER_BYTES + MAX_TRANSFERS_PER_BLOCK * 80 + 160

export interface Transfer {
  from: Uint8Array
  to: Uint8Array
  amount: bigint
  nonce: bigint
}

export interface LedgerTargets {
  accounts: Target
  receipts: CompactTarget
}

export interface LedgerBlock extends Block {
  readonly transfers: readonly Transfer[]
  readonly targets: LedgerTargets
  /** The canonical root of the accounts database after this block (`current`: proves balances now). */
  readonly accountsRoot: Uint8Array
  /** The canonical encoding (what the digest hashes). */
  readonly bytes: Uint8Array
}

export function encodeTransfer (t: Transfer, w: Writer = new Writer(80)): Writer {
  return w.raw(t.from).raw(t.to).u64(t.amount).u64(t.nonce)
}

export function decodeTransfer (r: Reader): Transfer {
  return { from: r.raw(32), to: r.raw(32), amount: r.u64Big(), nonce: r.u64Big() }
}

/** Digest of a transfer (its receipt identity and mempool key). */
export function transferId (t: Transfer): Uint8Array {
  return sha256(encodeTransfer(t).finish())
}

function checkTransfer (t: Transfer): void {
  if (t.from.length !== 32 || t.to.length !== 32) { throw new RangeError('account ids are 32 bytes') }
  if (t.amount < 0n || t.amount >= 2n ** 64n || t.nonce < 0n || t.nonce >= 2n ** 64n) { throw new RangeError('amount and nonce are u64') }
}

/** Build a block (computing its encoding and digest). */
export function makeBlock (height: number, context: Context, transfers: readonly Transfer[], targets: LedgerTargets, accountsRoot: Uint8Array): LedgerBlock {
  if (accountsRoot.length !== 32) { throw new RangeError('a root is 32 bytes') }
  if (transfers.length > MAX_TRANSFERS_PER_BLOCK) { throw new RangeError(`at most ${MAX_TRANSFERS_PER_BLOCK} transfers per block`) }
  const leader = new TextEncoder().encode(context.leader)
  if (leader.length > MAX_LEADER_BYTES) { throw new RangeError('leader id too long') }
  const w = new Writer(256 + transfers.length * 80)
    .varint(height).raw(context.parent.digest).varint(context.round.epoch).varint(context.round.view).bytes(leader).varint(context.parent.view)
    .length32(transfers.length)
  for (const t of transfers) {
    checkTransfer(t)
    encodeTransfer(t, w)
  }
  encodeTarget(targets.accounts, w)
  encodeCompactTarget(targets.receipts, w)
  w.raw(accountsRoot)
  const bytes = w.finish()
  return { digest: sha256(bytes), height, parent: context.parent.digest, context, transfers, targets, accountsRoot, bytes }
}

/** Strict decode of an encoded block. */
export function decodeBlock (bytes: Uint8Array): LedgerBlock {
  if (bytes.length > MAX_BLOCK_BYTES) { throw new CodecError('InvalidLength', `block of ${bytes.length} bytes`) }
  const r = new Reader(bytes)
  const height = r.varint()
  const parentDigest = r.raw(32)
  const epoch = r.varint()
  const view = r.varint()
  const leaderBytes = r.bytes(MAX_LEADER_BYTES)
  const parentView = r.varint()
  const transfers = r.vec(MAX_TRANSFERS_PER_BLOCK, decodeTransfer)
  const accounts = decodeTarget(r)
  const receipts = decodeCompactTarget(r)
  const accountsRoot = r.raw(32)
  r.finish()
  let leader: string
  try {
    leader = new TextDecoder('utf-8', { fatal: true }).decode(leaderBytes)
  } catch {
    throw new CodecError('Invalid', 'leader id is not UTF-8')
  }
  const context: Context = { round: { epoch, view }, leader, parent: { view: parentView, digest: parentDigest } }
  return { digest: sha256(bytes), height, parent: parentDigest, context, transfers, targets: { accounts, receipts }, accountsRoot, bytes: bytes.slice() }
}

/** The marshal block codec of the ledger. */
export const ledgerBlockCodec = {
  maxBytes: MAX_BLOCK_BYTES,
  encode: (b: LedgerBlock): Uint8Array => b.bytes,
  decode: decodeBlock
}
