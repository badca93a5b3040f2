/**
 * The probe (commonware `glue/src/stateful/probe`): discovers a state-sync floor — a verified
 * finalization vouched for by `f + 1` distinct committee peers — over
 * `/<prefix>/<chain>/probe/1.0.0`, then serves the local marshal's latest
 * finalization to others.
 */
export { Sample, maxFaults, type FloorPolicy } from './sample.ts'
export {
  TAG_REQUEST, TAG_RESPONSE, TAG_NONE, PROBE_REQUEST, PROBE_NONE, MAX_PROBE_REQUEST_FRAME, ProbeViolation, probeProtocolId,
  isProbeRequest, probeResponse, parseProbeResponse, probeHandler
} from './protocol.ts'
export { ProbeMetrics, type ReplyOutcome } from './metrics.ts'
export {
  Probe, probeService, ProbeError, type ProbeInit, type ProbeComponents, type ProbePhase, type LatestFinalizationSource
} from './probe.ts'
