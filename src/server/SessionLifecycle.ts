/**
 * A session's life, whatever its dialect: opened fresh or resumed (with a takeover when another connection still
 * holds it), established, and at the socket's end either held for resume or ended — by how the socket closed.
 * Requests made in between are `SessionRequests`.
 */
import { Duration, Effect, Option, Schedule } from "effect"
import { Hub } from "../backend/Hub.js"
import { Names } from "../backend/Names.js"
import { NodeId } from "../backend/NodeId.js"
import { Presence } from "../backend/Presence.js"
import { newSessionId, type SessionRecord, Sessions } from "../backend/Sessions.js"
import { CloseCode, isValidName, isValidRoom } from "../protocol/Protocol.js"
import type * as Protocol from "../protocol/Protocol.js"
import { ChatError, invalidNameMessage, truncate, unavailable } from "./ChatError.js"
import type { Connection } from "./Connection.js"
import { ConnectionRegistry } from "./ConnectionRegistry.js"
import { Rooms } from "./Rooms.js"
import { ServerConfig } from "./ServerConfig.js"
import { Session } from "./Session.js"

export interface OpenRequest {
  readonly name?: string | undefined
  readonly rooms: ReadonlyArray<string>
  readonly resume?: { readonly token: string; readonly since: Readonly<Record<string, number>> } | undefined
}

export interface Opened {
  readonly welcome: typeof Protocol.Welcome.Type
  /** Refusals that follow the `welcome` (invalid or taken name, invalid rooms). */
  readonly problems: ReadonlyArray<ChatError>
  /** Sends `members`/`history` for the session's rooms; run after the `welcome` is written. */
  readonly enterRooms: Effect.Effect<void>
}

export interface SessionLifecycle {
  readonly open: (connection: Connection, request: OpenRequest) => Effect.Effect<Opened, ChatError>
  /** Another connection resumed this connection's session: leave its rooms unseen and close it with 4009. */
  readonly handOver: (connection: Connection) => Effect.Effect<void>
  /** The socket is gone: leave its rooms, and hold the session for resume or end it, by how it closed. */
  readonly end: (connection: Connection, peerCloseCode: number) => Effect.Effect<void>
}

/** Server close codes after which a session is kept for resume (PROTOCOL.md, "Which closes keep a session"). */
const HOLDING_SERVER_CLOSES: ReadonlySet<number> = new Set([
  CloseCode.goingAway,
  CloseCode.internalError,
  CloseCode.slowConsumer
])

/** Whether a session survives its socket: a client's clean 1000 ends it, a drop holds it, server closes vary. */
export const keepsSession = (closedBy: number | undefined, peerCloseCode: number): boolean =>
  closedBy !== undefined ? HOLDING_SERVER_CLOSES.has(closedBy) : peerCloseCode !== CloseCode.normal

export const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const hub = yield* Hub
  const presence = yield* Presence
  const names = yield* Names
  const sessions = yield* Sessions
  const rooms = yield* Rooms
  const registry = yield* ConnectionRegistry
  const node = yield* NodeId
  /** Sessions of this node held for resume, with what only this node knows of them (their recent refs). */
  const held = new Map<string, Session>()

  // Held sessions whose window ended free their names.
  yield* Effect.forkScoped(
    Effect.suspend(() => sessions.expire(Date.now())).pipe(
      Effect.flatMap((expired) =>
        Effect.forEach(
          expired,
          (record) => {
            held.delete(record.session)
            return names.release(record.name, record.session)
          },
          { discard: true }
        )
      ),
      Effect.ignoreLogged,
      Effect.repeat(Schedule.spaced(Duration.seconds(1)))
    )
  )

  const assignGuest = (session: string) =>
    Effect.gen(function* () {
      while (true) {
        const name = `user${yield* names.nextGuest}`
        if (yield* names.claim({ name, session, node })) return name
      }
    })

  /** Whether every message after `since` in each room is still retained. */
  const canCatchUp = (since: Readonly<Record<string, number>>, roomNames: ReadonlyArray<string>) =>
    Effect.forEach(roomNames, (room) => {
      const after = sinceOf(since, room)
      if (after === undefined) return Effect.succeed(true)
      return Effect.map(hub.bounds(room), ({ latest, oldest }) => after >= latest || oldest <= after + 1)
    }).pipe(Effect.map((all) => all.every(Boolean)))

  const enter = (
    connection: Connection,
    entries: ReadonlyArray<{ room: string; since?: number | undefined }>,
    announce: boolean
  ) =>
    Effect.forEach(
      entries,
      ({ room, since }) =>
        rooms.join(connection, room, { since, announce }).pipe(
          Effect.catchAll((error) =>
            Effect.sync(() => {
              connection.rooms.delete(room)
              connection.send({
                type: "error",
                code: "unavailable",
                message: `${room}: ${error.message}, retry the join`
              })
            })
          )
        ),
      { discard: true }
    )

  const establish = (connection: Connection) =>
    Effect.gen(function* () {
      yield* presence.online(connection.session.id, connection.name)
      const token = yield* sessions.issue(connection.session.record(node))
      connection.opened()
      registry.bindSession(connection)
      return token
    })

  const welcome = (connection: Connection, token: string, resumed: boolean) =>
    Effect.map(presence.users, (users) => ({
      type: "welcome" as const,
      protocol: 1 as const,
      name: connection.name,
      rooms: Array.from(connection.rooms),
      users,
      resume: token,
      resumed
    }))

  const endSession = (session: string, name: string, roomNames: ReadonlyArray<string>, live: Connection | undefined) =>
    Effect.gen(function* () {
      if (live !== undefined) for (const room of roomNames) yield* rooms.leave(live, room, { announce: true })
      yield* presence.offline(session)
      yield* sessions.remove(session)
      yield* names.release(name, session)
      held.delete(session)
    }).pipe(Effect.ignoreLogged)

  const handOver = (live: Connection) =>
    Effect.gen(function* () {
      live.takenOver()
      for (const room of live.rooms) yield* rooms.leave(live, room, { announce: false })
      live.outlet.close(CloseCode.takenOver, "session taken over")
    })

  /** The session `previous` on the connection: from this node's live holder, its held record, or the backend's. */
  const restore = (connection: Connection, previous: SessionRecord, live: Connection | undefined) => {
    const local = live === undefined ? held.get(previous.session) : undefined
    held.delete(previous.session)
    connection.session =
      live !== undefined
        ? live.session.handedOver(previous.rooms)
        : local !== undefined
          ? local.handedOver(previous.rooms)
          : new Session(previous.session, previous.name, previous.rooms)
    connection.session.name = previous.name
  }

  const resume = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      if (request.resume === undefined) return Option.none<Opened>()
      const found = yield* sessions.redeem(request.resume.token)
      if (Option.isNone(found)) return Option.none<Opened>()
      const previous = found.value
      const live = registry.bySession(previous.session)
      const since = request.resume.since
      const remote = live === undefined && previous.heldUntil === undefined && previous.node !== node
      if (!(yield* canCatchUp(since, previous.rooms))) {
        // Cannot restore without a gap: end the old session (the others see it leave) so its name is free for the
        // fresh one, and close a connection still holding it.
        live?.takenOver()
        if (remote) yield* hub.direct(previous.node, { _tag: "Takeover", session: previous.session })
        yield* endSession(previous.session, previous.name, previous.rooms, live)
        live?.outlet.close(CloseCode.takenOver, "session taken over")
        return Option.none<Opened>()
      }
      restore(connection, previous, live)
      const takeover = remote || (live !== undefined && live !== connection)
      if (live !== undefined && live !== connection) yield* handOver(live)
      else if (remote) yield* hub.direct(previous.node, { _tag: "Takeover", session: previous.session })
      const token = yield* establish(connection)
      const entries = previous.rooms.map((room) => ({ room, since: sinceOf(since, room) }))
      return Option.some<Opened>({
        welcome: yield* welcome(connection, token, true),
        problems: [],
        enterRooms: enter(connection, entries, !takeover)
      })
    })

  const fresh = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      const problems: Array<ChatError> = []
      const session = new Session(newSessionId(), "")
      connection.session = session
      const wanted = request.name
      if (wanted !== undefined && !isValidName(wanted)) {
        problems.push(new ChatError({ code: "invalid_name", message: invalidNameMessage(wanted) }))
      } else if (wanted !== undefined) {
        if (yield* names.claim({ name: wanted, session: session.id, node })) session.name = wanted
        else problems.push(new ChatError({ code: "name_taken", message: `${wanted} is taken` }))
      }
      if (session.name === "") session.name = yield* assignGuest(session.id)
      for (const room of request.rooms) {
        if (!isValidRoom(room)) {
          problems.push(new ChatError({ code: "invalid_room", message: `invalid room name: ${truncate(room)}` }))
        } else if (session.rooms.size >= config.maxRoomsPerConnection) {
          problems.push(
            new ChatError({ code: "too_many_rooms", message: `at most ${config.maxRoomsPerConnection} rooms` })
          )
        } else {
          session.rooms.add(room)
        }
      }
      // A backend failure past this point must not leave the claimed name owned by a session that never opened.
      const token = yield* establish(connection).pipe(
        Effect.tapError(() => names.release(session.name, session.id).pipe(Effect.ignore))
      )
      return {
        welcome: yield* welcome(connection, token, false),
        problems,
        enterRooms: enter(
          connection,
          Array.from(session.rooms, (room) => ({ room })),
          true
        )
      } satisfies Opened
    })

  return {
    // Uninterruptible: a socket closing mid-open must not leave a name claimed or a user counted for nobody; its
    // end waits for the open and then sees a consistent session.
    open: (connection, request) =>
      resume(connection, request).pipe(
        Effect.flatMap(Option.match({ onNone: () => fresh(connection, request), onSome: Effect.succeed })),
        Effect.catchAll(unavailable),
        Effect.uninterruptible
      ),

    handOver,

    end: (connection, peerCloseCode) =>
      Effect.gen(function* () {
        const state = connection.state
        if (state._tag === "Opening" || state._tag === "TakenOver") return
        if (state._tag === "Closing" && !state.opened) return
        const session = connection.session
        if (!keepsSession(connection.closedBy, peerCloseCode)) {
          return yield* endSession(session.id, session.name, Array.from(session.rooms), connection)
        }
        for (const room of session.rooms) yield* rooms.leave(connection, room, { announce: true })
        // A resume may have taken the session over while this end waited on the backend: it is not ours any more.
        if (connection.state._tag === "TakenOver") return
        held.set(session.id, session)
        yield* presence.offline(session.id)
        const heldUntil = Date.now() + Duration.toMillis(config.resumeWindow)
        yield* sessions.update(session.record(node, heldUntil))
      }).pipe(Effect.ignoreLogged)
  } satisfies SessionLifecycle
})

/** `since[room]`, reading only the client's own keys: a room may be called `constructor` or `__proto__`. */
const sinceOf = (since: Readonly<Record<string, number>>, room: string): number | undefined =>
  Object.hasOwn(since, room) ? since[room] : undefined
