/**
 * Floor discovery for state sync: the latest finalization vouched for by
 * `f + 1` validators, and serving our own.
 */
export { Probe, ProbeProtocolError, type ProbeInit } from './probe.ts'
