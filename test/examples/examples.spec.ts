import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { expect } from 'aegir/chai'

/**
 * Every program in `examples/` runs as a user would run it (a child process
 * importing the package by name) and must exit 0 with the output it
 * promises; every README block marked `<!-- excerpt: examples/<file> -->`
 * must still be a run of lines of that file (`// ...` skips lines).
 */

const ROOT = new URL('../../../', import.meta.url)

interface Run { code: number | null, stdout: string, stderr: string }

async function runExample (name: string): Promise<Run> {
  const file = new URL(`dist/examples/${name}.js`, ROOT)
  return new Promise(resolve => {
    execFile(process.execPath, [file.pathname], { timeout: 60_000, cwd: ROOT.pathname }, (err, stdout, stderr) => {
      let code: number | null = 0
      if (err !== null) { code = typeof err.code === 'number' ? err.code : null }
      resolve({ code, stdout, stderr })
    })
  })
}

function line (out: string, prefix: string): string {
  const found = out.split('\n').find(l => l.startsWith(prefix))
  if (found === undefined) { throw new Error(`no line starting with ${JSON.stringify(prefix)} in:\n${out}`) }
  return found.slice(prefix.length).trim()
}

describe('examples: complete programs', function () {
  this.timeout(90_000)

  it('serve-and-sync: 10k accounts from one plain libp2p node into another, roots equal', async () => {
    const r = await runExample('serve-and-sync')
    expect(r.code, r.stderr).to.equal(0)
    const served = line(r.stdout, 'served root')
    expect(served).to.match(/^[0-9a-f]{64}$/)
    expect(line(r.stdout, 'synced root')).to.equal(served)
    expect(line(r.stdout, 'value of key 42 is 42 * 7:')).to.equal('true')
  })

  it('compact-sync: the tip of a compact database through a shared registry', async () => {
    const r = await runExample('compact-sync')
    expect(r.code, r.stderr).to.equal(0)
    // 1 genesis commit + 100 appends + 1 commit
    expect(line(r.stdout, 'served root')).to.match(/^[0-9a-f]{64} size 102$/)
    expect(line(r.stdout, 'synced root')).to.equal(line(r.stdout, 'served root'))
    expect(line(r.stdout, 'the standard resolver does not serve the compact database:')).to.equal('true')
  })

  it('beside-your-services: resolvers next to ping and an own protocol', async () => {
    const r = await runExample('beside-your-services')
    expect(r.code, r.stderr).to.equal(0)
    expect(line(r.stdout, 'protocols:').split(' ')).to.include.members([
      '/ipfs/ping/1.0.0', '/myapp/echo/1.0.0', '/qmdb/myapp/state/sync/standard/1.0.0', '/qmdb/myapp/state/sync/compact/1.0.0'
    ])
    expect(line(r.stdout, 'ping ok:')).to.equal('true')
    expect(line(r.stdout, 'echo:')).to.equal('hello')
    expect(line(r.stdout, 'canonical roots match:')).to.equal('true')
  })

  it('verify-proof: honest proofs verify, tampered ones do not', async () => {
    const r = await runExample('verify-proof')
    expect(r.code, r.stderr).to.equal(0)
    expect(line(r.stdout, 'range proof verifies:')).to.equal('true')
    expect(line(r.stdout, 'a tampered range verifies:')).to.equal('false')
    expect(line(r.stdout, 'key 7 has its value now:')).to.equal('true')
    expect(line(r.stdout, 'a forged value verifies:')).to.equal('false')
    expect(r.stdout.match(/^ {2}op \d+: update/gm)).to.have.length(5)
  })

  it("the README's library snippets are excerpts of the examples", async () => {
    const readme = await readFile(new URL('README.md', ROOT), 'utf8')
    const blocks = [...readme.matchAll(/<!-- excerpt: (examples\/[\w-]+\.ts) -->\s*```ts\n([\s\S]*?)```/g)]
    expect(blocks.length).to.be.at.least(3)
    for (const [, file, block] of blocks) {
      const source = (await readFile(new URL(file, ROOT), 'utf8')).split('\n').map(l => l.trim()).filter(l => l !== '')
      let from = 0
      for (const part of block.split(/^\s*\/\/ \.\.\.\s*$/m)) {
        const want = part.split('\n').map(l => l.trim()).filter(l => l !== '')
        if (want.length === 0) { continue }
        let at = -1
        for (let i = from; i + want.length <= source.length && at < 0; i++) {
          if (want.every((l, j) => source[i + j] === l)) { at = i }
        }
        expect(at, `${file}: README excerpt not found in order:\n${want.join('\n')}`).to.be.at.least(0)
        from = at + want.length
      }
    }
  })
})
