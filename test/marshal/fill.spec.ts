/**
 * Marshal gap filling when a height has no finalization of its own (simplex
 * finalizes it only through a descendant's certificate): the block is in the
 * local store (it was gossiped or proposed), peers cannot serve the height by
 * range because they lack its finalization too, and delivery must still
 * continue in order (regression: the fill waited on the range fetch forever
 * and the whole network stalled after a restart).
 */

import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { BlockStore, Marshal } from '../../src/marshal/index.ts'
import { Kv } from '../../src/storage/kv.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import type { BlockFetcher } from '../../src/marshal/index.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'

/** A fetcher whose peers never have anything: every request waits until aborted. */
class EmptyPeers implements BlockFetcher {
  rangeRequests = 0
  digestRequests = 0
  async fetchBlock (_digest: Uint8Array, options: { signal: AbortSignal }): Promise<never> {
    this.digestRequests++
    return this.waitForAbort(options.signal)
  }

  async fetchFinalized (_from: number, _to: number, options: { signal: AbortSignal }): Promise<never> {
    this.rangeRequests++
    return this.waitForAbort(options.signal)
  }

  private async waitForAbort (signal: AbortSignal): Promise<never> {
    return new Promise((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })
  }
}

/** A started marshal over an in-memory store, delivering into `delivered` (acknowledged at once). */
async function startMarshal (validators: Validators, genesis: TestBlock, fetcher: BlockFetcher, rangeTimeoutMs: number): Promise<{ marshal: Marshal<TestBlock, TestFinalization>, delivered: number[] }> {
  const marshal = new Marshal<TestBlock, TestFinalization>({
    store: new BlockStore(new Kv(new MemoryDatastore()), '/m', blockCodec, validators.scheme),
    codec: blockCodec,
    scheme: validators.scheme,
    fetcher,
    rangeTimeoutMs
  })
  await marshal.start({ genesis })
  const delivered: number[] = []
  marshal.attach({ finalized: (b, ack) => { delivered.push(b.height); ack.acknowledge() } })
  return { marshal, delivered }
}

describe('marshal: filling heights that have no finalization of their own', function () {
  this.timeout(20_000)

  it('finalizes stored ancestors through parent links without waiting on peers', async () => {
    const validators = await Validators.create(4)
    const chain = buildChain(8)
    const fetcher = new EmptyPeers()
    // a range timeout long enough that a fill depending on the range fetch would time the test out
    const { marshal, delivered } = await startMarshal(validators, chain[0], fetcher, 60_000)

    // every block arrives by gossip; only heights 3 and 7 get a certificate
    for (const b of chain.slice(1)) { await marshal.receiveBlock(blockCodec.encode(b)) }
    await marshal.finalized(validators.finalize(3, chain[3].digest))
    await marshal.finalized(validators.finalize(7, chain[7].digest))

    const deadline = Date.now() + 5000
    while (delivered.length < 8 && Date.now() < deadline) { await new Promise(resolve => setTimeout(resolve, 20)) }
    expect(delivered).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7])
    expect(fetcher.rangeRequests).to.equal(0)
    expect(fetcher.digestRequests).to.equal(0)
    marshal.stop()
  })

  it('falls back to fetching by digest when the range request finds nothing in time', async () => {
    const validators = await Validators.create(4)
    const chain = buildChain(5)
    const missing = chain[3]
    let rangeRequests = 0
    const fetcher: BlockFetcher = {
      async fetchFinalized (_from, _to, options) {
        rangeRequests++
        return new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true }) })
      },
      // the block itself is available from a peer by digest
      async fetchBlock (digest) {
        if (Buffer.from(digest).equals(Buffer.from(missing.digest))) { return { bytes: blockCodec.encode(missing) } }
        throw new Error('unknown block')
      }
    }
    const { marshal, delivered } = await startMarshal(validators, chain[0], fetcher, 200)
    for (const b of [chain[1], chain[2], chain[4]]) { await marshal.receiveBlock(blockCodec.encode(b)) }
    await marshal.finalized(validators.finalize(4, chain[4].digest))

    const deadline = Date.now() + 5000
    while (delivered.length < 5 && Date.now() < deadline) { await new Promise(resolve => setTimeout(resolve, 20)) }
    expect(delivered).to.deep.equal([0, 1, 2, 3, 4])
    expect(rangeRequests).to.be.greaterThan(0)
    marshal.stop()
  })
})
