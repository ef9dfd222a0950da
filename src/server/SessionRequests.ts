/**
 * What an open session can ask for, whatever its dialect: send, join, leave, change name, message one user, read
 * history, list members. Every refusal is a `ChatError` with a protocol error code; the dialects only render the
 * results. The backends are services, so this is the same on one node and on a Redis cluster.
 */
import { Effect, Option } from "effect"
import { type ChangeRefused, Hub, type HistoryPage } from "../backend/Hub.js"
import { Names } from "../backend/Names.js"
import { NodeId } from "../backend/NodeId.js"
import { Presence } from "../backend/Presence.js"
import { Sessions } from "../backend/Sessions.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import {
  checkEmoji,
  checkText,
  isValidName,
  isValidRoom,
  MAX_REACTIONS,
  nameKey,
  TYPING_INTERVAL_MS
} from "../protocol/Protocol.js"
import * as ChatHooks from "./ChatHooks.js"
import {
  type ChatError,
  fail,
  fromRefusal,
  invalidNameMessage,
  invalidRoom,
  truncate,
  unavailable
} from "./ChatError.js"
import type { Connection } from "./Connection.js"
import { ConnectionRegistry } from "./ConnectionRegistry.js"
import { HookObserver } from "./HookObserver.js"
import { permit } from "./Permissions.js"
import * as Renamed from "./Renamed.js"
import * as Tracing from "./Tracing.js"
import { Rooms } from "./Rooms.js"
import { ServerConfig } from "./ServerConfig.js"

export interface HistoryQuery {
  readonly before?: number | undefined
  readonly limit?: number | undefined
}

/** What a member asks to change about a message of a room (`MessageState` has the rules). */
export type MessageChange =
  | { readonly _tag: "Edit"; readonly id: number; readonly text: string }
  | { readonly _tag: "Delete"; readonly id: number }
  | { readonly _tag: "React"; readonly id: number; readonly emoji: string; readonly on: boolean }

export interface SessionRequests {
  /**
   * Completes with the message's id; a retried send (same ref, room and text) gets its first id back. With a ref (a
   * send that will be acknowledged) it completes once the message has gone out to the room's members here.
   * `replyTo` must be a message id the room has had (`no_such_message` otherwise).
   */
  readonly send: (
    connection: Connection,
    room: string,
    text: string,
    ref?: string,
    replyTo?: number
  ) => Effect.Effect<number, ChatError>
  /** Tells the room's other members this user is typing; at most one a second per user and room passes. */
  readonly typing: (connection: Connection, room: string) => Effect.Effect<void, ChatError>
  /** Edits, deletes or reacts to a message; completes once the change has gone out to the members here. */
  readonly change: (connection: Connection, room: string, change: MessageChange) => Effect.Effect<void, ChatError>
  /** Moves the user's read marker in `room` forward; the user's connections there get `unread` if it moved. */
  readonly read: (connection: Connection, room: string, id: number) => Effect.Effect<void, ChatError>
  readonly join: (connection: Connection, room: string) => Effect.Effect<void, ChatError>
  readonly leave: (connection: Connection, room: string) => Effect.Effect<void, ChatError>
  readonly nick: (connection: Connection, name: string) => Effect.Effect<void, ChatError>
  readonly direct: (connection: Connection, to: string, text: string) => Effect.Effect<void, ChatError>
  readonly history: (connection: Connection, room: string, query: HistoryQuery) => Effect.Effect<HistoryPage, ChatError>
  readonly who: (connection: Connection, room: string) => Effect.Effect<ReadonlyArray<string>, ChatError>
  readonly users: Effect.Effect<number, ChatError>
}

export const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const hub = yield* Hub
  const presence = yield* Presence
  const names = yield* Names
  const sessions = yield* Sessions
  const rooms = yield* Rooms
  const registry = yield* ConnectionRegistry
  const node = yield* NodeId
  const hooks = yield* ChatHooks.current
  const observer = yield* HookObserver

  const saveRecord = (connection: Connection) =>
    sessions.update(connection.session.record(node)).pipe(Effect.ignoreLogged)

  /** The refusal of a request for a room this connection is not in, or undefined when it is. */
  const requireMember = (connection: Connection, room: string) =>
    !isValidRoom(room)
      ? invalidRoom(room)
      : connection.rooms.has(room)
        ? undefined
        : fail("not_in_room", `you are not in ${room}`)

  /** The refusal of a text no message may have, or undefined. */
  const checkedText = (text: string) => {
    const problem = checkText(text)
    return problem === "blank"
      ? fail("invalid_frame", "text: must not be empty or blank")
      : problem === "too_long"
        ? fail("message_too_long", "text: at most 4000 characters")
        : undefined
  }

  const member = (connection: Connection, room: string) => requireMember(connection, room) ?? Effect.void

  /** A member's request about `room`, checked for permission first: `forbidden` comes before `not_in_room`. */
  const allowedMember = (connection: Connection, room: string, action: ChatHooks.Action) => {
    if (!isValidRoom(room)) return invalidRoom(room)
    const check = permit(hooks, connection, action, room)
    const membership = requireMember(connection, room)
    if (check === undefined) return membership ?? Effect.void
    return membership === undefined ? check : Effect.zipRight(check, membership)
  }

  /** The text a moderator lets through (the same, or rewritten), checked again as any text is. */
  const moderated = (
    connection: Connection,
    room: string,
    text: string,
    moderate: NonNullable<ChatHooks.ChatHooksService["beforeSend"]>
  ) =>
    Effect.flatMap(
      Effect.mapError(moderate({ user: connection.identity, name: connection.name, room, text }), fromRefusal),
      (final) => checkedText(final) ?? Effect.succeed(final)
    )

  const publish = (connection: Connection, room: string, text: string, replyTo: number | undefined) => {
    const published = hub
      .publish(room, { from: connection.session.name, text, author: connection.key, replyTo })
      .pipe(Effect.catchAll(unavailable))
    if (!observer.active) return published
    return Effect.tap(published, (message) =>
      Effect.sync(() => observer.published({ message, user: connection.identity }))
    )
  }

  // The hot path: plain combinators, no generator per message; a hook that is not there costs nothing.
  // A span per send only when the application installed a tracer of its own: the built-in one keeps spans nobody
  // reads, and a span costs a send about 35 µs of CPU (measured: small rooms went from 1.2-1.3x to 1.4-1.5x raw).
  const traced = yield* Tracing.installed
  const send: SessionRequests["send"] = traced
    ? (connection, room, text, ref, replyTo) =>
        Effect.withSpan(sendRequest(connection, room, text, ref, replyTo), "chat.send")
    : (connection, room, text, ref, replyTo) => sendRequest(connection, room, text, ref, replyTo)

  const sendRequest: SessionRequests["send"] = (connection, room, text, ref, replyTo) => {
    const checked = connection.identity !== undefined || hooks.authorize !== undefined
    const refused = (checked ? undefined : requireMember(connection, room)) ?? checkedText(text)
    if (refused !== undefined) return refused
    if (checked || replyTo !== undefined) {
      return Effect.zipRight(
        checked ? allowedMember(connection, room, "send") : Effect.void,
        Effect.suspend(() =>
          replyTo === undefined
            ? sendChecked(connection, room, text, ref, replyTo)
            : Effect.zipRight(known(room, replyTo), sendChecked(connection, room, text, ref, replyTo))
        )
      )
    }
    return sendChecked(connection, room, text, ref, undefined)
  }

  /** Refuses an id the room never had: a reply must answer a message that exists (or existed). */
  const known = (room: string, id: number) => {
    const delivered = rooms.lastDelivered(room)
    if (id >= 1 && delivered !== undefined && id <= delivered) return Effect.void
    const missing = fail("no_such_message", `${room} has no message ${id}`)
    if (id < 1) return missing
    return hub.bounds(room).pipe(
      Effect.catchAll(unavailable),
      Effect.flatMap(({ latest }) => (id <= latest ? Effect.void : missing))
    )
  }

  const sendChecked = (
    connection: Connection,
    room: string,
    text: string,
    ref: string | undefined,
    replyTo: number | undefined
  ) => {
    const session = connection.session
    const seen = ref === undefined ? undefined : session.sentBefore(ref, room, text)
    if (seen !== undefined) return Effect.succeed(seen)
    const moderate = hooks.beforeSend
    const published =
      moderate === undefined
        ? publish(connection, room, text, replyTo)
        : Effect.flatMap(moderated(connection, room, text, moderate), (final) =>
            publish(connection, room, final, replyTo)
          )
    if (ref === undefined)
      return Effect.map(published, (message) => {
        ChatMetrics.add(ChatMetrics.published, 1)
        return message.id
      })
    return Effect.flatMap(published, (message) => {
      ChatMetrics.add(ChatMetrics.published, 1)
      session.rememberSent(ref, room, text, message.id)
      // Acknowledged after the message went out: the sender sees its message before the ack, and what it sends
      // after the ack cannot overtake it.
      return Effect.as(rooms.delivered(room, message.id), message.id)
    })
  }

  const join: SessionRequests["join"] = Effect.fn("chat.join")(function* (connection: Connection, room: string) {
    if (!isValidRoom(room)) return yield* invalidRoom(room)
    yield* permit(hooks, connection, "join", room) ?? Effect.void
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
  })

  const leave: SessionRequests["leave"] = Effect.fn("chat.leave")(function* (connection: Connection, room: string) {
    yield* member(connection, room)
    connection.rooms.delete(room)
    yield* rooms.leave(connection, room, { announce: true })
    yield* saveRecord(connection)
  })

  const nick: SessionRequests["nick"] = Effect.fn("chat.nick")(function* (connection: Connection, name: string) {
    if (connection.identity !== undefined) {
      return yield* fail("forbidden", "your name comes from your token; it cannot be changed here")
    }
    if (!isValidName(name)) return yield* fail("invalid_name", invalidNameMessage(name))
    const session = connection.session
    const previous = session.name
    if (name === previous) return
    // Claiming the new name and freeing the old one happen together or not at all.
    const claimed = yield* Effect.uninterruptible(
      Effect.gen(function* () {
        if (!(yield* names.claim({ name, session: session.id, node }))) return false
        session.name = name
        if (nameKey(previous) !== nameKey(name)) {
          yield* names.release(previous, session.id).pipe(Effect.ignoreLogged)
        }
        return true
      })
    ).pipe(Effect.catchAll(unavailable))
    if (!claimed) return yield* fail("name_taken", `${name} is taken`)
    yield* presence.rename(connection.key, session.rooms, name).pipe(Effect.ignoreLogged)
    yield* saveRecord(connection)
    yield* Renamed.announce(hub, connection, previous)
  })

  const direct: SessionRequests["direct"] = Effect.fn("chat.direct")(function* (
    connection: Connection,
    to: string,
    text: string
  ) {
    yield* checkedText(text) ?? Effect.void
    yield* permit(hooks, connection, "direct", to) ?? Effect.void
    const owner = yield* names.owner(to).pipe(Effect.catchAll(unavailable))
    const target = Option.getOrUndefined(owner)
    // The owner's key is a guest's session or a user's key: a user gets it on every connection, on every node.
    const local = target === undefined ? [] : registry.byKey(target.session)
    const remote =
      target === undefined ? [] : yield* presence.remoteNodes(target.session, node).pipe(Effect.catchAll(unavailable))
    // A name held for resume belongs to nobody who could read the message now.
    if (target === undefined || (local.length === 0 && remote.length === 0)) {
      return yield* fail("no_such_user", `no user named ${truncate(to)}`)
    }
    const frame = { type: "direct" as const, from: connection.name, to: target.name, text, at: Date.now() }
    for (const receiver of local) receiver.send(frame)
    yield* Effect.forEach(
      remote,
      (other) =>
        hub.direct(other, { _tag: "Direct", session: target.session, frame }).pipe(Effect.catchAll(unavailable)),
      { discard: true }
    )
    if (!local.includes(connection)) connection.send(frame)
  })

  const history: SessionRequests["history"] = Effect.fn("chat.history")(function* (
    connection: Connection,
    room: string,
    query: HistoryQuery
  ) {
    yield* allowedMember(connection, room, "read")
    const limit = Math.min(query.limit ?? 50, 100)
    // Not past what this connection has been sent live, so no message arrives both in the page and live after it.
    const delivered = rooms.lastDelivered(room)
    const before =
      delivered === undefined ? query.before : Math.min(query.before ?? Number.MAX_SAFE_INTEGER, delivered + 1)
    return yield* hub.history(room, { before, limit }).pipe(Effect.catchAll(unavailable))
  })

  /** When each user last passed a typing hint per room; old entries go once the map grows. */
  const typedAt = new Map<string, number>()
  const typing: SessionRequests["typing"] = (connection, room) =>
    Effect.zipRight(
      allowedMember(connection, room, "send"),
      Effect.suspend(() => {
        const now = Date.now()
        const key = `${connection.key}\u0000${room}`
        const last = typedAt.get(key)
        // Typing is a hint, not a message: extra ones are dropped, not refused.
        if (last !== undefined && now - last < TYPING_INTERVAL_MS) return Effect.void
        if (typedAt.size >= 10_000) {
          for (const [entry, at] of typedAt) if (now - at >= TYPING_INTERVAL_MS) typedAt.delete(entry)
        }
        typedAt.set(key, now)
        return hub
          .announce(room, {
            _tag: "Typing",
            user: connection.key,
            frame: { type: "typing", room, name: connection.name }
          })
          .pipe(Effect.catchAll(unavailable))
      })
    )

  const refusedChange = (id: number, room: string) => (error: ChangeRefused) =>
    fail(
      error.reason,
      error.reason === "forbidden"
        ? `only its author can change message ${id}`
        : error.reason === "too_many_reactions"
          ? `a message has at most ${MAX_REACTIONS} different emoji`
          : `${room} has no message ${id}`
    )

  const change: SessionRequests["change"] = Effect.fn("chat.change")(function* (
    connection: Connection,
    room: string,
    request: MessageChange
  ) {
    yield* allowedMember(connection, room, "send")
    const by = connection.key
    let text: string | undefined
    if (request._tag === "Edit") {
      yield* checkedText(request.text) ?? Effect.void
      const moderate = hooks.beforeSend
      text = moderate === undefined ? request.text : yield* moderated(connection, room, request.text, moderate)
    }
    if (request._tag === "React" && !checkEmoji(request.emoji)) {
      return yield* fail("invalid_frame", "emoji: 1-16 characters, no white space or control characters")
    }
    const changed = yield* hub
      .change(
        room,
        request._tag === "Edit"
          ? { _tag: "Edit", id: request.id, text: text!, by }
          : request._tag === "Delete"
            ? { _tag: "Delete", id: request.id, by }
            : { ...request, by, name: connection.name }
      )
      .pipe(
        Effect.catchTags({
          ChangeRefused: refusedChange(request.id, room),
          BackendError: unavailable
        })
      )
    // As for a send: the requester sees the change before its ack.
    if (changed !== undefined) yield* rooms.changeDelivered(room, changed.rev)
  })

  const read: SessionRequests["read"] = Effect.fn("chat.read")(function* (
    connection: Connection,
    room: string,
    id: number
  ) {
    yield* allowedMember(connection, room, "read")
    const { moved, through, unread } = yield* hub.markRead(room, connection.key, id).pipe(Effect.catchAll(unavailable))
    if (!moved) return
    // Through the room, so every connection of the user in it hears, on every node.
    yield* hub
      .announce(room, { _tag: "Read", user: connection.key, frame: unread, through })
      .pipe(Effect.catchAll(unavailable))
  })

  const who: SessionRequests["who"] = (connection, room) =>
    allowedMember(connection, room, "read").pipe(
      Effect.zipRight(presence.members(room).pipe(Effect.catchAll(unavailable)))
    )

  return {
    send,
    join,
    leave,
    nick,
    direct,
    history,
    who,
    typing,
    change,
    read,
    users: presence.users.pipe(Effect.catchAll(unavailable))
  } satisfies SessionRequests
})
