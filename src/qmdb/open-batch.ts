/**
 * What every batch being written carries besides its operations: where it
 * forks (its database, and its parent sealed batch or none for the applied
 * state) and the metadata of its commit. `immutable`, `keyless` and the
 * compact databases also let the application choose the commit's floor
 * (`FloorBatch`); `any` and `current` compute it by raising the floor.
 */

export class OpenBatch<Db, Parent> {
  readonly db: Db
  readonly parent: Parent | undefined
  protected meta: Uint8Array | undefined

  constructor (db: Db, parent: Parent | undefined) {
    this.db = db
    this.parent = parent
  }

  /** Metadata carried by this batch's commit. */
  withMetadata (metadata: Uint8Array | undefined): this {
    this.meta = metadata
    return this
  }
}

export class FloorBatch<Db, Parent> extends OpenBatch<Db, Parent> {
  protected floor = 0

  /** The floor this batch's commit declares (default 0; must not decrease along a chain). */
  withInactivityFloor (floor: number): this {
    this.floor = floor
    return this
  }
}
