/**
 * A tiny chain for light-client tests without a network: four Ed25519
 * validators that sign finalizations here, a block that commits the roots
 * of two `current` databases (`plain`, unordered; `ordered`), and the
 * application seam that reads them back. Answers are built the way a node
 * builds them (`proveKey` + block + finalization), so a test can tamper
 * with any one field.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CodecError, Reader, Writer } from '../../src/codec/index.ts'
import { encodeCertificate, signedMessage } from '../../src/consensus/types.ts'
import { proveKey } from '../../src/light/prove.ts'
import { sha256 } from '../../src/merkle/index.ts'
import { AnyOpCodec, CurrentDb, OrderedCurrentDb, fixedField } from '../../src/qmdb/index.ts'
import type { Finalization } from '../../src/consensus/types.ts'
import type { LightAnswer } from '../../src/light/protocol.ts'
import type { LightApplication, LightDatabase } from '../../src/light/verify.ts'
import type { PrivateKey } from '@libp2p/interface'

export const CHAIN = 'light-test'

export interface TinyBlock {
  digest: Uint8Array
  height: number
  plainRoot: Uint8Array
  orderedRoot: Uint8Array
  bytes: Uint8Array
}

export function tinyBlock (height: number, plainRoot: Uint8Array, orderedRoot: Uint8Array): TinyBlock {
  const bytes = new Writer(80).varint(height).raw(plainRoot).raw(orderedRoot).finish()
  return { digest: sha256(bytes), height, plainRoot, orderedRoot, bytes }
}

function decodeTiny (bytes: Uint8Array): TinyBlock {
  if (bytes.length > 128) { throw new CodecError('InvalidLength', 'block too long') }
  const r = new Reader(bytes)
  const height = r.varint()
  const plainRoot = r.raw(32)
  const orderedRoot = r.raw(32)
  r.finish()
  return { digest: sha256(bytes), height, plainRoot, orderedRoot, bytes }
}

export const plainSpec: LightDatabase = { kind: 'current', codec: new AnyOpCodec(fixedField(32), fixedField(32), 'fixed'), chunkBytes: 32 }
export const orderedSpec: LightDatabase = { kind: 'current-ordered', codec: new AnyOpCodec(fixedField(32), fixedField(32), 'fixed', true), chunkBytes: 32 }

export const tinyApplication: LightApplication<TinyBlock> = {
  blockCodec: { decode: decodeTiny, maxBytes: 128 },
  databases: { plain: { light: plainSpec }, ordered: { light: orderedSpec }, log: {} },
  lightRoot: (b, db) => ({ plain: b.plainRoot, ordered: b.orderedRoot } as Record<string, Uint8Array | undefined>)[db]
}

export function key (i: number): Uint8Array {
  return sha256(new TextEncoder().encode(`key:${i}`))
}

export function value (i: number, round: number): Uint8Array {
  return sha256(new TextEncoder().encode(`value:${i}:${round}`))
}

export interface TinyChain {
  ids: string[]
  keys: PrivateKey[]
  plain: CurrentDb
  ordered: OrderedCurrentDb
  /** Commit `rounds` of writes (keys 0..19 written, key 3 deleted, even keys only in `ordered`) and return the block. */
  advance(round: number): Promise<TinyBlock>
  /** A finalization of `block` signed by validators `signers` (a quorum of 4 is 3). */
  finalize(block: TinyBlock, signers?: number[]): Promise<Uint8Array>
  /** The answer an honest node gives for `k` on `db` at the current state. */
  answer(db: 'plain' | 'ordered', k: Uint8Array, block: TinyBlock): Promise<LightAnswer>
}

export async function tinyChain (): Promise<TinyChain> {
  const keys = await Promise.all(Array.from({ length: 4 }, async () => generateKeyPair('Ed25519')))
  const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
  const plain = await CurrentDb.open()
  const ordered = await OrderedCurrentDb.open()
  const chain: TinyChain = {
    ids,
    keys,
    plain,
    ordered,
    advance: async (round) => {
      const p = plain.newBatch()
      const o = ordered.newBatch()
      for (let i = 0; i < 20; i++) {
        p.update(key(i), value(i, round))
        if (i % 2 === 0) { o.update(key(i), value(i, round)) }
      }
      p.delete(key(3))
      await plain.apply(await p.merkleize())
      await ordered.apply(await o.merkleize())
      return tinyBlock(round, plain.root, ordered.root)
    },
    finalize: async (block, signers = [0, 1, 2]) => {
      const subject = { kind: 'finalize' as const, proposal: { view: block.height, parent: Math.max(0, block.height - 1), payload: block.digest } }
      const message = signedMessage(CHAIN, subject)
      const f: Finalization = { subject, signers, signatures: await Promise.all(signers.map(async s => keys[s].sign(message))) }
      return encodeCertificate(f)
    },
    answer: async (db, k, block) => {
      const proven = await proveKey(db === 'plain' ? plain.reader() : ordered.reader(), db === 'plain' ? plainSpec : orderedSpec, k)
      if (proven.type === 'no-value') { return { type: 'no-value', height: block.height } }
      return { type: 'answer', block: block.bytes, finalization: await chain.finalize(block), root: proven.root, result: proven.result, value: proven.value, proof: proven.proof }
    }
  }
  return chain
}
