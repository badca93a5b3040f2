/**
 * Flat memory (issue 18 finding 7), the short version of `npm run soak`: a
 * 4-validator network of CLI processes under a steady transfer load; once
 * the caches have filled (warm-up: 150 s, past gossipsub's two-minute
 * memory of seen messages and the block and QMDB caches filling), a node's
 * V8 heap must not keep growing with the chain. A status line's heap
 * includes garbage not yet collected (a sawtooth whose teeth are tens of MB
 * at ten blocks a second, so a least-squares fit over a few minutes swings
 * by ±40 KiB per block between runs); what is live is the floor of the
 * sawtooth. So the samples after warm-up are cut into three equal thirds,
 * the live heap of a third is its lowest sample, and the growth is the
 * rise of that floor from the first third to the last, per block. The
 * bound per block is generous: what grew before (caches bounded by count,
 * filling for thousands of blocks) was 40–50 KiB per block.
 */
import { expect } from 'aegir/chai'
import { leftovers } from '../../interop/util/network.ts'
import { soak } from '../../interop/util/soak.ts'
import type { SoakSample } from '../../interop/util/soak.ts'

const KiB = 1024

/** Rise of the heap's floor (lowest sample) from the first third of `samples` to the last, per block. */
function floorGrowthPerBlock (samples: SoakSample[]): number {
  const third = Math.floor(samples.length / 3)
  const first = samples.slice(0, third)
  const last = samples.slice(samples.length - third)
  const low = (list: SoakSample[]): SoakSample => list.reduce((a, b) => b.heapUsed < a.heapUsed ? b : a)
  const a = low(first)
  const b = low(last)
  const blocks = Math.max(1, b.height - a.height)
  return (b.heapUsed - a.heapUsed) / blocks
}

describe('node: memory stays flat after warm-up (4 validator processes)', function () {
  this.timeout(360_000)

  after(async () => {
    expect(await leftovers()).to.deep.equal([])
  })

  it('heap growth per block after warm-up stays under 16 KiB on every node', async () => {
    const { samples } = await soak({ durationMs: 240_000, sampleMs: 2000 })
    const byNode = new Map<string, SoakSample[]>()
    for (const s of samples.flat()) { byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]) }
    expect(byNode.size).to.equal(4)
    for (const [node, list] of byNode) {
      const after = list.filter(s => s.t >= 150)
      const blocks = after[after.length - 1].height - after[0].height
      expect(blocks, `${node}: blocks after warm-up`).to.be.at.least(100)
      const perBlock = floorGrowthPerBlock(after)
      expect(perBlock, `${node}: heap per block over ${blocks} blocks`).to.be.below(16 * KiB)
    }
  })
})
