/**
 * The user-operation phase of an ordered `any`/`current` merkleize (the
 * ordered half of `storage/src/qmdb/any/batch.rs`): every `Update` carries
 * the next active key after the batch (cyclic: the largest key points to the
 * smallest, a lone key to itself), so each create or delete also rewrites the
 * untouched key in front of it.
 *
 * Emission order (the conformance hashes depend on it): deletes of existing
 * keys in key order, updates of existing keys in key order, creates in key
 * order, then one rewrite per distinct untouched predecessor, visiting the
 * creates and then the deletes in key order. Deletes, updates and rewrites
 * are user steps (each makes one older operation inactive); the floor raise
 * and the commit follow in `any.ts`.
 *
 * The parent state is the committed ordered index overlaid with the diffs of
 * the unapplied ancestors (nearest first), so chains of batches see each
 * other's keys.
 */

import { QmdbError } from './errors.ts'
import { compareBytes } from './ops.ts'
import { prefixOf } from './ordered-index.ts'
import type { BatchDiff } from './batch-diff.ts'
import type { OpWriter } from './batch-ops.ts'
import type { Mutations } from './mutations.ts'
import type { AnyOpCodec } from './ops.ts'
import type { OrderedKeyIndex } from './ordered-index.ts'

/** What the ordered phase reads of the batch's parent state (`any.ts` supplies it). */
export interface OrderedBase {
  db: { readonly codec: AnyOpCodec, readonly orderedIndex: OrderedKeyIndex | undefined }
  /** unapplied ancestors, nearest first */
  ancestors: ReadonlyArray<{ diff: BatchDiff }>
  /** size of the parent state (first location of this batch) */
  size: number
  /** location of the key in the parent state, or -1 */
  loc(key: Uint8Array): number
}

/** Ties longer than this are sorted by comparator instead of insertion (keys sharing long prefixes). */
const INSERTION_RUN = 16

/**
 * Indices of `keys` in key order, equal keys by index: one native sort of
 * `prefix * 2^21 + index` packed in a float (exact below 2^53), then each run
 * of equal prefixes finished by full comparison. No comparator call per pair
 * for keys that differ in their first 4 bytes (hashes nearly always do).
 */
function keyOrder (keys: readonly Uint8Array[]): Uint32Array {
  const n = keys.length
  const order = new Uint32Array(n)
  const byKey = (a: number, b: number): number => compareBytes(keys[a], keys[b]) || a - b
  if (n >= 1 << 21) {
    for (let i = 0; i < n; i++) { order[i] = i }
    return order.sort(byKey)
  }
  const packed = new Float64Array(n)
  for (let i = 0; i < n; i++) { packed[i] = prefixOf(keys[i]) * 0x200000 + i }
  packed.sort()
  for (let i = 0; i < n; i++) { order[i] = packed[i] % 0x200000 }
  for (let s = 0; s < n;) {
    const p = Math.floor(packed[s] / 0x200000)
    let e = s + 1
    while (e < n && Math.floor(packed[e] / 0x200000) === p) { e++ }
    if (e - s > INSERTION_RUN) {
      order.subarray(s, e).sort(byKey)
    } else {
      for (let i = s + 1; i < e; i++) {
        const v = order[i]
        let j = i - 1
        while (j >= s && byKey(order[j], v) > 0) { order[j + 1] = order[j]; j-- }
        order[j + 1] = v
      }
    }
    s = e
  }
  return order
}

/** Index of `key` in sorted `keys`, or -1. */
function find (keys: readonly Uint8Array[], key: Uint8Array): number {
  const j = firstAbove(keys, key) - 1
  return j >= 0 && compareBytes(keys[j], key) === 0 ? j : -1
}

/** Greatest index in sorted `keys` whose key is < `key` (or -1). */
function lastBelow (keys: readonly Uint8Array[], key: Uint8Array): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareBytes(keys[mid], key) < 0) { lo = mid + 1 } else { hi = mid }
  }
  return lo - 1
}

/** Smallest index in sorted `keys` whose key is > `key` (or keys.length). */
function firstAbove (keys: readonly Uint8Array[], key: Uint8Array): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (compareBytes(keys[mid], key) <= 0) { lo = mid + 1 } else { hi = mid }
  }
  return lo
}

function maxKey (a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (a === undefined) { return b }
  if (b === undefined) { return a }
  return compareBytes(a, b) >= 0 ? a : b
}

function minKey (a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (a === undefined) { return b }
  if (b === undefined) { return a }
  return compareBytes(a, b) <= 0 ? a : b
}

/** `keys` (sorted) gathered in the order `order` gives. */
function gather (keys: readonly Uint8Array[], order: Uint32Array): Uint8Array[] {
  const out = new Array<Uint8Array>(order.length)
  for (let i = 0; i < order.length; i++) { out[i] = keys[order[i]] }
  return out
}

/**
 * The active keys of the parent state, in order: the committed index
 * overlaid with ancestor diffs, minus the keys this batch deletes (`skip`,
 * sorted). Membership tests are binary searches of sorted key arrays, so a
 * step costs no string id.
 */
class ParentOrder {
  private readonly index: OrderedKeyIndex
  /** keys the ancestors deleted or this batch deletes, sorted */
  private readonly gone: Uint8Array[]
  /** keys the ancestors made active and this batch keeps, sorted */
  private readonly added: Uint8Array[]

  constructor (index: OrderedKeyIndex, ancestors: ReadonlyArray<{ diff: BatchDiff }>, deleted: readonly Uint8Array[]) {
    this.index = index
    const gone: Uint8Array[] = deleted.slice()
    const added: Uint8Array[] = []
    ancestors.forEach(({ diff }, a) => {
      for (let s = 0; s < diff.size; s++) {
        const key = diff.keyOf(s)
        // a nearer ancestor's entry for the key wins
        let shadowed = false
        for (let b = 0; b < a && !shadowed; b++) { shadowed = ancestors[b].diff.slotOf(key) >= 0 }
        if (shadowed) { continue }
        if (diff.locs[s] < 0) { gone.push(key) } else if (find(deleted, key) < 0) { added.push(key) }
      }
    })
    this.gone = deleted.length === gone.length ? gone : gather(gone, keyOrder(gone))
    this.added = gather(added, keyOrder(added))
  }

  private skip (key: Uint8Array): boolean {
    return this.gone.length > 0 && find(this.gone, key) >= 0
  }

  /** Greatest active key < `key` (undefined `key`: the greatest). */
  prev (key: Uint8Array | undefined): Uint8Array | undefined {
    let c = key === undefined ? this.index.last() : this.index.lower(key)
    while (c !== undefined && this.skip(c.key)) { c = this.index.lower(c.key) }
    const j = key === undefined ? this.added.length - 1 : lastBelow(this.added, key)
    return maxKey(c?.key, j >= 0 ? this.added[j] : undefined)
  }

  /** Smallest active key > `key` (undefined `key`: the smallest). */
  next (key: Uint8Array | undefined): Uint8Array | undefined {
    let c = key === undefined ? this.index.first() : this.index.higher(key)
    while (c !== undefined && this.skip(c.key)) { c = this.index.higher(c.key) }
    const j = key === undefined ? 0 : firstAbove(this.added, key)
    return minKey(c?.key, j < this.added.length ? this.added[j] : undefined)
  }
}

/**
 * Emit the user operations of an ordered batch into `ops` and its key changes
 * into `diff`. `read(locs)` returns the encoded operations at `locs` in the
 * parent state (one storage read for all of them). Returns the user steps and the change in active keys.
 *
 * Mutations are held as parallel arrays (keys, values, locations) indexed in
 * key order; the three groups are index lists into them.
 */
export async function emitOrderedUserOps (
  base: OrderedBase,
  mutations: Mutations,
  out: OpWriter,
  diff: BatchDiff,
  read: (locs: readonly number[]) => Promise<Uint8Array[]>
): Promise<{ userSteps: number, delta: number }> {
  const db = base.db
  const codec = db.codec
  const ops = out.ops
  const index = db.orderedIndex
  if (index === undefined) { throw new QmdbError('UnexpectedData', 'ordered merkleize on an unordered database') }

  const n = mutations.size
  const unsorted = Array.from({ length: n }, (_, i) => mutations.keyOf(i))
  const vals = Array.from({ length: n }, (_, i) => mutations.valueOf(i))
  const order = keyOrder(unsorted)
  const keys = gather(unsorted, order)
  const locs = new Float64Array(n)
  const deleted: Uint8Array[] = []
  const delLocs: number[] = []
  const updated = new Uint32Array(n)
  const created = new Uint32Array(n)
  let nu = 0
  let nc = 0
  for (let j = 0; j < n; j++) {
    const loc = base.loc(keys[j])
    locs[j] = loc
    const value = vals[order[j]]
    if (loc >= 0) {
      if (value === null) {
        deleted.push(keys[j])
        delLocs.push(loc)
      } else {
        updated[nu++] = j
      }
    } else if (value !== null) {
      created[nc++] = j
    }
  }
  const createdKeys = new Array<Uint8Array>(nc)
  for (let j = 0; j < nc; j++) { createdKeys[j] = keys[created[j]] }
  const parent = new ParentOrder(index, base.ancestors, deleted)

  /** The next active key after the batch (cyclic); `key` is itself active after the batch. */
  const successor = (key: Uint8Array): Uint8Array => {
    const j = nc === 0 ? 0 : firstAbove(createdKeys, key)
    const after = minKey(parent.next(key), j < nc ? createdKeys[j] : undefined)
    const next = after ?? minKey(parent.next(undefined), createdKeys[0])
    if (next === undefined) { throw new QmdbError('DataCorrupted', 'no active key after the batch') }
    return next
  }

  let userSteps = 0
  let delta = 0
  for (let j = 0; j < deleted.length; j++) {
    out.keyed(deleted[j], null)
    diff.add(deleted[j], -1, undefined, delLocs[j])
    delta--
    userSteps++
  }
  for (let u = 0; u < nu; u++) {
    const j = updated[u]
    const value = vals[order[j]] as Uint8Array
    diff.add(keys[j], base.size + ops.length, value, locs[j])
    out.keyed(keys[j], value, successor(keys[j]))
    userSteps++
  }
  for (let c = 0; c < nc; c++) {
    const j = created[c]
    const value = vals[order[j]] as Uint8Array
    diff.add(keys[j], base.size + ops.length, value, -1)
    out.keyed(keys[j], value, successor(keys[j]))
    delta++
  }

  // the untouched key in front of each create and delete now points elsewhere: rewrite it
  const found: Uint8Array[] = []
  if (parent.next(undefined) !== undefined) {
    for (const changed of [createdKeys, deleted]) {
      for (const key of changed) {
        const f = parent.prev(key) ?? parent.prev(undefined)
        if (f !== undefined && find(keys, f) < 0) { found.push(f) }
      }
    }
  }
  // distinct keys, each at its first sighting (a sort of the sightings, equal keys by position)
  const seen = keyOrder(found)
  const first = new Uint8Array(found.length)
  for (let s = 0; s < seen.length; s++) {
    if (s === 0 || compareBytes(found[seen[s - 1]], found[seen[s]]) !== 0) { first[seen[s]] = 1 }
  }
  const rewrites: Uint8Array[] = []
  const rewriteLocs: number[] = []
  for (let s = 0; s < found.length; s++) {
    if (first[s] === 0) { continue }
    const key = found[s].slice() // index keys are views: keep a copy
    rewrites.push(key)
    rewriteLocs.push(base.loc(key))
  }
  // their current values: read together (a large batch would otherwise wait on each read in turn)
  const current = rewrites.length === 0 ? [] : await read(rewriteLocs)
  for (let r = 0; r < rewrites.length; r++) {
    const op = codec.decode(current[r])
    if (op.type !== 'update') { throw new QmdbError('DataCorrupted', `active key at ${rewriteLocs[r]} is not an update`) }
    diff.add(rewrites[r], base.size + ops.length, op.value, rewriteLocs[r])
    out.keyed(rewrites[r], op.value, successor(rewrites[r]))
    userSteps++
  }
  return { userSteps, delta }
}
