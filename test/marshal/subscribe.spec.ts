/**
 * Marshal's block subscriptions against a long-lived caller signal (the
 * stateful processor passes one signal for its whole life): while blocks are
 * missing each waiting subscription holds one abort listener on it, and every
 * one is removed when its subscription settles — by the block arriving or
 * marshal stopping — so a node running for months does
 * not accumulate listeners. Many subscriptions waiting at once is load, not
 * a leak, and draws no MaxListenersExceededWarning from marshal's own stop
 * signal (a sweep's stuck node drew one; see `sim/wire.ts`).
 */
import { getEventListeners } from 'node:events'
import { setMaxListeners } from '@libp2p/interface'
import { expect } from 'aegir/chai'
import { MemoryDatastore } from 'datastore-core'
import { BlockStore, Marshal } from '../../src/marshal/index.ts'
import { Kv } from '../../src/storage/kv.ts'
import { waitUntil } from '../util/common.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import type { BlockFetcher } from '../../src/marshal/index.ts'
import type { TestFinalization, TestBlock } from '../util/marshal-fixtures.ts'

/** Peers that never have anything: every fetch waits until its signal aborts. */
const emptyPeers: BlockFetcher = {
  async fetchBlock (_digest, options) {
    return new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true }) })
  },
  async fetchFinalized (_from, _to, options) {
    return new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true }) })
  }
}

describe('marshal: block subscriptions', () => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
  before(() => { process.on('warning', onWarning) })
  after(() => { process.off('warning', onWarning) })

  it('leave no listener on a long-lived caller signal once they settle, by the block arriving or marshal stopping', async () => {
    const validators = await Validators.create(4)
    const chain = buildChain(31)
    const marshal = new Marshal<TestBlock, TestFinalization>({
      store: new BlockStore(new Kv(new MemoryDatastore()), '/m', blockCodec, validators.scheme),
      codec: blockCodec,
      scheme: validators.scheme,
      fetcher: emptyPeers
    })
    await marshal.start({ genesis: chain[0] })
    const caller = new AbortController()
    // a long-lived caller raises its own signal's limit, as the services do
    setMaxListeners(Infinity, caller.signal)
    const listeners = (): number => getEventListeners(caller.signal, 'abort').length

    // twenty blocks awaited at once, then each arrives by gossip
    const arriving = chain.slice(1, 21).map(async b => marshal.subscribeBlock(b.digest, { height: b.height, signal: caller.signal }))
    await waitUntil(() => listeners() === 20, 5000, 'twenty subscriptions waiting')
    for (const b of chain.slice(1, 21)) { await marshal.receiveBlock(blockCodec.encode(b)) }
    expect((await Promise.all(arriving)).map(b => b?.height)).to.deep.equal(chain.slice(1, 21).map(b => b.height))
    expect(listeners()).to.equal(0)

    const stopping = chain.slice(21, 31).map(async b => marshal.subscribeBlock(b.digest, { signal: caller.signal }))
    await waitUntil(() => listeners() === 10, 5000, 'ten subscriptions waiting')
    marshal.stop()
    expect(await Promise.all(stopping)).to.deep.equal(new Array(10).fill(undefined))
    expect(listeners()).to.equal(0)
    // warnings are emitted on the next tick
    await new Promise(resolve => setImmediate(resolve))
    expect(warnings.filter(w => w.startsWith('MaxListenersExceededWarning'))).to.deep.equal([])
  })
})
