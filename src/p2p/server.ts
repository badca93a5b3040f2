/**
 * What a resolver serves (commonware `glue/src/stateful/db/p2p`): the
 * request handler of one database's protocol, run by the kit's one-request
 * server (`net/server.ts`: limits, framing, deadlines, metrics).
 *
 * A request is a frame of at most 64 bytes that decodes strictly and has a
 * shape its protocol allows (else the stream is reset, no reply); the answer
 * is one frame: `0x01 ‖ Response` or `0x02` (no data).
 *
 * An operations request for more than `maxServeOps` is served capped at
 * `maxServeOps` (as commonware's sources cap `max_ops`): fewer operations are
 * a valid answer, and the client asks for the rest.
 *
 * No data when: no source is attached for the database; the source fails
 * (out of range, pruned, missing, ...); the encoded response would exceed
 * `maxResponseBytes`.
 */

import { NO_DATA_BODY, ProtocolViolation } from '../net/protocol.ts'
import { decodeRequest, requestMaxOps } from '../sync/messages.ts'
import { MAX_REQUEST_FRAME, requestShapeProblem, responseBody } from './protocol.ts'
import type { ResolverKind } from './protocol.ts'
import type { RequestHandler } from '../net/server.ts'
import type { Request } from '../sync/messages.ts'
import type { Source } from '../sync/source.ts'
import type { Logger } from '@libp2p/interface'

export interface ServerConfig {
  kind: ResolverKind
  maxServeOps: number
  maxResponseBytes: number
}

/** The handler serving database `db` from whatever `source()` gives at each request. */
export function resolverHandler (db: string, config: ServerConfig, source: () => Source | undefined, log: Logger): RequestHandler<Request> {
  return {
    maxRequestBytes: MAX_REQUEST_FRAME,
    decode: (frame) => {
      const request = decodeRequest(frame)
      const problem = requestShapeProblem(config.kind, request)
      if (problem !== undefined) { throw new ProtocolViolation(problem) }
      return request
    },
    answer: async (request, peer, signal) => produce(db, config, source(), request, peer, signal, log),
    isNoData: body => body === NO_DATA_BODY
  }
}

/** The frame body answering `request`: a response or no-data. */
async function produce (db: string, config: ServerConfig, source: Source | undefined, request: Request, peer: string, signal: AbortSignal, log: Logger): Promise<Uint8Array> {
  if (source === undefined) {
    log.trace('no-data for %s: %s is not attached', peer, db)
    return NO_DATA_BODY
  }
  const capped: Request = request.type === 'operations' && requestMaxOps(request) > config.maxServeOps
    ? { ...request, maxOps: config.maxServeOps }
    : request
  let body: Uint8Array
  try {
    const { response } = await source.serve(capped, { signal })
    if (response.type !== request.type) {
      log.error('source for %s answered a %s request with %s', db, request.type, response.type)
      return NO_DATA_BODY
    }
    body = responseBody(response)
  } catch (err) {
    log.trace('no-data for %s on %s: %s', peer, db, (err as Error)?.message)
    return NO_DATA_BODY
  }
  if (body.length > config.maxResponseBytes) {
    log('no-data for %s on %s: response of %d bytes above the limit %d', peer, db, body.length, config.maxResponseBytes)
    return NO_DATA_BODY
  }
  return body
}
