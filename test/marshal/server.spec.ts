/**
 * The marshal request handler on its own (src/marshal/server.ts), over a
 * counting in-memory reader: what each request is answered with, the caps
 * on a range, no-data for every failure, and that an aborted answer stops
 * reading blocks (a deadline that passed must not keep the store busy).
 */
import '../util/polyfill.ts'
import { defaultLogger } from '@libp2p/logger'
import { expect } from 'aegir/chai'
import { MARSHAL_NO_DATA, parseBlockResponse, parseFinalizedResponse, parseLatestResponse } from '../../src/marshal/index.ts'
import { MarshalServer } from '../../src/marshal/server.ts'
import { Validators, blockCodec, buildChain } from '../util/marshal-fixtures.ts'
import type { MarshalReader } from '../../src/marshal/server.ts'
import type { TestBlock, TestFinalization } from '../util/marshal-fixtures.ts'

const log = defaultLogger().forComponent('test:marshal:server')

/** Blocks 1..`finalizedTo` finalized (with certificates except `uncertified`), reads counted. */
class CountingReader implements MarshalReader<TestBlock, TestFinalization> {
  reads = 0
  failAt: number | undefined
  onRead: ((height: number) => void) | undefined
  constructor (readonly chain: TestBlock[], readonly finalizedTo: number, readonly validators: Validators, readonly uncertified = new Set<number>()) {}

  async getBlock (digest: Uint8Array): Promise<TestBlock | undefined> {
    return this.chain.find(b => Buffer.from(b.digest).equals(digest))
  }

  async getFinalizedBlock (height: number): Promise<TestBlock | undefined> {
    this.reads++
    this.onRead?.(height)
    if (height === this.failAt) { throw new Error('disk read failed') }
    return height >= 1 && height <= this.finalizedTo ? this.chain[height] : undefined
  }

  async getFinalization (height: number): Promise<TestFinalization | undefined> {
    if (height < 1 || height > this.finalizedTo || this.uncertified.has(height)) { return undefined }
    return this.validators.finalize(height, this.chain[height].digest)
  }

  async latestFinalization (): Promise<{ height: number, finalization: TestFinalization } | undefined> {
    return this.finalizedTo === 0 ? undefined : { height: this.finalizedTo, finalization: this.validators.finalize(this.finalizedTo, this.chain[this.finalizedTo].digest) }
  }
}

describe('marshal server: answers', () => {
  let validators: Validators
  let chain: TestBlock[]
  const signal = new AbortController().signal

  before(async () => {
    validators = await Validators.create(4)
    chain = buildChain(40)
  })

  function server (maxServeBlocks = 64, maxResponseBytes = 1 << 20): MarshalServer<TestBlock, TestFinalization> {
    return new MarshalServer({ codec: blockCodec, scheme: validators.scheme, maxServeBlocks, maxResponseBytes }, log)
  }

  it('answers no data to everything until a reader is attached', async () => {
    const s = server()
    expect(await s.answer({ type: 'latest' }, 'p', signal)).to.equal(MARSHAL_NO_DATA)
    expect(await s.answer({ type: 'finalized', from: 1, to: 3 }, 'p', signal)).to.equal(MARSHAL_NO_DATA)
  })

  it('serves a block by digest, the latest finalization, and a range oldest first with certificates', async () => {
    const s = server()
    s.attach(new CountingReader(chain, 30, validators, new Set([12])))
    const block = parseBlockResponse(await s.answer({ type: 'block', digest: chain[7].digest }, 'p', signal), chain[7].digest, blockCodec)
    expect(block.type).to.equal('data')
    const latest = parseLatestResponse(await s.answer({ type: 'latest' }, 'p', signal), validators.scheme)
    expect(latest.type === 'data' ? latest.value.height : -1).to.equal(30)
    const range = parseFinalizedResponse(await s.answer({ type: 'finalized', from: 10, to: 14 }, 'p', signal), 10, 14, blockCodec, validators.scheme)
    if (range.type !== 'data') { throw new Error('expected data') }
    expect(range.value.map(e => blockCodec.decode(e.block).height)).to.deep.equal([10, 11, 12, 13, 14])
    expect(range.value.map(e => e.finalization !== undefined)).to.deep.equal([true, true, false, true, true])
  })

  it('a range is the run ending at `to`, capped by maxServeBlocks and by the response size', async () => {
    const reader = new CountingReader(chain, 30, validators)
    const byCount = server(4)
    byCount.attach(reader)
    const r = parseFinalizedResponse(await byCount.answer({ type: 'finalized', from: 1, to: 20 }, 'p', signal), 1, 20, blockCodec, validators.scheme)
    expect(r.type === 'data' ? r.value.map(e => blockCodec.decode(e.block).height) : []).to.deep.equal([17, 18, 19, 20])

    const one = blockCodec.encode(chain[5]).length + validators.scheme.encode(validators.finalize(5, chain[5].digest)).length
    const bySize = server(64, 16 + Math.floor(2.5 * (one + 8)))
    bySize.attach(reader)
    const body = await bySize.answer({ type: 'finalized', from: 1, to: 20 }, 'p', signal)
    const s = parseFinalizedResponse(body, 1, 20, blockCodec, validators.scheme)
    expect(s.type === 'data' ? s.value.map(e => blockCodec.decode(e.block).height) : []).to.deep.equal([19, 20])
  })

  it('answers no data when `to` is not finalized here or a read fails', async () => {
    const reader = new CountingReader(chain, 30, validators)
    const s = server()
    s.attach(reader)
    expect(await s.answer({ type: 'finalized', from: 25, to: 35 }, 'p', signal)).to.equal(MARSHAL_NO_DATA)
    reader.failAt = 18
    expect(await s.answer({ type: 'finalized', from: 10, to: 20 }, 'p', signal)).to.equal(MARSHAL_NO_DATA)
  })

  it('stops reading a range once the answer is aborted, and answers no data', async () => {
    const reader = new CountingReader(chain, 30, validators)
    const s = server()
    s.attach(reader)
    const controller = new AbortController()
    reader.onRead = height => { if (height === 27) { controller.abort() } }
    const body = await s.answer({ type: 'finalized', from: 1, to: 30 }, 'p', controller.signal)
    expect(body).to.equal(MARSHAL_NO_DATA)
    // 30, 29, 28, 27 were read; nothing after the abort
    expect(reader.reads).to.equal(4)
  })
})
