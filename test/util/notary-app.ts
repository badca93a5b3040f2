/**
 * A second, minimal application for `createNode` (the ledger is the first):
 * a notary that, in every block, records one write-once note in an
 * `immutable` database and appends the block's height (as a 32-byte word) to
 * a `keyless` log.
 * Nothing in it comes from the ledger, so a node running it shows the node
 * is generic over the application: its block codec, its databases (other
 * kinds, other names, other storage prefix) and its logic.
 *
 * Block = varint height ‖ parent digest ‖ varint epoch ‖ varint view ‖
 * leader bytes ‖ varint parent view ‖ notes target ‖ log target.
 */
import { CodecError, Reader, Writer } from '../../src/codec/index.ts'
import { sha256 } from '../../src/merkle/index.ts'
import { immutableDatabase, keylessDatabase } from '../../src/node/index.ts'
import { decodeTarget, encodeTarget } from '../../src/qmdb/index.ts'
import type { NodeApplication } from '../../src/node/index.ts'
import type { ImmutableDb, KeylessDb, MerkleizedOf, SyncTargetsOf, Target, UnmerkleizedOf } from '../../src/qmdb/index.ts'
import type { Application, Block, Context, Proposed } from '../../src/stateful/index.ts'

export type NotaryDbs = { notes: ImmutableDb, log: KeylessDb }

export interface NotaryBlock extends Block {
  readonly targets: SyncTargetsOf<NotaryDbs>
  readonly bytes: Uint8Array
}

const MAX_BLOCK_BYTES = 1024

function makeBlock (height: number, context: Context, targets: SyncTargetsOf<NotaryDbs>): NotaryBlock {
  const w = new Writer(256)
    .varint(height).raw(context.parent.digest).varint(context.round.epoch).varint(context.round.view)
    .bytes(new TextEncoder().encode(context.leader)).varint(context.parent.view)
  encodeTarget(targets.notes, w)
  encodeTarget(targets.log, w)
  const bytes = w.finish()
  return { digest: sha256(bytes), height, parent: context.parent.digest, context, targets, bytes }
}

function decodeBlock (bytes: Uint8Array): NotaryBlock {
  if (bytes.length > MAX_BLOCK_BYTES) { throw new CodecError('InvalidLength', `block of ${bytes.length} bytes`) }
  const r = new Reader(bytes)
  const height = r.varint()
  const parent = r.raw(32)
  const epoch = r.varint()
  const view = r.varint()
  const leader = new TextDecoder().decode(r.bytes(128))
  const parentView = r.varint()
  const notes = decodeTarget(r)
  const log = decodeTarget(r)
  r.finish()
  const context: Context = { round: { epoch, view }, leader, parent: { view: parentView, digest: parent } }
  return { digest: sha256(bytes), height, parent, context, targets: { notes, log }, bytes: bytes.slice() }
}

function u64 (n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}

/** The log entry of block `height`: u64be(height) right-aligned in 32 bytes (the keyless default value size). */
function logEntry (height: number): Uint8Array {
  const b = new Uint8Array(32)
  b.set(u64(height), 24)
  return b
}

/** The note block `height` records: key H(height), value H(parent digest). */
export function noteOf (height: number, parent: Uint8Array): { key: Uint8Array, value: Uint8Array } {
  return { key: sha256(u64(height)), value: sha256(parent) }
}

async function first<T> (it: AsyncIterable<T>): Promise<T | undefined> {
  const r = await it[Symbol.asyncIterator]().next()
  return r.done === true ? undefined : r.value
}

class Notary implements Application<NotaryBlock, NotaryDbs> {
  private readonly genesisBlock: NotaryBlock

  constructor (initial: SyncTargetsOf<NotaryDbs>) {
    const ctx: Context = { round: { epoch: 0, view: 0 }, leader: 'genesis', parent: { view: 0, digest: new Uint8Array(32) } }
    this.genesisBlock = makeBlock(0, ctx, initial)
  }

  syncTargets (block: NotaryBlock): SyncTargetsOf<NotaryDbs> {
    return block.targets
  }

  async genesis (): Promise<NotaryBlock> {
    return this.genesisBlock
  }

  private async execute (height: number, parent: Uint8Array, batches: UnmerkleizedOf<NotaryDbs>): Promise<{ merkleized: MerkleizedOf<NotaryDbs>, targets: SyncTargetsOf<NotaryDbs> }> {
    const note = noteOf(height, parent)
    const notes = await batches.notes.set(note.key, note.value).merkleize()
    const log = await batches.log.append(logEntry(height)).merkleize()
    const target = (m: { opsRoot: Uint8Array, floor: number, size: number }): Target => ({ root: m.opsRoot, range: { start: m.floor, end: m.size } })
    return { merkleized: { notes, log }, targets: { notes: target(notes), log: target(log) } }
  }

  async propose (ctx: Context, ancestry: AsyncIterable<NotaryBlock>, batches: UnmerkleizedOf<NotaryDbs>): Promise<Proposed<NotaryBlock, NotaryDbs> | undefined> {
    const parent = await first(ancestry)
    if (parent === undefined) { return undefined }
    const { merkleized, targets } = await this.execute(parent.height + 1, parent.digest, batches)
    return { block: makeBlock(parent.height + 1, ctx, targets), merkleized }
  }

  async verify (_ctx: Context, ancestry: AsyncIterable<NotaryBlock>, batches: UnmerkleizedOf<NotaryDbs>): Promise<MerkleizedOf<NotaryDbs> | undefined> {
    const block = await first(ancestry)
    if (block === undefined) { return undefined }
    return (await this.execute(block.height, block.parent, batches)).merkleized
  }

  async apply (_ctx: Context, block: NotaryBlock, batches: UnmerkleizedOf<NotaryDbs>): Promise<MerkleizedOf<NotaryDbs>> {
    return (await this.execute(block.height, block.parent, batches)).merkleized
  }
}

/** The notary, ready for `createNode`. */
export function notaryApplication (): NodeApplication<NotaryBlock, NotaryDbs> {
  return {
    name: 'notary',
    blockCodec: { maxBytes: MAX_BLOCK_BYTES, encode: b => b.bytes, decode: decodeBlock },
    databases: { notes: immutableDatabase(), log: keylessDatabase() },
    create: initial => new Notary(initial)
  }
}
