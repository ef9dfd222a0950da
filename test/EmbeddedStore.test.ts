/**
 * The embedded store in this process, where a test can reach into it: a full disk answers `unavailable` and
 * recovers without a hole in the ids; a data directory from an older version opens in this one; retention by count
 * and by age runs in the background and never restarts ids; tokens are kept hashed; paging reaches every retained
 * message, far past the last 100.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Context, Duration, Effect, Layer, Option } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Hub } from "../src/backend/Hub.js"
import { Sessions } from "../src/backend/Sessions.js"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { ChatServer } from "../src/http/ChatServer.js"
import { ServerConfig } from "../src/server/ServerConfig.js"
import * as Migrations from "../src/sqlite/Migrations.js"
import * as SqliteBackend from "../src/sqlite/SqliteBackend.js"
import * as SqliteStore from "../src/sqlite/SqliteStore.js"
import { hashToken } from "../src/sqlite/SqliteSessions.js"
import * as TempDir from "./support/TempDir.js"
import * as TestServer from "./support/TestServer.js"

/** A whole server over the embedded store in `dataDir`; the store's `SqlClient` stays reachable for the test. */
const serverOn = (dataDir: string, options: Omit<SqliteBackend.SqliteBackendOptions, "dataDir"> = {}) =>
  ChatHttpServer.layer.pipe(
    Layer.provideMerge(ChatServer.layer),
    Layer.provideMerge(SqliteBackend.layer({ dataDir, ...options })),
    Layer.provide(ServerConfig.layer({ port: 0, host: "127.0.0.1", ...TestServer.noRateLimit }))
  )

/** The backends alone, built in the current scope. */
const backendOn = (dataDir: string, options: Omit<SqliteBackend.SqliteBackendOptions, "dataDir"> = {}) =>
  Layer.build(SqliteBackend.layer({ dataDir, ...options }))

const publish = (context: Context.Context<Hub>, room: string, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i + 1),
    (i) => Context.get(context, Hub).publish(room, { from: "alice", text: `m${i}` })
  )

/** Waits (up to 5 s) until background retention has brought the room's oldest retained id to `oldest`. */
const retainedFrom = (hub: Context.Tag.Service<Hub>, room: string, oldest: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5000
    while ((yield* hub.bounds(room)).oldest !== oldest && Date.now() < deadline) yield* Effect.sleep("50 millis")
  })

describe("the embedded store", () => {
  it.scopedLive(
    "a full disk answers unavailable to the send that needed it, then recovers with no hole in the ids",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* TempDir.scoped("full-")
        const context = yield* Layer.build(serverOn(dataDir))
        const sql = Context.get(context, SqlClient.SqlClient)
        const json = (hello: Record<string, unknown>) =>
          TestServer.jsonClientAt(Context.get(context, ChatHttpServer.ServerAddress), hello)
        const alice = yield* json({ name: "alice", rooms: ["r"] })
        const bob = yield* json({ name: "bob", rooms: ["r"] })
        alice.send({ type: "send", room: "r", text: "before", ref: "a0" })
        expect((yield* alice.nextOf("ack", (f) => f.ref === "a0")).id).toBe(1)

        // The database may not grow past its current size: SQLite's own SQLITE_FULL, as on a full disk.
        const [{ page_count }] = yield* sql<{ page_count: number }>`PRAGMA page_count`
        yield* sql.unsafe(`PRAGMA max_page_count = ${page_count}`)
        const big = "x".repeat(4000)
        let refused: any
        for (let i = 1; i <= 50 && refused === undefined; i++) {
          alice.send({ type: "send", room: "r", text: big, ref: `f${i}` })
          const answer = yield* alice.next((f) => (f.type === "ack" || f.type === "error") && f.ref === `f${i}`)
          if (answer.type === "error") refused = answer
        }
        expect(refused).toMatchObject({ type: "error", code: "unavailable" })
        const lastAcked = Math.max(...alice.all("ack").flatMap((f) => (f.id === undefined ? [] : [f.id])))

        // Room again: the next send is acked with the next id, and bob saw every acked message, in order, once.
        yield* sql.unsafe("PRAGMA max_page_count = 1073741823")
        alice.send({ type: "send", room: "r", text: "after", ref: "a1" })
        expect((yield* alice.nextOf("ack", (f) => f.ref === "a1")).id).toBe(lastAcked + 1)
        yield* bob.nextOf("message", (f) => f.text === "after")
        expect(bob.all("message").map((m) => m.id)).toEqual(Array.from({ length: lastAcked + 1 }, (_, i) => i + 1))
      })
  )

  it.scopedLive("a resume into a room retention has emptied is resumed: false, not a silent gap", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("emptied-")
      const context = yield* Layer.build(serverOn(dataDir, { historyMaxAge: Duration.millis(300) }))
      const json = (hello: Record<string, unknown>) =>
        TestServer.jsonClientAt(Context.get(context, ChatHttpServer.ServerAddress), hello)
      const alice = yield* json({ name: "alice", rooms: ["r"] })
      const bob = yield* json({ name: "bob", rooms: ["r"] })
      bob.send({ type: "send", room: "r", text: "seen", ref: "b1" })
      yield* alice.nextOf("message", (f) => f.id === 1)
      alice.ws.terminate()
      yield* bob.nextOf("left", (f) => f.name === "alice")
      bob.send({ type: "send", room: "r", text: "missed", ref: "b2" })
      yield* bob.nextOf("ack", (f) => f.ref === "b2")
      const hub = Context.get(context, Hub)
      yield* retainedFrom(hub, "r", 0)
      expect(yield* hub.bounds("r")).toEqual({ oldest: 0, latest: 2 })
      const back = yield* json({ resume: { token: alice.welcome.resume, since: { r: 1 } } })
      expect(back.welcome.resumed).toBe(false)
    })
  )

  it.scopedLive("a data directory written by an older version opens in this one, with its messages", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("upgrade-")
      // What the first version wrote: its schema (migration 1 only) and a room's messages.
      yield* Effect.scoped(
        Effect.gen(function* () {
          const old = yield* Layer.build(SqliteStore.layer({ dataDir, migrations: Migrations.upTo(1) }))
          const sql = Context.get(old, SqlClient.SqlClient)
          for (const id of [1, 2, 3]) {
            yield* sql`INSERT INTO messages (room, id, sender, text, at) VALUES ('r', ${id}, 'alice', ${`m${id}`}, ${Date.now()})`
          }
          yield* sql`INSERT INTO rooms (name, seq) VALUES ('r', 3)`
          const tables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE name = 'sessions'`
          expect(tables).toEqual([])
        })
      )
      const context = yield* backendOn(dataDir)
      const hub = Context.get(context, Hub)
      const page = yield* hub.history("r", { limit: 10 })
      expect(page.messages.map((m) => m.text)).toEqual(["m1", "m2", "m3"])
      expect((yield* hub.publish("r", { from: "bob", text: "m4" })).id).toBe(4)
      // The newer migrations ran: the room's last id follows its messages, and sessions work.
      const sqlNew = Context.get(context, SqlClient.SqlClient)
      expect(yield* sqlNew`SELECT seq FROM rooms WHERE name = 'r'`).toEqual([{ seq: 4 }])
      const sessions = Context.get(context, Sessions)
      const token = yield* sessions.issue({ session: "s1", name: "alice", rooms: ["r"], node: "n" })
      expect(Option.isSome(yield* sessions.redeem(token))).toBe(true)
      const sql = Context.get(context, SqlClient.SqlClient)
      const ran = yield* sql<{ name: string }>`SELECT name FROM effect_sql_migrations ORDER BY migration_id`
      expect(ran.map((row) => row.name)).toEqual(["messages", "sessions", "room_seq_trigger", "chat_features"])
    })
  )

  it.scopedLive("retention keeps the newest messages by count and by age, and ids go on after it", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("retain-")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* backendOn(dataDir, { historyRetain: 5 })
          const hub = Context.get(context, Hub)
          yield* publish(context, "r", 12)
          yield* retainedFrom(hub, "r", 8)
          expect(yield* hub.bounds("r")).toEqual({ oldest: 8, latest: 12 })
          const page = yield* hub.history("r", { limit: 100 })
          expect(page.messages.map((m) => m.id)).toEqual([8, 9, 10, 11, 12])
          expect(page.more).toBe(false)
        })
      )
      // Reopened with a short age: every message goes, the ids do not start again.
      const context = yield* backendOn(dataDir, { historyRetain: 5, historyMaxAge: Duration.millis(300) })
      const hub = Context.get(context, Hub)
      yield* retainedFrom(hub, "r", 0)
      expect(yield* hub.bounds("r")).toEqual({ oldest: 0, latest: 12 })
      expect((yield* hub.publish("r", { from: "bob", text: "m13" })).id).toBe(13)
    })
  )

  it.scopedLive("once the store has closed, a publish fails at once, and so does the next one: nothing waits", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("closed-")
      const hub = yield* Effect.scoped(Effect.map(backendOn(dataDir), (context) => Context.get(context, Hub)))
      for (const text of ["late", "later"]) {
        const outcome = yield* hub.publish("r", { from: "alice", text }).pipe(Effect.timeout("2 seconds"), Effect.flip)
        expect(outcome).toMatchObject({ _tag: "BackendError", reason: "Unavailable" })
      }
    })
  )

  it.scopedLive("resume tokens are stored as their SHA-256 only: the file never holds a token", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("tokens-")
      const tokens = yield* Effect.scoped(
        Effect.gen(function* () {
          const context = yield* backendOn(dataDir)
          const sessions = Context.get(context, Sessions)
          const issued = yield* Effect.forEach(["s1", "s2", "s3"], (session) =>
            sessions.issue({ session, name: session, rooms: ["r"], node: "n" })
          )
          const sql = Context.get(context, SqlClient.SqlClient)
          const rows = yield* sql<{ token_hash: Uint8Array }>`SELECT token_hash FROM sessions ORDER BY session`
          assert.deepStrictEqual(
            rows.map((row) => Buffer.from(row.token_hash).toString("hex")),
            issued.map((token) => hashToken(token).toString("hex"))
          )
          return issued
        })
      )
      const bytes = Fs.readdirSync(dataDir)
        .map((file) => Fs.readFileSync(Path.join(dataDir, file)).toString("latin1"))
        .join("")
      for (const token of tokens) expect(bytes).not.toContain(token)
    })
  )

  it.scopedLive("paging with before reaches every retained message, far past the last 100", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("paging-")
      const context = yield* Layer.build(serverOn(dataDir))
      yield* publish(context, "r", 350)
      const reader = yield* TestServer.jsonClientAt(Context.get(context, ChatHttpServer.ServerAddress), {
        name: "reader",
        rooms: ["r"]
      })
      const joined = yield* reader.nextOf("history", (f) => f.room === "r")
      expect(joined.messages.map((m: { id: number }) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => 301 + i))
      expect(joined.more).toBe(true)
      const ids: Array<number> = joined.messages.map((m: { id: number }) => m.id)
      for (let page = 0; ids[0]! > 1 && page < 10; page++) {
        reader.send({ type: "history", room: "r", before: ids[0], limit: 100, ref: `p${page}` })
        const frame = yield* reader.nextOf("history", (f) => f.ref === `p${page}`)
        ids.unshift(...frame.messages.map((m: { id: number }) => m.id))
        expect(frame.more).toBe(ids[0]! > 1)
      }
      expect(ids).toEqual(Array.from({ length: 350 }, (_, i) => i + 1))
    })
  )
  it.scopedLive("the change log keeps a room's last 1,000 or so changes: reaction toggles do not grow it forever", () =>
    Effect.gen(function* () {
      const dataDir = yield* TempDir.scoped("changes-")
      const context = yield* backendOn(dataDir)
      const hub = Context.get(context, Hub)
      const sql = Context.get(context, SqlClient.SqlClient)
      yield* hub.publish("r", { from: "alice", text: "react to me", author: "k" })
      yield* Effect.forEach(
        Array.from({ length: 1250 }, (_, i) => i),
        (i) => hub.change("r", { _tag: "React", id: 1, emoji: "👍", on: true, by: `u${i}`, name: `u${i}` }),
        { concurrency: 100, discard: true }
      )
      const [row] = yield* sql<{
        n: number
        newest: number
      }>`SELECT count(*) AS n, max(rev) AS newest FROM changes WHERE room = 'r'`
      assert.strictEqual(row?.newest, 1250)
      assert.isAtMost(row!.n, 1100)
      assert.isAtLeast(row!.n, 1000)
      // What a resume reads is bounded too.
      assert.isAtMost((yield* hub.changes("r", { afterRev: 0, throughRev: 1250, throughId: 1 })).length, 1000)
    })
  )
})
