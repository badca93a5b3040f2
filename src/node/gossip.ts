/**
 * Gossipsub peer scoring of a node's topics (blocks, consensus votes and
 * certificates): a peer whose messages the topic validators reject is
 * graylisted (everything it sends is ignored) and pruned from the mesh,
 * while honest validators, which never send a rejected message, keep a
 * score at or above zero.
 *
 * Only invalid deliveries (P4) and time in mesh / first deliveries (P1, P2)
 * count: mesh-delivery deficits (P3, P3b) are off because a quiet chain or a
 * lagging validator delivers little without misbehaving. P4 is the square
 * of the invalid-message counter times its weight: with weight -10 and
 * topic weight 1, three rejected messages (-90) cross the graylist
 * threshold (-80). The counter decays by 0.99 a second, so a peer that
 * stops misbehaving recovers in minutes; a persistent one never does.
 * See docs/PROTOCOLS.md "Gossip validation and peer scoring".
 */

import type { GossipsubOpts } from '@libp2p/gossipsub'

export const GRAYLIST_THRESHOLD = -80

const TOPIC = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 300,
  firstMessageDeliveriesWeight: 0.1,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 50,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 100,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.99
}

/** The `scoreParams` / `scoreThresholds` gossipsub options scoring `topics`. */
export function gossipScoring (topics: string[]): Pick<GossipsubOpts, 'scoreParams' | 'scoreThresholds'> {
  return {
    scoreParams: {
      topics: Object.fromEntries(topics.map(t => [t, { ...TOPIC }])),
      topicScoreCap: 10,
      decayInterval: 1000,
      decayToZero: 0.01
    },
    scoreThresholds: {
      gossipThreshold: -10,
      publishThreshold: -50,
      graylistThreshold: GRAYLIST_THRESHOLD,
      acceptPXThreshold: 10,
      opportunisticGraftThreshold: 5
    }
  }
}
