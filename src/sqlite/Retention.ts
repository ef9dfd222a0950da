/**
 * Retention of the embedded store, enforced in the background: each room keeps its newest `retain` messages, and
 * no message older than `maxAge` is kept. Deletes go through the writer in chunks, so they share group commits
 * with the traffic and never hold the event loop for long. A room's id counter (`rooms.seq`) is never deleted:
 * ids go on after retention has emptied a room.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Schedule } from "effect"
import { StoreWriter } from "./StoreWriter.js"

export interface RetentionOptions {
  /** Messages each room keeps. */
  readonly retain: number
  /** Messages older than this go. */
  readonly maxAge: Duration.Duration
}

/** Rows one delete removes at most: a few milliseconds of work in one group commit. */
const CHUNK = 2000

/** How often rooms that grew are trimmed to their count. */
const COUNT_INTERVAL = Duration.seconds(1)

/** How often messages past their age are removed: often enough for a short age, at least once a minute. */
export const ageInterval = (maxAge: Duration.Duration): Duration.Duration =>
  Duration.clamp(Duration.millis(Duration.toMillis(maxAge) / 2), {
    minimum: Duration.millis(100),
    maximum: Duration.minutes(1)
  })

/**
 * Runs retention until the scope closes. `grown` hands over the rooms that received messages since it was last
 * asked, with their last id; the first pass trims every room (a smaller `retain` than last time applies at once).
 */
export const run = (options: RetentionOptions, grown: () => ReadonlyMap<string, number>) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const writer = yield* StoreWriter
    const retain = Math.max(1, Math.floor(options.retain))

    /** Deletes `room`'s messages with ids up to `upTo`, a chunk per commit. */
    const trimRoom = (room: string, upTo: number): Effect.Effect<void, unknown> =>
      writer
        .write("retention", {
          run: sql<{ id: number }>`DELETE FROM messages WHERE room = ${room} AND id IN
            (SELECT id FROM messages WHERE room = ${room} AND id <= ${upTo} ORDER BY id LIMIT ${CHUNK}) RETURNING id`
        })
        .pipe(Effect.flatMap((rows) => (rows.length < CHUNK ? Effect.void : trimRoom(room, upTo))))

    const byCount = (rooms: Iterable<readonly [string, number]>) =>
      Effect.forEach(rooms, ([room, seq]) => (seq > retain ? trimRoom(room, seq - retain) : Effect.void), {
        discard: true
      })

    const byAge: Effect.Effect<void, unknown> = Effect.suspend(() => {
      const cutoff = Date.now() - Duration.toMillis(options.maxAge)
      return writer
        .write("retention", {
          run: sql<{ id: number }>`DELETE FROM messages WHERE (room, id) IN
            (SELECT room, id FROM messages WHERE at < ${cutoff} LIMIT ${CHUNK}) RETURNING id`
        })
        .pipe(Effect.flatMap((rows) => (rows.length < CHUNK ? Effect.void : byAge)))
    })

    const logged = (effect: Effect.Effect<void, unknown>) =>
      Effect.catchAll(effect, (error) => Effect.logWarning("store: retention pass failed; it runs again", error))

    const all = yield* sql<{ name: string; seq: number }>`SELECT name, seq FROM rooms WHERE seq > ${retain}`
    yield* logged(byCount(all.map((row) => [row.name, row.seq] as const)))
    yield* logged(byAge)
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.suspend(() => logged(byCount(grown()))),
        Schedule.spaced(COUNT_INTERVAL)
      )
    )
    yield* Effect.forkScoped(Effect.repeat(logged(byAge), Schedule.spaced(ageInterval(options.maxAge))))
  })
