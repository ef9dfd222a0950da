/**
 * Our own `ws` server under the HTTP server's `upgrade` event. The platform's built-in upgrade passes no options to
 * `ws` (EFFECT-NOTES), so it could not refuse an oversized frame before buffering it, check the Origin, or ping.
 * Here the handshake is checked (path, Origin, connection limits), the subprotocol picks the dialect, and each
 * accepted socket becomes an actor whose jobs run in a `FiberSet` owned by the server's scope. Closing that scope
 * sends 1001 to every client and destroys the sockets of peers that do not answer within the grace.
 */
import { Duration, Effect, FiberSet } from "effect"
import type { IncomingMessage } from "node:http"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer as WsServer } from "ws"
import type { UpgradeRequest } from "../dialect/Dialect.js"
import * as JsonDialect from "../dialect/JsonDialect.js"
import * as PlainDialect from "../dialect/PlainDialect.js"
import { CloseCode, SUBPROTOCOL } from "../protocol/Protocol.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { ServerConfig } from "../server/ServerConfig.js"
import * as Heartbeat from "./Heartbeat.js"
import * as SocketActor from "./SocketActor.js"

export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void

export const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const registry = yield* ConnectionRegistry
  const runFork = yield* FiberSet.makeRuntime<never>()
  let accepting = true

  /** The live sockets, for the heartbeat and for shutdown. */
  const peers = new Set<Heartbeat.Peer>()
  const actors = yield* SocketActor.make(runFork, peers)
  const dialects = { json: yield* JsonDialect.make, plain: yield* PlainDialect.make }
  // One heartbeat fiber for all connections, not a sleeping fiber per socket.
  yield* Effect.forkScoped(Heartbeat.sweep(() => peers, config.pingInterval))

  const wss = new WsServer({
    noServer: true,
    maxPayload: config.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false)
  })

  /** Every client gets 1001; peers that do not answer within the grace are destroyed. Idempotent. */
  const shutdown = yield* Effect.cached(
    Effect.gen(function* () {
      accepting = false
      for (const connection of registry.all()) connection.close(CloseCode.goingAway, "server shutting down")
      const deadline = Date.now() + Duration.toMillis(config.closeGrace) + 250
      while (registry.size() > 0 && Date.now() < deadline) yield* Effect.sleep(Duration.millis(20))
      for (const peer of peers) peer.terminate()
      // The sockets just destroyed still end their sessions (held for resume, as after any 1001).
      const ending = Date.now() + 250
      while (registry.size() > 0 && Date.now() < ending) yield* Effect.sleep(Duration.millis(10))
      wss.close()
    })
  )
  // Registered after the FiberSet, so it runs first: clients get 1001 while their actors still live.
  yield* Effect.addFinalizer(() => shutdown)

  const refuse = (socket: Duplex, status: number, text: string) => {
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`
    )
    socket.destroy()
  }

  const handleUpgrade: UpgradeHandler = (request, socket, head) => {
    socket.on("error", () => socket.destroy())
    const url = parseUrl(request.url)
    if (url === undefined) return refuse(socket, 400, "Bad Request")
    const path = url.pathname
    if (path !== config.path) return refuse(socket, 404, "Not Found")
    if (!accepting) return refuse(socket, 503, "Service Unavailable")
    const origin = request.headers.origin
    if (config.allowedOrigins.length > 0 && (origin === undefined || !config.allowedOrigins.includes(origin))) {
      runFork(
        Effect.logWarning("rejected origin").pipe(
          Effect.annotateLogs({ origin: String(origin).slice(0, 200), ip: request.socket.remoteAddress })
        )
      )
      return refuse(socket, 403, "Forbidden")
    }
    const ip = request.socket.remoteAddress ?? "unknown"
    const full =
      registry.size() >= config.maxConnections
        ? "server full"
        : registry.countForIp(ip) >= config.maxConnectionsPerIp
          ? "too many connections from your address"
          : undefined
    wss.handleUpgrade(request, socket, head, upgraded({ url, ip, headers: request.headers }, full))
  }

  // Built apart from `handleUpgrade`, whose scope the socket's error listener keeps for the socket's life: the
  // request and its headers must not live that long (the dialect drops the headers once the session is open).
  const upgraded = (request: UpgradeRequest, full: string | undefined) => (ws: WebSocket) => {
    if (full !== undefined) {
      ws.close(CloseCode.tryAgainLater, full)
      return void setTimeout(() => ws.terminate(), Duration.toMillis(config.closeGrace)).unref()
    }
    runFork(actors.accept(ws, request, ws.protocol === SUBPROTOCOL ? dialects.json : dialects.plain))
  }

  return { handleUpgrade, shutdown } as const
})

/** The request target as a URL, or undefined for one that is not (`GET //[` must not throw in a Node callback). */
const parseUrl = (target: string | undefined): URL | undefined => {
  try {
    return new URL(target ?? "/", "http://localhost")
  } catch {
    return undefined
  }
}
