/**
 * What a node answers light clients with (the backend of `lightServer`,
 * docs/PROTOCOLS.md "Light-client proofs"): a key's proof against the
 * applied state of a `current` database, with the finalized block at the
 * applied height and its finalization certificate from the block store.
 *
 * Heights: a `current` database proves a key's value only in its applied
 * state (its activity bitmap has no history), so a node proves exactly its
 * applied height, the latest finalized block it has processed. A request
 * for another height, or one that arrives while the node has not processed
 * a block yet (state sync), is answered "unavailable" with the height it can
 * prove; a block whose certificate the node never received (a block filled
 * in through parent links) is answered "unavailable" too.
 *
 * Invariant: the proof, the root and the block belong to one state. Proof
 * reads are asynchronous, so a block applied meanwhile is detected (the
 * database's size moved) and the proof is read again (a few times at most).
 */

import { proveKey } from '../light/prove.ts'
import type { LightAnswer, LightBackend, LightRequest } from '../light/index.ts'
import type { ProvableReader } from '../light/prove.ts'
import type { LightDatabase } from '../light/verify.ts'
import type { BlockCodec, FinalizationScheme } from '../marshal/types.ts'
import type { DatabaseRecord, DatabaseSet } from '../qmdb/index.ts'
import type { Block } from '../stateful/types.ts'

export interface LightBackendInit<B extends Block, Dbs extends DatabaseRecord, F> {
  databases: Readonly<Record<string, LightDatabase>>
  readApplied<T>(fn: (set: DatabaseSet<Dbs>, height: number) => T): Promise<T>
  finalized(height: number): Promise<{ block: B | undefined, finalization: F | undefined }>
  blockCodec: BlockCodec<B>
  scheme: FinalizationScheme<F>
  /** Whether the node processes blocks yet (before: everything is "unavailable"). */
  processing(): boolean
}

const ATTEMPTS = 3

async function raced<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return Promise.race([p, new Promise<never>((_resolve, reject) => {
    signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })])
}

export function nodeLightBackend<B extends Block, Dbs extends DatabaseRecord, F> (init: LightBackendInit<B, Dbs, F>): LightBackend {
  return {
    answer: async (db: string, request: LightRequest, signal: AbortSignal): Promise<LightAnswer> => {
      const spec = init.databases[db]
      if (spec === undefined || !init.processing()) { return { type: 'unavailable', latest: undefined } }
      let height: number | undefined
      for (let i = 0; i < ATTEMPTS; i++) {
        const snapshot = await raced(init.readApplied((set, h) => ({ reader: set.readers()[db] as unknown as ProvableReader, height: h })), signal)
        height = snapshot.height
        if (request.height !== undefined && request.height !== height) { return { type: 'unavailable', latest: height } }
        const proven = await raced(proveKey(snapshot.reader, spec, request.key), signal)
        if (snapshot.reader.size !== proven.size) { continue }
        if (proven.type === 'no-value') { return { type: 'no-value', height } }
        const { block, finalization } = await raced(init.finalized(height), signal)
        if (block === undefined || finalization === undefined) { return { type: 'unavailable', latest: undefined } }
        return {
          type: 'answer',
          block: init.blockCodec.encode(block),
          finalization: init.scheme.encode(finalization),
          root: proven.root,
          result: proven.result,
          value: proven.value,
          proof: proven.proof
        }
      }
      return { type: 'unavailable', latest: height }
    }
  }
}
