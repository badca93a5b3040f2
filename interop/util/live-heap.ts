/**
 * Preloaded into a node process by the soak harness (`node --expose-gc
 * --import live-heap.js`), never by the CLI itself: on SIGUSR2 it runs a
 * full garbage collection and prints `live-heap <bytes>` on stderr.
 *
 * Why: a status line's `heapUsed` includes garbage not yet collected, a
 * sawtooth whose teeth are tens of MB under load, so growth measured on it
 * swings with the collector's timing. The heap right after a full
 * collection is what the node actually holds — the only figure "memory stays
 * flat" can be judged on without a long run.
 */

const collect = (globalThis as { gc?(): void }).gc

if (collect !== undefined) {
  process.on('SIGUSR2', () => {
    collect()
    process.stderr.write(`live-heap ${process.memoryUsage().heapUsed}\n`)
  })
}
