/**
 * A misbehaving resolver server for tests (reusable by end-to-end sync
 * tests): it registers a handler for a database's resolver protocol on any
 * libp2p node and answers each request according to a `Behaviour`, starting
 * from what an honest `Source` would serve.
 *
 * Behaviours:
 * - `honest`: the correct response;
 * - `tamper-op`: one byte of an operation changed (still decodes, so
 * only proof verification can catch it);
 * - `tamper-proof`: one byte of a proof digest changed;
 * - `tamper-pins`: one byte of a pinned node changed (boundary
 * requests; operations requests get `tamper-op`);
 * - `wrong-size`: a proof claiming another tree size (a shape violation);
 * - `wrong-variant`: the other response variant;
 * - `garbage`: a RESPONSE status followed by random bytes;
 * - `bad-status`: an unknown status byte;
 * - `oversized`: a frame header claiming 64 MiB, then bytes until reset;
 * - `endless`: a frame header within limits, then one byte every 50 ms, forever;
 * - `silent`: reads the request and never answers;
 * - `reset`: resets the stream after reading the request;
 * - `no-data`: always answers no-data;
 * or any function returning the frame body to send (or `undefined` for silence).
 */
import { lpStream } from '@libp2p/utils'
import { protocolId, NO_DATA_BODY, responseBody } from '../../src/p2p/index.ts'
import { decodeRequest } from '../../src/sync/messages.ts'
import { Rng } from './rng.ts'
import type { ResolverKind } from '../../src/p2p/index.ts'
import type { OpCodec } from '../../src/qmdb/index.ts'
import type { Request, Response } from '../../src/sync/messages.ts'
import type { Source } from '../../src/sync/source.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

export type Behaviour =
  | 'honest' | 'tamper-op' | 'tamper-proof' | 'tamper-pins' | 'wrong-size' | 'wrong-variant'
  | 'garbage' | 'bad-status' | 'oversized' | 'endless' | 'silent' | 'reset' | 'no-data'

export type BehaviourFn = (request: Request, honest: Response | undefined) => Uint8Array | undefined

export interface MaliciousServerOptions {
  db: string
  kind?: ResolverKind
  prefix?: string
  chain?: string
  /** Where honest answers come from. */
  source: Source
  /** Used to keep tampered operations decodable. */
  codec: OpCodec<unknown>
  behaviour: Behaviour | BehaviourFn
  seed?: number
}

export interface MaliciousServer {
  readonly protocol: string
  /** Requests received so far. */
  readonly requests: number
  setBehaviour(b: Behaviour | BehaviourFn): void
  stop(): Promise<void>
}

const enc = new TextEncoder()

/** A copy of `op` with one byte changed such that it still decodes, or undefined. */
export function tamperOp (op: Uint8Array, codec: OpCodec<unknown>): Uint8Array | undefined {
  for (let i = op.length - 1; i >= 1; i--) {
    const c = op.slice()
    c[i] ^= 0x01
    try {
      codec.decode(c)
      return c
    } catch {
      // this byte is structural (tag, length, padding): try another
    }
  }
  return undefined
}

function flipDigest (d: Uint8Array): Uint8Array {
  const c = d.slice()
  c[7] ^= 0x40
  return c
}

function tamperOps (res: Response, codec: OpCodec<unknown>): Response {
  if (res.type === 'boundary') {
    return { ...res, op: tamperOp(res.op, codec) ?? flipDigest(res.op) }
  }
  const ops = res.ops.slice()
  for (let i = 0; i < ops.length; i++) {
    const t = tamperOp(ops[i], codec)
    if (t !== undefined) {
      ops[i] = t
      return { ...res, ops }
    }
  }
  return { ...res, proof: { ...res.proof, leaves: res.proof.leaves + 1 } }
}

function tamper (behaviour: Behaviour, res: Response, codec: OpCodec<unknown>): Response {
  switch (behaviour) {
    case 'tamper-proof':
      if (res.proof.digests.length === 0) { return tamperOps(res, codec) }
      return { ...res, proof: { ...res.proof, digests: [flipDigest(res.proof.digests[0]), ...res.proof.digests.slice(1)] } }
    case 'tamper-pins':
      if (res.type !== 'boundary' || res.pinnedNodes.length === 0) { return tamperOps(res, codec) }
      return { ...res, pinnedNodes: [...res.pinnedNodes.slice(0, -1), flipDigest(res.pinnedNodes[res.pinnedNodes.length - 1])] }
    case 'wrong-size':
      return { ...res, proof: { ...res.proof, leaves: res.proof.leaves + 1 } }
    case 'wrong-variant':
      return res.type === 'operations'
        ? { type: 'boundary', proof: res.proof, op: res.ops[0], pinnedNodes: [] }
        : { type: 'operations', proof: res.proof, ops: [res.op] }
    default:
      return tamperOps(res, codec)
  }
}

async function trickle (stream: Stream, signal: AbortSignal): Promise<void> {
  while (!signal.aborted && stream.status === 'open') {
    stream.send(new Uint8Array([0x01]))
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export async function startMaliciousServer (node: Libp2p<any>, options: MaliciousServerOptions): Promise<MaliciousServer> {
  const protocol = protocolId(options.prefix ?? 'qmdb', options.chain ?? 'default', options.db, options.kind ?? 'standard')
  const rng = new Rng(options.seed ?? 1)
  let behaviour = options.behaviour
  let requests = 0
  const stopper = new AbortController()

  const bodyFor = async (req: Request): Promise<Uint8Array | undefined> => {
    let honest: Response | undefined
    try {
      honest = (await options.source.serve(req, {})).response
    } catch {
      honest = undefined
    }
    if (typeof behaviour === 'function') { return behaviour(req, honest) }
    if (behaviour === 'no-data' || honest === undefined) { return NO_DATA_BODY }
    if (behaviour === 'honest') { return responseBody(honest) }
    if (behaviour === 'garbage') { return new Uint8Array([0x01, ...rng.bytes(1 + rng.int(200))]) }
    if (behaviour === 'bad-status') { return new Uint8Array([0x07, ...responseBody(honest).subarray(1)]) }
    return responseBody(tamper(behaviour, honest, options.codec))
  }

  const handler = async (stream: Stream): Promise<void> => {
    requests++
    const lp = lpStream(stream, { maxDataLength: 64 })
    try {
      const req = decodeRequest((await lp.read()).subarray())
      const mode = behaviour
      if (mode === 'silent') {
        await new Promise<void>(resolve => { stopper.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
        stream.abort(new Error('stopped'))
        return
      }
      if (mode === 'reset') {
        stream.abort(new Error('reset by a malicious server'))
        return
      }
      if (mode === 'oversized' || mode === 'endless') {
        // a frame header: 64 MiB, or 1 MiB that never completes
        stream.send(mode === 'oversized' ? new Uint8Array([0x80, 0x80, 0x80, 0x20]) : new Uint8Array([0x80, 0x80, 0x40]))
        await trickle(stream, stopper.signal)
        return
      }
      const body = await bodyFor(req)
      if (body === undefined) { return }
      await lp.write(body)
      await stream.close()
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  await node.handle(protocol, async (stream) => { await handler(stream) }, { maxInboundStreams: 256, force: true })
  return {
    protocol,
    get requests () { return requests },
    setBehaviour (b) { behaviour = b },
    async stop () {
      stopper.abort()
      await node.unhandle(protocol)
    }
  }
}

/** Random bytes and mutated valid requests, for fuzzing a server. */
export function randomRequestFrame (rng: Rng, valid: Uint8Array[]): Uint8Array {
  switch (rng.int(4)) {
    case 0: return rng.bytes(rng.int(80))
    case 1: {
      const b = rng.pick(valid).slice()
      if (b.length > 0) { b[rng.int(b.length)] ^= 1 << rng.int(8) }
      return b
    }
    case 2: {
      const b = rng.pick(valid)
      return b.subarray(0, rng.int(b.length + 1))
    }
    default: return enc.encode(`not a request ${rng.u32()}`)
  }
}
