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
import { compareBytes, keyId } from './ops.ts'
import type { DiffEntry, Mutation } from './diff.ts'
import type { AnyOpCodec } from './ops.ts'
import type { OrderedKeyIndex } from './ordered-index.ts'

/** What the ordered phase reads of the batch's parent state (`any.ts` supplies it). */
export interface OrderedBase {
  db: { readonly codec: AnyOpCodec, readonly orderedIndex: OrderedKeyIndex | undefined }
  /** unapplied ancestors, nearest first */
  ancestors: ReadonlyArray<{ diff: Map<string, DiffEntry> }>
  /** size of the parent state (first location of this batch) */
  size: number
  /** location of the key in the parent state, or -1 */
  loc(id: string, key: Uint8Array): number
}

type Skip = (key: Uint8Array) => boolean

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

/** The active keys of the parent state, in order: the committed index overlaid with ancestor diffs. */
class ParentOrder {
  private readonly index: OrderedKeyIndex
  /** keys the ancestors deleted (ids) */
  private readonly gone = new Set<string>()
  /** keys the ancestors made active, sorted */
  private readonly added: Uint8Array[] = []

  constructor (index: OrderedKeyIndex, ancestors: ReadonlyArray<{ diff: Map<string, DiffEntry> }>) {
    this.index = index
    const seen = new Set<string>()
    for (const a of ancestors) {
      for (const [id, e] of a.diff) {
        if (seen.has(id)) { continue }
        seen.add(id)
        if (e.loc < 0) { this.gone.add(id) } else { this.added.push(e.key) }
      }
    }
    this.added.sort(compareBytes)
  }

  /** Greatest active key < `key` (undefined `key`: the greatest) that `skip` does not reject. */
  prev (key: Uint8Array | undefined, skip: Skip): Uint8Array | undefined {
    let c = key === undefined ? this.index.last() : this.index.lower(key)
    while (c !== undefined && (this.gone.has(keyId(c.key)) || skip(c.key))) { c = this.index.lower(c.key) }
    let j = key === undefined ? this.added.length - 1 : lastBelow(this.added, key)
    while (j >= 0 && skip(this.added[j])) { j-- }
    return maxKey(c?.key, j >= 0 ? this.added[j] : undefined)
  }

  /** Smallest active key > `key` (undefined `key`: the smallest) that `skip` does not reject. */
  next (key: Uint8Array | undefined, skip: Skip): Uint8Array | undefined {
    let c = key === undefined ? this.index.first() : this.index.higher(key)
    while (c !== undefined && (this.gone.has(keyId(c.key)) || skip(c.key))) { c = this.index.higher(c.key) }
    let j = key === undefined ? 0 : firstAbove(this.added, key)
    while (j < this.added.length && skip(this.added[j])) { j++ }
    return minKey(c?.key, j < this.added.length ? this.added[j] : undefined)
  }
}

interface Existing { id: string, key: Uint8Array, loc: number }

/**
 * Emit the user operations of an ordered batch into `ops` and its key changes
 * into `diff`. `read(loc)` returns the encoded operation at `loc` in the
 * parent state. Returns the user steps and the change in active keys.
 */
export async function emitOrderedUserOps (
  base: OrderedBase,
  mutations: Map<string, Mutation>,
  ops: Uint8Array[],
  diff: Map<string, DiffEntry>,
  read: (loc: number) => Promise<Uint8Array>
): Promise<{ userSteps: number, delta: number }> {
  const db = base.db
  const codec = db.codec
  const index = db.orderedIndex
  if (index === undefined) { throw new QmdbError('UnexpectedData', 'ordered merkleize on an unordered database') }
  const parent = new ParentOrder(index, base.ancestors)

  const deleted: Existing[] = []
  const updated: Array<Existing & { value: Uint8Array }> = []
  const created: Array<{ id: string, key: Uint8Array, value: Uint8Array }> = []
  for (const [id, m] of mutations) {
    const loc = base.loc(id, m.key)
    if (loc >= 0) {
      if (m.value === null) { deleted.push({ id, key: m.key, loc }) } else { updated.push({ id, key: m.key, loc, value: m.value }) }
    } else if (m.value !== null) {
      created.push({ id, key: m.key, value: m.value })
    }
  }
  const byKey = (a: { key: Uint8Array }, b: { key: Uint8Array }): number => compareBytes(a.key, b.key)
  deleted.sort(byKey)
  updated.sort(byKey)
  created.sort(byKey)
  const deletedIds = new Set(deleted.map(d => d.id))
  const createdKeys = created.map(c => c.key)
  const isDeleted: Skip = k => deletedIds.has(keyId(k))

  /** The next active key after the batch (cyclic); `key` is itself active after the batch. */
  const successor = (key: Uint8Array): Uint8Array => {
    const j = firstAbove(createdKeys, key)
    const after = minKey(parent.next(key, isDeleted), j < createdKeys.length ? createdKeys[j] : undefined)
    const next = after ?? minKey(parent.next(undefined, isDeleted), createdKeys[0])
    if (next === undefined) { throw new QmdbError('DataCorrupted', 'no active key after the batch') }
    return next
  }

  let userSteps = 0
  let delta = 0
  for (const d of deleted) {
    ops.push(codec.encode({ type: 'delete', key: d.key }))
    diff.set(d.id, { key: d.key, loc: -1, value: undefined, prev: d.loc })
    delta--
    userSteps++
  }
  for (const u of updated) {
    diff.set(u.id, { key: u.key, loc: base.size + ops.length, value: u.value, prev: u.loc })
    ops.push(codec.encode({ type: 'update', key: u.key, value: u.value, nextKey: successor(u.key) }))
    userSteps++
  }
  for (const c of created) {
    diff.set(c.id, { key: c.key, loc: base.size + ops.length, value: c.value, prev: -1 })
    ops.push(codec.encode({ type: 'update', key: c.key, value: c.value, nextKey: successor(c.key) }))
    delta++
  }

  // the untouched key in front of each create and delete now points elsewhere: rewrite it
  const rewrites: Existing[] = []
  if (parent.next(undefined, isDeleted) !== undefined) {
    const rewritten = new Set<string>()
    for (const changed of [...createdKeys, ...deleted.map(d => d.key)]) {
      const found = parent.prev(changed, isDeleted) ?? parent.prev(undefined, isDeleted)
      if (found === undefined) { continue }
      const id = keyId(found)
      if (mutations.has(id) || rewritten.has(id)) { continue }
      rewritten.add(id)
      const key = found.slice() // index keys are views: keep a copy
      rewrites.push({ id, key, loc: base.loc(id, key) })
    }
  }
  // their current values: read together (a large batch would otherwise wait on each read in turn)
  const current = await Promise.all(rewrites.map(async r => read(r.loc)))
  rewrites.forEach((r, i) => {
    const op = codec.decode(current[i])
    if (op.type !== 'update') { throw new QmdbError('DataCorrupted', `active key at ${r.loc} is not an update`) }
    diff.set(r.id, { key: r.key, loc: base.size + ops.length, value: op.value, prev: r.loc })
    ops.push(codec.encode({ type: 'update', key: r.key, value: op.value, nextKey: successor(r.key) }))
    userSteps++
  })
  return { userSteps, delta }
}
