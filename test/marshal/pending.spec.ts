/**
 * Marshal under a stream of certificates whose blocks no peer can serve yet
 * (a node catching up, or its peers behind): the work it does stays bounded
 * — one fetch loop for the newest certificate's block, at most
 * `maxPendingFinalizations` certificates held — and once peers serve, every
 * finalized block is still delivered in order, the kept certificates stored
 * with their blocks. Before, each certificate started its own subscription
 * and fetch loop, all waiting at once.
 */
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { BlockStore, Marshal } from '../../src/marshal/index.ts'
import { Kv } from '../../src/storage/kv.ts'
import { waitUntil } from '../util/common.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import type { BlockFetcher } from '../../src/marshal/index.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'

/** Peers that have nothing until `serve()` (a request waits meanwhile, as the real fetcher keeps trying), then serve `chain`. */
class LatePeers implements BlockFetcher {
  open = false
  digestRequests = 0
  inFlight = 0
  maxInFlight = 0
  private readonly waiting = new Set<() => void>()
  constructor (private readonly chain: TestBlock[]) {}

  serve (): void {
    this.open = true
    for (const w of this.waiting) { w() }
  }

  async fetchBlock (digest: Uint8Array, options: { signal: AbortSignal }): Promise<{ bytes: Uint8Array }> {
    this.digestRequests++
    const block = this.chain.find(b => Buffer.from(b.digest).equals(digest))
    if (block === undefined) { throw new Error('unknown block') }
    if (this.open) { return { bytes: blockCodec.encode(block) } }
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.inFlight--
        this.waiting.delete(served)
        options.signal.removeEventListener('abort', aborted)
      }
      const served = (): void => {
        done()
        resolve({ bytes: blockCodec.encode(block) })
      }
      const aborted = (): void => {
        done()
        reject(options.signal.reason)
      }
      this.waiting.add(served)
      options.signal.addEventListener('abort', aborted, { once: true })
    })
  }

  async fetchFinalized (from: number, to: number, options: { signal: AbortSignal }): Promise<{ blocks: Array<{ block: Uint8Array }> }> {
    if (this.open) { return { blocks: this.chain.slice(from, to + 1).map(b => ({ block: blockCodec.encode(b) })) } }
    return new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true }) })
  }
}

describe('marshal: certificates whose block is missing', function () {
  this.timeout(20_000)

  it('fetch only the newest one\'s block, keep a bounded number, and still deliver every block in order once peers serve', async () => {
    const validators = await Validators.create(4)
    const chain = buildChain(41)
    const peers = new LatePeers(chain)
    const marshal = new Marshal<TestBlock, TestFinalization>({
      store: new BlockStore(new Kv(new MemoryDatastore()), '/m', blockCodec, validators.scheme),
      codec: blockCodec,
      scheme: validators.scheme,
      fetcher: peers,
      rangeTimeoutMs: 100,
      maxPendingFinalizations: 8
    })
    await marshal.start({ genesis: chain[0] })
    const delivered: number[] = []
    marshal.attach({ finalized: (b, ack) => { delivered.push(b.height); ack.acknowledge() } })

    // forty certificates, one per height, none of whose blocks any peer has yet
    let settled = 0
    const calls = chain.slice(1).map(async b => marshal.finalized(validators.finalize(b.height, b.digest)).finally(() => { settled++ }))
    await waitUntil(() => peers.digestRequests > 0, 5000, 'a fetch')
    for (let i = 0; i < 20; i++) { await new Promise(resolve => setImmediate(resolve)) }
    expect(peers.maxInFlight).to.equal(1)
    expect(peers.inFlight).to.equal(1)
    // the 32 lowest are dropped from the table (their blocks come through the newest one's parent links)
    await waitUntil(() => settled === 32, 5000, 'the pending table trimmed')

    peers.serve()
    await Promise.all(calls)
    await waitUntil(() => delivered.length === 41, 5000, 'every block delivered')
    expect(delivered).to.deep.equal(chain.map(b => b.height))
    for (let h = 33; h <= 40; h++) {
      expect((await marshal.getFinalization(h))?.round.view, `certificate at ${h}`).to.equal(h)
    }
    marshal.stop()
  })
})
