/**
 * The chat server as a Layer: the core (connection registry, room actors, session logic) over whichever backends are
 * provided, exposing what an HTTP server needs — an `upgrade` handler for `/chat` and the HTTP routes. Another
 * Effect application composes `ChatServer.layerMemory` (or `layer` with its own backends) and mounts both on its own
 * server; `ChatHttpServer.layer` does that on a Node HTTP server of its own, as `dist/server.js` does.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Context, Deferred, Duration, Effect, Exit, Layer, Queue } from "effect"
import * as Crypto from "node:crypto"
import { userKey } from "../backend/UserKey.js"
import { CloseCode } from "../protocol/Protocol.js"
import { Hub } from "../backend/Hub.js"
import { Names } from "../backend/Names.js"
import { NodeId } from "../backend/NodeId.js"
import { Presence } from "../backend/Presence.js"
import { Readiness } from "../backend/Readiness.js"
import { Sessions } from "../backend/Sessions.js"
import { Chat } from "../server/Chat.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { HookObserver } from "../server/HookObserver.js"
import { Rooms } from "../server/Rooms.js"
import { ServerConfig } from "../server/ServerConfig.js"
import * as WebSocketServer from "../transport/WebSocketServer.js"
import * as HttpRoutes from "./HttpRoutes.js"
import * as AdminPage from "./AdminPage.js"
import * as ApiHttp from "../api/ApiHttp.js"

export interface ChatServerService {
  /** Handles an HTTP `upgrade` event: WebSocket connections to the configured path become chat connections. */
  readonly handleUpgrade: WebSocketServer.UpgradeHandler
  /** `/`, the browser client's files, `/healthz`, `/readyz`, the server API (`/api/v1/`) and its `/admin` page. */
  readonly httpApp: HttpApp.Default<never, never>
  readonly registry: typeof ConnectionRegistry.Service
  /**
   * Removes a signed-in user (`Identity.user`, a token's `sub`): every connection of theirs, on every node, is closed
   * with 4003, which clients take as final. Completes with the number of connections closed (see `disconnect`).
   */
  readonly removeUser: (user: string, reason?: string) => Effect.Effect<number>
  /**
   * Closes every connection of `key` (a user's key, or a guest's session) on every node with `code` (default 4003).
   * Completes with the connections closed here plus those the other nodes report closing; a node that does not
   * answer within `DISCONNECT_REPLY_WAIT` is not counted (its connections are still closed when it gets the order).
   */
  readonly disconnect: (key: string, options?: DisconnectOptions) => Effect.Effect<number>
  /**
   * The first step of a deploy's shutdown: `/readyz` answers 503 from now on, so a load balancer stops sending new
   * clients; the connected ones stay until `shutdown`.
   */
  readonly drain: Effect.Effect<void>
  /** Sends 1001 to every client and waits for them to go (bounded by the close grace); also run on release. */
  readonly shutdown: Effect.Effect<void>
}

export interface DisconnectOptions {
  readonly code?: number | undefined
  readonly reason?: string | undefined
}

/** How long `disconnect` waits for the other nodes' counts. */
export const DISCONNECT_REPLY_WAIT = Duration.seconds(1)

export class ChatServer extends Context.Tag("effect-chat/ChatServer")<ChatServer, ChatServerService>() {
  /** The chat core over the backends in context (Hub, Presence, Names, Sessions, Readiness, NodeId). */
  static layer = Layer.scoped(
    ChatServer,
    Effect.suspend(() => make)
  ).pipe(
    Layer.provide(Chat.layer),
    Layer.provide(Rooms.layer),
    Layer.provide(HookObserver.layer),
    Layer.provideMerge(ConnectionRegistry.layer)
  )

  /** One process, nothing to install: in-memory backends. */
  static layerMemory = ChatServer.layer.pipe(
    Layer.provide(
      Layer.mergeAll(
        Layer.unwrapEffect(
          Effect.map(ServerConfig, (config) =>
            Hub.layerMemory({ historyRetain: config.historyRetain, roomTtl: config.roomTtl })
          )
        ),
        Presence.layerMemory,
        Names.layerMemory,
        Sessions.layerMemory,
        Readiness.layerAlways,
        NodeId.layer
      )
    )
  )
}

const make = Effect.gen(function* () {
  const hub = yield* Hub
  const node = yield* NodeId
  const registry = yield* ConnectionRegistry
  const chat = yield* Chat
  const presence = yield* Presence

  // Direct messages, takeovers and evictions for sessions (or users) on this node, sent from other nodes.
  const directs = yield* hub.subscribeDirect(node).pipe(Effect.orDie)
  yield* Effect.forkScoped(
    Effect.forever(
      Effect.flatMap(Queue.take(directs), (envelope) => {
        if (envelope._tag === "Remove") {
          const closed = closeAll(envelope.session, envelope.reason, envelope.code)
          const reply = envelope.reply
          if (reply === undefined) return Effect.void
          return hub.direct(reply.node, { _tag: "Removed", request: reply.request, closed }).pipe(Effect.ignoreLogged)
        }
        if (envelope._tag === "Removed") return Effect.sync(() => replies.get(envelope.request)?.(envelope.closed))
        if (envelope._tag === "Direct") {
          // A user's direct goes to each of their connections here; a guest's key is its session.
          return Effect.sync(() => {
            for (const connection of registry.byKey(envelope.session)) connection.send(envelope.frame)
          })
        }
        const connection = registry.bySession(envelope.session)
        if (connection === undefined) return Effect.void
        return envelope._tag === "Takeover" ? chat.handOver(connection) : chat.evicted(connection)
      })
    )
  )

  const closeAll = (key: string, reason: string, code: number = CloseCode.removed) => {
    const connections = registry.byKey(key)
    for (const connection of connections) connection.close(code, reason)
    return connections.length
  }

  /** Open disconnect requests: each takes the counts other nodes send back (`Removed`). */
  const replies = new Map<string, (closed: number) => void>()

  const disconnect: ChatServerService["disconnect"] = (key, options = {}) =>
    Effect.gen(function* () {
      const reason = options.reason ?? "removed by the server"
      const closed = closeAll(key, reason, options.code)
      const elsewhere = yield* presence.remoteNodes(key, node).pipe(Effect.orElseSucceed(() => []))
      if (elsewhere.length === 0) return closed
      const request = Crypto.randomUUID()
      const answered = yield* Deferred.make<void>()
      let waiting = elsewhere.length
      let reported = 0
      replies.set(request, (count) => {
        reported += count
        if (--waiting === 0) Deferred.unsafeDone(answered, Exit.void)
      })
      const ask = (other: string) =>
        hub
          .direct(other, { _tag: "Remove", session: key, reason, code: options.code, reply: { node, request } })
          .pipe(Effect.tapError(() => Effect.sync(() => --waiting === 0 && Deferred.unsafeDone(answered, Exit.void))))
      yield* Effect.forEach(elsewhere, ask, { discard: true }).pipe(Effect.ignoreLogged)
      yield* Deferred.await(answered).pipe(
        Effect.timeout(DISCONNECT_REPLY_WAIT),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => replies.delete(request)))
      )
      return closed + reported
    })

  const removeUser = (user: string, reason = "removed by the server") => disconnect(userKey(user), { reason })

  const { handleUpgrade, shutdown } = yield* WebSocketServer.make
  let draining = false
  const router = yield* HttpRoutes.make(() => draining)
  const api = yield* ApiHttp.make((key, options) => disconnect(key, options))
  const httpApp = yield* HttpRouter.toHttpApp(router.pipe(HttpRouter.all("/api/*", api), AdminPage.routes))
  return ChatServer.of({
    handleUpgrade,
    httpApp: httpApp.pipe(Effect.catchAll(() => Effect.succeed(notFound))),
    registry,
    removeUser,
    disconnect,
    drain: Effect.sync(() => {
      draining = true
    }),
    shutdown
  })
})

const notFound = HttpServerResponse.text("Not Found", { status: 404 })
