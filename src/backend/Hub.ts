/**
 * The hub: where a room's events are ordered, numbered, kept as history and fanned out to the room actors of every
 * node. It is the seam between the core and a backend: `layerMemory` serves one process, `RedisHub.layer` a cluster.
 * The core only relies on this contract:
 *
 * - `publish` gives a room message the next id (rising by exactly 1) and its timestamp, and every subscriber of the
 *   room receives it in id order.
 * - `subscribe` hands the room's events to a sink, synchronously and in id order, and returns the id of the last
 *   message published before the subscription, so the subscriber knows which messages the sink will get and which
 *   it must read from history. A sink is a plain callback (the room actor's mailbox), not a queue with a fiber
 *   waiting on it: an event costs no fiber wake-up on its way to the room actor.
 */
import { Context, Data, Duration, Effect, Either, Layer, PubSub, type Queue, Schedule, type Scope } from "effect"
import type * as Protocol from "../protocol/Protocol.js"
import { UNREAD_CAP } from "../protocol/Rules.js"
import type { BackendError } from "./BackendError.js"
import * as MessageState from "./MessageState.js"

/** A room event as it travels between nodes: a wire frame plus what the fan-out needs to know about its origin. */
export type RoomEvent =
  | { readonly _tag: "Message"; readonly frame: Protocol.Message }
  | { readonly _tag: "Joined"; readonly frame: Protocol.Joined; readonly session: string }
  | { readonly _tag: "Left"; readonly frame: Protocol.Left; readonly session: string }
  | { readonly _tag: "Renamed"; readonly frame: Protocol.Renamed; readonly session: string; readonly eventId: string }
  /** A message of the room was edited, deleted or reacted to; `rev` numbers the room's changes (1, 2, ...). */
  | { readonly _tag: "Change"; readonly frame: Protocol.Change; readonly rev: number }
  /** A member is typing: passed on, never stored; not to the typer's own connections (`user` is their key). */
  | { readonly _tag: "Typing"; readonly frame: Protocol.Typing; readonly user: string }
  /**
   * A user's read marker moved: for that user's connections (`user` is the user's key). `through` is the last id
   * the count counted: the room actor corrects the count by the messages it delivered before or after that one.
   */
  | { readonly _tag: "Read"; readonly frame: Protocol.Unread; readonly user: string; readonly through: number }

/** Events that are announced rather than numbered and stored by the hub. */
export type Announcement = Exclude<RoomEvent, { _tag: "Message" } | { _tag: "Change" }>

/** A message to publish: who it is from (the name shown), and who may change it later (`author`, a user key). */
export interface Post {
  readonly from: string
  readonly text: string
  readonly author?: string | undefined
  readonly replyTo?: number | undefined
}

/** A change the rules refuse (`MessageState.apply`): not the author's, no such message, too many emoji. */
export class ChangeRefused extends Data.TaggedError("ChangeRefused")<{
  readonly reason: MessageState.ChangeRefusal
}> {}

/** A change as the log keeps it, for a resuming member that was away when it happened. */
export interface LoggedChange {
  readonly rev: number
  readonly frame: Protocol.Change
}

/** Sent to the node holding a session: a direct message for it, or the order to hand it to a resuming connection. */
export type DirectEnvelope =
  | { readonly _tag: "Direct"; readonly session: string; readonly frame: Protocol.Direct }
  | { readonly _tag: "Takeover"; readonly session: string }
  /** A signed-in user took this guest session's name: rename the guest. */
  | { readonly _tag: "Evict"; readonly session: string }
  /**
   * The user (`session` is the user's key, or a guest's session) was removed: close their connections with `code`
   * (4003 when absent). With `reply`, the node answers how many it closed (`Removed`) to the node that asked.
   */
  | {
      readonly _tag: "Remove"
      readonly session: string
      readonly reason: string
      readonly code?: number | undefined
      readonly reply?: { readonly node: string; readonly request: string } | undefined
    }
  /** The answer to a `Remove` with `reply`: this many connections were closed on the node that sends it. */
  | { readonly _tag: "Removed"; readonly request: string; readonly closed: number }

export interface HistoryPage {
  readonly messages: ReadonlyArray<Protocol.Message>
  /** The room retains messages older than the first one returned. */
  readonly more: boolean
}

export interface RoomFeed {
  /** Id of the last message published before this feed started; the sink gets only later ones. */
  readonly lastId: number
  /** Rev of the last change before this feed started. */
  readonly lastRev: number
}

/** Where a subscription's events go, as they happen. */
export type RoomSink = (event: RoomEvent) => void

export interface HubService {
  readonly publish: (room: string, post: Post) => Effect.Effect<Protocol.Message, BackendError>
  readonly announce: (room: string, event: Announcement) => Effect.Effect<void, BackendError>
  /**
   * Edits, deletes or reacts to a message, by the rules of `MessageState`; subscribers get the change (in order with
   * the room's messages) and it is logged for resumes. `undefined`: nothing changed (a reaction that was already
   * there), which is not a refusal.
   */
  readonly change: (
    room: string,
    request: MessageState.ChangeRequest
  ) => Effect.Effect<LoggedChange | undefined, ChangeRefused | BackendError>
  /** Logged changes with `afterRev < rev <= throughRev` to messages with `id <= throughId`, oldest first. */
  readonly changes: (
    room: string,
    query: { readonly afterRev: number; readonly throughRev: number; readonly throughId: number }
  ) => Effect.Effect<ReadonlyArray<LoggedChange>, BackendError>
  /**
   * Moves `user`'s read marker in `room` forward to `id` (at most the room's latest id; never back) and answers the
   * marker with the unread count after it, up to the room's latest id (`through`); `moved` says whether it moved.
   */
  readonly markRead: (
    room: string,
    user: string,
    id: number
  ) => Effect.Effect<
    { readonly unread: Protocol.Unread; readonly moved: boolean; readonly through: number },
    BackendError
  >
  /**
   * `user`'s marker in `room` (0 when never marked) and the messages after it that are not deleted, capped; only
   * ids up to `through` when given (what a joiner has been sent).
   */
  readonly unread: (room: string, user: string, through?: number) => Effect.Effect<Protocol.Unread, BackendError>
  readonly subscribe: (room: string, sink: RoomSink) => Effect.Effect<RoomFeed, BackendError, Scope.Scope>
  /**
   * Messages of a room, oldest first: up to `limit` messages with `after < id < before` (either bound optional),
   * taking the newest ones when more match unless `oldestFirst`.
   */
  readonly history: (
    room: string,
    query: {
      readonly before?: number | undefined
      readonly after?: number | undefined
      readonly limit: number
      readonly oldestFirst?: boolean | undefined
    }
  ) => Effect.Effect<HistoryPage, BackendError>
  /** Id of the oldest message the room still retains (0 when it has none), and of its latest one. */
  readonly bounds: (room: string) => Effect.Effect<{ readonly oldest: number; readonly latest: number }, BackendError>
  /** Delivers a direct message to the node holding the target session. */
  readonly direct: (node: string, envelope: DirectEnvelope) => Effect.Effect<void, BackendError>
  /** Direct messages addressed to this node. */
  readonly subscribeDirect: (node: string) => Effect.Effect<Queue.Dequeue<DirectEnvelope>, BackendError, Scope.Scope>
  /** Number of rooms the hub currently holds state for (on this node, for the memory hub). */
  readonly roomCount: Effect.Effect<number>
}

export class Hub extends Context.Tag("effect-chat/Hub")<Hub, HubService>() {
  /** One process's hub: rooms keep their newest `historyRetain` messages; an idle empty room goes after `roomTtl`. */
  static layerMemory = (options: MemoryHubOptions) => Layer.scoped(Hub, makeMemory(options))
}

/** Direct messages within one process: every envelope goes to this process's own subscriber. */
export const localDirects = Effect.map(
  PubSub.unbounded<DirectEnvelope>(),
  (directs): Pick<HubService, "direct" | "subscribeDirect"> => ({
    direct: (_node, envelope) => PubSub.publish(directs, envelope).pipe(Effect.asVoid),
    subscribeDirect: () => PubSub.subscribe(directs)
  })
)

interface MemoryRoom {
  seq: number
  /** The newest `historyRetain` messages, oldest first; ids are consecutive. */
  readonly messages: Array<MessageState.StoredMessage>
  readonly sinks: Set<RoomSink>
  lastActivity: number
  rev: number
  /** The newest changes, oldest first (at most `CHANGE_LOG`). */
  readonly changes: Array<LoggedChange>
  /** Read markers by user key. */
  readonly read: Map<string, number>
}

/** Changes a room of the memory hub keeps for resumes. */
const CHANGE_LOG = 1000

/** The stored message `id` of a room whose retained ids are consecutive, oldest first. */
export const storedAt = <A extends { readonly frame: { readonly id: number } }>(
  messages: ReadonlyArray<A>,
  id: number
): A | undefined => {
  const first = messages[0]
  if (first === undefined) return undefined
  const found = messages[id - first.frame.id]
  return found !== undefined && found.frame.id === id ? found : undefined
}

/** Messages after `after` that are not deleted, counted up to the cap. */
export const countUnread = (
  messages: ReadonlyArray<MessageState.StoredMessage>,
  after: number,
  through = Number.MAX_SAFE_INTEGER
): number => {
  let count = 0
  for (let i = messages.length - 1; i >= 0 && count < UNREAD_CAP; i--) {
    const frame = messages[i]!.frame
    if (frame.id <= after) break
    if (frame.id <= through && frame.deleted !== true) count++
  }
  return count
}

/**
 * One process's hub. Publishing is synchronous from id assignment to `PubSub.publish`, so ids and feed order agree
 * without a lock. A room is forgotten once nobody subscribes and its last message is older than `roomTtl`.
 */
export interface MemoryHubOptions {
  readonly historyRetain: number
  readonly roomTtl: Duration.Duration
}

export const makeMemory = (options: MemoryHubOptions) =>
  Effect.gen(function* () {
    const rooms = new Map<string, MemoryRoom>()
    const directs = yield* localDirects
    const ttl = Duration.toMillis(options.roomTtl)

    const room = (name: string): MemoryRoom => {
      let state = rooms.get(name)
      if (state === undefined) {
        state = {
          seq: 0,
          messages: [],
          sinks: new Set(),
          lastActivity: Date.now(),
          rev: 0,
          changes: [],
          read: new Map()
        }
        rooms.set(name, state)
      }
      return state
    }

    const sweep = Effect.sync(() => {
      const now = Date.now()
      for (const [name, state] of rooms) {
        if (
          state.sinks.size === 0 &&
          ((state.messages.length === 0 && state.read.size === 0) || now - state.lastActivity > ttl)
        )
          rooms.delete(name)
      }
    })
    yield* Effect.forkScoped(
      Effect.repeat(sweep, { schedule: Schedule.spaced(Duration.min(options.roomTtl, Duration.seconds(30))) })
    )

    const publish: HubService["publish"] = (name, post) =>
      Effect.sync(() => {
        const state = room(name)
        const frame: Protocol.Message =
          post.replyTo === undefined
            ? { type: "message", room: name, id: ++state.seq, from: post.from, text: post.text, at: Date.now() }
            : {
                type: "message",
                room: name,
                id: ++state.seq,
                from: post.from,
                text: post.text,
                at: Date.now(),
                reply_to: post.replyTo
              }
        state.messages.push({ frame, author: post.author })
        if (state.messages.length > options.historyRetain)
          state.messages.splice(0, state.messages.length - options.historyRetain)
        state.lastActivity = frame.at
        const event: RoomEvent = { _tag: "Message", frame }
        for (const sink of state.sinks) sink(event)
        return frame
      })

    const announce: HubService["announce"] = (name, event) =>
      Effect.sync(() => {
        const state = rooms.get(name)
        if (state !== undefined) for (const sink of state.sinks) sink(event)
      })

    const change: HubService["change"] = (name, request) =>
      Effect.suspend(() => {
        const state = rooms.get(name)
        const stored = state === undefined ? undefined : storedAt(state.messages, request.id)
        const applied = MessageState.apply(stored, request, Date.now())
        if (Either.isLeft(applied)) return Effect.fail(new ChangeRefused({ reason: applied.left }))
        if (applied.right === undefined || state === undefined) return Effect.succeed(undefined)
        const { change: frame, message } = applied.right
        state.messages[request.id - state.messages[0]!.frame.id] = message
        const logged: LoggedChange = { rev: ++state.rev, frame }
        // A deleted message's earlier changes go from the log: an `edited` there carries text that is gone.
        if (frame.type === "deleted") {
          for (let i = state.changes.length - 1; i >= 0; i--)
            if (state.changes[i]!.frame.id === frame.id) state.changes.splice(i, 1)
        }
        state.changes.push(logged)
        if (state.changes.length > CHANGE_LOG) state.changes.splice(0, state.changes.length - CHANGE_LOG)
        state.lastActivity = Date.now()
        const event: RoomEvent = { _tag: "Change", frame, rev: logged.rev }
        for (const sink of state.sinks) sink(event)
        return Effect.succeed(logged)
      })

    const changes: HubService["changes"] = (name, query) =>
      Effect.sync(() =>
        MessageState.collapse(
          (rooms.get(name)?.changes ?? []).filter(
            (logged) =>
              logged.rev > query.afterRev && logged.rev <= query.throughRev && logged.frame.id <= query.throughId
          )
        )
      )

    const unreadOf = (name: string, state: MemoryRoom | undefined, user: string, through?: number): Protocol.Unread => {
      const last = state?.read.get(user) ?? 0
      return {
        type: "unread",
        room: name,
        last_read: last,
        count: state === undefined ? 0 : countUnread(state.messages, last, through)
      }
    }

    const markRead: HubService["markRead"] = (name, user, id) =>
      Effect.sync(() => {
        const state = rooms.get(name)
        const before = state?.read.get(user) ?? 0
        const target = Math.min(id, state?.seq ?? 0)
        const moved = state !== undefined && target > before
        if (moved) state.read.set(user, target)
        return { unread: unreadOf(name, state, user), moved, through: state?.seq ?? 0 }
      })

    const unread: HubService["unread"] = (name, user, through) =>
      Effect.sync(() => unreadOf(name, rooms.get(name), user, through))

    const subscribe: HubService["subscribe"] = (name, sink) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const state = room(name)
          // A sink of its own per subscription, so the same function subscribed twice is two subscribers.
          const own: RoomSink = (event) => sink(event)
          state.sinks.add(own)
          return { state, own }
        }),
        ({ own, state }) =>
          Effect.sync(() => {
            state.sinks.delete(own)
            state.lastActivity = Date.now()
            if (
              state.sinks.size === 0 &&
              state.messages.length === 0 &&
              state.read.size === 0 &&
              rooms.get(name) === state
            )
              rooms.delete(name)
          })
      ).pipe(Effect.map(({ state }) => ({ lastId: state.seq, lastRev: state.rev })))

    const history: HubService["history"] = (name, query) =>
      Effect.sync(() => {
        const messages = rooms.get(name)?.messages ?? []
        const matching: Array<Protocol.Message> = []
        for (const { frame } of messages) {
          if (
            (query.before === undefined || frame.id < query.before) &&
            (query.after === undefined || frame.id > query.after)
          )
            matching.push(frame)
        }
        // `slice(-0)` would be everything: a limit of 0 (`--join-history 0`) is no messages, as in Redis.
        const limit = Math.max(0, query.limit)
        const page = limit === 0 ? [] : query.oldestFirst ? matching.slice(0, limit) : matching.slice(-limit)
        const first = page[0]
        return {
          messages: page,
          more: first !== undefined && messages[0] !== undefined && messages[0].frame.id < first.id
        }
      })

    const bounds: HubService["bounds"] = (name) =>
      Effect.sync(() => {
        const state = rooms.get(name)
        return { oldest: state?.messages[0]?.frame.id ?? 0, latest: state?.seq ?? 0 }
      })

    return Hub.of({
      publish,
      announce,
      change,
      changes,
      markRead,
      unread,
      subscribe,
      history,
      bounds,
      ...directs,
      roomCount: Effect.sync(() => rooms.size)
    })
  })
