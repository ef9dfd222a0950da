/**
 * Resumable sessions in the embedded store, so a client that comes back after a restart is `resumed: true`. A
 * token is kept only as its SHA-256 (`token_hash`): the file alone cannot resume anyone. Every change goes through
 * the writer's group commit, so a `welcome`'s token is on disk before the client can use it.
 *
 * At start, sessions that were live when the server stopped (stopped, killed, or the machine lost) are held from now
 * for the resume window: their clients reconnect to a server that is back, and get the whole window to do it.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import { BackendError } from "../backend/BackendError.js"
import {
  decodeRooms,
  encodeRooms,
  newToken,
  type SessionRecord,
  Sessions,
  type SessionsService
} from "../backend/Sessions.js"
import { reasonOf, StoreWriter } from "./StoreWriter.js"

export interface SqliteSessionsOptions {
  readonly resumeWindow: Duration.Duration
}

interface Row {
  readonly session: string
  readonly name: string
  readonly rooms: string
  readonly node: string
  readonly held_until: number | null
}

export const hashToken = (token: string): Buffer => Crypto.createHash("sha256").update(token).digest()

const toRecord = (row: Row): SessionRecord => ({
  session: row.session,
  name: row.name,
  ...decodeRooms(row.rooms),
  node: row.node,
  heldUntil: row.held_until ?? undefined
})

/** How long before the stop a session the shutdown held may have ended: the 1001 closes of one shutdown. */
const STOP_SLACK_MS = 10_000

export const layer = (options: SqliteSessionsOptions) => Layer.scoped(Sessions, make(options))

/** Sessions held now: for the names they keep reserved while they can be resumed. */
export const held = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<Row>`SELECT session, name, rooms, node, held_until FROM sessions WHERE held_until IS NOT NULL`.pipe(
    Effect.map((rows) => rows.map(toRecord))
  )
)

const make = (options: SqliteSessionsOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const writer = yield* StoreWriter

    // Sessions live when the server went get the whole window from now: those it never saw end (a crash: no
    // deadline) and those its shutdown held (a deadline from the moment it stopped, noted by the finalizer below).
    const window = Duration.toMillis(options.resumeWindow)
    const [stop] = yield* sql<{ value: number }>`SELECT value FROM meta WHERE key = 'stopped_at'`
    const heldAtStop = stop === undefined ? Number.MAX_SAFE_INTEGER : stop.value + window - STOP_SLACK_MS
    yield* sql`UPDATE sessions SET held_until = ${Date.now() + window}
      WHERE held_until IS NULL OR held_until >= ${heldAtStop}`
    yield* sql`DELETE FROM meta WHERE key = 'stopped_at'`
    yield* Effect.addFinalizer(() =>
      writer
        .write("stop", {
          run: sql`INSERT INTO meta (key, value) VALUES ('stopped_at', ${Date.now()})
            ON CONFLICT (key) DO UPDATE SET value = excluded.value`.pipe(Effect.asVoid)
        })
        .pipe(Effect.ignoreLogged)
    )

    const heldUntilOf = (record: SessionRecord) => record.heldUntil ?? null

    const issue: SessionsService["issue"] = (record) =>
      Effect.suspend(() => {
        const token = newToken()
        return writer.write("issue", {
          run: sql`INSERT INTO sessions (session, token_hash, name, rooms, node, held_until)
            VALUES (${record.session}, ${hashToken(token)}, ${record.name}, ${encodeRooms(record)},
              ${record.node}, ${heldUntilOf(record)})
            ON CONFLICT (session) DO UPDATE SET token_hash = excluded.token_hash, name = excluded.name,
              rooms = excluded.rooms, node = excluded.node, held_until = excluded.held_until`.pipe(Effect.as(token))
        })
      })

    const update: SessionsService["update"] = (record) =>
      writer.write("update", {
        run: sql`UPDATE sessions SET name = ${record.name}, rooms = ${encodeRooms(record)},
          node = ${record.node}, held_until = ${heldUntilOf(record)} WHERE session = ${record.session}`.pipe(
          Effect.asVoid
        )
      })

    const redeem: SessionsService["redeem"] = (token) =>
      writer.write("redeem", {
        run: Effect.gen(function* () {
          const hash = hashToken(token)
          const rows = yield* sql<Row>`SELECT session, name, rooms, node, held_until FROM sessions
            WHERE token_hash = ${hash}`
          const row = rows[0]
          if (row === undefined) return Option.none<SessionRecord>()
          // A token works once.
          yield* sql`UPDATE sessions SET token_hash = NULL WHERE session = ${row.session}`
          if (row.held_until !== null && row.held_until < Date.now()) return Option.none<SessionRecord>()
          return Option.some(toRecord(row))
        })
      })

    const remove: SessionsService["remove"] = (session) =>
      writer.write("remove", { run: sql`DELETE FROM sessions WHERE session = ${session}`.pipe(Effect.asVoid) })

    const expire: SessionsService["expire"] = (now) =>
      writer.write("expire", {
        run: sql<Row>`DELETE FROM sessions WHERE held_until IS NOT NULL AND held_until < ${now}
          RETURNING session, name, rooms, node, held_until`.pipe(Effect.map((rows) => rows.map(toRecord)))
      })

    return Sessions.of({ issue, update, redeem, remove, expire })
  }).pipe(
    Effect.mapError(
      (cause) => new BackendError({ reason: "Unavailable", operation: `sessions (${reasonOf(cause)})`, cause })
    )
  )
