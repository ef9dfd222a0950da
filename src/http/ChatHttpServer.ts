/**
 * A Node HTTP server listening on the configured host and port, serving the chat server's routes and handing
 * WebSocket upgrades to it. Its release stops accepting, lets the chat server close every socket with 1001, then
 * closes the listener — `http.Server.close` alone would wait for upgraded sockets (EFFECT-NOTES).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Context, Data, Duration, Effect, Layer } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { ChatServer } from "./ChatServer.js"
import { ServerConfig } from "../server/ServerConfig.js"

/** The port could not be bound (in use, no permission, bad address). */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly host: string
  readonly port: number
  readonly cause: Error
}> {
  get message() {
    const code = (this.cause as { code?: string }).code
    const why =
      code === "EADDRINUSE" ? "address already in use" : code === "EACCES" ? "permission denied" : this.cause.message
    return `cannot listen on ${this.host}:${this.port}: ${why}`
  }
}

export class ServerAddress extends Context.Tag("effect-chat/ServerAddress")<
  ServerAddress,
  { readonly host: string; readonly port: number; readonly url: string }
>() {}

export const layer = Layer.scoped(
  ServerAddress,
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const chat = yield* ChatServer
    const handler = yield* NodeHttpServer.makeHandler(chat.httpApp)
    const headersTimeout = Duration.toMillis(config.headersTimeout)
    const server = Http.createServer(
      {
        headersTimeout,
        requestTimeout: headersTimeout * 3,
        connectionsCheckingInterval: Math.min(1000, headersTimeout)
      },
      handler
    )
    server.on("upgrade", chat.handleUpgrade)
    server.on("clientError", (_error, socket) => socket.destroy())

    yield* Effect.acquireRelease(
      Effect.async<void, ListenError>((resume) => {
        server.once("error", (cause) =>
          resume(Effect.fail(new ListenError({ host: config.host, port: config.port, cause })))
        )
        // A deep accept queue: after a deploy every client reconnects at once, and Node's default of 511 pending
        // connections drops the rest (they retry after the TCP timeout, a second or more later).
        server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => resume(Effect.void))
      }),
      () =>
        Effect.gen(function* () {
          // A deploy: first not ready, so no new clients are sent here; the connected ones go after the delay.
          if (Duration.toMillis(config.drainDelay) > 0) {
            yield* chat.drain
            yield* Effect.logInfo(
              `draining: /readyz answers 503; closing clients in ${Duration.format(config.drainDelay)}`
            )
            yield* Effect.sleep(config.drainDelay)
          }
          const closed = Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
          const closing = yield* Effect.fork(closed)
          server.closeIdleConnections()
          yield* chat.shutdown
          server.closeAllConnections()
          yield* closing.await
        })
    )
    const address = server.address() as AddressInfo
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address
    return { host: address.address, port: address.port, url: `http://${host}:${address.port}` }
  })
)
