/**
 * A thin key-value layer over any `interface-datastore` `Datastore`
 * (LevelDB through `datastore-level` by default, `MemoryDatastore` in tests).
 *
 * Invariants:
 * - `WriteBatch.commit()` is atomic on LevelDB (one `db.batch()`), so a
 * database that stages all of a commit's writes in one batch can never be
 * found half-written after a crash;
 * - `{ sync: true }` asks LevelDB to fsync when the store exposes the
 * underlying level instance (survives an OS crash, not only a process
 * crash); other stores ignore it;
 * - a missing key is `undefined`, never an exception.
 */

import { Key } from 'interface-datastore'
import type { Datastore } from 'interface-datastore'

export interface WriteOptions {
  /** fsync the write (LevelDB only). */
  sync?: boolean
}

interface LevelLike {
  batch(ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }>, options?: { sync?: boolean }): Promise<void>
  get(key: string): Promise<Uint8Array | undefined>
  getMany?(keys: string[]): Promise<Array<Uint8Array | undefined>>
}

function levelOf (ds: Datastore): LevelLike | undefined {
  const db = (ds as unknown as { db?: unknown }).db
  if (db != null && typeof (db as LevelLike).batch === 'function' && typeof (db as LevelLike).get === 'function') {
    return db as LevelLike
  }
  return undefined
}

type Op = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

export class WriteBatch {
  private readonly ops: Op[] = []
  private readonly kv: Kv

  constructor (kv: Kv) {
    this.kv = kv
  }

  put (key: string, value: Uint8Array): this {
    this.ops.push({ type: 'put', key, value })
    return this
  }

  delete (key: string): this {
    this.ops.push({ type: 'del', key })
    return this
  }

  get length (): number {
    return this.ops.length
  }

  /** Write every staged operation atomically. */
  async commit (options: WriteOptions = {}): Promise<void> {
    if (this.ops.length === 0) { return }
    await this.kv.writeOps(this.ops, options)
  }
}

export class Kv {
  readonly datastore: Datastore
  private readonly level: LevelLike | undefined

  constructor (datastore: Datastore) {
    this.datastore = datastore
    this.level = levelOf(datastore)
  }

  async get (key: string): Promise<Uint8Array | undefined> {
    if (this.level !== undefined) {
      const v = await this.level.get(key)
      return v == null ? undefined : plain(v)
    }
    try {
      return plain(await this.datastore.get(new Key(key)))
    } catch (err) {
      if ((err as Error).name === 'NotFoundError') { return undefined }
      throw err
    }
  }

  async getMany (keys: string[]): Promise<Array<Uint8Array | undefined>> {
    if (this.level?.getMany !== undefined) {
      const vs = await this.level.getMany(keys)
      return vs.map(v => v == null ? undefined : plain(v))
    }
    return Promise.all(keys.map(async k => this.get(k)))
  }

  /** Keys (as strings) under `prefix`, in order. */
  async * keys (prefix: string): AsyncGenerator<string> {
    for await (const k of this.datastore.queryKeys({ prefix })) {
      yield k.toString()
    }
  }

  batch (): WriteBatch {
    return new WriteBatch(this)
  }

  /**
   * Write `ops` atomically (used by `WriteBatch`).
   */
  async writeOps (ops: Op[], options: WriteOptions): Promise<void> {
    if (this.level !== undefined) {
      await this.level.batch(ops, { sync: options.sync === true })
      return
    }
    const b = this.datastore.batch()
    for (const op of ops) {
      if (op.type === 'put') { b.put(new Key(op.key), op.value) } else { b.delete(new Key(op.key)) }
    }
    await b.commit()
  }
}

/**
 * LevelDB hands out Node `Buffer`s, whose `slice` is a view: callers copying
 * with `.slice()` would share (and could corrupt) stored bytes. A plain
 * `Uint8Array` over the same memory makes `.slice()` a real copy again.
 */
function plain (v: Uint8Array): Uint8Array {
  return Buffer.isBuffer(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v
}
