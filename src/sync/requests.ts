/**
 * Outstanding fetches of the sync engine (commonware `storage/src/qmdb/sync`): each has an id, a
 * request and an abort controller; at most one per start location (a new
 * request at the same start supersedes and aborts the old one).
 */

import type { Request } from './messages.ts'

export interface Outstanding {
  id: number
  request: Request
  controller: AbortController
}

export class OutstandingRequests {
  private nextId = 0
  private readonly byId = new Map<number, Outstanding>()
  private readonly byStart = new Map<number, number>()

  get size (): number { return this.byId.size }

  /** Track a new request (aborting any outstanding one at the same start). */
  add (request: Request): Outstanding {
    const old = this.byStart.get(request.start)
    if (old !== undefined) { this.remove(old) }
    const o: Outstanding = { id: this.nextId++, request, controller: new AbortController() }
    this.byId.set(o.id, o)
    this.byStart.set(request.start, o.id)
    return o
  }

  get (id: number): Outstanding | undefined {
    return this.byId.get(id)
  }

  hasStart (start: number): boolean {
    return this.byStart.has(start)
  }

  /** Stop tracking `id`; aborts it when `abort` (default). Returns the removed entry. */
  remove (id: number, abort = true): Outstanding | undefined {
    const o = this.byId.get(id)
    if (o === undefined) { return undefined }
    this.byId.delete(id)
    if (this.byStart.get(o.request.start) === id) { this.byStart.delete(o.request.start) }
    if (abort) { o.controller.abort() }
    return o
  }

  /** Abort and forget every request starting at or before `loc`. */
  removeAtOrBefore (loc: number): void {
    for (const o of [...this.byId.values()]) {
      if (o.request.start <= loc) { this.remove(o.id) }
    }
  }

  /** Abort everything. */
  clear (): void {
    for (const id of [...this.byId.keys()]) { this.remove(id) }
  }

  /** `[start, maxOps]` of every outstanding request, sorted by start. */
  ranges (): Array<{ start: number, count: number }> {
    return [...this.byId.values()]
      .map(o => ({ start: o.request.start, count: o.request.type === 'operations' ? o.request.maxOps : 1 }))
      .sort((a, b) => a.start - b.start)
  }
}
