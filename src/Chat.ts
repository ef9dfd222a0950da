/**
 * What a session can do, whatever its dialect: open (fresh or resumed), send, join, leave, change name, message one
 * user, read history, list members, and end. Every refusal is a `ChatError` with a protocol error code; the dialects
 * only render results. The backends (hub, presence, names, sessions) are services, so this logic is the same on
 * one node and on a Redis cluster.
 */
import { Context, Duration, Effect, Layer, Option, Schedule, Schema } from "effect"
import * as Crypto from "node:crypto"
import type { BackendError } from "./BackendError.js"
import type { Connection } from "./Connection.js"
import { ConnectionRegistry } from "./ConnectionRegistry.js"
import { Hub, type HistoryPage } from "./Hub.js"
import { Names } from "./Names.js"
import { Presence } from "./Presence.js"
import { checkText, CloseCode, ErrorCode, isValidName, isValidRoom, nameKey } from "./protocol/Protocol.js"
import type * as Protocol from "./protocol/Protocol.js"
import { Rooms } from "./Rooms.js"
import { ServerConfig } from "./ServerConfig.js"
import { newSessionId, type SessionRecord, Sessions } from "./Sessions.js"

/** A request refused with a protocol error code; crosses the wire as an `error` frame. */
export class ChatError extends Schema.TaggedError<ChatError>()("ChatError", {
  code: ErrorCode,
  message: Schema.String
}) {}

const fail = (code: ErrorCode, message: string) => Effect.fail(new ChatError({ code, message }))

/** A backend failure becomes a refusal the user sees, never a silent loss. */
const unavailable = (error: BackendError) =>
  Effect.logWarning("backend failure", error.message).pipe(
    Effect.zipRight(Effect.fail(new ChatError({ code: "unavailable", message: "temporarily unavailable, retry" })))
  )

/** Identifies this process among the nodes of a cluster. */
export class NodeId extends Context.Tag("effect-chat/NodeId")<NodeId, string>() {
  static layer = Layer.sync(NodeId, () => Crypto.randomUUID())
}

export interface OpenRequest {
  readonly name?: string | undefined
  readonly rooms: ReadonlyArray<string>
  readonly resume?: { readonly token: string; readonly since: Readonly<Record<string, number>> } | undefined
}

export interface Opened {
  readonly welcome: Protocol.ServerFrame & { readonly type: "welcome" }
  /** Refusals that follow the `welcome` (invalid or taken name, invalid rooms). */
  readonly problems: ReadonlyArray<ChatError>
  /** Sends `members`/`history` for the session's rooms; run after the `welcome` is written. */
  readonly enterRooms: Effect.Effect<void>
}

export interface ChatService {
  readonly open: (connection: Connection, request: OpenRequest) => Effect.Effect<Opened, ChatError>
  readonly send: (connection: Connection, room: string, text: string, ref?: string) => Effect.Effect<number, ChatError>
  readonly join: (connection: Connection, room: string) => Effect.Effect<void, ChatError>
  readonly leave: (connection: Connection, room: string) => Effect.Effect<void, ChatError>
  readonly nick: (connection: Connection, name: string) => Effect.Effect<void, ChatError>
  readonly direct: (connection: Connection, to: string, text: string) => Effect.Effect<void, ChatError>
  readonly history: (
    connection: Connection,
    room: string,
    query: { readonly before?: number | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<HistoryPage, ChatError>
  readonly who: (connection: Connection, room: string) => Effect.Effect<ReadonlyArray<string>, ChatError>
  readonly users: Effect.Effect<number, ChatError>
  /** Another connection resumed this connection's session: leave its rooms unseen and close it with 4009. */
  readonly handOver: (connection: Connection) => Effect.Effect<void>
  /** The socket is gone: leave its rooms, and hold the session for resume or end it, by how it closed. */
  readonly end: (connection: Connection, peerCloseCode: number) => Effect.Effect<void>
}

export class Chat extends Context.Tag("effect-chat/Chat")<Chat, ChatService>() {
  static layer = Layer.scoped(
    Chat,
    Effect.suspend(() => make)
  )
}

/** Server close codes after which a session is kept for resume (PROTOCOL.md, "Which closes keep a session"). */
const HOLDING_SERVER_CLOSES: ReadonlySet<number> = new Set([
  CloseCode.goingAway,
  CloseCode.internalError,
  CloseCode.slowConsumer
])

export const keepsSession = (closedBy: number | undefined, peerCloseCode: number): boolean =>
  closedBy !== undefined ? HOLDING_SERVER_CLOSES.has(closedBy) : peerCloseCode !== CloseCode.normal

/**
 * Recent `send` refs of a session with what they sent and the id they got: a retried send (same ref, room and
 * text) is acknowledged, not delivered twice; a ref reused for another message is a new message.
 */
const REFS_KEPT = 256
interface SentRef {
  readonly room: string
  readonly text: string
  readonly id: number
}
const refs = new WeakMap<Connection, Map<string, SentRef>>()
const refsOf = (connection: Connection) => {
  let map = refs.get(connection)
  if (map === undefined) refs.set(connection, (map = new Map()))
  return map
}

const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const hub = yield* Hub
  const presence = yield* Presence
  const names = yield* Names
  const sessions = yield* Sessions
  const rooms = yield* Rooms
  const registry = yield* ConnectionRegistry
  const node = yield* NodeId
  /** Refs of sessions held for resume, handed to the connection that resumes them. */
  const heldRefs = new Map<string, Map<string, SentRef>>()

  const record = (connection: Connection, heldUntil?: number): SessionRecord => ({
    session: connection.session,
    name: connection.name,
    rooms: Array.from(connection.rooms),
    node,
    heldUntil
  })
  const saveRecord = (connection: Connection) => sessions.update(record(connection)).pipe(Effect.ignoreLogged)

  // Held sessions whose window ended free their names.
  yield* Effect.forkScoped(
    Effect.suspend(() => sessions.expire(Date.now())).pipe(
      Effect.flatMap((expired) =>
        Effect.forEach(
          expired,
          (r) => {
            heldRefs.delete(r.session)
            return names.release(r.name, r.session)
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
      yield* presence.online(connection.session, connection.name)
      const token = yield* sessions.issue(record(connection))
      connection.established = true
      registry.bindSession(connection)
      return token
    })

  const resume = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      if (request.resume === undefined) return Option.none<Opened>()
      const found = yield* sessions.redeem(request.resume.token)
      if (Option.isNone(found)) return Option.none<Opened>()
      const previous = found.value
      const live = registry.bySession(previous.session)
      const since = request.resume.since
      if (!(yield* canCatchUp(since, previous.rooms))) {
        // Cannot restore without a gap: end the old session (the others see it leave) so its name is free for the
        // fresh one, and close a connection still holding it.
        if (live !== undefined) live.takenOver = true
        else if (previous.heldUntil === undefined && previous.node !== node) {
          yield* hub.direct(previous.node, { _tag: "Takeover", session: previous.session })
        }
        yield* endSession(previous.session, previous.name, previous.rooms, live)
        live?.close(CloseCode.takenOver, "session taken over")
        return Option.none<Opened>()
      }
      connection.session = previous.session
      connection.name = previous.name
      for (const room of previous.rooms) connection.rooms.add(room)
      const remote = live === undefined && previous.heldUntil === undefined && previous.node !== node
      const takeover = remote || (live !== undefined && live !== connection)
      if (live !== undefined && live !== connection) {
        refs.set(connection, refsOf(live))
        yield* handOver(live)
      } else if (remote) {
        yield* hub.direct(previous.node, { _tag: "Takeover", session: previous.session })
      } else {
        refs.set(connection, heldRefs.get(previous.session) ?? new Map())
        heldRefs.delete(previous.session)
      }
      const token = yield* establish(connection)
      const entries = previous.rooms.map((room) => ({ room, since: sinceOf(since, room) }))
      return Option.some<Opened>({
        welcome: yield* welcome(connection, token, true),
        problems: [],
        enterRooms: enter(connection, entries, !takeover)
      })
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

  const fresh = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      const problems: Array<ChatError> = []
      connection.session = newSessionId()
      const wanted = request.name
      if (wanted !== undefined && !isValidName(wanted)) {
        problems.push(new ChatError({ code: "invalid_name", message: invalidNameMessage(wanted) }))
      } else if (wanted !== undefined) {
        if (yield* names.claim({ name: wanted, session: connection.session, node })) connection.name = wanted
        else problems.push(new ChatError({ code: "name_taken", message: `${wanted} is taken` }))
      }
      if (connection.name === "") connection.name = yield* assignGuest(connection.session)
      for (const room of request.rooms) {
        if (!isValidRoom(room)) {
          problems.push(new ChatError({ code: "invalid_room", message: `invalid room name: ${truncate(room)}` }))
        } else if (connection.rooms.size >= config.maxRoomsPerConnection) {
          problems.push(
            new ChatError({ code: "too_many_rooms", message: `at most ${config.maxRoomsPerConnection} rooms` })
          )
        } else {
          connection.rooms.add(room)
        }
      }
      // A backend failure past this point must not leave the claimed name owned by a session that never opened.
      const token = yield* establish(connection).pipe(
        Effect.tapError(() => names.release(connection.name, connection.session).pipe(Effect.ignore))
      )
      return {
        welcome: yield* welcome(connection, token, false),
        problems,
        enterRooms: enter(
          connection,
          Array.from(connection.rooms, (room) => ({ room })),
          true
        )
      } satisfies Opened
    })

  const endSession = (session: string, name: string, roomNames: ReadonlyArray<string>, live: Connection | undefined) =>
    Effect.gen(function* () {
      if (live !== undefined) for (const room of roomNames) yield* rooms.leave(live, room, { announce: true })
      yield* presence.offline(session)
      yield* sessions.remove(session)
      yield* names.release(name, session)
      heldRefs.delete(session)
    }).pipe(Effect.ignoreLogged)

  const handOver = (live: Connection) =>
    Effect.gen(function* () {
      live.takenOver = true
      for (const room of live.rooms) yield* rooms.leave(live, room, { announce: false })
      live.close(CloseCode.takenOver, "session taken over")
    })

  const requireMember = (connection: Connection, room: string) =>
    !isValidRoom(room)
      ? fail("invalid_room", `invalid room name: ${truncate(room)}`)
      : connection.rooms.has(room)
        ? Effect.void
        : fail("not_in_room", `you are not in ${room}`)

  const checkedText = (text: string) => {
    const problem = checkText(text)
    return problem === "blank"
      ? fail("invalid_frame", "text: must not be empty or blank")
      : problem === "too_long"
        ? fail("message_too_long", "text: at most 4000 characters")
        : Effect.void
  }

  return Chat.of({
    // Uninterruptible: a socket closing mid-open must not leave a name claimed or a user counted for nobody; its
    // end waits for the open and then sees a consistent session.
    open: (connection, request) =>
      resume(connection, request).pipe(
        Effect.flatMap(Option.match({ onNone: () => fresh(connection, request), onSome: Effect.succeed })),
        Effect.catchAll(unavailable),
        Effect.uninterruptible
      ),

    send: (connection, room, text, ref) =>
      Effect.gen(function* () {
        yield* requireMember(connection, room)
        yield* checkedText(text)
        const seen = ref === undefined ? undefined : refsOf(connection).get(ref)
        if (seen !== undefined && seen.room === room && seen.text === text) return seen.id
        const message = yield* hub.publish(room, { from: connection.name, text }).pipe(Effect.catchAll(unavailable))
        if (ref !== undefined) {
          const kept = refsOf(connection)
          kept.delete(ref)
          kept.set(ref, { room, text, id: message.id })
          if (kept.size > REFS_KEPT) kept.delete(kept.keys().next().value!)
        }
        return message.id
      }),

    join: (connection, room) =>
      Effect.gen(function* () {
        if (!isValidRoom(room)) return yield* fail("invalid_room", `invalid room name: ${truncate(room)}`)
        if (connection.rooms.has(room)) return
        if (connection.rooms.size >= config.maxRoomsPerConnection) {
          return yield* fail("too_many_rooms", `at most ${config.maxRoomsPerConnection} rooms`)
        }
        connection.rooms.add(room)
        yield* rooms.join(connection, room, { announce: true }).pipe(
          Effect.tapError(() => Effect.sync(() => connection.rooms.delete(room))),
          Effect.catchAll(unavailable)
        )
        yield* saveRecord(connection)
      }),

    leave: (connection, room) =>
      Effect.gen(function* () {
        yield* requireMember(connection, room)
        connection.rooms.delete(room)
        yield* rooms.leave(connection, room, { announce: true })
        yield* saveRecord(connection)
      }),

    nick: (connection, name) =>
      Effect.gen(function* () {
        if (!isValidName(name)) return yield* fail("invalid_name", invalidNameMessage(name))
        const previous = connection.name
        if (name === previous) return
        // Claiming the new name and freeing the old one happen together or not at all.
        const claimed = yield* Effect.uninterruptible(
          Effect.gen(function* () {
            if (!(yield* names.claim({ name, session: connection.session, node }))) return false
            connection.name = name
            if (nameKey(previous) !== nameKey(name)) {
              yield* names.release(previous, connection.session).pipe(Effect.ignoreLogged)
            }
            return true
          })
        ).pipe(Effect.catchAll(unavailable))
        if (!claimed) return yield* fail("name_taken", `${name} is taken`)
        yield* presence.rename(connection.session, connection.rooms, name).pipe(Effect.ignoreLogged)
        yield* saveRecord(connection)
        const eventId = Crypto.randomUUID()
        const frame = { type: "renamed" as const, from: previous, to: name, at: Date.now() }
        connection.firstSightOfRename(eventId)
        if (connection.dialect === "json") connection.send(frame)
        for (const room of connection.rooms) {
          yield* hub
            .announce(room, { _tag: "Renamed", session: connection.session, eventId, frame })
            .pipe(Effect.ignoreLogged)
        }
      }),

    direct: (connection, to, text) =>
      Effect.gen(function* () {
        yield* checkedText(text)
        const owner = yield* names.owner(to).pipe(Effect.catchAll(unavailable))
        const target = Option.getOrUndefined(owner)
        const local = target === undefined ? undefined : registry.bySession(target.session)
        // A name held for resume belongs to nobody who could read the message now.
        const reachable =
          target !== undefined &&
          (local !== undefined ||
            (target.node !== node &&
              (yield* presence.isOnline(target.session, target.node).pipe(Effect.catchAll(unavailable)))))
        if (!reachable) return yield* fail("no_such_user", `no user named ${truncate(to)}`)
        const frame = { type: "direct" as const, from: connection.name, to: target.name, text, at: Date.now() }
        if (local !== undefined) local.send(frame)
        else
          yield* hub
            .direct(target.node, { _tag: "Direct", session: target.session, frame })
            .pipe(Effect.catchAll(unavailable))
        if (local !== connection) connection.send(frame)
      }),

    history: (connection, room, query) =>
      Effect.gen(function* () {
        yield* requireMember(connection, room)
        const limit = Math.min(query.limit ?? 50, 100)
        // Not past what this connection has been sent live, so no message arrives both in the page and live after it.
        const delivered = rooms.lastDelivered(room)
        const before =
          delivered === undefined ? query.before : Math.min(query.before ?? Number.MAX_SAFE_INTEGER, delivered + 1)
        return yield* hub.history(room, { before, limit }).pipe(Effect.catchAll(unavailable))
      }),

    who: (connection, room) =>
      requireMember(connection, room).pipe(Effect.zipRight(presence.members(room).pipe(Effect.catchAll(unavailable)))),

    users: presence.users.pipe(Effect.catchAll(unavailable)),

    handOver,

    end: (connection, peerCloseCode) =>
      Effect.gen(function* () {
        if (!connection.established || connection.takenOver) return
        if (!keepsSession(connection.closedBy, peerCloseCode)) {
          return yield* endSession(connection.session, connection.name, Array.from(connection.rooms), connection)
        }
        for (const room of connection.rooms) yield* rooms.leave(connection, room, { announce: true })
        // A resume may have taken the session over while this end waited on the backend: it is not ours any more.
        if (connection.takenOver) return
        heldRefs.set(connection.session, refsOf(connection))
        yield* presence.offline(connection.session)
        const heldUntil = Date.now() + Duration.toMillis(config.resumeWindow)
        yield* sessions.update(record(connection, heldUntil))
      }).pipe(Effect.ignoreLogged)
  })
})

/** `since[room]`, reading only the client's own keys: a room may be called `constructor` or `__proto__`. */
const sinceOf = (since: Readonly<Record<string, number>>, room: string): number | undefined =>
  Object.hasOwn(since, room) ? since[room] : undefined

const truncate = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s)
const invalidNameMessage = (name: string) =>
  /^user[0-9]+$/i.test(name)
    ? `${name}: names of the form user<digits> are reserved`
    : `invalid name ${JSON.stringify(truncate(name))}: 1-32 letters, digits, _ - .`
