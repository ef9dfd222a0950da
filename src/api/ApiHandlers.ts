/**
 * The server API's endpoints implemented over the core: each handler only maps a request onto `Publisher`,
 * `Moderation`, `RoomQueries` or the counts, and their answers onto the contract's shapes.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import { Effect, Layer } from "effect"
import { Presence } from "../backend/Presence.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { Rooms } from "../server/Rooms.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import * as Moderation from "./Moderation.js"
import * as Publisher from "./Publisher.js"
import * as RoomQueries from "./RoomQueries.js"
import { ServerApi } from "./ServerApi.js"

const messages = (disconnect: Moderation.DisconnectKey) =>
  HttpApiBuilder.group(ServerApi, "messages", (handlers) =>
    Effect.gen(function* () {
      const { publish } = yield* Publisher.make
      const moderation = yield* Moderation.make(disconnect)
      return handlers
        .handle("publish", ({ payload }) => Effect.map(publish(payload), (id) => ({ id })))
        .handle("delete", ({ path }) =>
          Effect.as(moderation.deleteMessage(path.room, path.id), { deleted: true as const })
        )
    })
  )

const users = (disconnect: Moderation.DisconnectKey) =>
  HttpApiBuilder.group(ServerApi, "users", (handlers) =>
    Effect.gen(function* () {
      const moderation = yield* Moderation.make(disconnect)
      return handlers.handle("disconnect", ({ payload }) =>
        Effect.map(moderation.disconnect(payload.name, payload.code), (disconnected) => ({ disconnected }))
      )
    })
  )

const rooms = HttpApiBuilder.group(ServerApi, "rooms", (handlers) =>
  Effect.gen(function* () {
    const queries = yield* RoomQueries.make
    return handlers
      .handle("list", () => queries.list)
      .handle("members", ({ path }) => Effect.map(queries.members(path.room), (names) => ({ room: path.room, names })))
      .handle("history", ({ path, urlParams }) =>
        Effect.map(queries.history(path.room, urlParams), (page) => ({ room: path.room, ...page }))
      )
  })
)

const stats = HttpApiBuilder.group(ServerApi, "stats", (handlers) =>
  Effect.gen(function* () {
    const registry = yield* ConnectionRegistry
    const presence = yield* Presence
    const local = yield* Rooms
    return handlers.handle("stats", () =>
      Effect.map(presence.users.pipe(Effect.catchTag("BackendError", RoomQueries.backendDown)), (users) => ({
        connections: registry.size(),
        users,
        rooms: local.size(),
        messages: ChatMetrics.published.unsafeValue(ChatMetrics.NONE).count,
        at: Date.now()
      }))
    )
  })
)

/** Every group's handlers; `disconnect` is the chat server's own (it reaches the other nodes). */
export const layer = (disconnect: Moderation.DisconnectKey) =>
  Layer.mergeAll(messages(disconnect), users(disconnect), rooms, stats)
