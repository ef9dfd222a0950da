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
import { Duration, Effect, Either, Exit, Layer, Schedule } from "effect"
import { BackendError } from "../backend/BackendError.js"
import {
  ChangeRefused,
  Hub,
  type HubService,
  localDirects,
  type LoggedChange,
  type RoomEvent,
  type RoomSink
} from "../backend/Hub.js"
import * as MessageState from "../backend/MessageState.js"
import type * as Protocol from "../protocol/Protocol.js"
import { UNREAD_CAP } from "../protocol/Rules.js"
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
  /** Rev of the room's last committed change. */
  rev: number
  readonly sinks: Set<RoomSink>
  lastActivity: number
}

/** A message waiting for its group's commit. */
interface Post {
  readonly room: string
  readonly state: RoomState
  readonly from: string
  readonly text: string
  readonly author: string | undefined
  readonly replyTo: number | undefined
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
  readonly author: string | null
  readonly reply_to: number | null
}

/** Changes a room's log keeps for resumes, as in the memory store and Redis. */
const CHANGES_KEPT = 1000

/** Rows per multi-row insert: far below SQLite's 32,766 bound variables at seven a row. */
const INSERT_CHUNK = 1000

/**
 * The multi-row INSERT of `n` messages, built once per `n`. The hot path's one statement goes in as text and
 * parameters: composing it with `sql.insert` costs more CPU than SQLite takes to write the rows (measured: about
 * 285 µs against 165 µs a five-row group, SQLite's own work about 140 µs of it), and a group commit a few
 * milliseconds long pays it two hundred times a second.
 */
const insertTexts = new Map<number, string>()
const insertText = (n: number): string => {
  let text = insertTexts.get(n)
  if (text === undefined) {
    text = `INSERT INTO messages (room, id, sender, text, at, author, reply_to) VALUES ${Array.from(
      { length: n },
      () => "(?, ?, ?, ?, ?, ?, ?)"
    ).join(", ")}`
    // Group sizes vary with the rate; keep the texts (and the driver's prepared statements) of the common ones.
    if (insertTexts.size < 256) insertTexts.set(n, text)
  }
  return text
}

interface Row {
  readonly id: number
  readonly sender: string
  readonly text: string
  readonly at: number
  readonly reply_to: number | null
  readonly edited: number | null
  readonly deleted: number
  readonly reactions: string | null
}

interface StateRow extends Row {
  readonly author: string | null
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
        state = { committed: undefined, next: 0, rev: 0, sinks: new Set(), lastActivity: Date.now() }
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
        : sql<{ seq: number; rev: number }>`SELECT seq, rev FROM rooms WHERE name = ${name}`.pipe(
            Effect.map((rows) => {
              if (state.committed !== undefined) return
              state.committed = state.next = rows[0]?.seq ?? 0
              state.rev = rows[0]?.rev ?? 0
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
          post.frame =
            post.replyTo === undefined
              ? { type: "message", room: post.room, id, from: post.from, text: post.text, at: post.at }
              : {
                  type: "message",
                  room: post.room,
                  id,
                  from: post.from,
                  text: post.text,
                  at: post.at,
                  reply_to: post.replyTo
                }
          rows.push({
            room: post.room,
            id,
            sender: post.from,
            text: post.text,
            at: post.at,
            author: post.author ?? null,
            reply_to: post.replyTo ?? null
          })
        }
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          const chunk = rows.slice(i, i + INSERT_CHUNK)
          const params: Array<string | number | null> = []
          for (const row of chunk) {
            params.push(row.room, row.id, row.sender, row.text, row.at, row.author, row.reply_to)
          }
          yield* sql.unsafe(insertText(chunk.length), params)
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
          author: message.author,
          replyTo: message.replyTo,
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
            return { own, lastId: state.committed ?? 0, lastRev: state.rev }
          }),
          ({ own }) =>
            Effect.sync(() => {
              state.sinks.delete(own)
              state.lastActivity = Date.now()
            })
        ).pipe(Effect.map(({ lastId, lastRev }) => ({ lastId, lastRev })))
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
          ? yield* sql<Row>`SELECT id, sender, text, at, reply_to, edited, deleted, reactions FROM messages
              WHERE room = ${name} AND id > ${after} AND id < ${before} ORDER BY id ASC LIMIT ${limit}`
          : yield* sql<Row>`SELECT id, sender, text, at, reply_to, edited, deleted, reactions FROM messages
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

    type Changed = Either.Either<LoggedChange | undefined, MessageState.ChangeRefusal>

    /** Read, apply the rules, write back and log, all in one group's transaction; fanned out after its commit. */
    const change: HubService["change"] = (name, request) =>
      Effect.gen(function* () {
        const state = stateOf(name)
        yield* loaded(name, state)
        const outcome = yield* writer.write<Changed>("change", {
          run: Effect.gen(function* () {
            const rows = yield* sql<StateRow>`SELECT id, sender, text, at, reply_to, edited, deleted, reactions, author
              FROM messages WHERE room = ${name} AND id = ${request.id}`
            const row = rows[0]
            const stored: MessageState.StoredMessage | undefined =
              row === undefined
                ? undefined
                : { frame: toMessage(name, row), author: row.author ?? undefined, reactors: reactorsOf(row.reactions) }
            const applied = MessageState.apply(stored, request, Date.now())
            if (Either.isLeft(applied) || applied.right === undefined) return applied as Changed
            const { change: frame, message } = applied.right
            const reactors = message.reactors === undefined ? null : JSON.stringify(message.reactors)
            yield* sql`UPDATE messages SET text = ${message.frame.text}, edited = ${message.frame.edited ?? null},
              deleted = ${message.frame.deleted === true ? 1 : 0}, reactions = ${reactors}
              WHERE room = ${name} AND id = ${request.id}`
            const revs = yield* sql<{ rev: number }>`UPDATE rooms SET rev = rev + 1 WHERE name = ${name} RETURNING rev`
            const rev = revs[0]?.rev ?? state.rev + 1
            // A deleted message's earlier changes go: an `edited` there carries text that is gone. And the log keeps
            // a room's last CHANGES_KEPT changes, as the other stores do (reaction toggles must not grow it forever).
            if (frame.type === "deleted") yield* sql`DELETE FROM changes WHERE room = ${name} AND id = ${request.id}`
            if (rev % 100 === 0) yield* sql`DELETE FROM changes WHERE room = ${name} AND rev <= ${rev - CHANGES_KEPT}`
            yield* sql`INSERT INTO changes (room, rev, id, frame) VALUES (${name}, ${rev}, ${request.id},
              ${JSON.stringify(frame)})`
            return Either.right({ rev, frame })
          }),
          committed: (outcome) => {
            if (Either.isLeft(outcome) || outcome.right === undefined) return
            const logged = outcome.right
            state.rev = Math.max(state.rev, logged.rev)
            state.lastActivity = Date.now()
            const event: RoomEvent = { _tag: "Change", frame: logged.frame, rev: logged.rev }
            for (const sink of state.sinks) {
              try {
                sink(event)
              } catch {
                // As for messages: one failing sink must not cost the others their copy.
              }
            }
          }
        })
        if (Either.isLeft(outcome)) return yield* new ChangeRefused({ reason: outcome.left })
        return outcome.right
      }).pipe(Effect.catchTag("SqlError", (cause) => Effect.fail(failed("change")(cause))))

    const changes: HubService["changes"] = (name, query) =>
      sql<{ rev: number; frame: string }>`SELECT rev, frame FROM changes
        WHERE room = ${name} AND rev > ${query.afterRev} AND rev <= ${query.throughRev} AND id <= ${query.throughId}
        ORDER BY rev LIMIT ${CHANGES_KEPT}`.pipe(
        Effect.map((rows) =>
          MessageState.collapse(rows.map((row) => ({ rev: row.rev, frame: JSON.parse(row.frame) as Protocol.Change })))
        ),
        Effect.mapError(failed("changes"))
      )

    const countAfter = (name: string, after: number, through = Number.MAX_SAFE_INTEGER) =>
      sql<{ n: number }>`SELECT count(*) AS n FROM (SELECT 1 FROM messages
        WHERE room = ${name} AND id > ${after} AND id <= ${through} AND deleted = 0 LIMIT ${UNREAD_CAP})`.pipe(
        Effect.map((rows) => rows[0]?.n ?? 0)
      )

    const markerOf = (name: string, user: string) =>
      sql<{ last_read: number }>`SELECT last_read FROM read_markers WHERE user = ${user} AND room = ${name}`.pipe(
        Effect.map((rows) => rows[0]?.last_read ?? 0)
      )

    const latestOf = (name: string) =>
      sql<{ seq: number }>`SELECT seq FROM rooms WHERE name = ${name}`.pipe(Effect.map((rows) => rows[0]?.seq ?? 0))

    const markRead: HubService["markRead"] = (name, user, id) =>
      writer.write("read", {
        run: Effect.gen(function* () {
          const before = yield* markerOf(name, user)
          const latest = yield* latestOf(name)
          const target = Math.min(id, latest)
          const moved = target > before
          if (moved) {
            yield* sql`INSERT INTO read_markers (user, room, last_read) VALUES (${user}, ${name}, ${target})
              ON CONFLICT (user, room) DO UPDATE SET last_read = excluded.last_read`
          }
          const last = moved ? target : before
          const unread: Protocol.Unread = {
            type: "unread",
            room: name,
            last_read: last,
            count: yield* countAfter(name, last, latest)
          }
          return { unread, moved, through: latest }
        })
      })

    const unread: HubService["unread"] = (name, user, through) =>
      Effect.gen(function* () {
        const last = yield* markerOf(name, user)
        return { type: "unread" as const, room: name, last_read: last, count: yield* countAfter(name, last, through) }
      }).pipe(Effect.mapError(failed("unread")))

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

const toMessage = (room: string, row: Row): Protocol.Message => {
  const frame: { -readonly [K in keyof Protocol.Message]: Protocol.Message[K] } = {
    type: "message",
    room,
    id: row.id,
    from: row.sender,
    text: row.text,
    at: row.at
  }
  if (row.reply_to !== null) frame.reply_to = row.reply_to
  if (row.edited !== null) frame.edited = row.edited
  if (row.deleted === 1) frame.deleted = true
  const reactions = MessageState.namesOf(reactorsOf(row.reactions))
  if (reactions !== undefined) frame.reactions = reactions
  return frame
}

const reactorsOf = (text: string | null): Record<string, ReadonlyArray<MessageState.Reactor>> | undefined => {
  if (text === null) return undefined
  try {
    return JSON.parse(text) as Record<string, ReadonlyArray<MessageState.Reactor>>
  } catch {
    return undefined
  }
}
