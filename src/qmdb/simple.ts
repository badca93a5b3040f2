/**
 * The merkleized batch shared by `immutable` and `keyless` (and their compact
 * variants): a list of operations ending with a commit whose floor is chosen
 * by the application (commonware `storage/src/qmdb/immutable`, `storage/src/qmdb/keyless`). No floor raising, no moves.
 */

import { inactivePeaks } from '../merkle/index.ts'
import type { MerkleizedCore } from './core.ts'
import type { Digest, MerkleizedMmrBatch } from '../merkle/index.ts'

export interface SimpleBatchInit<Owner extends object, Self> {
  owner: Owner
  parent: Self | undefined
  baseToken: object | undefined
  ops: Uint8Array[]
  mmr: MerkleizedMmrBatch
  baseSize: number
  floor: number
  metadata: Uint8Array | undefined
}

export class SimpleMerkleized<Owner extends object, Self extends SimpleMerkleized<Owner, Self>> implements MerkleizedCore {
  readonly owner: Owner
  parent: Self | undefined
  baseToken: object | undefined
  appliedToken: object | undefined = undefined
  readonly ops: Uint8Array[]
  readonly mmr: MerkleizedMmrBatch
  readonly baseSize: number
  readonly size: number
  readonly floor: number
  readonly metadata: Uint8Array | undefined
  readonly opsRoot: Digest

  constructor (init: SimpleBatchInit<Owner, Self>) {
    this.owner = init.owner
    this.parent = init.parent
    this.baseToken = init.baseToken
    this.ops = init.ops
    this.mmr = init.mmr
    this.baseSize = init.baseSize
    this.size = init.baseSize + init.ops.length
    this.floor = init.floor
    this.metadata = init.metadata
    this.opsRoot = init.mmr.root(inactivePeaks(this.size, this.floor))
  }

  /** The root of the state after this batch. */
  get root (): Digest { return this.opsRoot }
}
