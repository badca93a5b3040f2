/**
 * What a node does with a gossip message before relaying it, shared by the
 * consensus topics and the blocks topic: relay ('accept'), drop quietly
 * ('ignore': stale, duplicate, outside the window this node acts on) or drop
 * and penalise the peer that sent it ('reject': undecodable, oversized,
 * badly signed, from outside the validator set). Only 'reject' lowers the
 * sender's gossipsub score (see docs/PROTOCOLS.md "Gossip validation and peer scoring").
 */

import { TopicValidatorResult } from '@libp2p/gossipsub'

export type Admission = 'accept' | 'ignore' | 'reject'

const RESULTS: Record<Admission, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject
}

export function topicResult (a: Admission): TopicValidatorResult {
  return RESULTS[a]
}
