/**
 * The vocabulary the consensus engine, the block store (marshal) and the
 * stateful manager share: rounds, the consensus context of a proposal, and
 * the acknowledgement contract of finalized-block delivery. One definition
 * here so the three layers agree structurally without importing each other.
 */

/** A consensus round (epoch, view), ordered lexicographically (epoch first). */
export interface Round {
  epoch: number
  view: number
}

export function compareRounds (a: Round, b: Round): number {
  if (a.epoch !== b.epoch) { return a.epoch < b.epoch ? -1 : 1 }
  if (a.view !== b.view) { return a.view < b.view ? -1 : 1 }
  return 0
}

export function roundsEqual (a: Round, b: Round): boolean {
  return a.epoch === b.epoch && a.view === b.view
}

/** The consensus context of a proposal: what the engine hands to propose and verify. */
export interface Context {
  round: Round
  /** The leader of the round (an engine-specific identity, e.g. a peer id string). */
  leader: string
  /** The parent the proposal builds on: its view and its block digest. */
  parent: { view: number, digest: Uint8Array }
}

/** The release handle of one delivered finalized block. */
export interface Acknowledgement {
  /** The block's state is durable: marshal may advance its processed height past it. */
  acknowledge(): void
  /**
   * The receiver stopped without processing the block (marshal stops and
   * redelivers after restart). A no-op after `acknowledge` or `cancel`.
   */
  cancel(reason?: Error): void
}

/** Receives finalized blocks in height order, each with its acknowledgement. */
export interface FinalizedReporter<B> {
  finalized(block: B, ack: Acknowledgement): void
}
