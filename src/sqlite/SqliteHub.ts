/**
 * The hub over the embedded store, for one process. A message is numbered, written in the writer's next group
 * commit, and only once that commit is done fanned out to the room's subscribers and acked: nobody ever sees a
 * message a crash could take back, and ids go on from the store after a restart without a gap.
 *
 * Numbering keeps two counters per room: `committed` (what subscribers and `bounds` see) and `next` (what the
 * group being written has handed out). A failed group rolls `next` back to `committed`, so a refused message leaves
 * no hole. Fan-out is synchronous in the writer's `committed` callbacks, which run in submission order, so every
 * subscriber gets a room's messages in id order. Presence events and direct messages stay in memory, as they do in
 * the memory hub: one process has nobody else to tell.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Exit, Layer, Schedule } from "effect"
import { BackendError } from "../backend/BackendError.js"
import { Hub, type HubService, localDirects, type RoomEvent, type RoomSink } from "../backend/Hub.js"
import type * as Protocol from "../protocol/Protocol.js"
import * as Retention from "./Retention.js"
import { StoreWriter } from "./StoreWriter.js"

export interface SqliteHubOptions {
  /** Idle rooms leave memory after this long; their history and ids stay in the store. */
  readonly roomTtl: Duration.Duration
  readonly retention: Retention.RetentionOptions
}

interface RoomState {
  /** Id of the last committed message; undefined until read from the store. */
  committed: number | undefined
  /** Id of the last message handed out to the group being written. */
  next: number
  readonly sinks: Set<RoomSink>
  lastActivity: number
}

/** A message waiting for its group's commit. */
interface Post {
  readonly room: string
  readonly state: RoomState
  readonly from: string
  readonly text: string
  readonly at: number
  readonly resume: (result: Effect.Effect<Protocol.Message, BackendError>) => void
  /** Numbered when its group is written. */
  frame?: Protocol.Message
}

type MessageRow = {
  readonly room: string
  readonly id: number
  readonly sender: string
  readonly text: string
  readonly at: number
}

/** Rows per multi-row insert: far below SQLite's 32,766 bound variables at five a row. */
const INSERT_CHUNK = 1000

interface Row {
  readonly id: number
  readonly sender: string
  readonly text: string
  readonly at: number
}

export const layer = (options: SqliteHubOptions) => Layer.scoped(Hub, make(options))

const make = (options: SqliteHubOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const writer = yield* StoreWriter
    const rooms = new Map<string, RoomState>()
    const directs = yield* localDirects
    const ttl = Duration.toMillis(options.roomTtl)
    /** Rooms that received messages since retention last looked, with their last id. */
    let grown = new Map<string, number>()

    const stateOf = (name: string): RoomState => {
      let state = rooms.get(name)
      if (state === undefined) {
        state = { committed: undefined, next: 0, sinks: new Set(), lastActivity: Date.now() }
        rooms.set(name, state)
      }
      return state
    }

    const failed = (operation: string) => (cause: unknown) =>
      new BackendError({ reason: "Unavailable", operation, cause })

    /** The room's last id from the store, read once while the room is in memory. */
    const loaded = (name: string, state: RoomState) =>
      state.committed !== undefined
        ? Effect.void
        : sql<{ seq: number }>`SELECT seq FROM rooms WHERE name = ${name}`.pipe(
            Effect.map((rows) => {
              if (state.committed !== undefined) return
              state.committed = state.next = rows[0]?.seq ?? 0
            })
          )

    /** The messages of the group being filled: one job per group writes them all, two statements in all. */
    let open: Array<Post> | undefined

    const writeGroup = (posts: ReadonlyArray<Post>) =>
      Effect.gen(function* () {
        if (open === posts) open = undefined
        for (const post of posts) yield* loaded(post.room, post.state)
        const rows: Array<MessageRow> = []
        for (const post of posts) {
          const id = ++post.state.next
          post.frame = { type: "message", room: post.room, id, from: post.from, text: post.text, at: post.at }
          rows.push({ room: post.room, id, sender: post.from, text: post.text, at: post.at })
        }
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          yield* sql`INSERT INTO messages ${sql.insert(rows.slice(i, i + INSERT_CHUNK))}`
        }
        // The rooms' last ids follow in SQLite (trigger `messages_room_seq`).
      })

    /** After the commit, in id order: every subscriber gets the messages, then every publisher its ack. */
    const delivered = (posts: ReadonlyArray<Post>) => {
      for (const post of posts) {
        const frame = post.frame!
        post.state.committed = frame.id
        post.state.lastActivity = frame.at
        grown.set(post.room, frame.id)
        const event: RoomEvent = { _tag: "Message", frame }
        for (const sink of post.state.sinks) {
          try {
            sink(event)
          } catch {
            // A sink is a room actor's mailbox push; one that throws is a bug that must not cost others their copy.
          }
        }
      }
      for (const post of posts) post.resume(Effect.succeed(post.frame!))
    }

    const refused = (posts: ReadonlyArray<Post>) => {
      if (open === posts) open = undefined
      for (const post of posts) if (post.state.committed !== undefined) post.state.next = post.state.committed
    }

    const publish: HubService["publish"] = (room, message) =>
      Effect.async<Protocol.Message, BackendError>((resume) => {
        const post: Post = {
          room,
          state: stateOf(room),
          from: message.from,
          text: message.text,
          at: Date.now(),
          resume
        }
        if (open !== undefined) return void open.push(post)
        const posts: Array<Post> = [post]
        open = posts
        writer.submit(
          "publish",
          {
            run: writeGroup(posts),
            committed: () => delivered(posts),
            rolledBack: () => refused(posts),
            // One INSERT of every message (reads of rooms new to memory aside), up to INSERT_CHUNK of them; read
            // when the group is written, once no more messages can join it.
            get atomic() {
              return posts.length <= INSERT_CHUNK
            }
          },
          (outcome) => {
            // Success has resumed every publisher in `delivered`; a failure reaches each of them here (also one
            // refused before it ran: the store closing), and the group takes no more messages.
            if (Exit.isSuccess(outcome)) return
            if (open === posts) open = undefined
            for (const post of posts) post.resume(Exit.failCause(outcome.cause))
          }
        )
      })

    const announce: HubService["announce"] = (name, event) =>
      Effect.sync(() => {
        const state = rooms.get(name)
        if (state !== undefined) for (const sink of state.sinks) sink(event)
      })

    const subscribe: HubService["subscribe"] = (name, sink) =>
      Effect.gen(function* () {
        const state = stateOf(name)
        yield* loaded(name, state).pipe(Effect.mapError(failed("subscribe")))
        return yield* Effect.acquireRelease(
          Effect.sync(() => {
            // A sink of its own per subscription, so the same function subscribed twice is two subscribers.
            const own: RoomSink = (event) => sink(event)
            state.sinks.add(own)
            return { own, lastId: state.committed ?? 0 }
          }),
          ({ own }) =>
            Effect.sync(() => {
              state.sinks.delete(own)
              state.lastActivity = Date.now()
            })
        ).pipe(Effect.map(({ lastId }) => ({ lastId })))
      })

    const oldest = (name: string) =>
      sql<{ oldest: number | null }>`SELECT min(id) AS oldest FROM messages WHERE room = ${name}`.pipe(
        Effect.map((rows) => rows[0]?.oldest ?? 0)
      )

    const history: HubService["history"] = (name, query) =>
      Effect.gen(function* () {
        const limit = Math.floor(query.limit)
        if (!(limit > 0)) return { messages: [], more: false }
        const after = query.after === undefined || Number.isNaN(query.after) ? 0 : query.after
        const before = query.before === undefined || Number.isNaN(query.before) ? Number.MAX_SAFE_INTEGER : query.before
        const rows = query.oldestFirst
          ? yield* sql<Row>`SELECT id, sender, text, at FROM messages
              WHERE room = ${name} AND id > ${after} AND id < ${before} ORDER BY id ASC LIMIT ${limit}`
          : yield* sql<Row>`SELECT id, sender, text, at FROM messages
              WHERE room = ${name} AND id > ${after} AND id < ${before} ORDER BY id DESC LIMIT ${limit}`
        const messages = rows.map((row) => toMessage(name, row))
        if (!query.oldestFirst) messages.reverse()
        const first = messages[0]
        return { messages, more: first !== undefined && (yield* oldest(name)) < first.id }
      }).pipe(Effect.mapError(failed("history")))

    const bounds: HubService["bounds"] = (name) =>
      Effect.gen(function* () {
        // A room held in memory answers its last id; any other is only looked up, not brought into memory.
        const state = rooms.get(name)
        const latest =
          state?.committed ??
          (yield* sql<{ seq: number }>`SELECT seq FROM rooms WHERE name = ${name}`.pipe(
            Effect.map((rows) => rows[0]?.seq ?? 0)
          ))
        return { oldest: yield* oldest(name), latest }
      }).pipe(Effect.mapError(failed("bounds")))

    // Rooms nobody is in leave memory; the store keeps their history and last id.
    const sweep = Effect.sync(() => {
      const now = Date.now()
      for (const [name, state] of rooms) {
        if (state.sinks.size === 0 && state.next === state.committed && now - state.lastActivity > ttl)
          rooms.delete(name)
      }
    })
    yield* Effect.forkScoped(
      Effect.repeat(sweep, { schedule: Schedule.spaced(Duration.min(options.roomTtl, Duration.seconds(30))) })
    )

    yield* Retention.run(options.retention, () => {
      const taken = grown
      grown = new Map()
      return taken
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

const toMessage = (room: string, row: Row): Protocol.Message => ({
  type: "message",
  room,
  id: row.id,
  from: row.sender,
  text: row.text,
  at: row.at
})
