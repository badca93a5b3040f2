/**
 * Flat memory (issue 18 finding 7), the short version of `npm run soak`: a
 * 4-validator network of CLI processes under a steady transfer load; once
 * the caches have filled (warm-up), a node's V8 heap must not keep growing
 * with the chain. The heap is judged by its lowest sample in a window (the
 * closest a status line gets to a post-GC figure), and the bound per block
 * is generous: what grew before (caches bounded by count, filling for
 * thousands of blocks) was tens of KiB per block.
 */
import { expect } from 'aegir/chai'
import { leftovers } from '../interop/util/network.ts'
import { soak } from '../interop/util/soak.ts'
import type { SoakSample } from '../interop/util/soak.ts'

const KiB = 1024

describe('node: memory stays flat after warm-up (4 validator processes)', function () {
  this.timeout(300_000)

  after(async () => {
    expect(await leftovers()).to.deep.equal([])
  })

  it('heap growth per block after warm-up stays under 8 KiB on every node', async () => {
    const { samples } = await soak({ durationMs: 180_000, sampleMs: 5000 })
    const byNode = new Map<string, SoakSample[]>()
    for (const s of samples.flat()) { byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]) }
    expect(byNode.size).to.equal(4)
    for (const [node, list] of byNode) {
      // warm-up: the first half; then the lowest heap of the first and of the last quarter of the run
      const early = list.slice(Math.floor(list.length / 2), Math.floor(list.length * 3 / 4))
      const late = list.slice(Math.floor(list.length * 3 / 4))
      const low = (l: SoakSample[]): SoakSample => l.reduce((a, b) => b.heapUsed < a.heapUsed ? b : a)
      const from = low(early)
      const to = low(late)
      const blocks = to.height - from.height
      expect(blocks, `${node}: blocks between the windows`).to.be.at.least(100)
      const perBlock = (to.heapUsed - from.heapUsed) / blocks
      expect(perBlock, `${node}: heap ${(from.heapUsed / 2 ** 20).toFixed(1)} → ${(to.heapUsed / 2 ** 20).toFixed(1)} MiB over ${blocks} blocks`).to.be.below(8 * KiB)
    }
  })
})
