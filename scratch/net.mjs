import '/work/main/dist/src/polyfill.js'
import { createNode, loadOrCreateKey } from '/work/main/dist/src/index.js'
import { peerIdFromPrivateKey } from '/work/main/node_modules/@libp2p/peer-id/dist/src/index.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const dir = await mkdtemp(join(tmpdir(), 'qmdb-net-'))
const keys = []
for (let i = 0; i < 4; i++) keys.push(await loadOrCreateKey(join(dir, `v${i}`, 'peer.key')))
const validators = keys.map(k => peerIdFromPrivateKey(k).toString())
const base = { chainId: 'demo', validators, ledger: { autoTransfers: 100, accountSpace: 500 }, consensus: { leaderTimeoutMs: 800, notarizationTimeoutMs: 1600 } }
const nodes = []
for (let i = 0; i < 4; i++) {
  const boot = nodes.map(n => n.libp2p.getMultiaddrs()[0].toString())
  nodes.push(await createNode({ ...base, dataDir: join(dir, `v${i}`), bootstrap: boot }))
}
const t0 = Date.now()
const show = async () => { for (const n of nodes) { const s = await n.status(); console.log(s.phase, s.height, s.view, s.finalizedView, s.roots?.accounts.slice(0,8)) } }
for (let i = 0; i < 20; i++) { await new Promise(r => setTimeout(r, 1000)); const s = await nodes[0].status(); console.log('t', Date.now() - t0, 'height', s.height, 'view', s.view, 'fin', s.finalizedView); if ((s.height ?? 0) >= 15) break }
await show()
const joiner = await createNode({ ...base, dataDir: join(dir, 'joiner'), stateSync: true, bootstrap: nodes.map(n => n.libp2p.getMultiaddrs()[0].toString()) }, { onProgress: p => console.log('progress', p.database, p.synced, p.total), onPhase: p => console.log('joiner phase', p) })
await joiner.ready
console.log('joiner ready', await joiner.status())
await new Promise(r => setTimeout(r, 3000))
for (const n of nodes) await n.pauseConsensus()
await new Promise(r => setTimeout(r, 2000))
await show(); const js = await joiner.status(); console.log('joiner', js.phase, js.height, js.syncHeight, js.roots?.accounts.slice(0,8))
for (const n of [...nodes, joiner]) await n.stop()
await rm(dir, { recursive: true, force: true })
