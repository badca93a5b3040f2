/**
 * Peer announcements on the chain's gossip topic `/qmdb/<chain>/peers/1`
 * (docs/PROTOCOLS.md, "Node protocols"): every node publishes its public key
 * and listen addresses every `intervalMs`, so a node that knows one peer's
 * address learns every other node's through the gossip mesh.
 *
 * Announcement = u64 time (ms) ‖ bytes(public key, protobuf) ‖ Vec(bytes(multiaddr)).
 * The time makes each announcement a new gossip message (gossipsub runs
 * with `StrictNoSign`, message id = hash of the data, so a repeated
 * announcement would be a duplicate and never travel again).
 *
 * Checked before relaying (`admit`): undecodable or oversized, a key that is
 * not a peer id's, an address that does not parse → reject; older than
 * `maxAgeMs` or from the future by more than that → ignore. An announcement
 * says only where a peer id claims to listen; a dial to a false address
 * fails the Noise handshake, so nothing more is trusted.
 */

import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CodecError, Reader, Writer } from '../codec/index.ts'
import type { Admission } from '../net/admission.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** How often a node announces itself (ms). */
export const ANNOUNCE_INTERVAL_MS = 2000
/** Announcements older (or further in the future) than this are ignored (ms). */
export const ANNOUNCE_MAX_AGE_MS = 5 * 60_000
const MAX_KEY_BYTES = 128
const MAX_ADDRS = 16
const MAX_ADDR_BYTES = 256

export interface Announcement {
  time: number
  peerId: PeerId
  addrs: Multiaddr[]
}

export function encodeAnnouncement (time: number, peerId: PeerId, addrs: Multiaddr[]): Uint8Array {
  if (peerId.publicKey === undefined) { throw new RangeError('a peer id with a public key') }
  const w = new Writer(256).u64(time).bytes(publicKeyToProtobuf(peerId.publicKey))
  const list = addrs.slice(0, MAX_ADDRS).map(a => a.bytes).filter(b => b.length <= MAX_ADDR_BYTES)
  w.length32(list.length)
  for (const b of list) { w.bytes(b) }
  return w.finish()
}

/** Strict decode; throws `CodecError` on anything else. */
export function decodeAnnouncement (bytes: Uint8Array): Announcement {
  const r = new Reader(bytes)
  const time = r.u64()
  const key = r.bytes(MAX_KEY_BYTES)
  const raw = r.vec(MAX_ADDRS, r => r.bytes(MAX_ADDR_BYTES))
  r.finish()
  let peerId: PeerId
  let addrs: Multiaddr[]
  try {
    peerId = peerIdFromPublicKey(publicKeyFromProtobuf(key))
    addrs = raw.map(b => multiaddr(b))
  } catch (err) {
    throw new CodecError('Invalid', `announcement: ${(err as Error).message}`)
  }
  return { time, peerId, addrs }
}

/** What to do with an announcement before relaying it. */
export function admitAnnouncement (bytes: Uint8Array, now: number, maxAgeMs: number): { admission: Admission, announcement?: Announcement } {
  let a: Announcement
  try {
    a = decodeAnnouncement(bytes)
  } catch {
    return { admission: 'reject' }
  }
  if (Math.abs(now - a.time) > maxAgeMs) { return { admission: 'ignore' } }
  return { admission: 'accept', announcement: a }
}
