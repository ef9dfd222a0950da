/**
 * Room actors: one per room with members on this node, owning that room's local membership and its delivery. An
 * actor takes the room's events from the hub in id order, has `FanoutPlan` encode each batch once and writes it
 * straight to every member's socket, so all members see one order and nothing wakes per recipient. Joins and leaves
 * go through the same mailbox, which is what makes the history/live boundary exact: a joiner gets history up to the
 * last id this actor delivered, then every later event live — no gap, no duplicate.
 *
 * Like a socket actor, a room actor holds no fiber while idle. Its mailbox is drained once per event-loop turn
 * (`setImmediate`), so the events of one turn go out as one write per member: the gathering EFFECT-NOTES measured
 * as the one that beats a hand-written `ws` loop. Work that waits on a backend (subscribing, a join's history and
 * presence, filling a gap) runs as a job; the mailbox waits behind it, so order holds.
 */
import { Context, Duration, Effect, Exit, type Fiber, FiberSet, Layer, Scope } from "effect"
import type { BackendError } from "../backend/BackendError.js"
import { Hub, type HistoryPage, type RoomEvent } from "../backend/Hub.js"
import { Presence } from "../backend/Presence.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import type * as Protocol from "../protocol/Protocol.js"
import { UNREAD_CAP } from "../protocol/Rules.js"
import type { Connection } from "./Connection.js"
import * as FanoutPlan from "./FanoutPlan.js"
import { HookObserver } from "./HookObserver.js"
import * as Receipts from "./Receipts.js"
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
  /** Completes once change `rev` of `room` has been written to this node's members (as `delivered`, for changes). */
  readonly changeDelivered: (room: string, rev: number) => Effect.Effect<void>
  /**
   * Completes once message `id` of `room` has been written to this node's members (or the room has none left here):
   * an `ack` sent after it reaches its sender after the message itself, and a message sent after that ack cannot
   * overtake it anywhere on this node. Bounded, for a message whose delivery waits on a backend that is away.
   */
  readonly delivered: (room: string, id: number) => Effect.Effect<void>
}

export class Rooms extends Context.Tag("effect-chat/Rooms")<Rooms, RoomsService>() {
  static layer = Layer.scoped(
    Rooms,
    Effect.suspend(() => make)
  )
}

type Input =
  | RoomEvent
  | {
      readonly _tag: "Join"
      readonly connection: Connection
      readonly options: JoinOptions
      readonly done: (exit: Exit.Exit<void, BackendError>) => void
    }
  | { readonly _tag: "Leave"; readonly connection: Connection; readonly announce: boolean; readonly done: () => void }

/** The number each presence event this node announced got from its room's `presenceClock`. */
const announcedAt = new WeakMap<RoomEvent, number>()

class RoomActor {
  readonly members = new Set<Connection>()
  readonly inbox: Array<Input> = []
  /** The last message id delivered to this node's members; undefined until subscribed. */
  last: number | undefined
  /** The rev of the last message change delivered to this node's members. */
  lastRev = 0
  /** When this node's changes went out, against the ping clock; made at the room's first change. */
  revLog: Receipts.RevLog | undefined
  /** Changes went out since members were last asked for a receipt. */
  unconfirmed = false
  /**
   * Per member that is sent changes, what it had once its join was answered: the ping clock after the join's last
   * frame, and the rev its join brought it to (or, for a resume, the rev the resume started from: what it had for
   * certain).
   */
  readonly joinedAt = new Map<Connection, { readonly ping: number; readonly rev: number }>()
  /** Members the room had at the last join (all nodes): above the presence limit, joins and leaves go unannounced. */
  knownSize = 0
  /** A job under way (subscribe, join, leave, gap fill): the mailbox waits for it. */
  busy = false
  /** In the turn's list of actors to drain. */
  scheduled = false
  /**
   * Presence events (joined, left, renamed) not sent yet: within a presence window after the last presence write
   * they wait, so a join storm costs each member a write per window instead of one per arrival. Any message flushes
   * them first, so a message never overtakes the presence that came before it.
   */
  readonly heldPresence: Array<RoomEvent> = []
  /**
   * Presence this node announced is numbered as it is announced, and a joiner's `members` list is marked with the
   * number it was taken at: presence numbered at or below the mark is already in that list, not news to the joiner.
   * Without this, a join storm sent each early arrival to every later one (held presence, and the joined events
   * still queued behind the joins, went to everyone in the room when they went out).
   */
  presenceClock = 0
  readonly presenceMarks = new Map<Connection, number>()
  /** Whether `member`'s `members` list already has `event` in it. */
  readonly knows = (member: Connection, event: FanoutPlan.PresenceEvent): boolean =>
    (announcedAt.get(event) ?? Infinity) <= (this.presenceMarks.get(member) ?? -1)
  presenceSentAt = 0
  presenceTimer: ReturnType<typeof setTimeout> | undefined
  /** Sends waiting for their message to go out, by id (ids rise, so the oldest is first). */
  readonly waiters: Array<{ readonly id: number; readonly resume: () => void }> = []
  /** Changes waiting to go out, by rev. */
  readonly revWaiters: Array<{ readonly id: number; readonly resume: () => void }> = []
  constructor(
    readonly room: string,
    readonly scope: Scope.CloseableScope
  ) {}
}

/** Presence writes to a room's members at most this often while arrivals keep coming (a join storm). */
const PRESENCE_WINDOW_MS = 250

/** Messages in one resume catch-up `history` frame: the largest page a client may ask for. */
const HISTORY_PAGE = 100

/** The longest an `ack` waits for its message to go out (a Redis subscription that is down, then caught up). */
const DELIVERY_WAIT = Duration.seconds(2)

const make = Effect.gen(function* () {
  const hub = yield* Hub
  const presence = yield* Presence
  const config = yield* ServerConfig
  const observer = yield* HookObserver
  const runFork = yield* FiberSet.makeRuntime<never>()
  const actors = new Map<string, RoomActor>()

  // One `setImmediate` per event-loop turn for all rooms with work, not one per room.
  let turn: Array<RoomActor> = []
  let turnScheduled = false
  const runTurn = () => {
    const due = turn
    turn = []
    turnScheduled = false
    for (const actor of due) {
      actor.scheduled = false
      drain(actor)
    }
  }
  const schedule = (actor: RoomActor) => {
    if (actor.scheduled || actor.busy) return
    actor.scheduled = true
    turn.push(actor)
    if (!turnScheduled) {
      turnScheduled = true
      setImmediate(runTurn)
    }
  }

  const post = (actor: RoomActor, input: Input) => {
    actor.inbox.push(input)
    schedule(actor)
  }

  // Summed per batch, added to the metrics once per batch.
  let written = 0
  let writtenBytes = 0
  const write = (member: Connection, parts: ReadonlyArray<Uint8Array>, frames: number) => {
    member.outlet.write(parts, frames)
    written += frames
    for (let i = 0; i < parts.length; i++) writtenBytes += parts[i]!.byteLength
  }

  const deliver = (actor: RoomActor, batch: ReadonlyArray<RoomEvent>) => {
    if (batch.length > 0) {
      written = writtenBytes = 0
      FanoutPlan.plan(batch, actor.members, write, actor.presenceMarks.size > 0 ? actor.knows : undefined)
      ChatMetrics.add(ChatMetrics.deliveries, written)
      ChatMetrics.add(ChatMetrics.bytesOut, writtenBytes)
      if (actor.unconfirmed) {
        // So the rev each member has received is known soon after, and a drop right now costs a resume the
        // changes since the member's last receipt, not any that went out unread.
        actor.unconfirmed = false
        for (const member of actor.members) if (showsChanges(member)) member.outlet.receipt()
      }
    }
    const waiters = actor.waiters
    while (waiters.length > 0 && waiters[0]!.id <= actor.last!) waiters.shift()!.resume()
    const revWaiters = actor.revWaiters
    while (revWaiters.length > 0 && revWaiters[0]!.id <= actor.lastRev) revWaiters.shift()!.resume()
  }

  const takePresence = (actor: RoomActor, batch: Array<RoomEvent>) => {
    for (const event of actor.heldPresence) batch.push(event)
    actor.heldPresence.length = 0
    actor.presenceSentAt = Date.now()
  }

  const releaseWaiters = (actor: RoomActor) => {
    for (const waiter of actor.waiters.splice(0)) waiter.resume()
    for (const waiter of actor.revWaiters.splice(0)) waiter.resume()
  }

  /** Runs `job`; the mailbox waits while it is under way and is drained again once it is done. */
  const runJob = (actor: RoomActor, job: Effect.Effect<void>): boolean => {
    const fiber: Fiber.RuntimeFiber<void> = runFork(job)
    if (fiber.unsafePoll() !== null) return false
    actor.busy = true
    fiber.addObserver(() => {
      actor.busy = false
      drain(actor)
    })
    return true
  }

  /** Delivers the mailbox in order: runs of events as one batch, joins and leaves between them as jobs. */
  const drain = (actor: RoomActor): void => {
    if (actor.busy) return
    let batch: Array<RoomEvent> = []
    while (actor.inbox.length > 0) {
      const input = actor.inbox[0]!
      if (input._tag === "Message") {
        const id = input.frame.id
        const last = actor.last!
        if (id <= last) {
          actor.inbox.shift()
          continue
        }
        if (id > last + 1) {
          // Messages missing between `last` and this one (a node that lost its Redis subscription for a moment)
          // are read back from history so every member still sees every id once.
          deliver(actor, batch)
          batch = []
          if (runJob(actor, fillGap(actor, id))) return
          continue
        }
        actor.inbox.shift()
        if (actor.heldPresence.length > 0) takePresence(actor, batch)
        batch.push(input)
        actor.last = id
        ChatMetrics.sample(ChatMetrics.fanoutLatency, Date.now() - input.frame.at)
        continue
      }
      if (input._tag === "Joined" || input._tag === "Left" || input._tag === "Renamed") {
        actor.inbox.shift()
        actor.heldPresence.push(input)
        continue
      }
      if (input._tag === "Change") {
        actor.inbox.shift()
        // A change a catch-up brought again is dropped by its rev, as messages are by id.
        if (input.rev <= actor.lastRev) continue
        if (actor.heldPresence.length > 0) takePresence(actor, batch)
        batch.push(input)
        ;(actor.revLog ??= new Receipts.RevLog()).record(Receipts.now(), actor.lastRev)
        actor.lastRev = input.rev
        actor.unconfirmed = true
        continue
      }
      if (input._tag === "Typing") {
        actor.inbox.shift()
        batch.push(input)
        continue
      }
      if (input._tag === "Read") {
        actor.inbox.shift()
        batch.push(unreadAsDelivered(actor, input))
        continue
      }
      // A join or leave sees the room exactly as delivered so far.
      deliver(actor, batch)
      batch = []
      actor.inbox.shift()
      const outlet = input.connection.outlet
      // A joiner's members and history go out in one write.
      outlet.hold()
      const waits = runJob(actor, input._tag === "Join" ? onJoin(actor, input) : onLeave(actor, input))
      outlet.release()
      if (waits) return
    }
    if (actor.heldPresence.length > 0) {
      const wait = actor.presenceSentAt + PRESENCE_WINDOW_MS - Date.now()
      if (wait <= 0) takePresence(actor, batch)
      else
        actor.presenceTimer ??= setTimeout(() => {
          actor.presenceTimer = undefined
          schedule(actor)
        }, wait)
    }
    deliver(actor, batch)
    // Everything this node announced has gone out (announcements reach the mailbox as they are made): the marks
    // have nothing left to leave out.
    if (actor.heldPresence.length === 0 && actor.presenceMarks.size > 0) actor.presenceMarks.clear()
    // Checked and removed in one synchronous step, so a join can never reach an actor that has stopped.
    if (actor.members.size === 0 && actors.get(actor.room) === actor) {
      actors.delete(actor.room)
      clearTimeout(actor.presenceTimer)
      releaseWaiters(actor)
      runFork(Scope.close(actor.scope, Exit.void))
    }
  }

  /**
   * A moved read marker's count as of this point of the room's stream: the hub counted up to `through`, while the
   * members here have been sent up to `last`; what came between is counted in (or out), so a client that adds each
   * later message to the count stays exact.
   */
  const unreadAsDelivered = (actor: RoomActor, event: Extract<RoomEvent, { _tag: "Read" }>): RoomEvent => {
    const delivered = actor.last ?? event.through
    if (delivered === event.through) return event
    const frame = event.frame
    const count = Math.max(0, Math.min(UNREAD_CAP, frame.count + delivered - event.through))
    return { ...event, frame: { ...frame, count }, through: delivered }
  }

  const fillGap = (actor: RoomActor, upTo: number) =>
    hub.history(actor.room, { after: actor.last, before: upTo, limit: upTo - actor.last! - 1, oldestFirst: true }).pipe(
      Effect.map((page) => page.messages),
      Effect.orElseSucceed((): ReadonlyArray<Protocol.Message> => []),
      Effect.map((missed) => {
        const fresh = missed.filter((message) => message.id > actor.last!)
        deliver(
          actor,
          fresh.map((frame): RoomEvent => ({ _tag: "Message", frame }))
        )
        actor.last = Math.max(actor.last!, upTo - 1)
      })
    )

  /**
   * What a resuming member missed, `since < id < before`, oldest first, in pages of at most `HISTORY_PAGE`: a
   * durable store may retain thousands, and no frame should carry them all.
   */
  const catchUp = (room: string, since: number, before: number) =>
    Effect.gen(function* () {
      const pages: Array<HistoryPage> = []
      let after = since
      while (after < before - 1) {
        const page = yield* hub.history(room, { after, before, limit: HISTORY_PAGE, oldestFirst: true })
        if (pages.length === 0 || page.messages.length > 0) pages.push(page)
        const last = page.messages[page.messages.length - 1]
        if (last === undefined || page.messages.length < HISTORY_PAGE) break
        after = last.id
      }
      if (pages.length === 0) pages.push({ messages: [], more: false })
      return pages
    })

  const showsChanges = (member: Connection) => member.has("edits") || member.has("reactions")

  /**
   * The rev of the last change `member` has certainly received: as of the last ping it answered, if that came after
   * its join; else what it had at its join. What was only written to its socket may be lost with the connection.
   */
  const receivedRev = (actor: RoomActor, member: Connection): number => {
    const joined = actor.joinedAt.get(member)
    // A member that is never sent a change (no `edits` or `reactions`, or the plain dialect).
    if (joined === undefined) return actor.lastRev
    const confirmed = member.outlet.confirmed
    if (confirmed <= joined.ping) return joined.rev
    const rev = actor.revLog === undefined ? actor.lastRev : actor.revLog.asOf(confirmed, actor.lastRev)
    return rev === undefined ? joined.rev : Math.max(joined.rev, rev)
  }

  /** Above the limit a room is too big for individual presence: `members` and `who` stay exact. */
  const announces = (actor: RoomActor) => actor.knownSize <= config.presenceLimit

  const onJoin = (actor: RoomActor, input: Extract<Input, { _tag: "Join" }>) => {
    const { connection, options } = input
    const { room } = actor
    const started = Date.now()
    let counted = false
    return Effect.gen(function* () {
      actor.members.add(connection)
      // A user's second connection (another tab) into the room is not news to anyone.
      const first = yield* presence.join(room, connection.key, connection.name)
      counted = true
      if (connection.renderer.showsRoomState) {
        const names = yield* presence.members(room)
        actor.presenceMarks.set(connection, actor.presenceClock)
        actor.knownSize = names.length
        const before = actor.last! + 1
        const pages =
          options.since === undefined
            ? [yield* hub.history(room, { before, limit: config.joinHistory })]
            : yield* catchUp(room, options.since, before)
        connection.send({ type: "members", room, names })
        for (const page of pages) connection.send({ type: "history", room, messages: page.messages, more: page.more })
        let rev = actor.lastRev
        if (options.since !== undefined && showsChanges(connection)) {
          // Changes made while the session was away to messages it already had; later ones arrive live.
          rev = connection.session.revs.get(room) ?? 0
          const changes = yield* hub.changes(room, {
            afterRev: rev,
            throughRev: actor.lastRev,
            throughId: options.since
          })
          for (const change of changes) connection.send(change.frame)
          if (changes.length > 0) connection.outlet.receipt()
        }
        // Counted up to what this joiner was sent: later messages reach it live, and it counts those itself.
        if (connection.has("receipts")) connection.send(yield* hub.unread(room, connection.key, actor.last))
        if (showsChanges(connection)) actor.joinedAt.set(connection, { ping: Receipts.now(), rev })
      } else {
        actor.knownSize = Math.max(actor.knownSize + 1, actor.members.size)
      }
      ChatMetrics.sample(ChatMetrics.joinTime, Date.now() - started)
      if (first && options.announce && observer.active) {
        observer.presence({ _tag: "Joined", room, name: connection.name, user: connection.identity })
      }
      if (first && options.announce && announces(actor)) {
        const event: RoomEvent = {
          _tag: "Joined",
          session: connection.session.id,
          frame: { type: "joined", room, name: connection.name, at: Date.now() }
        }
        announcedAt.set(event, ++actor.presenceClock)
        yield* hub.announce(room, event)
      }
    }).pipe(
      Effect.tapError(() =>
        Effect.zipRight(
          Effect.sync(() => actor.members.delete(connection)),
          // A join that failed after presence counted it must not leave the user in the room for good.
          counted ? Effect.ignore(presence.leave(room, connection.key)) : Effect.void
        )
      ),
      Effect.onExit((exit) => Effect.sync(() => input.done(exit))),
      Effect.ignore
    )
  }

  const onLeave = (actor: RoomActor, input: Extract<Input, { _tag: "Leave" }>) => {
    const { announce, connection } = input
    const { room } = actor
    return Effect.gen(function* () {
      if (!actor.members.delete(connection)) return
      actor.presenceMarks.delete(connection)
      // What a resume of this session will not need to be told again.
      connection.session.revs.set(room, receivedRev(actor, connection))
      actor.joinedAt.delete(connection)
      const announced = announce && announces(actor)
      actor.knownSize = Math.max(0, actor.knownSize - 1)
      const last = yield* presence.leave(room, connection.key)
      if (last && announce && observer.active) {
        observer.presence({ _tag: "Left", room, name: connection.name, user: connection.identity })
      }
      if (last && announced) {
        const event: RoomEvent = {
          _tag: "Left",
          session: connection.session.id,
          frame: { type: "left", room, name: connection.name, at: Date.now() }
        }
        announcedAt.set(event, ++actor.presenceClock)
        yield* hub.announce(room, event)
      }
    }).pipe(Effect.ignoreLogged, Effect.ensuring(Effect.sync(input.done)))
  }

  /** A new actor subscribes first; joins that were waiting for it fail if the hub cannot be reached. */
  const start = (actor: RoomActor) =>
    hub
      .subscribe(actor.room, (event) => post(actor, event))
      .pipe(
        Scope.extend(actor.scope),
        Effect.match({
          onSuccess: (feed) => {
            actor.last = feed.lastId
            actor.lastRev = feed.lastRev
          },
          onFailure: (error) => {
            if (actors.get(actor.room) === actor) actors.delete(actor.room)
            releaseWaiters(actor)
            for (const input of actor.inbox.splice(0)) {
              if (input._tag === "Join") input.done(Exit.fail(error))
              if (input._tag === "Leave") input.done()
            }
            runFork(Scope.close(actor.scope, Exit.void))
          }
        })
      )

  /** Finds or creates the room's actor and posts `input`, in one synchronous step (see the stop check above). */
  const offer = (room: string, input: Input) => {
    let actor = actors.get(room)
    if (actor === undefined) {
      actor = new RoomActor(room, Effect.runSync(Scope.make()))
      actors.set(room, actor)
      actor.inbox.push(input)
      runJob(actor, start(actor))
      schedule(actor)
      return
    }
    post(actor, input)
  }

  /** Waits, bounded, until the actor of `room` has delivered up to `id` (a message id or a change's rev). */
  const waitFor = (
    room: string,
    id: number,
    deliveredUpTo: (actor: RoomActor) => number | undefined,
    waiting: (actor: RoomActor) => Array<{ readonly id: number; readonly resume: () => void }>
  ) =>
    Effect.suspend(() => {
      const actor = actors.get(room)
      const upTo = actor === undefined ? undefined : deliveredUpTo(actor)
      if (actor === undefined || (upTo !== undefined && upTo >= id)) return Effect.void
      const waiters = waiting(actor)
      return Effect.async<void>((resume) => {
        const waiter = { id, resume: () => resume(Effect.void) }
        // Kept in id order: two changes' requests may finish out of order, and `deliver` stops at the first not due.
        let at = waiters.length
        while (at > 0 && waiters[at - 1]!.id > id) at--
        waiters.splice(at, 0, waiter)
        return Effect.sync(() => {
          const index = waiters.indexOf(waiter)
          if (index >= 0) waiters.splice(index, 1)
        })
      }).pipe(Effect.timeoutOption(DELIVERY_WAIT), Effect.asVoid)
    })

  return Rooms.of({
    join: (connection, room, options) =>
      Effect.async<void, BackendError>((resume) => {
        offer(room, { _tag: "Join", connection, options, done: (exit) => resume(exit) })
      }),
    leave: (connection, room, { announce }) =>
      Effect.async<void>((resume) => {
        if (!actors.has(room)) return resume(Effect.void)
        offer(room, { _tag: "Leave", connection, announce, done: () => resume(Effect.void) })
      }),
    size: () => actors.size,
    lastDelivered: (room) => actors.get(room)?.last,
    delivered: (room, id) =>
      waitFor(
        room,
        id,
        (actor) => actor.last,
        (actor) => actor.waiters
      ),
    changeDelivered: (room, rev) =>
      waitFor(
        room,
        rev,
        (actor) => actor.lastRev,
        (actor) => actor.revWaiters
      )
  })
})
