/**
 * What an operator does to people and messages: delete a message (members see `deleted`, as for its author's own
 * delete) and disconnect a user (every connection of the name's owner, on every node).
 */
import { Effect, Option } from "effect"
import { Hub } from "../backend/Hub.js"
import { Names } from "../backend/Names.js"
import { Presence } from "../backend/Presence.js"
import { NodeId } from "../backend/NodeId.js"
import { CloseCode, isValidName } from "../protocol/Protocol.js"
import { invalidNameMessage, truncate } from "../server/ChatError.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { Rooms } from "../server/Rooms.js"
import { type RequestError, BadRequest, NotFound } from "./ApiErrors.js"
import * as RoomQueries from "./RoomQueries.js"

/** Closes every connection of a key on every node (`ChatServer.disconnect`); answers how many were closed. */
export type DisconnectKey = (
  key: string,
  options: { readonly code: number; readonly reason: string }
) => Effect.Effect<number>

/**
 * Codes a disconnect may use: a normal close, a policy close, or an application's 3000-4999. The 1001/1011/4008 a
 * server sends for its own reasons would keep the session for resume, which is not what removing someone means.
 */
export const isAllowedCloseCode = (code: number): boolean =>
  code === CloseCode.normal ||
  code === CloseCode.policy ||
  (code >= 3000 && code <= 4999 && code !== CloseCode.slowConsumer)

export const make = (disconnectKey: DisconnectKey) =>
  Effect.gen(function* () {
    const hub = yield* Hub
    const names = yield* Names
    const presence = yield* Presence
    const registry = yield* ConnectionRegistry
    const rooms = yield* Rooms
    const node = yield* NodeId
    const queries = yield* RoomQueries.make

    const deleteMessage = (room: string, id: number): Effect.Effect<void, RequestError> =>
      Effect.gen(function* () {
        yield* queries.requireKnown(room)
        const changed = yield* hub.change(room, { _tag: "Delete", id, by: undefined }).pipe(
          Effect.catchTags({
            // A moderator may delete anything: the only refusal left is a message the room does not have.
            ChangeRefused: () =>
              Effect.fail(
                new NotFound({ error: "no_such_message", message: `${truncate(room)} has no message ${id}` })
              ),
            BackendError: RoomQueries.backendDown
          })
        )
        // Answered once the members here have it, as an author's delete is acked.
        if (changed !== undefined) yield* rooms.changeDelivered(room, changed.rev)
      })

    const noSuchUser = (name: string) =>
      new NotFound({ error: "no_such_user", message: `no user named ${truncate(name)}` })

    const disconnect = (name: string, code: number = CloseCode.removed): Effect.Effect<number, RequestError> =>
      Effect.gen(function* () {
        if (!isValidName(name)) {
          return yield* Effect.fail(new BadRequest({ error: "invalid_name", message: invalidNameMessage(name) }))
        }
        if (!isAllowedCloseCode(code)) {
          return yield* Effect.fail(
            new BadRequest({
              error: "invalid_code",
              message: `code: 1000, 1008 or 3000-4999 but not 4008, got ${code}`
            })
          )
        }
        const owner = yield* names.owner(name).pipe(Effect.catchTag("BackendError", RoomQueries.backendDown))
        if (Option.isNone(owner)) return yield* Effect.fail(noSuchUser(name))
        const key = owner.value.session
        // A name held for resume belongs to nobody connected: there is no one to disconnect.
        if (registry.byKey(key).length === 0) {
          const elsewhere = yield* presence
            .remoteNodes(key, node)
            .pipe(Effect.catchTag("BackendError", RoomQueries.backendDown))
          if (elsewhere.length === 0) return yield* Effect.fail(noSuchUser(name))
        }
        return yield* disconnectKey(key, { code, reason: "disconnected by the server" })
      })

    return { deleteMessage, disconnect }
  })
