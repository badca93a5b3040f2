/**
 * External vectors for the databases: an `any`/`current` scenario computed by an independent model of commonware's Rust
 * (op by op, root by root) and commonware's conformance hashes (
 * `storage/conformance.toml`). None of these values comes from this code.
 */
import { expect } from 'aegir/chai'
import {
  AnyDb, CurrentDb, ImmutableDb, KeylessDb, CompactImmutableDb, CompactKeylessDb, OrderedAnyDb, OrderedCurrentDb, fixedField, varField
} from '../../src/qmdb/index.ts'
import { hex, u64be } from '../util/bytes.ts'
import { colliding, conformanceHash, key, keyedWorkload, val } from '../util/workloads.ts'
import type { AnyOp, Encoding } from '../../src/qmdb/index.ts'

interface SetBatch { set(k: Uint8Array, v: Uint8Array): unknown }
interface AppendBatch { append(v: Uint8Array): unknown }

function immutableSteps (seed: number): Array<(b: SetBatch) => void> {
  const n = (seed % 30) + 5
  const prefix = seed % 256
  return [
    b => { for (let i = 0; i < n; i++) { b.set(key(i), val(i, 1)) } },
    b => { for (let i = n; i < 2 * n; i++) { b.set(key(i), val(i, 2)) } },
    b => { for (let i = 0; i < Math.floor(n / 2); i++) { b.set(colliding(prefix, 10000 + i), val(i, 3)) } }
  ]
}

function wrapping (x: bigint): Uint8Array {
  return u64be(BigInt.asUintN(64, x))
}

function keylessSteps (seed: number): Array<(b: AppendBatch) => void> {
  const n = (seed % 30) + 5
  const s = BigInt(seed)
  return [
    b => { for (let i = 0; i < n; i++) { b.append(wrapping(s + BigInt(i))) } },
    b => { for (let i = 0; i < n; i++) { b.append(wrapping(s + BigInt(n + i))) } },
    b => { for (let i = 0; i < Math.floor(n / 2); i++) { b.append(wrapping(BigInt.asUintN(64, ~s) + BigInt(i))) } }
  ]
}

interface Applies<B> { newBatch(): B, apply(m: never): Promise<unknown>, root: Uint8Array }

async function run<B extends { merkleize(): Promise<unknown> }> (db: Applies<B>, steps: Array<(b: B) => void>): Promise<Uint8Array> {
  for (const step of steps) {
    const b = db.newBatch()
    step(b)
    await db.apply(await b.merkleize() as never)
  }
  return db.root
}

describe('qmdb: conformance', function () {
  this.timeout(120_000)

  describe('independent any/current scenario', () => {
    it('reproduces every operation, ops root and canonical root', async () => {
      const db = await CurrentDb.open()
      const any = await AnyDb.open()
      expect(hex(db.opsRoot)).to.equal('ea6e0567a525372add5e4ef4d0600c18ed47fa5dd041a0ab0d25b60ea8c35978')
      expect(hex(await db.readOpBytes(0))).to.equal('d3' + '00'.repeat(64))
      const expected = [
        { ops: '96ecf9f56bed09a64cd8d8f0c1990140b72c342b520247ca2d915b2a0a539ef2', canonical: 'c5802401112ace828e38d34e40c48387a7bfe7fb1fa66fe8fe4081d64bb0d217', size: 8, floor: 2, chunk0: 'fc' },
        { ops: 'f2e8195a40c4e2f04968cc2cb5dce729050b76ef2f419283942f34ea8e6d95f3', canonical: '175f8b561d6f39a5fd129ca18725b89dd3e557645af6e9ac1ca17ca923f14993', size: 14, floor: 7, chunk0: '003d' },
        { ops: 'bee076cc28b282932843cdf352ddbc12c23792d12fcc6b39daf527683f4376f0', canonical: '2849e046d5bae2f247ba73b0d2073d5239ed23c3b96b9d4cf4ff8191790c41d2', size: 16, floor: 9 },
        { ops: 'c65c549dc75a21a14a6854e400ca2714e1da2e5c4db38e11ce2dbf6e286d27b2', size: 21, floor: 20 }
      ]
      const steps: Array<(b: { update(k: Uint8Array, v: Uint8Array): unknown, delete(k: Uint8Array): unknown, withMetadata(m: Uint8Array): unknown }) => void> = [
        b => { for (let i = 0; i < 5; i++) { b.update(key(i), val(i, 1)) } },
        b => { b.update(key(1), val(1, 2)); b.delete(key(3)) },
        b => { b.withMetadata(val(99, 0)) },
        b => { for (let i = 0; i < 5; i++) { b.delete(key(i)) } }
      ]
      for (let i = 0; i < steps.length; i++) {
        for (const d of [db, any]) {
          const b = d.newBatch()
          steps[i](b)
          await d.apply(await b.merkleize())
        }
        const e = expected[i]
        expect(hex(db.opsRoot)).to.equal(e.ops, `ops root after batch ${i + 1}`)
        expect(hex(any.root)).to.equal(e.ops, `any root after batch ${i + 1}`)
        expect(db.size).to.equal(e.size)
        expect(db.inactivityFloor).to.equal(e.floor)
        if (e.canonical !== undefined) { expect(hex(db.root)).to.equal(e.canonical, `canonical root after batch ${i + 1}`) }
        if (e.chunk0 !== undefined) { expect(hex(db.chunk(0))).to.equal(e.chunk0.padEnd(64, '0')) }
      }
      // the operations themselves (k4 < k0 < k2 < k1 < k3)
      const ops: AnyOp[] = []
      for (let l = 0; l < 21; l++) { ops.push(await any.readOp(l)) }
      const keyOf = (op: AnyOp): number => op.type === 'commit' ? -1 : [0, 1, 2, 3, 4].find(i => hex(key(i)) === hex(op.key)) as number
      const summary = ops.map(op => op.type === 'commit' ? `C${op.floor}` : `${op.type === 'update' ? 'U' : 'D'}${keyOf(op)}`)
      expect(summary).to.deep.equal([
        'C0', 'U4', 'U0', 'U2', 'U1', 'U3', 'U4', 'C2',
        'U1', 'D3', 'U0', 'U2', 'U4', 'C7',
        'U1', 'C9',
        'D0', 'D2', 'D4', 'D1', 'C20'
      ])
      expect(hex(await any.readOpBytes(1))).to.equal('d2' + '8005f02d43fa06e7d0585fb64c961d57e318b27a145c857bcd3a6bdb413ff7fc' + 'bdf4697cf8b1444886b25cd173eb41bd481478f9837003a371961a9676f9cf60')
      expect(hex(await any.readOpBytes(15))).to.equal('d301a4011c31d51692ac08454f1791987dcf44499cd67f5bbafef3a56727e5d4b9c9' + '0000000000000009' + '00'.repeat(23))
    })
  })

  const encodings: Encoding[] = ['fixed', 'variable']
  const anyHashes: Record<Encoding, string> = {
    fixed: '79c5de9509b38d619ea082cdee833f80eadfa0ef21211f69039ee2d37de07bad',
    variable: '22374a7cbdfa0bdac17e2e285422a54375fec27017942ef7abea2cf8da298c70'
  }
  const currentHashes: Record<Encoding, string> = {
    fixed: '8ce052fef8ce8e4d817a2961144cf3a28aec4bd6eb75d32b013499116a6981da',
    variable: '0d0591823b7d5ed8dcb940d086ec214062eb3cfffd018e9fbadf9e16ce8da0f7'
  }
  const orderedAnyHashes: Record<Encoding, string> = {
    fixed: '2c82870cf341bd0a55cdec3114d8dee0b8033a4cc552dd1d5ab421f092496b55',
    variable: 'e42304d395e9fa591637a5559c76086f86b9d2af9245ff45d31cacb2db1d65cf'
  }
  const orderedCurrentHashes: Record<Encoding, string> = {
    fixed: '0e5264ac6a0c0d56ace9ebc986635b128f9d7a118471875ad874b08e80f66ebb',
    variable: '66cd3cc0299ef062e23d4f9812d5d45896cd808ee0bc65d9745a4265895ae8b5'
  }
  const immutableHashes: Record<Encoding, string> = {
    fixed: 'e7917ffa234b8a156ac3d556ae4056bf307be259b1d6afe50256adc06e4ba133',
    variable: 'e4e85deaf4b968ee4074a3e7d82edc4fe244feec4361a6c17c085302febfb6d3'
  }
  const keylessHashes: Record<Encoding, string> = {
    fixed: '311e78baa8209313a49f2d788d96aa880ba4b3c1c5c88f3151b665f25160fad8',
    variable: 'd6b0f89534be60d85f5754c16574536d84899fce930dfc182ef973475d3078e4'
  }
  const keylessValue = (e: Encoding): ReturnType<typeof fixedField> => e === 'fixed' ? fixedField(8) : varField(1024)

  for (const encoding of encodings) {
    it(`AnyMmrUnordered ${encoding}`, async () => {
      expect(await conformanceHash(200, async seed => run(await AnyDb.open({ encoding }), keyedWorkload(seed)))).to.equal(anyHashes[encoding])
    })
    it(`CurrentMmrUnordered ${encoding} (N = 32)`, async () => {
      expect(await conformanceHash(200, async seed => run(await CurrentDb.open({ encoding }), keyedWorkload(seed)))).to.equal(currentHashes[encoding])
    })
    it(`AnyMmrOrdered ${encoding}`, async () => {
      expect(await conformanceHash(200, async seed => run(await OrderedAnyDb.open({ encoding }), keyedWorkload(seed)))).to.equal(orderedAnyHashes[encoding])
    })
    it(`CurrentMmrOrdered ${encoding} (N = 32)`, async () => {
      expect(await conformanceHash(200, async seed => run(await OrderedCurrentDb.open({ encoding }), keyedWorkload(seed)))).to.equal(orderedCurrentHashes[encoding])
    })
    it(`ImmutableMmr ${encoding}, full and compact`, async () => {
      expect(await conformanceHash(200, async seed => run(await ImmutableDb.open({ encoding }), immutableSteps(seed)))).to.equal(immutableHashes[encoding])
      expect(await conformanceHash(200, async seed => run(await CompactImmutableDb.open({ encoding }), immutableSteps(seed)))).to.equal(immutableHashes[encoding])
    })
    it(`KeylessMmr ${encoding}, full and compact`, async () => {
      const value = keylessValue(encoding)
      expect(await conformanceHash(200, async seed => run(await KeylessDb.open({ encoding, value }), keylessSteps(seed)))).to.equal(keylessHashes[encoding])
      expect(await conformanceHash(200, async seed => run(await CompactKeylessDb.open({ encoding, value }), keylessSteps(seed)))).to.equal(keylessHashes[encoding])
    })
  }
})
