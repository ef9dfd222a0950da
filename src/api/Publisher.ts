/**
 * Publishing from the server API: the message takes the path a member's `send` takes after its permission check —
 * the same text rules, the `beforeSend` hooks (which may rewrite or refuse it), the hub's ordering, ids and history,
 * fan-out to every node, and the `afterPublish` observers. Hooks see the sender as `API_IDENTITY`, so an
 * application can tell these messages from a user's.
 */
import { Effect, Option } from "effect"
import { Hub } from "../backend/Hub.js"
import { Names } from "../backend/Names.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { checkText, isValidName } from "../protocol/Protocol.js"
import * as ChatHooks from "../server/ChatHooks.js"
import { invalidNameMessage, truncate } from "../server/ChatError.js"
import { HookObserver } from "../server/HookObserver.js"
import type { Identity } from "../server/Identity.js"
import { Rooms } from "../server/Rooms.js"
import { ServerConfig } from "../server/ServerConfig.js"
import { type RequestError, BadRequest, Conflict } from "./ApiErrors.js"
import * as RoomQueries from "./RoomQueries.js"

/** Who hooks are told sent a message published through the API (`user`); its `name` is the message's `from`. */
export const API_USER = "effect-chat/api"
export const apiIdentity = (name: string): Identity => ({ user: API_USER, name })

export interface PublishRequest {
  readonly room: string
  readonly text: string
  readonly from?: string | undefined
}

export const textProblem = (text: string): BadRequest | undefined => {
  const problem = checkText(text)
  return problem === "blank"
    ? new BadRequest({ error: "invalid_text", message: "text: must not be empty or blank" })
    : problem === "too_long"
      ? new BadRequest({ error: "message_too_long", message: "text: at most 4000 characters" })
      : undefined
}

export const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const hub = yield* Hub
  const names = yield* Names
  const rooms = yield* Rooms
  const observer = yield* HookObserver
  const hooks = yield* ChatHooks.current
  const queries = yield* RoomQueries.make

  /** A name given by the call must be valid, and not another user's: it would put words in their mouth. */
  const checkFrom = (from: string | undefined) =>
    Effect.gen(function* () {
      if (from === undefined) return config.apiName
      if (!isValidName(from)) {
        return yield* Effect.fail(new BadRequest({ error: "invalid_name", message: invalidNameMessage(from) }))
      }
      const owner = yield* names.owner(from).pipe(Effect.catchTag("BackendError", RoomQueries.backendDown))
      if (Option.isSome(owner)) {
        return yield* Effect.fail(
          new Conflict({ error: "name_taken", message: `${truncate(from)} is a user's name; publish under another` })
        )
      }
      return from
    })

  const moderated = (room: string, from: string, text: string) => {
    const moderate = hooks.beforeSend
    if (moderate === undefined) return Effect.succeed(text)
    return moderate({ user: apiIdentity(from), name: from, room, text }).pipe(
      // The hook's own code goes in the message: `error` stays one of the API's codes.
      Effect.mapError((refusal) => new Conflict({ error: "refused", message: `${refusal.code}: ${refusal.message}` })),
      Effect.flatMap((final) => {
        const problem = textProblem(final)
        return problem === undefined ? Effect.succeed(final) : Effect.fail(problem)
      })
    )
  }

  /** Completes with the message's id once it has gone out to the room's members on this node. */
  const publish = (request: PublishRequest): Effect.Effect<number, RequestError | Conflict> =>
    Effect.gen(function* () {
      const problem = textProblem(request.text)
      if (problem !== undefined) return yield* Effect.fail(problem)
      yield* queries.requireKnown(request.room)
      const from = yield* checkFrom(request.from)
      const text = yield* moderated(request.room, from, request.text)
      // No author: nobody can edit or delete it but a moderator.
      const message = yield* hub
        .publish(request.room, { from, text, author: undefined })
        .pipe(Effect.catchTag("BackendError", RoomQueries.backendDown))
      ChatMetrics.add(ChatMetrics.published, 1)
      if (observer.active) observer.published({ message, user: apiIdentity(from) })
      yield* rooms.delivered(request.room, message.id)
      return message.id
    })

  return { publish }
})
