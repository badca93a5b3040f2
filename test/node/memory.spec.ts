/**
 * Flat memory (issue 18 finding 7), the short version of `npm run soak`: a
 * 4-validator network of CLI processes under a steady transfer load; once
 * the caches have filled (warm-up: 150 s, past gossipsub's two-minute
 * memory of seen messages and the block and QMDB caches filling), what a
 * node holds in its V8 heap must not keep growing with the chain.
 *
 * "What it holds" is the heap right after a full collection, which the
 * harness asks each process for (interop/util/live-heap.ts). A status line's
 * `heapUsed` also counts garbage not yet collected — a sawtooth tens of MB
 * tall under load — and judging growth on it failed or passed with the
 * collector's timing. The growth is the least-squares slope of the live
 * heap over the applied height through the samples after warm-up. The bound
 * per block is generous: what grew before (caches bounded by count, filling
 * for thousands of blocks) was 40–50 KiB per block; flat measures ~1–6.
 */
import { expect } from 'aegir/chai'
import { leftovers } from '../../interop/util/network.ts'
import { slope, soak } from '../../interop/util/soak.ts'
import type { SoakSample } from '../../interop/util/soak.ts'

const KiB = 1024

describe('node: memory stays flat after warm-up (4 validator processes)', function () {
  this.timeout(360_000)

  after(async () => {
    expect(await leftovers()).to.deep.equal([])
  })

  it('live heap growth per block after warm-up stays under 16 KiB on every node', async () => {
    const { samples } = await soak({ durationMs: 240_000, sampleMs: 5000 })
    const byNode = new Map<string, SoakSample[]>()
    for (const s of samples.flat()) { byNode.set(s.node, [...(byNode.get(s.node) ?? []), s]) }
    expect(byNode.size).to.equal(4)
    for (const [node, list] of byNode) {
      const after = list.filter(s => s.t >= 150)
      expect(after.every(s => s.heapLive > 0), `${node}: every sample has a live heap`).to.equal(true)
      const blocks = after[after.length - 1].height - after[0].height
      expect(blocks, `${node}: blocks after warm-up`).to.be.at.least(100)
      const perBlock = slope(after.map(s => s.height), after.map(s => s.heapLive))
      expect(perBlock, `${node}: live heap per block over ${blocks} blocks`).to.be.below(16 * KiB)
    }
  })
})
