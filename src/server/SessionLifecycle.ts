/**
 * A session's life, whatever its dialect: opened fresh or resumed (with a takeover when another connection still
 * holds it), established, and at the socket's end either held for resume or ended — by how the socket closed.
 * Requests made in between are `SessionRequests`.
 */
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { Duration, Effect, Option, Schedule } from "effect"
import { Hub } from "../backend/Hub.js"
import { type NameOwner, Names } from "../backend/Names.js"
import { NodeId } from "../backend/NodeId.js"
import { Presence } from "../backend/Presence.js"
import { type SessionRecord, Sessions } from "../backend/Sessions.js"
import { isUserKey, userKey } from "../backend/UserKey.js"
import { CloseCode, isValidName, isValidRoom } from "../protocol/Protocol.js"
import type * as Protocol from "../protocol/Protocol.js"
import * as ChatHooks from "./ChatHooks.js"
import { ChatError, fail, fromRefusal, invalidNameMessage, truncate, unavailable } from "./ChatError.js"
import type { Connection } from "./Connection.js"
import { ConnectionRegistry } from "./ConnectionRegistry.js"
import { HookObserver } from "./HookObserver.js"
import * as Permissions from "./Permissions.js"
import * as Renamed from "./Renamed.js"
import * as Tracing from "./Tracing.js"
import { Rooms } from "./Rooms.js"
import { ServerConfig } from "./ServerConfig.js"
import { ownerOf, Session, sessionIdFor } from "./Session.js"

export interface OpenRequest {
  readonly name?: string | undefined
  readonly rooms: ReadonlyArray<string>
  readonly resume?: { readonly token: string; readonly since: Readonly<Record<string, number>> } | undefined
  /** The upgrade request and the token the client presented, for the connect hooks. */
  readonly connect?: ChatHooks.ConnectRequest | undefined
}

/** How a `refresh` went: the same user's new token is taken; another user's ends the connection (4001). */
export type Refreshed = "refreshed" | "other_user"

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
  /**
   * The connection was cut as a slow consumer (4008): it leaves its rooms now, so the others see `left` at the cut
   * rather than when its socket is finally destroyed; `end` then holds the session as for any 4008.
   */
  readonly cut: (connection: Connection) => Effect.Effect<void>
  /** The socket is gone: leave its rooms, and hold the session for resume or end it, by how it closed. */
  readonly end: (connection: Connection, peerCloseCode: number) => Effect.Effect<void>
  /** A new token for an authenticated connection whose token expired (or is about to). */
  readonly refresh: (connection: Connection, request: ChatHooks.ConnectRequest) => Effect.Effect<Refreshed, ChatError>
  /** An authenticated user took this guest's name: it gets an assigned one (`renamed`). */
  readonly evicted: (connection: Connection) => Effect.Effect<void>
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
  const hooks = yield* ChatHooks.current
  const observer = yield* HookObserver
  const traced = yield* Tracing.installed
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
            const user = ownerOf(record.session)
            if (user === undefined) return names.release(record.name, record.session)
            // A user's name stays theirs while they have a connection anywhere.
            const key = userKey(user)
            if (registry.byKey(key).length > 0) return Effect.void
            return Effect.flatMap(presence.remoteNodes(key, node), (elsewhere) =>
              elsewhere.length > 0 ? Effect.void : names.release(record.name, key)
            )
          },
          { discard: true }
        )
      ),
      Effect.ignoreLogged,
      Effect.repeat(Schedule.spaced(Duration.seconds(1)))
    )
  )

  /** Who the connection is, by the connect hooks; a guest, or refused, by the auth mode. */
  const identify = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      if (config.auth.mode === "off") return
      const found =
        hooks.connect === undefined || request.connect === undefined
          ? Option.none()
          : yield* hooks.connect(request.connect).pipe(Effect.mapError(fromRefusal))
      if (Option.isNone(found) && config.auth.mode === "required") {
        return yield* fail("unauthorized", "this server needs a token (hello.token, ?token= or Authorization: Bearer)")
      }
      connection.identity = Option.getOrUndefined(found)
    })

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
      // A room retention has emptied (oldest 0, latest above it) has nothing to catch up from.
      return Effect.map(
        hub.bounds(room),
        ({ latest, oldest }) => after >= latest || (oldest > 0 && oldest <= after + 1)
      )
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

  const establish = (connection: Connection, announce: boolean) =>
    Effect.gen(function* () {
      const first = yield* presence.online(connection.key, connection.name)
      // Not counted online for a session that never opened.
      const token = yield* sessions
        .issue(connection.session.record(node))
        .pipe(Effect.tapError(() => Effect.ignore(presence.offline(connection.key))))
      connection.opened()
      registry.bindSession(connection)
      if (first && announce && observer.active) {
        observer.presence({ _tag: "Online", name: connection.name, user: connection.identity })
      }
      return token
    })

  /** The user's connection is gone: when it was their last, they are offline and an authenticated name is free. */
  const goOffline = (key: string, name: string, connection: Connection | undefined, holdsName = false) =>
    Effect.gen(function* () {
      const last = yield* presence.offline(key)
      if (!last) return
      // A session held for resume keeps its user's name: no guest may take it in the meantime.
      if (isUserKey(key) && !holdsName) yield* names.release(name, key)
      if (observer.active) observer.presence({ _tag: "Offline", name, user: connection?.identity })
    })

  /** Takes the token's name for an authenticated connection; a guest holding it is renamed. */
  const claimUserName = (connection: Connection, claimed: string) =>
    Effect.gen(function* () {
      // Connections of one user share a name: a second tab whose token names the user differently takes the first's.
      const name = registry.byKey(connection.key).find((other) => other !== connection)?.name ?? claimed
      const claim = yield* names.claimForUser({ name, session: connection.key, node })
      if (!claim.claimed) return yield* fail("name_taken", `${name} is used by another user`)
      connection.session.name = name
      if (Option.isSome(claim.evicted)) yield* evict(claim.evicted.value)
    })

  /** The guest that held an authenticated user's name gets an assigned one, wherever it is. */
  const evict = (owner: NameOwner) =>
    Effect.gen(function* () {
      const local = registry.bySession(owner.session)
      if (local !== undefined) return yield* evicted(local)
      const heldHere = held.get(owner.session)
      if (heldHere !== undefined) {
        // Renamed when it resumes: its welcome carries the new name.
        heldHere.name = yield* assignGuest(heldHere.id)
        return yield* sessions.update(heldHere.record(node, Date.now() + Duration.toMillis(config.resumeWindow)))
      }
      if (owner.node !== node) yield* hub.direct(owner.node, { _tag: "Evict", session: owner.session })
    }).pipe(Effect.ignoreLogged)

  const evicted = (connection: Connection) =>
    Effect.gen(function* () {
      const session = connection.session
      const previous = session.name
      session.name = yield* assignGuest(session.id)
      yield* presence.rename(connection.key, session.rooms, session.name)
      yield* sessions.update(session.record(node))
      yield* Renamed.announce(hub, connection, previous)
    }).pipe(Effect.ignoreLogged)

  /** Why the user may not join `room`, if they may not. */
  const joinDenied = (connection: Connection, room: string) => {
    const check = Permissions.permit(hooks, connection, "join", room)
    return check === undefined ? Effect.succeedNone : Effect.option(Effect.flip(check))
  }

  /** `hello.rooms` the user may not join are refused after the welcome, like invalid ones. */
  const admitRooms = (connection: Connection, wanted: ReadonlyArray<string>, problems: Array<ChatError>) =>
    Effect.gen(function* () {
      const session = connection.session
      for (const room of wanted) {
        if (!isValidRoom(room)) {
          problems.push(new ChatError({ code: "invalid_room", message: `invalid room name: ${truncate(room)}` }))
          continue
        }
        const denied = yield* joinDenied(connection, room)
        if (Option.isSome(denied)) {
          problems.push(denied.value)
        } else if (session.rooms.size >= config.maxRoomsPerConnection) {
          problems.push(
            new ChatError({ code: "too_many_rooms", message: `at most ${config.maxRoomsPerConnection} rooms` })
          )
        } else {
          session.rooms.add(room)
        }
      }
    })

  const welcome = (connection: Connection, token: string, resumed: boolean) =>
    Effect.map(presence.users, (users) => ({
      type: "welcome" as const,
      protocol: 1 as const,
      name: connection.name,
      rooms: Array.from(connection.rooms),
      users,
      resume: token,
      resumed,
      ...(connection.identity === undefined ? {} : { user: connection.identity.user }),
      ...(connection.renderer.features === undefined ? {} : { features: Array.from(connection.renderer.features) })
    }))

  /**
   * Rooms of the session the user may no longer be in (a resume or refresh with a token of narrower `rooms`, an
   * authorize hook that changed its mind): dropped from the session, each with its `forbidden`.
   */
  const forbiddenRooms = (connection: Connection) =>
    Effect.gen(function* () {
      const refusals: Array<{ readonly room: string; readonly error: ChatError }> = []
      for (const room of Array.from(connection.rooms)) {
        const denied = yield* joinDenied(connection, room)
        if (Option.isSome(denied)) refusals.push({ room, error: denied.value })
      }
      return refusals
    })

  const endSession = (session: string, name: string, roomNames: ReadonlyArray<string>, live: Connection | undefined) =>
    Effect.gen(function* () {
      if (live !== undefined) for (const room of roomNames) yield* rooms.leave(live, room, { announce: true })
      // A session of an authenticated user not on this node is no connection of the user's any more.
      if (live !== undefined || ownerOf(session) === undefined) yield* goOffline(live?.key ?? session, name, live)
      yield* sessions.remove(session)
      if (ownerOf(session) === undefined) yield* names.release(name, session)
      held.delete(session)
    }).pipe(Effect.ignoreLogged)

  const handOver = (live: Connection) =>
    Effect.gen(function* () {
      live.takenOver()
      for (const room of live.rooms) yield* rooms.leave(live, room, { announce: false })
      // A user counts connections: this one is gone (the one taking over counts itself). A guest session is one.
      if (live.identity !== undefined) yield* presence.offline(live.key).pipe(Effect.ignoreLogged)
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
          : new Session(previous.session, previous.name, previous.rooms, previous.revs)
    connection.session.name = previous.name
  }

  const resume = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      if (request.resume === undefined) return Option.none<Opened>()
      const found = yield* sessions.redeem(request.resume.token)
      if (Option.isNone(found)) return Option.none<Opened>()
      const previous = found.value
      const owner = ownerOf(previous.session)
      const identity = connection.identity
      if (owner !== undefined && (identity === undefined || identity.user !== owner)) {
        return yield* fail("unauthorized", "resuming this session needs a valid token of its user")
      }
      // A guest's session is not taken up by a signed-in user: the user starts afresh.
      if (owner === undefined && identity !== undefined) return Option.none<Opened>()
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
      const refusals = yield* forbiddenRooms(connection)
      for (const { room } of refusals) connection.rooms.delete(room)
      const takeover = remote || (live !== undefined && live !== connection)
      if (live !== undefined && live !== connection) yield* handOver(live)
      else if (remote) yield* hub.direct(previous.node, { _tag: "Takeover", session: previous.session })
      if (identity !== undefined) {
        yield* claimUserName(connection, identity.name)
      } else if (!takeover && !(yield* names.claim({ name: previous.name, session: previous.session, node }))) {
        // Its name went to a signed-in user while the session was away.
        connection.session.name = yield* assignGuest(previous.session)
      }
      const token = yield* establish(connection, !takeover)
      const entries = Array.from(connection.rooms, (room) => ({ room, since: sinceOf(since, room) }))
      return Option.some<Opened>({
        welcome: yield* welcome(connection, token, true),
        problems: refusals.map(({ error }) => error),
        enterRooms: enter(connection, entries, !takeover)
      })
    })

  const fresh = (connection: Connection, request: OpenRequest) =>
    Effect.gen(function* () {
      const problems: Array<ChatError> = []
      const session = new Session(sessionIdFor(connection.identity), "")
      connection.session = session
      const wanted = request.name
      if (connection.identity !== undefined) {
        // The name comes from the token; `hello.name` is not asked for.
        yield* claimUserName(connection, connection.identity.name)
      } else if (wanted !== undefined && !isValidName(wanted)) {
        problems.push(new ChatError({ code: "invalid_name", message: invalidNameMessage(wanted) }))
      } else if (wanted !== undefined) {
        if (yield* names.claim({ name: wanted, session: session.id, node })) session.name = wanted
        else problems.push(new ChatError({ code: "name_taken", message: `${wanted} is taken` }))
      }
      if (session.name === "") session.name = yield* assignGuest(session.id)
      yield* admitRooms(connection, request.rooms, problems)
      // A backend failure past this point must not leave the claimed name owned by a session that never opened.
      const token = yield* establish(connection, true).pipe(
        Effect.tapError(() => names.release(session.name, connection.key).pipe(Effect.ignore))
      )
      // A signed-in user may have taken the name while this guest was opening (before it could be found to evict).
      if (config.auth.mode !== "off" && connection.identity === undefined && wanted === session.name) {
        const owner = yield* names.owner(session.name)
        if (Option.isSome(owner) && owner.value.session !== session.id) {
          session.name = yield* assignGuest(session.id)
          yield* presence.rename(connection.key, [], session.name)
          yield* sessions.update(session.record(node))
          problems.push(new ChatError({ code: "name_taken", message: `${wanted} is taken` }))
        }
      }
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
      identify(connection, request).pipe(
        Effect.zipRight(resume(connection, request)),
        Effect.tap((resumed) =>
          Effect.sync(() => {
            if (request.resume !== undefined) {
              ChatMetrics.add(
                ChatMetrics.resumes,
                1,
                resumed._tag === "Some" ? ChatMetrics.RESUMED : ChatMetrics.NOT_RESUMED
              )
            }
          })
        ),
        Effect.tapError((error) =>
          Effect.sync(() => {
            if (error._tag === "ChatError" && error.code === "unauthorized")
              ChatMetrics.add(ChatMetrics.authRefusals, 1)
          })
        ),
        Effect.flatMap(Option.match({ onNone: () => fresh(connection, request), onSome: Effect.succeed })),
        Effect.catchTag("BackendError", unavailable),
        Effect.uninterruptible,
        Tracing.span(traced, "chat.open")
      ),

    handOver,

    evicted,

    refresh: (connection, request) =>
      Effect.gen(function* () {
        const current = connection.identity
        if (current === undefined) return yield* fail("invalid_frame", "refresh: this connection has no token")
        const found =
          hooks.connect === undefined ? Option.none() : yield* hooks.connect(request).pipe(Effect.mapError(fromRefusal))
        if (Option.isNone(found)) return yield* fail("unauthorized", "refresh: no valid token")
        if (found.value.user !== current.user) return "other_user" as const
        // The name stays what it is for the life of the connection; the rooms and expiry are the new token's.
        connection.identity = { ...found.value, name: current.name }
        // The new token's rooms apply at once: rooms it does not allow are left, each with its `forbidden`.
        const refusals = yield* forbiddenRooms(connection)
        for (const { error, room } of refusals) {
          connection.rooms.delete(room)
          yield* rooms.leave(connection, room, { announce: true })
          connection.send({ type: "error", code: error.code, message: error.message })
        }
        if (refusals.length > 0) yield* sessions.update(connection.session.record(node)).pipe(Effect.ignoreLogged)
        return "refreshed" as const
      }),

    cut: (connection) =>
      Effect.suspend(() =>
        connection.state._tag === "Closing" && connection.state.opened
          ? Effect.forEach(connection.session.rooms, (room) => rooms.leave(connection, room, { announce: true }), {
              discard: true
            })
          : Effect.void
      ),

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
        yield* goOffline(connection.key, session.name, connection, true)
        const heldUntil = Date.now() + Duration.toMillis(config.resumeWindow)
        yield* sessions.update(session.record(node, heldUntil))
      }).pipe(Effect.ignoreLogged)
  } satisfies SessionLifecycle
})

/** `since[room]`, reading only the client's own keys: a room may be called `constructor` or `__proto__`. */
const sinceOf = (since: Readonly<Record<string, number>>, room: string): number | undefined =>
  Object.hasOwn(since, room) ? since[room] : undefined
