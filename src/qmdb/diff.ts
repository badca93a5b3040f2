/**
 * The change records of an `any` batch, shared by the unordered pipeline
 * (`any.ts`) and the ordered user-operation phase (`ordered-batch.ts`), kept
 * apart so neither imports the other.
 */

/**
 * One key's change in a batch: `loc === -1` means deleted; `prev === -1` means
 * absent before. A moved operation keeps its encoded bytes in `op` and its
 * value is decoded only if someone reads it (moves are the bulk of a batch).
 */
export interface DiffEntry {
  key: Uint8Array
  loc: number
  value: Uint8Array | undefined
  prev: number
  op?: Uint8Array
}

/** One pending write of a batch (`null` deletes). */
export interface Mutation {
  key: Uint8Array
  value: Uint8Array | null
}
