/**
 * Ancestry streams handed to the application: blocks newest → oldest, each the
 * direct parent of the one before (digest and height - 1), starting with a
 * known prefix (the parent for proposals; candidate then parent for
 * verification) and continuing through the block provider until height 0 or
 * until the provider can no longer obtain a block.
 *
 * Every `[Symbol.asyncIterator]()` call is an independent cursor that starts
 * again at the first prefix block, so retried attempts never see a partially
 * consumed stream. A non-contiguous block ends the stream with an
 * `AncestryError` (the provider misbehaved).
 */

import { AncestryError } from './errors.ts'
import { bytesEqual } from './types.ts'
import { raceSignal } from './util.ts'
import type { BlockProvider } from './marshal.ts'
import type { Block } from './types.ts'

function checkContiguous (child: Block, parent: Block): void {
  if (!bytesEqual(child.parent, parent.digest) || parent.height + 1 !== child.height) {
    throw new AncestryError(`block at height ${parent.height} is not the parent of the block at height ${child.height}`)
  }
}

/** Whether `parent` is the direct parent of `child`. */
export function isParentOf (parent: Block, child: Block): boolean {
  return bytesEqual(child.parent, parent.digest) && parent.height + 1 === child.height
}

export function ancestry<B extends Block> (provider: BlockProvider<B>, prefix: readonly B[], signal: AbortSignal): AsyncIterable<B> {
  for (let i = 1; i < prefix.length; i++) { checkContiguous(prefix[i - 1], prefix[i]) }
  return {
    async * [Symbol.asyncIterator] () {
      let last: B | undefined
      for (const b of prefix) {
        last = b
        yield b
      }
      while (last !== undefined && last.height > 0) {
        const parent: B | undefined = await raceSignal(provider.subscribeBlock(last.parent, { height: last.height - 1, signal }), signal)
        if (parent === undefined) { return }
        checkContiguous(last, parent)
        last = parent
        yield parent
      }
    }
  }
}
