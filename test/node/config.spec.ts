/**
 * Node configuration (`validateConfig`, `loadConfig`) and the persistent
 * identity key (`loadOrCreateKey`): every field is checked with a message
 * naming it, unknown fields are refused, and a key is created once and never
 * silently replaced.
 */

import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { expect } from 'aegir/chai'
import { ledgerSettings } from '../../src/cli/ledger.ts'
import { ConfigError, loadConfig, validateConfig } from '../../src/node/config.ts'
import { IdentityError, loadOrCreateKey } from '../../src/node/identity.ts'

const V1 = '12D3KooWRrS7BxLYsiNDJKKAJLszSvK4ubVsibM35jFU4DYGXgur'
const V2 = '12D3KooWEjAVAZuVKAPLnVR5wbunxoMD51vfxc9ERpk888cAMx6Q'
const V3 = '12D3KooWG7QjFmVF3SYcx3ExqEhL83SA2cDyjJ9Hg53dnNiFxjYZ'

function minimal (): Record<string, unknown> {
  return { dataDir: '/var/lib/qmdb/node-0', chainId: 'qmdb-local', validators: [V1] }
}

function full (): Record<string, unknown> {
  return {
    dataDir: '/var/lib/qmdb/node-1',
    chainId: 'Chain_1.test-net',
    validators: [V1, V2, V3],
    listen: ['/ip4/127.0.0.1/tcp/40001', '/ip4/0.0.0.0/tcp/40101', '/ip4/127.0.0.1/tcp/40201/ws', '/ip6/::1/tcp/0/ws'],
    bootstrap: [`/ip4/127.0.0.1/tcp/40000/p2p/${V1}`, `/ip4/127.0.0.1/tcp/40002/p2p/${V3}`],
    mdns: true,
    stateSync: true,
    metricsPort: 9100,
    application: { autoTransfers: 100, accountSpace: 1000, maxTransfers: 500 },
    consensus: { leaderTimeoutMs: 1000, notarizationTimeoutMs: 2000 },
    sync: { fetchBatchSize: 64, maxOutstandingRequests: 4 },
    prune: { maintenanceInterval: 10, retainedMarshalBlocks: 100, retainedQmdbBlocks: 50 }
  }
}

/** `validateConfig(raw)` must throw a ConfigError naming `field`; returns the message. */
function rejects (raw: unknown, field: string, reason?: RegExp): string {
  let caught: unknown
  try {
    validateConfig(raw)
  } catch (err) {
    caught = err
  }
  expect(caught, `config ${JSON.stringify(raw)} was accepted`).to.be.an.instanceOf(ConfigError)
  const err = caught as ConfigError
  expect(err.name).to.equal('ConfigError')
  expect(err.message).to.include(`\`${field}\``)
  if (reason !== undefined) { expect(err.message).to.match(reason) }
  return err.message
}

describe('node: validateConfig', () => {
  it('accepts a minimal config and leaves the optional fields unset', () => {
    const c = validateConfig(minimal())
    expect(c.dataDir).to.equal('/var/lib/qmdb/node-0')
    expect(c.chainId).to.equal('qmdb-local')
    expect(c.validators).to.deep.equal([V1])
    expect(c.listen).to.be.undefined()
    expect(c.bootstrap).to.be.undefined()
    expect(c.mdns).to.be.undefined()
    expect(c.stateSync).to.be.undefined()
    expect(c.metricsPort).to.be.undefined()
    expect(c.application).to.be.undefined()
    expect(c.consensus).to.be.undefined()
    expect(c.sync).to.be.undefined()
    expect(c.prune).to.be.undefined()
  })

  it('accepts a config using every field and keeps every value', () => {
    const c = validateConfig(full())
    expect(c).to.deep.equal({
      dataDir: '/var/lib/qmdb/node-1',
      chainId: 'Chain_1.test-net',
      validators: [V1, V2, V3],
      listen: ['/ip4/127.0.0.1/tcp/40001', '/ip4/0.0.0.0/tcp/40101', '/ip4/127.0.0.1/tcp/40201/ws', '/ip6/::1/tcp/0/ws'],
      bootstrap: [`/ip4/127.0.0.1/tcp/40000/p2p/${V1}`, `/ip4/127.0.0.1/tcp/40002/p2p/${V3}`],
      mdns: true,
      stateSync: true,
      metricsPort: 9100,
      application: { autoTransfers: 100, accountSpace: 1000, maxTransfers: 500 },
      consensus: { leaderTimeoutMs: 1000, notarizationTimeoutMs: 2000 },
      sync: { fetchBatchSize: 64, maxOutstandingRequests: 4 },
      prune: { maintenanceInterval: 10, retainedMarshalBlocks: 100, retainedQmdbBlocks: 50 }
    })
  })

  it('accepts the boundary values of chainId, metricsPort and stateSync false', () => {
    expect(validateConfig({ ...minimal(), chainId: 'a'.repeat(64) }).chainId).to.equal('a'.repeat(64))
    expect(validateConfig({ ...minimal(), chainId: 'x' }).chainId).to.equal('x')
    expect(validateConfig({ ...minimal(), metricsPort: 0 }).metricsPort).to.equal(0)
    expect(validateConfig({ ...minimal(), metricsPort: 65535 }).metricsPort).to.equal(65535)
    expect(validateConfig({ ...minimal(), stateSync: false }).stateSync).to.equal(false)
    expect(validateConfig({ ...minimal(), mdns: false }).mdns).to.equal(false)
    rejects({ ...minimal(), mdns: 'yes' }, 'mdns', /boolean/)
    expect(validateConfig({ ...minimal(), listen: [], bootstrap: [] })).to.include.keys('listen', 'bootstrap')
    expect(validateConfig({ ...minimal(), application: {} }).application).to.deep.equal({})
  })

  it('rejects a configuration that is not an object', () => {
    for (const raw of [null, undefined, 'config', 42, [minimal()]]) {
      expect(() => validateConfig(raw)).to.throw(ConfigError, /must be a JSON object/)
    }
  })

  it('rejects unknown top-level fields, naming them', () => {
    rejects({ ...minimal(), metricPort: 9100 }, 'metricPort', /not a known field/)
    rejects({ ...minimal(), statesync: true }, 'statesync', /not a known field/)
    // JSON.parse makes __proto__ an own key, not the prototype
    rejects(JSON.parse(`{"dataDir":"d","chainId":"c","validators":["${V1}"],"__proto__":{}}`), '__proto__', /not a known field/)
    rejects({ ...minimal(), constructor: {} }, 'constructor', /not a known field/)
  })

  it('rejects unknown nested fields with their full path', () => {
    rejects({ ...minimal(), consensus: { leaderTimeout: 1000 } }, 'consensus.leaderTimeout', /not a known field/)
    rejects({ ...minimal(), sync: { batchSize: 8 } }, 'sync.batchSize', /not a known field/)
    rejects({ ...full(), prune: { maintenanceInterval: 1, retainedMarshalBlocks: 1, retainedQmdbBlocks: 1, extra: 1 } }, 'prune.extra', /not a known field/)
  })

  it('requires dataDir and chainId as non-empty strings', () => {
    const noDir = minimal()
    delete noDir.dataDir
    rejects(noDir, 'dataDir', /non-empty string/)
    rejects({ ...minimal(), dataDir: '' }, 'dataDir', /non-empty string/)
    rejects({ ...minimal(), dataDir: 7 }, 'dataDir', /non-empty string/)
    const noChain = minimal()
    delete noChain.chainId
    rejects(noChain, 'chainId', /non-empty string/)
    rejects({ ...minimal(), chainId: '' }, 'chainId')
  })

  it('rejects chain ids with characters outside [A-Za-z0-9._-] or longer than 64', () => {
    for (const chainId of ['qmdb/local', 'qmdb local', 'qmdb:1', 'qmdé', 'a'.repeat(65), 'chain\n']) {
      rejects({ ...minimal(), chainId }, 'chainId', /1-64 characters/)
    }
  })

  it('requires a non-empty, duplicate-free list of validators', () => {
    const none = minimal()
    delete none.validators
    rejects(none, 'validators', /array of non-empty strings/)
    rejects({ ...minimal(), validators: [] }, 'validators', /at least one validator/)
    rejects({ ...minimal(), validators: [V1, V2, V1] }, 'validators', /must not repeat/)
    rejects({ ...minimal(), validators: V1 }, 'validators', /array of non-empty strings/)
    rejects({ ...minimal(), validators: [V1, ''] }, 'validators', /array of non-empty strings/)
    rejects({ ...minimal(), validators: [V1, 3] }, 'validators', /array of non-empty strings/)
  })

  it('rejects a metricsPort that is not an integer in [0, 65535]', () => {
    for (const metricsPort of [-1, 65536, 80.5, '9100', null, true, Number.NaN, Number.POSITIVE_INFINITY]) {
      rejects({ ...minimal(), metricsPort }, 'metricsPort', /integer in \[0, 65535\]/)
    }
  })

  it('rejects wrong types for listen, bootstrap and stateSync', () => {
    rejects({ ...minimal(), listen: '/ip4/127.0.0.1/tcp/0' }, 'listen', /array of non-empty strings/)
    rejects({ ...minimal(), listen: [1234] }, 'listen', /array of non-empty strings/)
    rejects({ ...minimal(), listen: [''] }, 'listen')
    rejects({ ...minimal(), listen: null }, 'listen')
    rejects({ ...minimal(), bootstrap: `/ip4/127.0.0.1/tcp/40000/p2p/${V1}` }, 'bootstrap', /array of non-empty strings/)
    rejects({ ...minimal(), bootstrap: [{ addr: 'x' }] }, 'bootstrap')
    rejects({ ...minimal(), stateSync: 'true' }, 'stateSync', /boolean/)
    rejects({ ...minimal(), stateSync: 1 }, 'stateSync', /boolean/)
    rejects({ ...minimal(), stateSync: null }, 'stateSync', /boolean/)
  })

  it('rejects nested sections that are not objects or hold non-integers', () => {
    rejects({ ...minimal(), application: [] }, 'application', /must be an object/)
    rejects({ ...minimal(), application: null }, 'application', /must be an object/)
    rejects({ ...minimal(), consensus: null }, 'consensus', /must be an object/)
    rejects({ ...minimal(), sync: 5 }, 'sync', /must be an object/)
    rejects({ ...minimal(), prune: 'yes' }, 'prune', /must be an object/)
    rejects({ ...minimal(), consensus: { leaderTimeoutMs: '1000' } }, 'consensus.leaderTimeoutMs', /integer/)
    rejects({ ...minimal(), sync: { fetchBatchSize: null } }, 'sync.fetchBatchSize', /integer/)
  })

  it("the ledger validates its own settings (the config's application section), naming the field", () => {
    expect(ledgerSettings({ autoTransfers: 100, accountSpace: 1000, maxTransfers: 500 })).to.deep.equal({ autoTransfers: 100, accountSpace: 1000, maxTransfers: 500 })
    expect(ledgerSettings(undefined)).to.deep.equal({})
    const bad = (raw: Record<string, unknown>, field: string, reason: RegExp): void => {
      expect(() => ledgerSettings(raw)).to.throw(ConfigError, `\`${field}\``).and.to.match(reason)
    }
    bad({ autoTransfer: 1 }, 'application.autoTransfer', /not a known field/)
    bad({ autoTransfers: -1 }, 'application.autoTransfers', /integer/)
    bad({ accountSpace: 1.5 }, 'application.accountSpace', /integer/)
  })

  it('rejects validators that are not Ed25519 peer ids, naming the entry', async () => {
    rejects({ ...minimal(), validators: [V1, 'x'] }, 'validators[1]', /not a peer id/)
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    rejects({ ...minimal(), validators: [secp] }, 'validators[0]', /Ed25519/)
  })

  it('rejects listen and bootstrap entries that are not multiaddrs, and bootstrap entries without a peer id', () => {
    rejects({ ...minimal(), listen: ['/ip4/127.0.0.1/tcp/1', 'localhost:4000'] }, 'listen[1]', /not a multiaddr/)
    // valid multiaddrs no transport of the node listens on (QUIC, secure WebSockets, a peer id suffix)
    rejects({ ...minimal(), listen: ['/ip4/127.0.0.1/tcp/1/ws', '/ip4/127.0.0.1/udp/1/quic-v1'] }, 'listen[1]', /\/tcp\/<port>, optionally followed by \/ws/)
    rejects({ ...minimal(), listen: ['/ip4/127.0.0.1/tcp/1/wss'] }, 'listen[0]', /optionally followed by \/ws/)
    rejects({ ...minimal(), listen: [`/ip4/127.0.0.1/tcp/1/p2p/${V1}`] }, 'listen[0]', /optionally followed by \/ws/)
    rejects({ ...minimal(), bootstrap: ['/ip4/127.0.0.1/tcp/40000'] }, 'bootstrap[0]', /\/p2p\/<peer id>/)
    rejects({ ...minimal(), bootstrap: ['/ip4/999.0.0.1/tcp/1/p2p/' + V1] }, 'bootstrap[0]', /not a multiaddr/)
  })

  it('accepts a block interval below the leader timeout and rejects one at or above it', () => {
    expect(validateConfig({ ...minimal(), consensus: { blockIntervalMs: 999 } }).consensus).to.deep.equal({ blockIntervalMs: 999 })
    rejects({ ...minimal(), consensus: { blockIntervalMs: 1000 } }, 'consensus.blockIntervalMs', /below consensus.leaderTimeoutMs/)
    rejects({ ...minimal(), consensus: { leaderTimeoutMs: 500, blockIntervalMs: 600 } }, 'consensus.blockIntervalMs', /500 ms/)
  })

  it('requires all three prune fields', () => {
    const all = { maintenanceInterval: 10, retainedMarshalBlocks: 100, retainedQmdbBlocks: 50 }
    for (const missing of Object.keys(all)) {
      const prune: Record<string, number> = { ...all }
      delete prune[missing]
      rejects({ ...minimal(), prune }, `prune.${missing}`, /is required/)
    }
    rejects({ ...minimal(), prune: {} }, 'prune.maintenanceInterval', /is required/)
  })
})

describe('node: loadConfig', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'libp2p-qmdb-config-'))
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('reads and validates a JSON file', async () => {
    const path = join(dir, 'node.json')
    await writeFile(path, JSON.stringify(full(), null, 2))
    const c = await loadConfig(path)
    expect(c.chainId).to.equal('Chain_1.test-net')
    expect(c.validators).to.deep.equal([V1, V2, V3])
    expect(c.prune).to.deep.equal({ maintenanceInterval: 10, retainedMarshalBlocks: 100, retainedQmdbBlocks: 50 })
  })

  it('reports invalid JSON with the file name', async () => {
    const path = join(dir, 'broken.json')
    await writeFile(path, '{ "dataDir": "d", "chainId": ')
    const err = await loadConfig(path).then(() => undefined, (e: unknown) => e)
    expect(err).to.be.an.instanceOf(ConfigError)
    expect((err as Error).message).to.include(path).and.to.include('not valid JSON')
  })

  it('reports a missing file with the file name', async () => {
    const path = join(dir, 'absent.json')
    const err = await loadConfig(path).then(() => undefined, (e: unknown) => e)
    expect(err).to.be.an.instanceOf(ConfigError)
    expect((err as Error).message).to.include(`cannot read ${path}`)
  })

  it('reports a field error from a well-formed file', async () => {
    const path = join(dir, 'typo.json')
    await writeFile(path, JSON.stringify({ ...minimal(), bootstrapp: [] }))
    await expect(loadConfig(path)).to.eventually.be.rejectedWith(ConfigError, '`bootstrapp`')
  })
})

describe('node: loadOrCreateKey', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'libp2p-qmdb-identity-'))
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('creates an Ed25519 key once (in a new directory) and returns the same key afterwards', async () => {
    const path = join(dir, 'a', 'b', 'peer.key')
    const first = await loadOrCreateKey(path)
    expect(first.type).to.equal('Ed25519')
    const bytes = await readFile(path)
    expect(bytes.length).to.be.greaterThan(0)
    if (process.platform !== 'win32') { expect((await stat(path)).mode & 0o777).to.equal(0o600) }
    expect(await readdir(join(dir, 'a', 'b'))).to.deep.equal(['peer.key']) // no temporary file left

    const second = await loadOrCreateKey(path)
    expect(peerIdFromPrivateKey(second).toString()).to.equal(peerIdFromPrivateKey(first).toString())
    expect(second.equals(first)).to.be.true()
    expect(await readFile(path)).to.deep.equal(bytes) // not rewritten

    // another path is another identity
    const other = await loadOrCreateKey(join(dir, 'peer2.key'))
    expect(peerIdFromPrivateKey(other).toString()).to.not.equal(peerIdFromPrivateKey(first).toString())
  })

  it('refuses a corrupt key file and leaves it untouched', async () => {
    const good = await loadOrCreateKey(join(dir, 'good.key'))
    const goodBytes = await readFile(join(dir, 'good.key'))
    const corrupt: Record<string, Uint8Array> = {
      text: new TextEncoder().encode('not a key\n'),
      empty: new Uint8Array(0),
      zeros: new Uint8Array(68),
      truncated: goodBytes.subarray(0, 30)
    }
    for (const [name, bytes] of Object.entries(corrupt)) {
      const path = join(dir, `${name}.key`)
      await writeFile(path, bytes)
      const err = await loadOrCreateKey(path).then(() => undefined, (e: unknown) => e)
      expect(err, name).to.be.an.instanceOf(IdentityError)
      expect((err as Error).name).to.equal('IdentityError')
      expect((err as Error).message).to.include(path)
      expect(new Uint8Array(await readFile(path)), name).to.deep.equal(new Uint8Array(bytes))
    }
    // the good key is still the good key
    expect((await loadOrCreateKey(join(dir, 'good.key'))).equals(good)).to.be.true()
  })
})
