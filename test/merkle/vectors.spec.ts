/**
 * External vectors: commonware `storage/src/mmr` (computed by an independent model that
 * reproduced commonware's stored conformance hashes) and commonware's
 * `MmrRootStability` conformance hash.
 */
import { createHash } from 'node:crypto'
import { expect } from 'aegir/chai'
import { Mmr, computeRoot, emptyRoot, peaks, locToPos } from '../../src/merkle/index.ts'
import { hex, u64be, u64le } from '../util/bytes.ts'

function sha256 (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) { h.update(p) }
  return new Uint8Array(h.digest())
}

function build (n: number, element: (i: number) => Uint8Array): Mmr {
  const mmr = Mmr.inMemory()
  const elements: Uint8Array[] = []
  for (let i = 0; i < n; i++) { elements.push(element(i)) }
  mmr.append(elements)
  return mmr
}

describe('merkle: test vectors', () => {
  it('empty root', () => {
    expect(hex(emptyRoot())).to.equal('af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc')
    expect(hex(Mmr.inMemory().root())).to.equal('af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc')
  })

  it('11-leaf tree: leaf, nodes and roots', () => {
    const mmr = build(11, i => u64be(i))
    expect(mmr.size).to.equal(19)
    expect(hex(mmr.nodeSync(0) as Uint8Array)).to.equal('374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb')
    expect(hex(mmr.nodeSync(2) as Uint8Array)).to.equal('5d7e8e2cca269ec271671f55efdbaab04dc9ab4d7394b0fa2bb4e7703b8b1f2f')
    expect(hex(mmr.nodeSync(14) as Uint8Array)).to.equal('79b61b14cbfdefcc4f09068e53ecd13c5ba6f11748757891c5434d4de451f7a4')
    expect(hex(mmr.root(0, 'forward'))).to.equal('a9ed7665fb7efa70fa15abbb7a19b7c8f1992875b55c24179d6a6858752a9801')
    expect(hex(mmr.root(0, 'backward'))).to.equal('f76c1cd28e920c7be25fb36b2bf20c8c830fd6f007fbbedc3e9764221ffef6d1')
    expect(hex(mmr.root(1, 'backward'))).to.equal('c93c7018bc49191bef1b79d06bab828610a1822ceeae48858dbb6feda58f17ef')
    expect(hex(mmr.root(2, 'backward'))).to.equal('4e0ec5293a86407d75de2ba11b6934750988af2fe983b90ee7b500fddc1efa74')
  })

  // n: [F0, B0, B1, B2, B3] (8-byte prefixes), commonware `storage/src/mmr`
  const table: Record<number, string[]> = {
    1: ['e51d0594515d6c38', 'e51d0594515d6c38', 'c5a1d611fb9255fa'],
    2: ['84d6db028f31c76e', '84d6db028f31c76e', 'a9df72392931d6a2'],
    3: ['2c8a85f39adfc696', '2c8a85f39adfc696', '043eb942c56fc1e9', 'aa19ab70b1f5e564'],
    4: ['1338c56890e922e6', '1338c56890e922e6', 'b32a7672edba512a'],
    5: ['7ad138de723602e6', '7ad138de723602e6', '00b6a5cfe8bda758', '96e6ed7a32895b46'],
    6: ['a0da8fcd684a58a2', 'a0da8fcd684a58a2', '278e85edc1b8edee', 'dcff62ca33089f5e'],
    7: ['eafd4f80b497adfa', 'ddd96482fc4ea095', '90e262bc49195b46', '8e9d3990a0663f2e', '3cb8e630a77df241'],
    8: ['31f048b02ee792bf', '31f048b02ee792bf', 'ff5e362891ce448f'],
    9: ['0aeec2015cf2e052', '0aeec2015cf2e052', '9897efcf0715cb4a', 'fda88bda26217bf1'],
    10: ['1b4e1a1d402b2e63', '1b4e1a1d402b2e63', 'f033b8bb58fc5331', '88962c9013a6ede9'],
    11: ['a9ed7665fb7efa70', 'f76c1cd28e920c7b', 'c93c7018bc49191b', '4e0ec5293a86407d', 'a664b278cb61d6fb']
  }
  for (const [n, prefixes] of Object.entries(table)) {
    it(`${n} leaves: forward k=0 and backward k=0..${prefixes.length - 2}`, () => {
      const mmr = build(Number(n), i => u64be(i))
      expect(mmr.size).to.equal(locToPos(Number(n)))
      expect(hex(mmr.root(0, 'forward')).slice(0, 16)).to.equal(prefixes[0])
      for (let k = 0; k < prefixes.length - 1; k++) {
        expect(hex(mmr.root(k, 'backward')).slice(0, 16)).to.equal(prefixes[k + 1], `k=${k}`)
      }
    })
  }

  it('rejects more inactive peaks than peaks', () => {
    const mmr = build(11, i => u64be(i))
    expect(() => mmr.root(4)).to.throw(/InvalidInactivePeaks/)
    expect(() => computeRoot(0, 1, [])).to.throw(/InvalidInactivePeaks/)
  })

  it('reproduces commonware conformance MmrRootStability (4078ce1f…1047)', () => {
    // for seed in 0..200: MMR of `seed` leaves, element i = SHA256(u64be(i)), forward fold, k = 0;
    // hash = SHA256(concat over seeds of u64_le(len(root)) || root)
    const h = createHash('sha256')
    const mmr = Mmr.inMemory()
    for (let seed = 0; seed < 200; seed++) {
      // grow incrementally: the tree with `seed` leaves
      if (seed > 0) { mmr.append([sha256(u64be(seed - 1))]) }
      expect(peaks(mmr.size).length).to.be.greaterThanOrEqual(seed === 0 ? 0 : 1)
      const root = mmr.root(0, 'forward')
      h.update(u64le(root.length)).update(root)
    }
    expect(h.digest('hex')).to.equal('4078ce1f5e242f8edb1d41575d51e166af620404036124f8094fc74d4b401047')
  })
})
