/**
 * Runs the compiled `libp2p-qmdb` command as a child process (the CLI specs):
 * exit code, stdout and stderr, killed after a bound.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

// dist/test/util/cli-run.js -> dist/src/cli/index.js
const CLI = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url))

export interface Run { code: number | null, stdout: string, stderr: string }

export async function cli (args: string[], timeoutMs = 30_000): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.DEBUG
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', c => { resolve(c) })
    })
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}
