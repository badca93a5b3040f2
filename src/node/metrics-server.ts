/**
 * A minimal HTTP endpoint exposing a prom-client registry at `/metrics`
 * (Prometheus text format), plus `/status` with a JSON summary supplied by
 * the node. Binds to 127.0.0.1 unless told otherwise.
 */

import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { Registry } from 'prom-client'

export interface MetricsServer {
  readonly port: number
  close(): Promise<void>
}

export async function startMetricsServer (registry: Registry, port: number, status: () => Promise<unknown>, host = '127.0.0.1'): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/metrics') {
          const body = await registry.metrics()
          res.writeHead(200, { 'content-type': registry.contentType })
          res.end(body)
        } else if (req.url === '/status') {
          const body = JSON.stringify(await status(), (_k, v) => typeof v === 'bigint' ? v.toString() : v)
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(body)
        } else {
          res.writeHead(404)
          res.end()
        }
      } catch (err) {
        res.writeHead(500)
        res.end(String((err as Error).message))
      }
    })()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { resolve() })
  })
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }) }) }
  }
}
