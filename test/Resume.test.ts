import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as TestServer from "./support/TestServer.js"

const { serve } = TestServer

const fast = TestServer.noRateLimit

const lastId = (client: TestServer.TestClient, room: string) =>
  Math.max(
    0,
    ...client.received.flatMap((f) =>
      f.type === "message" && f.room === room
        ? [f.id]
        : f.type === "history" && f.room === room
          ? f.messages.map((m: { id: number }) => m.id)
          : []
    )
  )

/** Message ids of `room` as the client saw them: history frames and live messages, in arrival order. */
const seenIds = (client: TestServer.TestClient, room: string): Array<number> =>
  client.received.flatMap((f) =>
    f.type === "message" && f.room === room
      ? [f.id]
      : f.type === "history" && f.room === room && f.ref === undefined
        ? f.messages.map((m: { id: number }) => m.id)
        : []
  )

const dropAbruptly = (client: TestServer.TestClient) =>
  Effect.sync(() => (client.ws as unknown as { _socket: { destroy(): void } })._socket.destroy())

describe("resume", () => {
  it.live(
    "an abruptly dropped client resumes and gets every message exactly once, in order, while others keep sending",
    () =>
      Effect.gen(function* () {
        const sender = yield* TestServer.jsonClient({ name: "sender", rooms: ["lobby", "side"] })
        const first = yield* TestServer.jsonClient({ name: "dana", rooms: ["lobby", "side"] })
        const total = 300
        let sent = 0
        const pump = Effect.gen(function* () {
          while (sent < total) {
            for (let i = 0; i < 10 && sent < total; i++) {
              sent++
              sender.send({ type: "send", room: sent % 3 === 0 ? "side" : "lobby", text: `m${sent}` })
            }
            yield* Effect.sleep(Duration.millis(3))
          }
        })
        const pumping = yield* Effect.fork(pump)
        yield* first.nextOf("message", (m) => m.id >= 20, 10_000)
        yield* dropAbruptly(first)
        yield* sender.nextOf("left", (f) => f.name === "dana" && f.room === "lobby", 10_000)
        const since = { lobby: lastId(first, "lobby"), side: lastId(first, "side") }
        yield* Effect.sleep(Duration.millis(30))
        const second = yield* TestServer.jsonClient({ resume: { token: first.welcome.resume, since } })
        expect(second.welcome).toMatchObject({ resumed: true, name: "dana", rooms: ["lobby", "side"] })
        expect(second.welcome.resume).not.toBe(first.welcome.resume)
        yield* pumping.await
        for (const room of ["lobby", "side"]) {
          const expectedLast = room === "side" ? total / 3 : total - total / 3
          while (Math.max(0, ...seenIds(second, room)) < expectedLast)
            yield* second.nextOf("message", (m) => m.room === room, 10_000)
          const ids = [
            ...seenIds(first, room).filter((id) => id <= since[room as "lobby" | "side"]),
            ...seenIds(second, room)
          ]
          expect(ids).toEqual(Array.from({ length: expectedLast }, (_, i) => i + 1))
        }
        // the others see the resumed session come back
        expect(yield* sender.nextOf("joined", (f) => f.name === "dana")).toBeDefined()
        // Every message of the run stays retained (the default keeps 100): how many the client misses depends on
        // the machine's speed, and a gap beyond retention is rightly `resumed: false`, which is not this test.
      }).pipe(serve({ ...fast, historyRetain: 1000 })),
    30_000
  )

  it.live("keeps the name reserved during the window and frees it after", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "keeper" })
      yield* dropAbruptly(a)
      yield* Effect.sleep(Duration.millis(100))
      const b = yield* TestServer.jsonClient({ name: "keeper" })
      expect(b.welcome.name).not.toBe("keeper")
      expect(yield* b.nextOf("error")).toMatchObject({ code: "name_taken" })
      yield* Effect.sleep(Duration.millis(1600))
      b.send({ type: "nick", name: "keeper", ref: "n" })
      expect(yield* b.nextOf("ack", (f) => f.ref === "n")).toBeDefined()
      const late = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: {} } })
      expect(late.welcome.resumed).toBe(false)
    }).pipe(serve({ resumeWindow: Duration.millis(500) }))
  )

  it.live("answers resumed: false for an unknown token, a used token, and after a clean close", () =>
    Effect.gen(function* () {
      const unknown = yield* TestServer.jsonClient({ name: "u", resume: { token: "not-a-token", since: {} } })
      expect(unknown.welcome).toMatchObject({ resumed: false, name: "u" })
      const a = yield* TestServer.jsonClient({ name: "once" })
      yield* dropAbruptly(a)
      yield* Effect.sleep(Duration.millis(50))
      const b = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: {} } })
      expect(b.welcome.resumed).toBe(true)
      const again = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: {} } })
      expect(again.welcome.resumed).toBe(false)
      yield* b.close(1000)
      yield* b.waitClosed()
      const afterClean = yield* TestServer.jsonClient({ name: "once", resume: { token: b.welcome.resume, since: {} } })
      expect(afterClean.welcome).toMatchObject({ resumed: false, name: "once" })
    }).pipe(serve())
  )

  it.live("answers resumed: false when missed messages fell out of history", () =>
    Effect.gen(function* () {
      const sender = yield* TestServer.jsonClient({ name: "s" })
      const a = yield* TestServer.jsonClient({ name: "gone" })
      yield* a.nextOf("history")
      yield* dropAbruptly(a)
      for (let i = 0; i < 15; i++) sender.send({ type: "send", room: "lobby", text: `m${i}`, ref: String(i) })
      yield* sender.nextOf("ack", (f) => f.ref === "14")
      const b = yield* TestServer.jsonClient({ name: "gone", resume: { token: a.welcome.resume, since: { lobby: 0 } } })
      // the fresh session may take its name back: the old one ended
      expect(b.welcome).toMatchObject({ resumed: false, name: "gone" })
    }).pipe(serve({ ...fast, historyRetain: 10 }))
  )

  it.live("a second connection with the token takes over: the old socket gets 4009, the others see nothing", () =>
    Effect.gen(function* () {
      const other = yield* TestServer.jsonClient({ name: "other" })
      const a = yield* TestServer.jsonClient({ name: "twin" })
      yield* other.nextOf("joined")
      const b = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: { lobby: 0 } } })
      expect(b.welcome).toMatchObject({ resumed: true, name: "twin" })
      expect((yield* a.waitClosed()).code).toBe(4009)
      b.send({ type: "send", room: "lobby", text: "still me", ref: "1" })
      expect(yield* other.nextOf("message")).toMatchObject({ from: "twin", text: "still me" })
      expect(other.all("left")).toEqual([])
      expect(other.all("joined").length).toBe(1)
    }).pipe(serve())
  )

  it.live("resumes rooms named like Object.prototype members", () =>
    Effect.gen(function* () {
      const rooms = ["constructor", "toString", "__proto__", "valueOf"]
      const a = yield* TestServer.jsonClient({ name: "proto", rooms })
      yield* dropAbruptly(a)
      yield* Effect.sleep(Duration.millis(50))
      const since = Object.fromEntries(rooms.map((room) => [room, 0]))
      const b = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since } })
      expect(b.welcome).toMatchObject({ resumed: true, name: "proto" })
    }).pipe(serve())
  )

  it.live("a resume that cannot catch up ends the live session visibly: the others see it leave", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher" })
      const a = yield* TestServer.jsonClient({ name: "dave" })
      yield* watcher.nextOf("joined", (f) => f.name === "dave")
      for (let i = 0; i < 10; i++) watcher.send({ type: "send", room: "lobby", text: `m${i}`, ref: String(i) })
      yield* watcher.nextOf("ack", (f) => f.ref === "9")
      const b = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: { lobby: 0 } } })
      expect(b.welcome.resumed).toBe(false)
      expect(yield* watcher.nextOf("left", (f) => f.name === "dave")).toMatchObject({ room: "lobby" })
      expect((yield* a.waitClosed()).code).toBe(4009)
    }).pipe(serve({ ...fast, historyRetain: 5 }))
  )

  it.live("frames still arriving on a taken-over socket are not acted on", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher", rooms: ["lobby", "r0"] })
      const old = yield* TestServer.jsonClient({ name: "carol" })
      // the old socket never reads its 4009, so it keeps sending as if nothing happened
      old.ws.pause()
      const fresh = yield* TestServer.jsonClient({ resume: { token: old.welcome.resume, since: { lobby: 0 } } })
      expect(fresh.welcome).toMatchObject({ resumed: true, name: "carol" })
      old.send({ type: "join", room: "r0" })
      old.send({ type: "nick", name: "mallory" })
      old.send({ type: "send", room: "lobby", text: "from the old socket" })
      fresh.send({ type: "send", room: "lobby", text: "from the new one", ref: "n" })
      yield* fresh.nextOf("ack", (f) => f.ref === "n")
      yield* watcher.nextOf("message", (m) => m.text === "from the new one")
      watcher.send({ type: "who", room: "r0", ref: "w" })
      expect((yield* watcher.nextOf("members", (f) => f.ref === "w")).names).toEqual(["watcher"])
      expect(watcher.all("message").map((m) => `${m.from}: ${m.text}`)).toEqual(["carol: from the new one"])
      expect(watcher.all("renamed")).toEqual([])
    }).pipe(serve())
  )

  it.live("a ref reused for a different message is a new message, not a duplicate", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "reuser" })
      a.send({ type: "send", room: "lobby", text: "first", ref: "s" })
      expect(yield* a.nextOf("ack")).toMatchObject({ ref: "s", id: 1 })
      a.send({ type: "send", room: "lobby", text: "second", ref: "s" })
      expect(yield* a.nextOf("ack")).toMatchObject({ ref: "s", id: 2 })
      yield* a.nextOf("message", (m) => m.text === "second")
    }).pipe(serve())
  )

  it.live("a send retried with the same ref after a resume is acknowledged once and delivered once", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher" })
      const a = yield* TestServer.jsonClient({ name: "retrier" })
      a.send({ type: "send", room: "lobby", text: "exactly once", ref: "r1" })
      const ack = yield* a.nextOf("ack")
      yield* dropAbruptly(a)
      yield* Effect.sleep(Duration.millis(50))
      const b = yield* TestServer.jsonClient({ resume: { token: a.welcome.resume, since: { lobby: ack.id } } })
      expect(b.welcome.resumed).toBe(true)
      b.send({ type: "send", room: "lobby", text: "exactly once", ref: "r1" })
      expect(yield* b.nextOf("ack")).toEqual({ type: "ack", ref: "r1", id: ack.id })
      b.send({ type: "send", room: "lobby", text: "next", ref: "r2" })
      expect(yield* b.nextOf("ack", (f) => f.ref === "r2")).toMatchObject({ id: ack.id + 1 })
      yield* watcher.nextOf("message", (m) => m.text === "next")
      expect(watcher.all("message").map((m) => m.text)).toEqual(["exactly once", "next"])
    }).pipe(serve())
  )
})
