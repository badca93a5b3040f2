/**
 * The application is a parameter of `createNode`: a second application (the
 * notary of `util/notary-app.ts`: an `immutable` and a `keyless` database,
 * its own block codec) runs on a validator, and a late joiner state-syncs it
 * and follows the chain. The joiner's databases are then opened from its
 * LevelDB directory under the application's own prefix, and hold the notes
 * the notary's rule prescribes (keys computed here, not read from the node).
 */
import '../util/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { expect } from 'aegir/chai'
import { LevelDatastore } from 'datastore-level'
import { initNetwork } from '../../src/cli/init.ts'
import { createNode } from '../../src/node/node.ts'
import { ImmutableDb, KeylessDb } from '../../src/qmdb/index.ts'
import { waitUntil } from '../util/common.ts'
import { notaryApplication } from '../util/notary-app.ts'
import type { QmdbNode } from '../../src/node/node.ts'

function u64 (n: number): Uint8Array {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}

describe('node: a second application on createNode', function () {
  this.timeout(180_000)
  let dir: string
  const nodes: QmdbNode[] = []

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'qmdb-notary-')) })
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => n.stop().catch(() => {})))
    await rm(dir, { recursive: true, force: true })
  })

  it('runs, serves and state-syncs the notary; the joiner holds every note under /notary/', async () => {
    const [v, j] = await initNetwork({ dir, validators: 1, joiners: 1, chainId: 'notary', host: '127.0.0.1', autoTransfers: 0 })
    const application = notaryApplication()
    const height = async (n: QmdbNode): Promise<number> => (await n.status()).appliedHeight ?? 0
    const validator = await createNode({ ...v.config, application: undefined, consensus: { blockIntervalMs: 20 } }, application)
    nodes.push(validator)
    await waitUntil(async () => await height(validator) >= 8, 60_000, 'the validator at height 8')

    const joiner = await createNode({ ...j.config, application: undefined, bootstrap: validator.libp2p.getMultiaddrs().map(String) }, application)
    nodes.push(joiner)
    await joiner.ready
    const status = await joiner.status()
    expect(status.syncHeight, 'the joiner state-synced from a floor above genesis').to.be.greaterThan(0)
    expect(Object.keys(status.databases ?? {}).sort()).to.deep.equal(['log', 'notes'])

    await validator.pauseConsensus()
    let h = 0
    await waitUntil(async () => {
      h = await height(validator)
      return h === await height(joiner)
    }, 60_000, 'the joiner to reach the validator')
    expect((await joiner.status()).roots).to.deep.equal((await validator.status()).roots)
    await joiner.stop()
    nodes.splice(nodes.indexOf(joiner), 1)

    // the joiner's state, read back from its own LevelDB under the notary's prefixes
    const datastore = new LevelDatastore(join(j.config.dataDir, 'db'))
    await datastore.open()
    try {
      const notes = await ImmutableDb.open({ datastore, prefix: '/notary/notes' })
      const log = await KeylessDb.open({ datastore, prefix: '/notary/log' })
      // the log's last entry is the joiner's tip height H (u64be, right-aligned in 32 bytes);
      // the joiner may have processed a block finalized after the heights were compared
      const last = await log.get(log.size - 2) ?? new Uint8Array(0)
      const tip = Number(new DataView(last.buffer, last.byteOffset).getBigUint64(24))
      expect(last.subarray(0, 24)).to.deep.equal(new Uint8Array(24))
      expect(tip).to.be.within(h, h + 1)
      // one note per block: the key of block k is H(u64be(k)) (the notary's rule)
      for (let k = 1; k <= tip; k++) {
        expect(await notes.get(sha256(u64(k))), `note of block ${k}`).to.not.equal(undefined)
      }
      expect(await notes.get(sha256(u64(tip + 1))), 'no note beyond the tip').to.equal(undefined)
      await notes.close()
      await log.close()
    } finally {
      await datastore.close()
    }
  })
})
