/**
 * The one bounded reader/writer of uvarint-length-prefixed frames that every
 * request/response protocol of a node uses (consensus backfill, marshal,
 * probe, state sync).
 *
 * Invariants, whatever a peer sends:
 * - a length prefix is at most as long as the encoding of `maxDataLength`;
 * a longer one is refused at the byte that exceeds it (the stock
 * `lpStream` keeps decoding a prefix that never ends one byte and one
 * await at a time, which stalled the event loop for seconds per MiB);
 * - a frame longer than `maxDataLength` is refused before its body is read;
 * - at most `maxBufferSize` unread bytes are ever buffered (more aborts the
 * stream);
 * - `deadline` aborts the stream when it passes, however steadily bytes are
 * still arriving: a slow sender cannot hold a handler open.
 *
 * `frameSize` is the one count of a frame's bytes on the wire (prefix
 * included) that every byte metric uses.
 */

import { InvalidDataLengthError, InvalidDataLengthLengthError, lpStream } from '@libp2p/utils'
import { varintSize } from '../codec/writer.ts'
import { linked } from './signals.ts'
import type { Linked } from './signals.ts'
import type { Stream } from '@libp2p/interface'

export interface FrameLimits {
  /** Largest frame body accepted. */
  maxDataLength: number
  /** Largest number of unread bytes buffered. Default `maxDataLength + 16`. */
  maxBufferSize?: number
}

export interface FrameStream {
  /** The next frame's body; throws on a limit, EOF or abort. */
  read(options: { signal: AbortSignal }): Promise<Uint8Array>
  write(body: Uint8Array, options: { signal: AbortSignal }): Promise<void>
}

/** Bytes a frame with a `bodyLength`-byte body takes on the wire: its uvarint length prefix and the body. */
export function frameSize (bodyLength: number): number {
  return varintSize(bodyLength) + bodyLength
}

/** A frame was refused for its size (prefix too long, body above the limit, buffer overflow). */
export function isOversized (err: unknown): boolean {
  return err instanceof InvalidDataLengthError || err instanceof InvalidDataLengthLengthError ||
    (err as Error)?.name === 'StreamBufferError'
}

/** A uvarint decoder refusing prefixes longer than `maxLength` bytes (RangeError = needs more bytes). */
function lengthDecoder (maxLength: number): (data: { byteLength: number, get(i: number): number }) => number {
  return data => {
    let value = 0
    let scale = 1
    const n = Math.min(data.byteLength, maxLength)
    for (let i = 0; i < n; i++) {
      const b = data.get(i)
      value += (b & 0x7f) * scale
      if (b < 0x80) { return value }
      scale *= 0x80
    }
    if (data.byteLength >= maxLength) {
      throw new InvalidDataLengthLengthError(`frame length prefix longer than ${maxLength} bytes`)
    }
    throw new RangeError('incomplete length prefix')
  }
}

/** Read and write length-prefixed frames on `stream` within `limits`. */
export function frameStream (stream: Stream, limits: FrameLimits): FrameStream {
  const maxLengthLength = varintSize(limits.maxDataLength)
  const lp = lpStream(stream, {
    maxDataLength: limits.maxDataLength,
    maxLengthLength,
    maxBufferSize: limits.maxBufferSize ?? limits.maxDataLength + 16,
    lengthDecoder: lengthDecoder(maxLengthLength)
  })
  return {
    read: async (options) => (await lp.read(options)).subarray(),
    write: async (body, options) => { await lp.write(body, options) }
  }
}

class DeadlineError extends Error {
  readonly name = 'DeadlineError'
}

/**
 * A signal aborted by `parents` or after `ms`; when the time is up the
 * stream is aborted too, so nothing pending on it outlives the deadline.
 * Always `dispose` it.
 */
export function deadline (stream: Stream, ms: number, parents: AbortSignal[] = []): Linked {
  const link = linked(parents, ms)
  const onAbort = (): void => {
    if (link.timedOut()) { stream.abort(new DeadlineError(`no complete exchange within ${ms} ms`)) }
  }
  link.signal.addEventListener('abort', onAbort, { once: true })
  return {
    signal: link.signal,
    timedOut: link.timedOut,
    dispose: () => {
      link.signal.removeEventListener('abort', onAbort)
      link.dispose()
    }
  }
}
