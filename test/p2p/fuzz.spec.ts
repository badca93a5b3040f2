import '../util/polyfill.ts'
import { expect } from 'aegir/chai'
import { LocalSource } from '../../src/sync/local-source.ts'
import { encodeRequest } from '../../src/sync/messages.ts'
import { makeFixture } from '../util/p2p-fixtures.ts'
import { randomRequestFrame } from '../util/p2p-malicious.ts'
import { connectAll, createTestNode, stopAll } from '../util/p2p-nodes.ts'
import { fetchVerified } from '../util/p2p-verify.ts'
import { Rng } from '../util/rng.ts'
import type { Request } from '../../src/sync/messages.ts'
import type { Fixture } from '../util/p2p-fixtures.ts'
import type { TestNode } from '../util/p2p-nodes.ts'

const FRAMES = 10_000
const CONCURRENCY = 48

function uvarint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Raw stream bytes: usually a well-framed random body, sometimes a broken frame. */
function rawStreamBytes (rng: Rng, valid: Uint8Array[]): Uint8Array {
  const body = randomRequestFrame(rng, valid)
  switch (rng.int(8)) {
    case 0: return rng.bytes(rng.int(100)) // no framing at all
    case 1: return concat(uvarint(body.length + 1 + rng.int(40)), body) // claims more than it sends
    case 2: return concat(uvarint(65 + rng.int(1 << 20)), body) // over the 64-byte limit
    case 3: return concat(uvarint(body.length), body, rng.bytes(1 + rng.int(300))) // trailing junk after the frame
    default: return concat(uvarint(body.length), body)
  }
}

/** Open a stream, write `bytes`, half-close, and drain whatever comes back (or the reset). */
async function sendRaw (from: TestNode, to: TestNode, protocol: string, bytes: Uint8Array): Promise<'answered' | 'reset'> {
  const stream = await from.dialProtocol(to.peerId, protocol, { signal: AbortSignal.timeout(5000) })
  try {
    stream.send(bytes)
    await stream.close({ signal: AbortSignal.timeout(5000) })
    let n = 0
    for await (const chunk of stream) { n += chunk.byteLength }
    return n > 0 ? 'answered' : 'reset'
  } catch {
    stream.abort(new Error('fuzz'))
    return 'reset'
  }
}

describe('p2p: a server under 10k random and mutated request frames', function () {
  this.timeout(90_000)
  let server: TestNode
  let fuzzer: TestNode
  let honest: TestNode
  let fixture: Fixture

  before(async () => {
    const unlimited = { maxConcurrent: 1000, rate: { perSecond: 1e9, burst: 1e9 } }
    server = await createTestNode({
      standard: { databases: ['any'], inbound: unlimited, maxInboundStreams: 1024, readTimeout: 1000 },
      compact: { databases: ['any'], inbound: unlimited, maxInboundStreams: 1024, readTimeout: 1000 }
    })
    fixture = await makeFixture('any', 17, 12)
    await server.services.standard.attach('any', new LocalSource(fixture.db))
    await server.services.compact.attach('any', new LocalSource(fixture.db))
    fuzzer = await createTestNode({ standard: { maxOutboundStreams: 1024 }, compact: { maxOutboundStreams: 1024 } })
    honest = await createTestNode({ standard: { timeout: 3000, retryDelay: 20 } })
    await connectAll(fuzzer, [server])
    await connectAll(honest, [server])
  })

  after(async () => {
    await stopAll([server, fuzzer, honest])
  })

  it('never crashes, and honest requests interleaved keep getting correct answers', async () => {
    const rng = new Rng(2024)
    const size = fixture.db.size
    const valid: Uint8Array[] = [
      encodeRequest({ type: 'operations', size, start: 3, maxOps: 4 }),
      encodeRequest({ type: 'boundary', size, start: 6 }),
      encodeRequest({ type: 'boundary', size, start: size - 1 }),
      encodeRequest({ type: 'operations', size: 1, start: 0, maxOps: 1 })
    ]
    const protocols = [server.services.standard.protocol('any'), server.services.compact.protocol('any')]
    const outcomes = { answered: 0, reset: 0 }
    const progress = { sent: 0 }
    const fuzz = async (): Promise<void> => {
      while (progress.sent < FRAMES) {
        progress.sent++
        const outcome = await sendRaw(fuzzer, server, rng.pick(protocols), rawStreamBytes(rng, valid))
        outcomes[outcome]++
      }
    }
    const source = honest.services.standard.source('any', { codec: fixture.codec, peers: [server.peerId] })
    const sizes = [...fixture.roots.keys()]
    let honestDone = 0
    const honestLoop = async (): Promise<void> => {
      const hr = new Rng(5)
      while (progress.sent < FRAMES) {
        const s = sizes[hr.int(sizes.length)]
        const req: Request = hr.int(2) === 0 ? { type: 'boundary', size: s, start: hr.int(s) } : { type: 'operations', size: s, start: hr.int(s), maxOps: 1 + hr.int(16) }
        const { rejected } = await fetchVerified(source, req, fixture.roots.get(s)!, AbortSignal.timeout(20_000))
        expect(rejected).to.equal(0)
        honestDone++
      }
    }
    await Promise.all([...Array.from({ length: CONCURRENCY }, fuzz), honestLoop()])
    // eslint-disable-next-line no-console
    console.log(`      fuzz: ${FRAMES} frames → ${outcomes.answered} answered, ${outcomes.reset} reset; ${honestDone} honest requests verified meanwhile`)
    expect(outcomes.answered + outcomes.reset).to.equal(FRAMES)
    expect(outcomes.reset).to.be.greaterThan(FRAMES / 2)
    expect(outcomes.answered).to.be.greaterThan(0)
    expect(honestDone).to.be.greaterThan(10)
    // still serving, and the honest client never blocked it
    expect(server.status).to.equal('started')
    expect(honest.services.standard.isBlocked(server.peerId)).to.equal(false)
    const { rejected } = await fetchVerified(source, { type: 'boundary', size, start: 1 }, fixture.roots.get(size)!)
    expect(rejected).to.equal(0)
    source.close()
  })
})
