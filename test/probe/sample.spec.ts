import { expect } from 'aegir/chai'
import { PROBE_NONE, PROBE_REQUEST, Sample, TAG_RESPONSE, maxFaults, probeProtocolId } from '../../src/probe/index.ts'
import type { FloorPolicy } from '../../src/probe/index.ts'

interface F { epoch: number, view: number, payload: number }

const scheme = {
  round: (f: F) => ({ epoch: f.epoch, view: f.view }),
  payload: (f: F) => new Uint8Array([f.payload])
}

function f (view: number, payload = view, epoch = 0): F {
  return { epoch, view, payload }
}

function sample (policy: FloorPolicy, replies: Array<[string, F]>): Sample<F> {
  const s = new Sample<F>(scheme, policy)
  for (const [peer, r] of replies) { s.record(peer, r) }
  return s
}

describe('probe: sample', () => {
  it('computes f for 3f + 1 committees', () => {
    expect([0, 1, 3, 4, 6, 7, 10, 100].map(maxFaults)).to.deep.equal([0, 0, 0, 1, 1, 2, 3, 33])
  })

  it('keeps the first reply of a peer; a second (even an invalid one) changes nothing', () => {
    const s = new Sample<F>(scheme)
    expect(s.pending('a')).to.equal(true)
    expect(s.record('a', f(3))).to.equal(true)
    expect(s.pending('a')).to.equal(false)
    expect(s.record('a', f(9, 99))).to.equal(false)
    expect(s.record('b', f(3))).to.equal(true)
    expect(s.select(2)).to.deep.equal(f(3))
  })

  it('selects once; afterwards no peer is pending and a reset keeps the floor', () => {
    const s = sample('agreement', [['a', f(4)], ['b', f(4)]])
    expect(s.select(2)).to.deep.equal(f(4))
    expect(s.select(2)).to.equal(undefined)
    expect(s.pending('c')).to.equal(false)
    s.reset()
    expect(s.size).to.equal(0)
    expect(s.floor).to.deep.equal(f(4))
  })

  it('agreement: needs threshold vouchers for one round and payload; the highest agreed wins', () => {
    expect(sample('agreement', [['a', f(1)], ['b', f(2)], ['c', f(3)]]).select(3)).to.equal(undefined)
    expect(sample('agreement', [['a', f(5, 1)], ['b', f(5, 2)], ['c', f(5, 1)]]).select(3)).to.equal(undefined)
    const mixed = sample('agreement', [['a', f(2)], ['b', f(2)], ['c', f(9)], ['d', f(3)], ['e', f(3)]])
    expect(mixed.select(2)).to.deep.equal(f(3))
    expect(sample('agreement', [['a', f(2)], ['b', f(2)], ['c', f(7)]]).select(2)).to.deep.equal(f(2))
  })

  it('highest: the highest round once threshold peers replied; ties keep the smallest peer id', () => {
    expect(sample('highest', [['a', f(1)], ['b', f(2)]]).select(3)).to.equal(undefined)
    expect(sample('highest', [['a', f(1)], ['b', f(2)], ['c', f(3)]]).select(3)).to.deep.equal(f(3))
    expect(sample('highest', [['a', f(2)], ['b', f(2)], ['c', f(7)]]).select(3)).to.deep.equal(f(7))
    expect(sample('highest', [['z', f(6, 1)], ['m', f(6, 2)], ['b', f(1)]]).select(3)).to.deep.equal(f(6, 2))
    expect(sample('highest', [['a', f(1, 1, 1)], ['b', f(9, 9, 0)]]).select(2)).to.deep.equal(f(1, 1, 1))
  })

  it('counts only replies judgeable at selection time (a forgotten epoch does not count)', () => {
    for (const policy of ['highest', 'agreement'] as const) {
      const s = sample(policy, [['a', f(4, 4, 1)], ['b', f(4, 4, 2)]])
      expect(s.select(2, r => r.epoch !== 2)).to.equal(undefined)
      s.record('c', f(4, 4, 1))
      expect(s.select(2, r => r.epoch !== 2)).to.deep.equal(f(4, 4, 1))
    }
  })

  it('keeps the wire tags and protocol id stable', () => {
    expect([...PROBE_REQUEST]).to.deep.equal([0x00])
    expect(TAG_RESPONSE).to.equal(0x01)
    expect([...PROBE_NONE]).to.deep.equal([0x02])
    expect(probeProtocolId('qmdb', 'main')).to.equal('/qmdb/main/probe/1.0.0')
  })
})
