/**
 * The seeded simulation (`sim/`, README "Simulation"): a fixed set of seeds
 * must pass every invariant, a seed replays to the same trace hash, and the
 * simulator's own parts (virtual clock, power-loss store) behave as the
 * invariants assume — including a broken store the durability check must
 * catch, so that check can fail.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect } from 'aegir/chai'
import { Key } from 'interface-datastore'
import { VirtualClock } from '../../sim/clock.ts'
import { SimNetwork } from '../../sim/network.ts'
import { FAULT_KINDS, runSeed } from '../../sim/run.ts'
import { PowerLossDatastore } from '../../sim/storage.ts'
import { Trace } from '../../sim/trace.ts'
import { Rng } from '../util/rng.ts'
import type { RunResult } from '../../sim/run.ts'

/**
 * Seeds run by `npm test`, chosen so that together they inject every fault
 * kind (checked below); a seed a sweep finds failing is added here once fixed
 * (129, 204: an honest server behind the target answered no-data to four
 * requests asked at once, and the strike rule counted them as four strikes;
 * 238: a partition made the re-asks of a suspected staller fail ten times in
 * a row, quickly, and it was let go before the partition healed; 49: a
 * staller answered the re-ask with altered data, which a re-ask that only
 * parsed let end its suspicion — the re-ask now judges the data).
 */
const FIXED_SEEDS = [4, 6, 17, 29, 34, 36, 38, 49, 94, 106, 129, 204, 238, 288]

function explain (r: RunResult): string {
  return `seed ${r.seed} (replay: npm run sim -- --seed ${r.seed}):\n${r.failures.join('\n')}\n${r.tail.join('\n')}`
}

describe('sim: seeded whole-network simulation', function () {
  this.timeout(120_000)

  const results = new Map<number, RunResult>()

  for (const seed of FIXED_SEEDS) {
    it(`seed ${seed}: every invariant holds, every node reaches the target height, the state-sync joiner handed off`, async () => {
      const r = await runSeed(seed)
      results.set(seed, r)
      expect(r.failures, explain(r)).to.deep.equal([])
      expect(r.height).to.be.greaterThan(2)
      expect(r.syncHeight).to.be.a('number')
      expect(r.byzantine.blamed).to.be.at.least(r.byzantine.reached)
      expect(r.messages.sent).to.be.greaterThan(r.messages.dropped)
    })
  }

  it('the fixed seeds inject every fault kind; bad data and stalls reach a node', () => {
    for (const kind of FAULT_KINDS) {
      expect([...results.values()].some(r => r.faults[kind] > 0), kind).to.equal(true)
    }
    // seeds 4 (garbage blocks) and 106 (altered state-sync responses) deliver bad data to someone: blocked (the run's invariants)
    expect(results.get(4)?.byzantine.reached).to.be.greaterThan(0)
    expect(results.get(106)?.byzantine.reached).to.be.greaterThan(0)
    // seed 4's garbage server also floods garbage blocks on gossip: the receivers' topic validator rejects them
    // (the run fails if it rejects anything an honest node sent); every run's gossip is judged on arrival
    expect(results.get(4)?.gossip.reject).to.be.greaterThan(0)
    for (const r of results.values()) { expect(r.gossip.accept, `seed ${r.seed}`).to.be.greaterThan(0) }
    // seed 94 (a stalling server): it sat on a request another peer answered, was asked it again until the
    // strike rule blocked it (src/net/recheck.ts; before, ranked last, it was never asked enough to be struck out)
    expect(results.get(94)?.byzantine.stalled).to.be.greaterThan(0)
    expect(results.get(94)?.byzantine.struck).to.equal(results.get(94)?.byzantine.stalled)
    // seed 288: a no-data server cost a node a request another peer answered (and the sync still completed). It
    // used to cost three and be struck out; since observers ask for missed certificates themselves the run takes
    // another course, and no seed of 1-1000 strikes out a no-data server (the rule itself: test/net/blocking.spec.ts)
    expect(results.get(288)?.faults['sync-no-data']).to.be.greaterThan(0)
    expect(results.get(288)?.byzantine.stalled).to.be.greaterThan(0)
    // seed 49 (odd: its staller answers a request it sat on with altered data when asked again): the re-ask judged
    // the answer against the response the node verified and blocked the staller for good (it used to end its suspicion)
    expect(results.get(49)?.byzantine.reached).to.be.greaterThan(0)
    expect(results.get(49)?.byzantine.blamed).to.be.greaterThan(0)
    // seed 29: a validator signed conflicting votes, and every node still agreed on every height (the run's invariants)
    expect(results.get(29)?.faults.equivocate).to.be.greaterThan(0)
  })

  it('replaying a seed reproduces its trace hash; other seeds give other hashes', async () => {
    const first = results.get(34)
    expect(first, 'seed 34 ran above').to.not.equal(undefined)
    const again = await runSeed(34)
    expect(again.hash).to.equal(first?.hash)
    expect(again.height).to.equal(first?.height)
    expect(again.messages).to.deep.equal(first?.messages)
    expect(new Set([...results.values()].map(r => r.hash)).size).to.equal(results.size)
  })

  it('a store that ignores fsync loses acknowledged blocks on power loss, and the run reports it', async () => {
    // seed 36 power-cycles a validator after it acknowledged blocks (see its trace)
    const r = await runSeed(36, { brokenSync: true })
    expect(r.faults['crash-power']).to.be.greaterThan(0)
    expect(r.failures.some(f => f.includes('lost after restart')), explain(r)).to.equal(true)
  })

  it('an interval left armed after every node stopped fails the run\'s hygiene check', async () => {
    const r = await runSeed(4, { leakInterval: true })
    expect(r.failures, explain(r)).to.have.lengthOf(1)
    expect(r.failures[0]).to.match(/^hygiene: 1 virtual timer\(s\) still armed after every node stopped/)
  })

  it('streams still open after 32,768 stream pairs in one process (a sweep\'s seeds 445-447 failed there)', async () => {
    // @libp2p/utils numbers stream pairs with a counter global to the module
    // and never reset, and used it as a TCP port: a child process, so the
    // exhausted counter does not outlive this test
    const script = `
      import { multiaddrConnectionPair } from ${JSON.stringify(import.meta.resolve('@libp2p/utils'))}
      import { runSeed } from ${JSON.stringify(new URL('../../sim/run.js', import.meta.url).href)}
      for (let i = 0; i < 32_768; i++) { multiaddrConnectionPair() }
      const r = await runSeed(1)
      process.stdout.write(JSON.stringify(r.failures))
    `
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 60_000 })
    expect(JSON.parse(stdout)).to.deep.equal([])
  })
})

describe('sim: power-loss datastore', () => {
  it('a synced batch makes it and every earlier write durable; later writes are lost on power loss only', async () => {
    const ds = new PowerLossDatastore()
    await ds.put(new Key('/a'), Uint8Array.of(1))
    await ds.db.batch([{ type: 'put', key: '/b', value: Uint8Array.of(2) }], { sync: true })
    await ds.db.batch([{ type: 'put', key: '/c', value: Uint8Array.of(3) }])
    await ds.delete(new Key('/a'))
    expect(ds.unsynced).to.equal(2)
    const power = new PowerLossDatastore(ds.crash('power'))
    expect(await power.db.get('/a')).to.deep.equal(Uint8Array.of(1))
    expect(await power.db.get('/b')).to.deep.equal(Uint8Array.of(2))
    expect(await power.db.get('/c')).to.equal(undefined)
  })

  it('a process crash keeps unsynced writes; a crashed store never answers again', async () => {
    const ds = new PowerLossDatastore()
    await ds.db.batch([{ type: 'put', key: '/x', value: Uint8Array.of(9) }])
    const survivor = ds.crash('process')
    expect(await new PowerLossDatastore(survivor).db.get('/x')).to.deep.equal(Uint8Array.of(9))
    let settled = false
    void Promise.resolve(ds.put(new Key('/y'), Uint8Array.of(1))).then(() => { settled = true })
    await new Promise(resolve => setImmediate(resolve))
    expect(settled).to.equal(false)
  })
})

describe('sim: network', () => {
  it('duplicates whole messages: a gossip message arrives twice, a duplicated request is served twice and answered once', async () => {
    const clock = new VirtualClock()
    const net = new SimNetwork(clock, new Rng(7), new Trace(), { latencyMs: 5, jitterMs: 10, dropRate: 0, dupRate: 1 })
    let gossip = 0
    net.send(0, 1, 'vote', () => { gossip++ })
    let served = 0
    let answers = 0
    void net.request(0, 1, 'sync', async () => ++served).then(v => { answers++; expect(v).to.equal(1) })
    await clock.run(() => false, 1000)
    expect(gossip).to.equal(2)
    // the request leg and each answer leg are duplicated: two servings, one answer taken
    expect(served).to.equal(2)
    expect(answers).to.equal(1)
    expect(net.counts.duplicated).to.equal(1 + 1 + 2)
    expect(net.counts.delivered).to.equal(2 + 2 + 4)
  })

  it('an exchange that gets no answer is a timeout if the server got it and stayed up and reachable, else lost', async () => {
    const clock = new VirtualClock()
    const net = new SimNetwork(clock, new Rng(7), new Trace(), { latencyMs: 5, jitterMs: 10, dropRate: 0, dupRate: 0 })
    const never = async (): Promise<number> => new Promise<number>(() => {})
    const got: string[] = []
    void net.exchange(0, 1, 'stall', never).then(r => { got.push(`stall:${r.type}`) })
    void net.exchange(0, 2, 'answer', async () => 7).then(r => { got.push(`answer:${r.type}:${r.type === 'answer' ? String(r.value) : ''}`) })
    // the server goes down while it serves: its connections close, a reset rather than a stall
    void net.exchange(0, 3, 'crash', never).then(r => { got.push(`crash:${r.type}`) })
    clock.schedule(() => { net.setUp(3, false) }, 40, undefined)
    // the answer's way back is cut
    void net.exchange(0, 4, 'cut', async () => 1).then(r => { got.push(`cut:${r.type}`) })
    net.cutLink(4, 0)
    await clock.run(() => got.length === 4, 10_000)
    expect(got.sort()).to.deep.equal(['answer:answer:7', 'crash:lost', 'cut:lost', 'stall:timeout'])
  })

  it('delivers nothing twice without a duplication rate, and nothing across a cut link', async () => {
    const clock = new VirtualClock()
    const net = new SimNetwork(clock, new Rng(7), new Trace(), { latencyMs: 5, jitterMs: 10, dropRate: 0, dupRate: 0 })
    const got = { n: 0 }
    for (let i = 0; i < 50; i++) { net.send(0, 1, 'vote', () => { got.n++ }) }
    net.cutLink(1, 0)
    net.send(1, 0, 'vote', () => { got.n += 100 })
    await clock.run(() => false, 1000)
    expect(got.n).to.equal(50)
    expect(net.counts).to.deep.equal({ sent: 51, delivered: 50, dropped: 1, duplicated: 0 })
  })
})

describe('sim: virtual clock', () => {
  it('fires timers by due time, ties in creation order, without waiting for real time', async () => {
    const clock = new VirtualClock()
    const fired: string[] = []
    clock.install()
    const realStart = Date.now()
    try {
      setTimeout(() => { fired.push('b@500') }, 500)
      setTimeout(() => { fired.push('a@100') }, 100)
      setTimeout(() => { fired.push('c@500') }, 500)
      const cancelled = setTimeout(() => { fired.push('never') }, 200)
      clearTimeout(cancelled)
      await clock.run(() => fired.length === 3, 60_000)
    } finally {
      clock.uninstall()
    }
    expect(fired).to.deep.equal(['a@100', 'b@500', 'c@500'])
    expect(clock.now).to.equal(500)
    // generous: half a virtual second must not take that long for real
    expect(Date.now() - realStart).to.be.lessThan(5_000)
  })
})
