import '/work/main/dist/src/polyfill.js'
import { AnyDb, syncDatabase, anySync, LocalSource } from '/work/main/dist/src/index.js'
import { MemoryDatastore } from '/work/main/node_modules/datastore-core/dist/src/index.js'
const hex = d => Buffer.from(d).toString('hex').slice(0, 12)
let seed = Number(process.argv[3] ?? 1)
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
const key = i => { const k = new Uint8Array(32); new DataView(k.buffer).setUint32(0, i); return k }
const val = () => { const v = new Uint8Array(32); v[0] = rnd() & 255; v[1] = rnd() & 255; return v }
const mkBatch = () => { const ops = []; const n = 1 + rnd() % 200; for (let i = 0; i < n; i++) { const k = rnd() % 500; ops.push([k, val()]) } return ops }
const ds = process.argv[2] === 'kv'
const src = await AnyDb.open(ds ? { datastore: new MemoryDatastore(), prefix: '/a' } : {})
const history = []
// pending chains of depth 3: batch i built on merkleized i-1 before i-1 is applied
async function run (db, list, record) {
  let pending = []
  for (const ops of list) {
    const parent = pending.length > 0 ? pending[pending.length - 1] : undefined
    const b = parent === undefined ? db.newBatch() : parent.newBatch()
    for (const [k, v] of ops) b.write(key(k), v)
    const m = await b.merkleize()
    record?.push(m.root)
    pending.push(m)
    if (pending.length > 3) { const a = pending.shift(); await db.apply(a); await db.commit() }
  }
  for (const a of pending) { await db.apply(a); await db.commit() }
}
const pre = []; for (let i = 0; i < 60; i++) pre.push(mkBatch())
await run(src, pre)
const target = src.syncTarget()
console.log('target', target.range, hex(target.root))
const dst = await syncDatabase({ kind: anySync(ds ? { datastore: new MemoryDatastore(), prefix: '/b' } : {}), target, source: new LocalSource(src), fetchBatchSize: 17 })
const post = []; for (let i = 0; i < 100; i++) post.push(mkBatch())
const r1 = [], r2 = []
await run(src, post, r1); await run(dst, post, r2)
for (let i = 0; i < r1.length; i++) if (hex(r1[i]) !== hex(r2[i])) { console.log('MISMATCH at', i); process.exit(1) }
console.log('ok', hex(src.root), hex(dst.root))
