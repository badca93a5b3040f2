import '/work/main/dist/src/polyfill.js'
import { AnyDb, syncDatabase, anySync, LocalSource } from '/work/main/dist/src/index.js'
import { MemoryDatastore } from '/work/main/node_modules/datastore-core/dist/src/index.js'
const hex = d => Buffer.from(d).toString('hex').slice(0, 12)
let seed = 1
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
const key = i => { const k = new Uint8Array(32); new DataView(k.buffer).setUint32(0, i); return k }
const val = () => { const v = new Uint8Array(32); v[0] = rnd() & 255; v[1] = rnd() & 255; return v }
const mkBatch = (db) => { const ops = []; const n = 1 + rnd() % 40; for (let i = 0; i < n; i++) { const k = rnd() % 300; ops.push([k, (rnd() % 10 === 0) ? null : val()]) } return ops }
const applyOps = async (db, ops) => { const b = db.newBatch(); for (const [k, v] of ops) b.write(key(k), v); const m = await b.merkleize(); await db.apply(m); await db.commit() }
const ds = process.argv[2] === 'kv'
const src = await AnyDb.open(ds ? { datastore: new MemoryDatastore(), prefix: '/a' } : {})
for (let i = 0; i < 60; i++) await applyOps(src, mkBatch(src))
const target = src.syncTarget()
console.log('target', target.range, hex(target.root))
const dst = await syncDatabase({ kind: anySync(ds ? { datastore: new MemoryDatastore(), prefix: '/b' } : {}), target, source: new LocalSource(src), fetchBatchSize: 17 })
console.log('synced', hex(dst.root), dst.size, dst.activeKeys, src.activeKeys)
for (let i = 0; i < 100; i++) {
  const ops = mkBatch(src)
  await applyOps(src, ops); await applyOps(dst, ops)
  if (hex(src.root) !== hex(dst.root)) { console.log('MISMATCH at', i, src.syncTarget().range, dst.syncTarget().range); process.exit(1) }
}
console.log('ok')
