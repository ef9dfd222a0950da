/**
 * Room actors: one fiber per room with local members, owning that room's local membership and its delivery. It
 * takes the room's events from the hub in id order, builds each batch's frames once and writes them straight to every
 * member's socket, so all members see one order and no fiber wakes per recipient. Joins go through the same
 * mailbox, which is what makes the history/live boundary exact: a joiner gets history up to the last id this actor
 * delivered, then every later event live — no gap, no duplicate.
 */
import { Context, Deferred, Effect, Layer, Option, Queue, Scheduler } from "effect"
import type { BackendError } from "../backend/BackendError.js"
import { Hub, type RoomEvent } from "../backend/Hub.js"
import { Presence } from "../backend/Presence.js"
import type * as Protocol from "../protocol/Protocol.js"
import type { Connection } from "./Connection.js"
import * as FanoutPlan from "./FanoutPlan.js"
import { ServerConfig } from "./ServerConfig.js"

export interface JoinOptions {
  /** Resume: send the messages after this id instead of the recent ones. */
  readonly since?: number | undefined
  /** Tell the other members (`joined`); false when a connection takes over a live session. */
  readonly announce: boolean
}

export interface RoomsService {
  /** Adds `connection` to `room`; it receives `members` and `history` (JSON dialect), then live events. */
  readonly join: (connection: Connection, room: string, options: JoinOptions) => Effect.Effect<void, BackendError>
  /** Removes `connection` from `room`; the other members see `left` when `announce`. */
  readonly leave: (connection: Connection, room: string, options: { readonly announce: boolean }) => Effect.Effect<void>
  /** Rooms with members on this node. */
  readonly size: () => number
  /**
   * The last message id delivered to this node's members of `room`: a history page that ends there cannot hold a
   * message that is still on its way live.
   */
  readonly lastDelivered: (room: string) => number | undefined
}

export class Rooms extends Context.Tag("effect-chat/Rooms")<Rooms, RoomsService>() {
  static layer = Layer.scoped(
    Rooms,
    Effect.suspend(() => make)
  )
}

type RoomInput =
  | { readonly _tag: "Events"; readonly events: ReadonlyArray<RoomEvent> }
  | {
      readonly _tag: "Join"
      readonly connection: Connection
      readonly options: JoinOptions
      readonly done: Deferred.Deferred<void, BackendError>
    }
  | {
      readonly _tag: "Leave"
      readonly connection: Connection
      readonly announce: boolean
      readonly done: Deferred.Deferred<void>
    }

interface RoomActor {
  readonly inbox: Queue.Queue<RoomInput>
  /** The last message id delivered to this node's members (undefined until subscribed). */
  last: number | undefined
}

/**
 * Resuming fibers in `setImmediate` lets the posts of one event-loop turn gather before the fan-out: fewer, larger
 * writes at the same latency (measured in EFFECT-NOTES, "Fan-out speed").
 */
const turnScheduler = Scheduler.makeBatched((run) => setImmediate(run))

const make = Effect.gen(function* () {
  const hub = yield* Hub
  const presence = yield* Presence
  const config = yield* ServerConfig
  const scope = yield* Effect.scope
  const actors = new Map<string, RoomActor>()

  const run = (room: string, actor: RoomActor) =>
    Effect.gen(function* () {
      const feed = yield* hub.subscribe(room)
      let last = feed.lastId
      actor.last = last
      const members = new Set<Connection>()

      yield* Queue.takeBetween(feed.events, 1, Number.MAX_SAFE_INTEGER).pipe(
        Effect.flatMap((events) => Queue.offer(actor.inbox, { _tag: "Events", events: Array.from(events) })),
        Effect.forever,
        Effect.forkScoped
      )

      // Messages missing between `last` and a later id (a node that lost its Redis subscription for a moment)
      // are read back from history so every member still sees every id once.
      const fillGap = (upTo: number) =>
        hub.history(room, { after: last, before: upTo, limit: upTo - last - 1, oldestFirst: true }).pipe(
          Effect.map((page) => page.messages),
          Effect.orElseSucceed(() => [] as ReadonlyArray<Protocol.Message>)
        )

      const onEvents = (events: ReadonlyArray<RoomEvent>) =>
        Effect.gen(function* () {
          const batch: Array<RoomEvent> = []
          for (const event of events) {
            if (event._tag !== "Message") {
              batch.push(event)
              continue
            }
            const message = event.frame
            if (message.id <= last) continue
            if (message.id > last + 1) {
              for (const missed of yield* fillGap(message.id)) {
                if (missed.id > last) batch.push({ _tag: "Message", frame: missed })
              }
            }
            batch.push(event)
            last = message.id
            actor.last = last
          }
          FanoutPlan.plan(batch, members, (member, parts, frames) => member.outlet.write(parts, frames))
        })

      const onJoin = (connection: Connection, options: JoinOptions) =>
        Effect.gen(function* () {
          members.add(connection)
          yield* presence.join(room, connection.session.id, connection.name)
          if (connection.renderer.showsRoomState) {
            const names = yield* presence.members(room)
            const page =
              options.since === undefined
                ? yield* hub.history(room, { before: last + 1, limit: config.joinHistory })
                : yield* hub.history(room, {
                    after: options.since,
                    before: last + 1,
                    limit: config.historyRetain,
                    oldestFirst: true
                  })
            connection.send({ type: "members", room, names })
            connection.send({ type: "history", room, messages: page.messages, more: page.more })
          }
          if (options.announce) {
            yield* hub.announce(room, {
              _tag: "Joined",
              session: connection.session.id,
              frame: { type: "joined", room, name: connection.name, at: Date.now() }
            })
          }
        }).pipe(Effect.tapError(() => Effect.sync(() => members.delete(connection))))

      const onLeave = (connection: Connection, announce: boolean) =>
        Effect.gen(function* () {
          if (!members.delete(connection)) return
          yield* presence.leave(room, connection.session.id)
          if (announce) {
            yield* hub.announce(room, {
              _tag: "Left",
              session: connection.session.id,
              frame: { type: "left", room, name: connection.name, at: Date.now() }
            })
          }
        }).pipe(Effect.ignoreLogged)

      while (true) {
        const inputs = yield* Queue.takeBetween(actor.inbox, 1, Number.MAX_SAFE_INTEGER)
        for (const input of inputs) {
          switch (input._tag) {
            case "Events":
              yield* onEvents(input.events)
              break
            case "Join":
              yield* Deferred.complete(input.done, onJoin(input.connection, input.options))
              break
            case "Leave":
              yield* onLeave(input.connection, input.announce)
              yield* Deferred.succeed(input.done, undefined)
              break
          }
        }
        // Checked and removed in one synchronous step, so a join can never reach an actor that has stopped.
        const stopped = yield* Effect.sync(() => {
          if (members.size > 0 || Option.getOrElse(actor.inbox.unsafeSize(), () => 0) > 0) return false
          actors.delete(room)
          return true
        })
        if (stopped) return
      }
    }).pipe(Effect.scoped)

  const failPending = (actor: RoomActor, error: BackendError) =>
    Effect.gen(function* () {
      const pending = yield* Queue.takeAll(actor.inbox)
      for (const input of pending) {
        if (input._tag === "Join") yield* Deferred.fail(input.done, error)
        if (input._tag === "Leave") yield* Deferred.succeed(input.done, undefined)
      }
    })

  /** Finds or creates the room's actor and posts `input`, in one synchronous step (see the stop check above). */
  const offer = (room: string, input: RoomInput) =>
    Effect.suspend(() => {
      const existing = actors.get(room)
      const actor: RoomActor = existing ?? { inbox: Effect.runSync(Queue.unbounded<RoomInput>()), last: undefined }
      actor.inbox.unsafeOffer(input)
      if (existing !== undefined) return Effect.void
      actors.set(room, actor)
      return run(room, actor).pipe(
        Effect.catchAll((error) =>
          Effect.suspend(() => {
            if (actors.get(room) === actor) actors.delete(room)
            return failPending(actor, error)
          })
        ),
        Effect.withScheduler(turnScheduler),
        Effect.forkIn(scope),
        Effect.asVoid
      )
    })

  return Rooms.of({
    join: (connection, room, options) =>
      Effect.gen(function* () {
        const done = yield* Deferred.make<void, BackendError>()
        yield* offer(room, { _tag: "Join", connection, options, done })
        yield* Deferred.await(done)
      }),
    leave: (connection, room, { announce }) =>
      Effect.gen(function* () {
        if (!actors.has(room)) return
        const done = yield* Deferred.make<void>()
        yield* offer(room, { _tag: "Leave", connection, announce, done })
        yield* Deferred.await(done)
      }),
    size: () => actors.size,
    lastDelivered: (room) => actors.get(room)?.last
  })
})
