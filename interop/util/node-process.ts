/**
 * One node of an interop network, running in its own OS process: the real
 * command line (`libp2p-qmdb node --config FILE --control`) or another
 * script speaking the same JSON-lines protocol. The harness reads the
 * node's stdout events, keeps its latest status line, sends control commands
 * on stdin, and can SIGKILL it at any moment.
 */

import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'

/** The compiled CLI (this file runs from dist/interop/util/). */
export const CLI = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url))

/** Node flags that make a process answer {@link NodeProcess.liveHeap} (see live-heap.ts). */
export const LIVE_HEAP_FLAGS = ['--expose-gc', '--import', pathToFileURL(fileURLToPath(new URL('./live-heap.js', import.meta.url))).href]

export interface NodeEvent {
  event: string
  [field: string]: unknown
}

export interface StatusLine extends NodeEvent {
  peerId: string
  phase: string
  appliedHeight?: number
  height?: number
  syncHeight?: number
  roots?: Record<string, string>
  digest?: string
  blockedPeers: Record<string, string>
  peers: number
  memory?: { rss: number, heapTotal: number, heapUsed: number, external: number, arrayBuffers: number, leveldb: number }
}

export class NodeProcess {
  proc: ChildProcessWithoutNullStreams | undefined
  /** Every event of the current run, in order. */
  events: NodeEvent[] = []
  status: StatusLine | undefined
  private readonly stderr: string[] = []
  private waiters: Array<() => void> = []
  private exit: Promise<number | null> = Promise.resolve(null)
  private readonly heapWaiters: Array<(bytes: number) => void> = []

  constructor (readonly name: string, readonly configPath: string, private readonly script = CLI, private readonly statusIntervalMs = 300, private readonly nodeFlags: string[] = []) {}

  get running (): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null
  }

  start (): void {
    if (this.running) { throw new Error(`${this.name} is already running`) }
    this.events = []
    this.status = undefined
    const proc = spawn(process.execPath, [...this.nodeFlags, this.script, 'node', '--config', this.configPath, '--status-interval', String(this.statusIntervalMs), '--control'], {
      env: { ...process.env, NODE_OPTIONS: '' },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    this.proc = proc
    this.exit = new Promise(resolve => { proc.once('exit', code => { this.notify(); resolve(code) }) })
    createInterface({ input: proc.stdout }).on('line', line => {
      let ev: NodeEvent
      try {
        ev = JSON.parse(line)
      } catch {
        this.stderr.push(`(stdout, not JSON) ${line}`)
        return
      }
      if (ev.event === 'status') { this.status = ev as StatusLine }
      this.events.push(ev)
      this.notify()
    })
    createInterface({ input: proc.stderr }).on('line', line => {
      const live = /^live-heap (\d+)$/.exec(line)
      if (live !== null) {
        this.heapWaiters.shift()?.(Number(live[1]))
        return
      }
      this.stderr.push(line)
      if (this.stderr.length > 40) { this.stderr.shift() }
    })
  }

  private notify (): void {
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) { w() }
  }

  /** Wait until `pred` holds (re-checked on every event), or fail after `timeoutMs`. */
  async until<T> (what: string, pred: () => T | undefined | false, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = pred()
      if (v !== undefined && v !== false) { return v }
      if (!this.running) { throw new Error(`${this.name} exited (code ${this.proc?.exitCode}) while waiting for ${what}\n${this.diagnostics()}`) }
      const left = deadline - Date.now()
      if (left <= 0) { throw new Error(`${this.name}: timed out waiting for ${what}\n${this.diagnostics()}`) }
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, Math.min(left, 1000))
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async event (name: string, timeoutMs: number, match: (e: NodeEvent) => boolean = () => true): Promise<NodeEvent> {
    return this.until(`event ${name}`, () => this.events.find(e => e.event === name && match(e)), timeoutMs)
  }

  async height (min: number, timeoutMs: number): Promise<number> {
    return this.until(`applied height ≥ ${min}`, () => {
      const h = this.status?.appliedHeight
      return h !== undefined && h >= min ? h : undefined
    }, timeoutMs)
  }

  /**
   * The V8 heap in use right after a full collection (needs
   * {@link LIVE_HEAP_FLAGS}); `undefined` if the process does not answer in
   * `timeoutMs` (not running, or started without the flags).
   */
  async liveHeap (timeoutMs = 10_000): Promise<number | undefined> {
    if (!this.running || !this.nodeFlags.includes('--expose-gc')) { return undefined }
    return new Promise(resolve => {
      const answer = (bytes: number | undefined): void => { clearTimeout(timer); resolve(bytes) }
      const timer = setTimeout(() => {
        const i = this.heapWaiters.indexOf(answer)
        if (i >= 0) { this.heapWaiters.splice(i, 1) }
        resolve(undefined)
      }, timeoutMs)
      this.heapWaiters.push(answer)
      this.proc?.kill('SIGUSR2')
    })
  }

  send (cmd: Record<string, unknown>): void {
    this.proc?.stdin.write(`${JSON.stringify(cmd)}\n`)
  }

  /** SIGKILL: no cleanup, no flush — a crash. */
  async kill (): Promise<void> {
    if (!this.running) { return }
    this.proc?.kill('SIGKILL')
    await this.exit
  }

  /** SIGTERM and wait for the exit code (0 for a clean shutdown). */
  async stop (timeoutMs = 20_000): Promise<number | null> {
    if (!this.running) { return this.proc?.exitCode ?? null }
    this.proc?.kill('SIGTERM')
    const t = setTimeout(() => { this.proc?.kill('SIGKILL') }, timeoutMs)
    const code = await this.exit
    clearTimeout(t)
    return code
  }

  diagnostics (): string {
    const events = this.events.filter(e => e.event !== 'status').slice(-8).map(e => JSON.stringify(e))
    return `--- ${this.name}: last events ---\n${events.join('\n')}\nlatest status: ${JSON.stringify(this.status)}\n--- stderr (last lines) ---\n${this.stderr.join('\n')}`
  }
}
