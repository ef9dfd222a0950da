/**
 * A Node HTTP server listening on the configured host and port, serving the chat server's routes and handing
 * WebSocket upgrades to it. Its release stops accepting, lets the chat server close every socket with 1001, then
 * closes the listener — `http.Server.close` alone would wait for upgraded sockets (EFFECT-NOTES).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Duration, Effect, Layer } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { ChatServer } from "./ChatServer.js"
import { ServerConfig } from "./ServerConfig.js"

export class ServerAddress extends Context.Tag("effect-chat/ServerAddress")<
  ServerAddress,
  { readonly host: string; readonly port: number; readonly url: string }
>() {}

export const layer = Layer.scoped(
  ServerAddress,
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const chat = yield* ChatServer
    const handler = yield* NodeHttpServer.makeHandler(chat.httpApp)
    const headersTimeout = Duration.toMillis(config.headersTimeout)
    const server = Http.createServer({
      headersTimeout,
      requestTimeout: headersTimeout * 3,
      connectionsCheckingInterval: Math.min(1000, headersTimeout)
    }, handler)
    server.on("upgrade", chat.handleUpgrade)
    server.on("clientError", (_error, socket) => socket.destroy())

    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (error) => resume(Effect.fail(error)))
        server.listen(config.port, config.host, () => resume(Effect.void))
      }),
      () =>
        Effect.gen(function*() {
          const closed = Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
          const closing = yield* Effect.fork(closed)
          server.closeIdleConnections()
          yield* chat.shutdown
          server.closeAllConnections()
          yield* closing.await
        })
    ).pipe(Effect.orDie)
    const address = server.address() as AddressInfo
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { host: address.address, port: address.port, url: `http://${host}:${address.port}` }
  })
)
