/**
 * Deterministic marshal fixtures: a block type with a SHA-256 digest, and a
 * finalization scheme over a fixed ed25519 validator set (a certificate is a
 * round, a payload digest, and signatures of a quorum `2f + 1` over them),
 * standing in for the consensus certificates that `src/consensus/` will
 * provide.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { sha256 } from '@noble/hashes/sha2.js'
import { CodecError, Reader, Writer } from '../../src/codec/index.ts'
import { maxFaults } from '../../src/probe/index.ts'
import type { BlockCodec, FinalizationScheme, MarshalBlock, Round } from '../../src/marshal/index.ts'
import type { PrivateKey, PublicKey } from '@libp2p/interface'

// ---- blocks ---------------------------------------------------------------------------------

export interface TestBlock extends MarshalBlock {
  readonly payload: Uint8Array
}

const MAX_PAYLOAD = 1024

function encodeBlock (height: number, parent: Uint8Array, payload: Uint8Array): Uint8Array {
  return new Writer(48 + payload.length).u64(height).raw(parent).bytes(payload).finish()
}

export function makeBlock (height: number, parent: Uint8Array, payload: Uint8Array): TestBlock {
  const bytes = encodeBlock(height, parent, payload)
  return { height, parent, payload, digest: sha256(bytes) }
}

export const blockCodec: BlockCodec<TestBlock> = {
  maxBytes: 8 + 32 + 2 + MAX_PAYLOAD,
  encode: (b) => encodeBlock(b.height, b.parent, b.payload),
  decode: (bytes) => {
    const r = new Reader(bytes)
    const height = r.u64()
    const parent = r.raw(32)
    const payload = r.bytes(MAX_PAYLOAD)
    r.finish()
    return { height, parent, payload, digest: sha256(bytes) }
  }
}

/** Blocks 0..length-1 of a chain (`tag` makes distinct chains). */
export function buildChain (length: number, tag = 'main'): TestBlock[] {
  const out: TestBlock[] = []
  let parent: Uint8Array = new Uint8Array(32)
  for (let h = 0; h < length; h++) {
    const b = makeBlock(h, parent, new TextEncoder().encode(`${tag}:${h}`))
    out.push(b)
    parent = b.digest
  }
  return out
}

// ---- finalizations ----------------------------------------------------------------------------

export interface TestFinalization {
  round: Round
  payload: Uint8Array
  signatures: Array<{ signer: number, signature: Uint8Array }>
}

const DOMAIN = new TextEncoder().encode('qmdb-test-finalize')

function message (round: Round, payload: Uint8Array): Uint8Array {
  return new Writer(64).raw(DOMAIN).varint(round.epoch).varint(round.view).raw(payload).finish()
}

function hex (d: Uint8Array): string {
  return Buffer.from(d).toString('hex')
}

export class TestScheme implements FinalizationScheme<TestFinalization> {
  readonly publicKeys: PublicKey[]
  readonly quorum: number
  readonly maxBytes: number

  constructor (publicKeys: PublicKey[]) {
    this.publicKeys = publicKeys
    this.quorum = publicKeys.length - maxFaults(publicKeys.length)
    this.maxBytes = 24 + 32 + 4 + publicKeys.length * 66
  }

  encode (f: TestFinalization): Uint8Array {
    return new Writer(64 + f.signatures.length * 66).varint(f.round.epoch).varint(f.round.view).raw(f.payload)
      .vec(f.signatures, (w, s) => w.u8(s.signer).raw(s.signature)).finish()
  }

  decode (bytes: Uint8Array): TestFinalization {
    const r = new Reader(bytes)
    const round = { epoch: r.varint(), view: r.varint() }
    const payload = r.raw(32)
    const signatures = r.vec(this.publicKeys.length, r => ({ signer: r.u8(), signature: r.raw(64) }))
    r.finish()
    let last = -1
    for (const s of signatures) {
      if (s.signer <= last || s.signer >= this.publicKeys.length) { throw new CodecError('Invalid', 'signers must be increasing validator indices') }
      last = s.signer
    }
    return { round, payload, signatures }
  }

  verify (f: TestFinalization): boolean {
    if (f.signatures.length < this.quorum) { return false }
    const msg = message(f.round, f.payload)
    const seen = new Set<number>()
    for (const s of f.signatures) {
      const key = this.publicKeys[s.signer]
      if (key === undefined || seen.has(s.signer)) { return false }
      seen.add(s.signer)
      if (key.verify(msg, s.signature) !== true) { return false }
    }
    return true
  }

  payload (f: TestFinalization): Uint8Array {
    return f.payload
  }

  round (f: TestFinalization): Round {
    return f.round
  }
}

/** A fixed validator set that signs finalizations. */
export class Validators {
  readonly keys: PrivateKey[]
  readonly scheme: TestScheme

  private constructor (keys: PrivateKey[]) {
    this.keys = keys
    this.scheme = new TestScheme(keys.map(k => k.publicKey))
  }

  /** `n` validators with keys derived from `seed`. */
  static async create (n: number, seed = 1): Promise<Validators> {
    const keys: PrivateKey[] = []
    for (let i = 0; i < n; i++) {
      const s = new Uint8Array(32)
      s[0] = seed & 0xff
      s[1] = (seed >> 8) & 0xff
      s[2] = i
      keys.push(await generateKeyPairFromSeed('Ed25519', s))
    }
    return new Validators(keys)
  }

  /** A certificate for `digest` at `round` signed by `signers` (default: the first quorum). */
  finalize (round: Round | number, digest: Uint8Array, signers?: number[]): TestFinalization {
    const r = typeof round === 'number' ? { epoch: 0, view: round } : round
    const msg = message(r, digest)
    const who = signers ?? [...Array(this.scheme.quorum).keys()]
    return {
      round: r,
      payload: digest,
      signatures: who.map(signer => {
        const signature = this.keys[signer].sign(msg)
        if (!(signature instanceof Uint8Array)) { throw new Error('expected a synchronous ed25519 signature') }
        return { signer, signature }
      })
    }
  }
}

export function sameFinalization (a: TestFinalization | undefined, b: TestFinalization | undefined): boolean {
  return a !== undefined && b !== undefined && a.round.epoch === b.round.epoch && a.round.view === b.round.view && hex(a.payload) === hex(b.payload)
}

/**
 * Finalizations of several epochs, each certified by its own validator set
 * (all sets of one size, so they share an encoding); a certificate of an
 * epoch without a set cannot be judged.
 */
export class EpochScheme implements FinalizationScheme<TestFinalization> {
  readonly epochs: Map<number, Validators>
  private readonly codec: TestScheme
  readonly maxBytes: number

  constructor (epochs: Map<number, Validators>) {
    const first = [...epochs.values()][0]
    this.epochs = epochs
    this.codec = first.scheme
    this.maxBytes = first.scheme.maxBytes
  }

  encode (f: TestFinalization): Uint8Array {
    return this.codec.encode(f)
  }

  decode (bytes: Uint8Array): TestFinalization {
    return this.codec.decode(bytes)
  }

  verify (f: TestFinalization): boolean {
    return this.epochs.get(f.round.epoch)?.scheme.verify(f) ?? false
  }

  judgeable (f: TestFinalization): boolean {
    return this.epochs.has(f.round.epoch)
  }

  payload (f: TestFinalization): Uint8Array {
    return f.payload
  }

  round (f: TestFinalization): Round {
    return f.round
  }
}
