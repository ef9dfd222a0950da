/**
 * What the API reads about rooms: which rooms have members (cluster-wide), a room's members and a page of its
 * history. A room is known while it has members or retains messages; any other is `no_such_room` (404), whatever
 * the backend still remembers of it.
 */
import { Effect } from "effect"
import type { BackendError } from "../backend/BackendError.js"
import { Hub, type HistoryPage } from "../backend/Hub.js"
import { Presence, type RoomCount } from "../backend/Presence.js"
import { isValidRoom } from "../protocol/Protocol.js"
import { truncate } from "../server/ChatError.js"
import { Rooms } from "../server/Rooms.js"
import { type RequestError, BadRequest, NotFound, unavailable } from "./ApiErrors.js"

/** Rooms one listing answers at most. */
export const MAX_LISTED_ROOMS = 1000
export const DEFAULT_HISTORY = 50
export const MAX_HISTORY = 100

export interface RoomQueriesService {
  /** The room's members, after checking it is a valid room that exists. */
  readonly members: (room: string) => Effect.Effect<ReadonlyArray<string>, RequestError>
  readonly list: Effect.Effect<ReadonlyArray<RoomCount>, RequestError>
  readonly history: (
    room: string,
    query: { readonly before?: number | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<HistoryPage, RequestError>
  /** Fails unless `room` is valid (400) and known (404). */
  readonly requireKnown: (room: string) => Effect.Effect<void, RequestError>
}

export const backendDown = (error: BackendError) =>
  Effect.logDebug("backend failure", error.message).pipe(Effect.zipRight(Effect.fail(unavailable())))

export const invalidRoom = (room: string) =>
  new BadRequest({
    error: "invalid_room",
    message: `invalid room name: ${truncate(room)} (1-64 letters, digits, _ - .)`
  })

export const make = Effect.gen(function* () {
  const hub = yield* Hub
  const presence = yield* Presence
  const rooms = yield* Rooms

  const noSuchRoom = (room: string) => new NotFound({ error: "no_such_room", message: `no room ${truncate(room)}` })

  /** Members, or undefined when the room has none and no history either. */
  const membersIfKnown = (room: string) =>
    Effect.gen(function* () {
      if (!isValidRoom(room)) return yield* Effect.fail(invalidRoom(room))
      const names = yield* presence.members(room)
      if (names.length > 0) return names
      const { latest } = yield* hub.bounds(room)
      return latest > 0 ? names : undefined
    }).pipe(Effect.catchTag("BackendError", backendDown))

  const members: RoomQueriesService["members"] = (room) =>
    Effect.flatMap(membersIfKnown(room), (names) =>
      names === undefined ? Effect.fail(noSuchRoom(room)) : Effect.succeed(names)
    )

  const requireKnown: RoomQueriesService["requireKnown"] = (room) => Effect.asVoid(members(room))

  const history: RoomQueriesService["history"] = (room, query) =>
    Effect.gen(function* () {
      yield* requireKnown(room)
      const limit = Math.min(query.limit ?? DEFAULT_HISTORY, MAX_HISTORY)
      // As for a member's request: not past what this node has delivered live, so the page and the live feed of a
      // client reading both never overlap.
      const delivered = rooms.lastDelivered(room)
      const before =
        delivered === undefined ? query.before : Math.min(query.before ?? Number.MAX_SAFE_INTEGER, delivered + 1)
      return yield* hub.history(room, { before, limit }).pipe(Effect.catchTag("BackendError", backendDown))
    })

  return {
    members,
    requireKnown,
    history,
    list: presence.rooms(MAX_LISTED_ROOMS).pipe(Effect.catchTag("BackendError", backendDown))
  } satisfies RoomQueriesService
})
