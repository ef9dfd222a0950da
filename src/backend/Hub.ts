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
import { Context, Duration, Effect, Layer, PubSub, type Queue, Schedule, type Scope } from "effect"
import type * as Protocol from "../protocol/Protocol.js"
import type { BackendError } from "./BackendError.js"

/** A room event as it travels between nodes: a wire frame plus what the fan-out needs to know about its origin. */
export type RoomEvent =
  | { readonly _tag: "Message"; readonly frame: Protocol.Message }
  | { readonly _tag: "Joined"; readonly frame: Protocol.Joined; readonly session: string }
  | { readonly _tag: "Left"; readonly frame: Protocol.Left; readonly session: string }
  | { readonly _tag: "Renamed"; readonly frame: Protocol.Renamed; readonly session: string; readonly eventId: string }

/** Sent to the node holding a session: a direct message for it, or the order to hand it to a resuming connection. */
export type DirectEnvelope =
  | { readonly _tag: "Direct"; readonly session: string; readonly frame: Protocol.Direct }
  | { readonly _tag: "Takeover"; readonly session: string }
  /** A signed-in user took this guest session's name: rename the guest. */
  | { readonly _tag: "Evict"; readonly session: string }
  /** The user (`session` is the user's key) was removed: close their connections with 4003. */
  | { readonly _tag: "Remove"; readonly session: string; readonly reason: string }

export interface HistoryPage {
  readonly messages: ReadonlyArray<Protocol.Message>
  /** The room retains messages older than the first one returned. */
  readonly more: boolean
}

export interface RoomFeed {
  /** Id of the last message published before this feed started; the sink gets only later ones. */
  readonly lastId: number
}

/** Where a subscription's events go, as they happen. */
export type RoomSink = (event: RoomEvent) => void

export interface HubService {
  readonly publish: (
    room: string,
    post: { readonly from: string; readonly text: string }
  ) => Effect.Effect<Protocol.Message, BackendError>
  readonly announce: (room: string, event: Exclude<RoomEvent, { _tag: "Message" }>) => Effect.Effect<void, BackendError>
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
  /** The newest `historyRetain` messages, oldest first. */
  readonly messages: Array<Protocol.Message>
  readonly sinks: Set<RoomSink>
  lastActivity: number
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
          lastActivity: Date.now()
        }
        rooms.set(name, state)
      }
      return state
    }

    const sweep = Effect.sync(() => {
      const now = Date.now()
      for (const [name, state] of rooms) {
        if (state.sinks.size === 0 && (state.messages.length === 0 || now - state.lastActivity > ttl))
          rooms.delete(name)
      }
    })
    yield* Effect.forkScoped(
      Effect.repeat(sweep, { schedule: Schedule.spaced(Duration.min(options.roomTtl, Duration.seconds(30))) })
    )

    const publish: HubService["publish"] = (name, post) =>
      Effect.sync(() => {
        const state = room(name)
        const frame: Protocol.Message = {
          type: "message",
          room: name,
          id: ++state.seq,
          from: post.from,
          text: post.text,
          at: Date.now()
        }
        state.messages.push(frame)
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
            if (state.sinks.size === 0 && state.messages.length === 0 && rooms.get(name) === state) rooms.delete(name)
          })
      ).pipe(Effect.map(({ state }) => ({ lastId: state.seq })))

    const history: HubService["history"] = (name, query) =>
      Effect.sync(() => {
        const messages = rooms.get(name)?.messages ?? []
        const matching = messages.filter(
          (m) =>
            (query.before === undefined || m.id < query.before) && (query.after === undefined || m.id > query.after)
        )
        // `slice(-0)` would be everything: a limit of 0 (`--join-history 0`) is no messages, as in Redis.
        const limit = Math.max(0, query.limit)
        const page = limit === 0 ? [] : query.oldestFirst ? matching.slice(0, limit) : matching.slice(-limit)
        const first = page[0]
        return { messages: page, more: first !== undefined && messages[0] !== undefined && messages[0].id < first.id }
      })

    const bounds: HubService["bounds"] = (name) =>
      Effect.sync(() => {
        const state = rooms.get(name)
        return { oldest: state?.messages[0]?.id ?? 0, latest: state?.seq ?? 0 }
      })

    return Hub.of({
      publish,
      announce,
      subscribe,
      history,
      bounds,
      ...directs,
      roomCount: Effect.sync(() => rooms.size)
    })
  })
