/**
 * The embedded store with the built server binary: a kill -9 during a burst loses no acked message and ids go on
 * without a gap; a client that resumes across a restart (killed or stopped) gets `resumed: true` and exactly what
 * it missed; a data directory the server cannot use stops it at start with one line and exit code 1.
 */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as ServerProcess from "./support/ServerProcess.js"
import * as TempDir from "./support/TempDir.js"
import * as TestServer from "./support/TestServer.js"

const SERVER = Path.resolve(import.meta.dirname, "..", "dist", "server.js")
const FAST = ["--rate", "100000", "--burst", "100000"]

const startOn = (dataDir: string) => ServerProcess.start({ args: ["--data-dir", dataDir, ...FAST] })

const json = (server: ServerProcess.ServerProcess, hello: Record<string, unknown> = {}) =>
  TestServer.jsonClientAt({ host: "127.0.0.1", port: server.port, url: server.httpUrl }, hello)

/** Every message a room's history reaches, paging back with `before` from the newest. */
const everything = (client: TestServer.TestClient, room: string) =>
  Effect.gen(function* () {
    const all: Array<{ id: number; text: string }> = []
    let before: number | undefined
    for (let page = 0; page < 1000; page++) {
      const ref = `page${page}`
      client.send({ type: "history", room, limit: 100, ref, ...(before === undefined ? {} : { before }) })
      const frame = yield* client.nextOf("history", (f) => f.ref === ref)
      all.unshift(...frame.messages)
      if (!frame.more || frame.messages.length === 0) break
      before = frame.messages[0].id
    }
    return all
  })

const messageIds = (frames: ReadonlyArray<{ messages: ReadonlyArray<{ id: number }> }>) =>
  frames.flatMap((frame) => frame.messages.map((m) => m.id))

/** Runs `node dist/server.js ARGS` to its end. */
const run = (args: ReadonlyArray<string>, options: { readonly uid?: number; readonly gid?: number } = {}) =>
  Effect.async<{ code: number | null; stderr: string }>((resume) => {
    ChildProcess.execFile(
      process.execPath,
      [SERVER, "--port", "0", "--host", "127.0.0.1", ...args],
      { timeout: 20_000, ...options },
      (error, _stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stderr }))
    )
  })

const oneLine = (stderr: string) => {
  const lines = stderr.trim().split("\n")
  expect(lines).toHaveLength(1)
  return lines[0]!
}

describe("the embedded store across restarts (dist/server.js)", () => {
  it.scopedLive(
    "kill -9 during a burst: every acked message is in history, ids go on without a gap",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* TempDir.scoped("kill-")
        const room = "burst"
        const acked = new Map<number, string>()
        yield* Effect.scoped(
          Effect.gen(function* () {
            const server = yield* startOn(dataDir)
            const senders = yield* Effect.forEach([0, 1, 2, 3], (i) => json(server, { name: `s${i}`, rooms: [room] }))
            for (const [i, sender] of senders.entries()) {
              // Each sender keeps 20 sends in flight until its socket goes with the server.
              let sent = 0
              let inFlight = 0
              const pump = () => {
                while (sender.ws.readyState === 1 && inFlight < 20) {
                  const ref = `s${i}-${sent++}`
                  inFlight++
                  sender.send({ type: "send", room, text: ref, ref })
                }
              }
              sender.ws.on("message", (data) => {
                const frame = JSON.parse(data.toString())
                if (frame.type !== "ack") return
                inFlight--
                if (frame.id !== undefined) acked.set(frame.id, frame.ref)
                pump()
              })
              pump()
            }
            yield* TestServer.waitUntil(() => acked.size >= 400, 20_000)
            yield* server.kill
          })
        )
        expect(acked.size).toBeGreaterThanOrEqual(400)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const server = yield* startOn(dataDir)
            const reader = yield* json(server, { name: "reader", rooms: [room] })
            const history = yield* everything(reader, room)
            const ids = history.map((m) => m.id)
            // Gapless from 1: nothing half-written, nothing numbered twice.
            expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1))
            const byId = new Map(history.map((m) => [m.id, m.text]))
            for (const [id, text] of acked) expect(byId.get(id)).toBe(text)
            reader.send({ type: "send", room, text: "after", ref: "after" })
            const ack = yield* reader.nextOf("ack", (f) => f.ref === "after")
            expect(ack.id).toBe(ids.length + 1)
          })
        )
      }),
    60_000
  )

  for (const how of ["kill", "stop"] as const) {
    it.scopedLive(
      `a client resumes across a restart (${how === "kill" ? "kill -9" : "SIGTERM"}): resumed true, exactly what it missed`,
      () =>
        Effect.gen(function* () {
          const dataDir = yield* TempDir.scoped("resume-")
          const room = "r"
          const tokens = yield* Effect.scoped(
            Effect.gen(function* () {
              const server = yield* startOn(dataDir)
              const alice = yield* json(server, { name: "alice", rooms: [room] })
              const carol = yield* json(server, { name: "carol", rooms: [room] })
              const bob = yield* json(server, { name: "bob", rooms: [room] })
              for (const n of [1, 2, 3]) bob.send({ type: "send", room, text: `m${n}`, ref: `m${n}` })
              yield* alice.nextOf("message", (f) => f.id === 3)
              // alice drops (no close frame): held for resume, having seen up to 3.
              alice.ws.terminate()
              yield* carol.nextOf("left", (f) => f.name === "alice")
              for (const n of [4, 5]) bob.send({ type: "send", room, text: `m${n}`, ref: `m${n}` })
              yield* bob.nextOf("ack", (f) => f.ref === "m5")
              // carol is still connected when the server goes, having seen up to 5.
              yield* carol.nextOf("message", (f) => f.id === 5)
              yield* how === "kill" ? server.kill : server.stop
              return { alice: alice.welcome.resume, bob: bob.welcome.resume, carol: carol.welcome.resume }
            })
          )
          yield* Effect.scoped(
            Effect.gen(function* () {
              const server = yield* startOn(dataDir)
              // The names of held sessions are still theirs.
              const other = yield* json(server, { name: "alice" })
              expect(other.welcome.name).not.toBe("alice")
              const another = yield* json(server, { name: "carol" })
              expect(another.welcome.name).not.toBe("carol")
              const bob = yield* json(server, { resume: { token: tokens.bob, since: { [room]: 5 } } })
              expect(bob.welcome).toMatchObject({ resumed: true, name: "bob" })
              bob.send({ type: "send", room, text: "m6", ref: "m6" })
              expect((yield* bob.nextOf("ack", (f) => f.ref === "m6")).id).toBe(6)
              const alice = yield* json(server, { resume: { token: tokens.alice, since: { [room]: 3 } } })
              expect(alice.welcome).toMatchObject({ resumed: true, name: "alice", rooms: [room] })
              const missed = yield* alice.nextOf("history", (f) => f.room === room)
              expect(missed.messages.map((m: { text: string }) => m.text)).toEqual(["m4", "m5", "m6"])
              const carol = yield* json(server, { resume: { token: tokens.carol, since: { [room]: 5 } } })
              expect(carol.welcome).toMatchObject({ resumed: true, name: "carol" })
              expect(messageIds([yield* carol.nextOf("history", (f) => f.room === room)])).toEqual([6])
              // Live again, and nothing twice.
              bob.send({ type: "send", room, text: "m7", ref: "m7" })
              expect((yield* alice.nextOf("message", (f) => f.room === room)).id).toBe(7)
              expect((yield* carol.nextOf("message", (f) => f.room === room)).id).toBe(7)
              expect(alice.all("message").map((m) => m.id)).toEqual([7])
              // A token works once, across restarts too.
              const again = yield* json(server, { resume: { token: tokens.alice, since: { [room]: 3 } } })
              expect(again.welcome.resumed).toBe(false)
            })
          )
        }),
      60_000
    )
  }

  it.scopedLive(
    "after a SIGTERM the resume window starts when the server is back, however long it was away",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* TempDir.scoped("window-")
        const args = ["--data-dir", dataDir, "--resume-window", "2", ...FAST]
        const token = yield* Effect.scoped(
          Effect.gen(function* () {
            const server = yield* ServerProcess.start({ args })
            const dana = yield* json(server, { name: "dana", rooms: ["r"] })
            yield* server.stop
            return dana.welcome.resume
          })
        )
        // Away longer than the whole window.
        yield* Effect.sleep("3 seconds")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const server = yield* ServerProcess.start({ args })
            const dana = yield* json(server, { resume: { token, since: { r: 0 } } })
            expect(dana.welcome).toMatchObject({ resumed: true, name: "dana" })
          })
        )
      }),
    60_000
  )

  it.scopedLive(
    "a data directory that cannot be used stops the server at start: one line, exit 1, the file untouched",
    () =>
      Effect.gen(function* () {
        const dir = yield* TempDir.scoped("faults-")
        // Not a database at all.
        const garbage = Path.join(dir, "garbage")
        Fs.mkdirSync(garbage)
        Fs.writeFileSync(Path.join(garbage, "effect-chat.db"), "these are someone's notes\n".repeat(200))
        const notDb = yield* run(["--data-dir", garbage])
        expect(notDb.code).toBe(1)
        expect(oneLine(notDb.stderr)).toMatch(/is not an effect-chat database/)
        expect(Fs.readFileSync(Path.join(garbage, "effect-chat.db"), "utf8")).toBe(
          "these are someone's notes\n".repeat(200)
        )
        // Another application's SQLite database.
        const foreign = Path.join(dir, "foreign")
        Fs.mkdirSync(foreign)
        const db = new Database(Path.join(foreign, "effect-chat.db"))
        db.exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5)")
        db.close()
        const other = yield* run(["--data-dir", foreign])
        expect(other.code).toBe(1)
        expect(oneLine(other.stderr)).toMatch(/database of another application/)
        const reopened = new Database(Path.join(foreign, "effect-chat.db"))
        expect(reopened.prepare("SELECT name FROM sqlite_master").all()).toEqual([{ name: "invoices" }])
        // Not even its journal mode was changed (that rewrites the header).
        expect(reopened.pragma("journal_mode", { simple: true })).toBe("delete")
        expect(Fs.existsSync(Path.join(foreign, "effect-chat.db-wal"))).toBe(false)
        reopened.close()
        // A directory that cannot be created: its parent is a file.
        const blocked = yield* run(["--data-dir", Path.join(garbage, "effect-chat.db", "data")])
        expect(blocked.code).toBe(1)
        expect(oneLine(blocked.stderr)).toMatch(/data directory .* cannot be used: ENOTDIR/)
        // A directory that exists but cannot be written: read-only for this user (root ignores modes, so as root
        // the server runs as nobody).
        Fs.chmodSync(dir, 0o755)
        const readOnly = Path.join(dir, "read-only")
        Fs.mkdirSync(readOnly, { mode: 0o755 })
        const asRoot = process.getuid?.() === 0
        if (!asRoot) Fs.chmodSync(readOnly, 0o555)
        const unwritable = yield* run(["--data-dir", readOnly], asRoot ? { uid: 65534, gid: 65534 } : {})
        Fs.chmodSync(readOnly, 0o755)
        expect(unwritable.code).toBe(1)
        expect(oneLine(unwritable.stderr)).toMatch(/data directory .* cannot be used: EACCES/)
        expect(Fs.readdirSync(readOnly)).toEqual([])
        // A directory another server holds.
        const shared = Path.join(dir, "shared")
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* startOn(shared)
            const second = yield* run(["--data-dir", shared])
            expect(second.code).toBe(1)
            expect(oneLine(second.stderr)).toMatch(/in use by another effect-chat server/)
          })
        )
      }),
    60_000
  )
})
