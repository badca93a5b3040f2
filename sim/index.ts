/**
 * `npm run sim -- --seed S` replays one seeded run and prints its trace hash
 * (and, if it fails, its failures and last events); `npm run sim -- --seeds N
 * [--from F] [--minutes M]` runs seeds F..F+N-1 (stopping after M minutes)
 * and prints a table: runs, blocks finalized, faults injected per kind,
 * failures with their seeds, and the byzantine servers that reached nodes
 * and were blocked. The exit
 * code is 1 if any run failed. See the README's "Simulation" section.
 */
import { FAULT_KINDS, runSeed } from './run.ts'
import type { FaultKind, RunResult } from './run.ts'

function out (line: string): void {
  process.stdout.write(`${line}\n`)
}

function err (line: string): void {
  process.stderr.write(`${line}\n`)
}

function arg (name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) { return undefined }
  const v = Number(process.argv[i + 1])
  if (!Number.isSafeInteger(v) || v < 0) { throw new Error(`--${name} needs a non-negative integer`) }
  return v
}

function printFailure (r: RunResult): void {
  out(`seed ${r.seed} FAILED (replay: npm run sim -- --seed ${r.seed})`)
  for (const f of r.failures) { out(`  ${f.split('\n')[0]}`) }
  out('  last events:')
  for (const line of r.tail) { out(`    ${line}`) }
}

async function main (): Promise<number> {
  const seed = arg('seed')
  if (seed !== undefined) {
    const r = await runSeed(seed)
    out(`seed ${seed} hash ${r.hash} height ${r.height} virtual ${(r.virtualMs / 1000).toFixed(1)} s real ${(r.realMs / 1000).toFixed(1)} s messages ${r.messages.sent} (${r.messages.dropped} dropped, ${r.messages.duplicated} duplicated)`)
    out(`state-sync joiner handed off at ${r.syncHeight ?? '-'}; byzantine data reached ${r.byzantine.reached} node(s), blocked by ${r.byzantine.blamed}; stalling / no-data servers asked in vain by ${r.byzantine.stalled}, blocked by the strike rule at ${r.byzantine.struck}`)
    out(`gossip judged on arrival: ${r.gossip.accept} accepted, ${r.gossip.ignore} ignored, ${r.gossip.reject} rejected`)
    out(`faults ${FAULT_KINDS.filter(k => r.faults[k] > 0).map(k => `${k}=${r.faults[k]}`).join(' ') || 'none'}`)
    if (r.failures.length > 0) { printFailure(r) }
    return r.failures.length > 0 ? 1 : 0
  }
  const count = arg('seeds') ?? 100
  const from = arg('from') ?? 1
  const minutes = arg('minutes')
  const until = minutes === undefined ? Infinity : performance.now() + minutes * 60_000
  const totals = Object.fromEntries(FAULT_KINDS.map(k => [k, 0])) as Record<FaultKind, number>
  const failed: RunResult[] = []
  let blocks = 0
  let runs = 0
  const byzantine = { reached: 0, blamed: 0, stalled: 0, struck: 0 }
  const struckSeeds: number[] = []
  const gossip = { accept: 0, ignore: 0, reject: 0 }
  const t0 = performance.now()
  for (let s = from; s < from + count && performance.now() < until; s++) {
    runs++
    const r = await runSeed(s)
    blocks += Math.max(0, r.height)
    for (const k of FAULT_KINDS) { totals[k] += r.faults[k] }
    for (const k of ['reached', 'blamed', 'stalled', 'struck'] as const) { byzantine[k] += r.byzantine[k] }
    for (const k of ['accept', 'ignore', 'reject'] as const) { gossip[k] += r.gossip[k] }
    if (r.byzantine.struck > 0) { struckSeeds.push(s) }
    if (r.failures.length > 0) {
      failed.push(r)
      printFailure(r)
    }
    if (runs % 50 === 0) { err(`${runs}/${count} runs, ${failed.length} failed`) }
  }
  const elapsed = (performance.now() - t0) / 60_000
  out('| runs | blocks finalized | ' + FAULT_KINDS.join(' | ') + ' | failures | runs/min |')
  out('|' + ' --- |'.repeat(FAULT_KINDS.length + 4))
  out(`| ${runs} | ${blocks} | ${FAULT_KINDS.map(k => totals[k]).join(' | ')} | ${failed.length === 0 ? 0 : failed.map(r => r.seed).join(' ')} | ${(runs / elapsed).toFixed(1)} |`)
  out(`byzantine (node, server) pairs: bad data reached ${byzantine.reached}, blocked for good ${byzantine.blamed}; stalling / no-data servers asked in vain ${byzantine.stalled}, blocked by the strike rule ${byzantine.struck}${struckSeeds.length > 0 ? ` (seeds ${struckSeeds.slice(0, 10).join(' ')})` : ''}`)
  out(`gossip judged on arrival by the topic validators' checks: ${gossip.accept} accepted, ${gossip.ignore} ignored, ${gossip.reject} rejected (only from byzantine block servers)`)
  return failed.length > 0 ? 1 : 0
}

process.exitCode = await main()
