import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Schedule } from "effect"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import * as TestServer from "./support/TestServer.js"

const { serve } = TestServer

const fast = TestServer.noRateLimit

const health = Effect.flatMap(ChatHttpServer.ServerAddress, (address) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${address.port}/healthz`).then((r) => r.json()))
)

describe("rooms", () => {
  it.live("a member of one room never receives another room's messages", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "a", rooms: ["red"] })
      const b = yield* TestServer.jsonClient({ name: "b", rooms: ["blue"] })
      a.send({ type: "send", room: "red", text: "for red", ref: "1" })
      b.send({ type: "send", room: "blue", text: "for blue", ref: "2" })
      yield* a.nextOf("message", (m) => m.text === "for red")
      yield* b.nextOf("message", (m) => m.text === "for blue")
      a.send({ type: "ping", ref: "sync" })
      b.send({ type: "ping", ref: "sync" })
      yield* a.nextOf("pong")
      yield* b.nextOf("pong")
      expect(a.all("message").map((m) => m.room)).toEqual(["red"])
      expect(b.all("message").map((m) => m.room)).toEqual(["blue"])
      // ids are per room: both rooms start at 1
      expect(a.all("message")[0].id).toBe(1)
      expect(b.all("message")[0].id).toBe(1)
    }).pipe(serve())
  )

  it.live("join and leave answer with ack, members, history and presence", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "alice", rooms: [] })
      expect(a.welcome.rooms).toEqual([])
      const b = yield* TestServer.jsonClient({ name: "bob", rooms: ["den"] })
      a.send({ type: "join", room: "den", ref: "j" })
      expect(yield* a.nextOf("ack")).toEqual({ type: "ack", ref: "j" })
      expect(yield* a.nextOf("members")).toEqual({ type: "members", room: "den", names: ["alice", "bob"] })
      expect(yield* a.nextOf("history")).toMatchObject({ room: "den", messages: [], more: false })
      expect(yield* b.nextOf("joined")).toMatchObject({ room: "den", name: "alice" })
      b.send({ type: "who", room: "den", ref: "w" })
      expect(yield* b.nextOf("members", (f) => f.ref === "w")).toEqual({
        type: "members",
        room: "den",
        names: ["alice", "bob"],
        ref: "w"
      })
      a.send({ type: "leave", room: "den", ref: "l" })
      expect(yield* a.nextOf("ack")).toEqual({ type: "ack", ref: "l" })
      expect(yield* b.nextOf("left")).toMatchObject({ room: "den", name: "alice" })
      a.send({ type: "send", room: "den", text: "gone", ref: "s" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "not_in_room", ref: "s" })
      a.send({ type: "who", room: "den", ref: "w2" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "not_in_room", ref: "w2" })
      a.send({ type: "join", room: "bad room!", ref: "x" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "invalid_room", ref: "x" })
    }).pipe(serve())
  )

  it.live("a dropped connection leaves every room it was in", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher", rooms: ["one", "two"] })
      const dropper = yield* TestServer.jsonClient({ name: "dropper", rooms: ["one", "two"] })
      yield* watcher.nextOf("joined", (f) => f.room === "one")
      yield* watcher.nextOf("joined", (f) => f.room === "two")
      dropper.ws.terminate()
      const lefts = [yield* watcher.nextOf("left"), yield* watcher.nextOf("left")]
      expect(lefts.map((f) => f.room).sort()).toEqual(["one", "two"])
      expect(lefts.every((f) => f.name === "dropper")).toBe(true)
      watcher.send({ type: "who", room: "one", ref: "w" })
      expect((yield* watcher.nextOf("members", (f) => f.ref === "w")).names).toEqual(["watcher"])
    }).pipe(serve())
  )

  it.live("caps rooms per connection with too_many_rooms", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ rooms: ["r1", "r2", "r3", "r4"] })
      expect(a.welcome.rooms).toEqual(["r1", "r2", "r3"])
      expect(yield* a.nextOf("error")).toMatchObject({ code: "too_many_rooms" })
      a.send({ type: "join", room: "r5", ref: "j" })
      expect(yield* a.nextOf("error", (f) => f.ref === "j")).toMatchObject({ code: "too_many_rooms" })
    }).pipe(serve({ maxRoomsPerConnection: 3 }))
  )

  it.live("forgets a room once it is empty and has no history", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ rooms: ["ephemeral"] })
      yield* a.nextOf("history")
      expect((yield* health).rooms).toBe(1)
      a.send({ type: "leave", room: "ephemeral", ref: "l" })
      yield* a.nextOf("ack")
      // the room actor stops and unsubscribes right after answering the leave
      const settled = yield* health.pipe(
        Effect.filterOrFail((h) => h.rooms === 0 && h.retainedRooms === 0),
        Effect.retry({ schedule: Schedule.spaced(Duration.millis(20)), times: 150 }),
        Effect.orElse(() => health)
      )
      expect(settled).toMatchObject({ rooms: 0, retainedRooms: 0 })
    }).pipe(serve())
  )
})

describe("order", () => {
  it.live("two concurrent senders: three receivers see one order with gapless ids", () =>
    Effect.gen(function* () {
      const receivers = [
        yield* TestServer.jsonClient({ rooms: ["race"] }),
        yield* TestServer.jsonClient({ rooms: ["race"] }),
        yield* TestServer.plainClient()
      ]
      const plainObserver = receivers[2]!
      const s1 = yield* TestServer.jsonClient({ name: "s1", rooms: ["race"] })
      const s2 = yield* TestServer.jsonClient({ name: "s2", rooms: ["race"] })
      const count = 300
      for (let i = 0; i < count; i++) {
        s1.send({ type: "send", room: "race", text: `a${i}` })
        s2.send({ type: "send", room: "race", text: `b${i}` })
      }
      const seen: Array<Array<string>> = []
      for (const r of receivers.slice(0, 2)) {
        const got: Array<string> = []
        for (let id = 1; id <= 2 * count; id++) {
          const m = yield* r.nextOf("message")
          expect(m.id).toBe(id)
          got.push(m.text)
        }
        seen.push(got)
      }
      expect(seen[0]).toEqual(seen[1])
      // each sender's own messages keep their order
      expect(seen[0]!.filter((t) => t.startsWith("a"))).toEqual(Array.from({ length: count }, (_, i) => `a${i}`))
      expect(plainObserver.received.length).toBe(1) // the plain user is in the lobby only
    }).pipe(serve(fast))
  )

  it.live("a join during a burst gets history then live messages with no gap and no duplicate", () =>
    Effect.gen(function* () {
      const sender = yield* TestServer.jsonClient({ name: "sender", rooms: ["burst"] })
      const total = 400
      let sent = 0
      const pump = Effect.gen(function* () {
        while (sent < total) {
          for (let i = 0; i < 20 && sent < total; i++) sender.send({ type: "send", room: "burst", text: `m${++sent}` })
          yield* Effect.sleep(Duration.millis(2))
        }
      })
      const pumping = yield* Effect.fork(pump)
      yield* Effect.sleep(Duration.millis(30))
      const joiner = yield* TestServer.jsonClient({ name: "joiner", rooms: [] })
      joiner.send({ type: "join", room: "burst" })
      const history = yield* joiner.nextOf("history")
      yield* pumping.await
      const ids: Array<number> = history.messages.map((m: { id: number }) => m.id)
      expect(ids.length).toBeGreaterThan(0)
      while (ids[ids.length - 1]! < total) ids.push((yield* joiner.nextOf("message")).id)
      const first = ids[0]!
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => first + i))
      expect(ids[ids.length - 1]).toBe(total)
    }).pipe(serve({ ...fast, joinHistory: 50 }))
  )
})

describe("history", () => {
  it.live("join history holds the newest messages; paging reaches the oldest retained one", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "a", rooms: ["h"] })
      for (let i = 1; i <= 130; i++) a.send({ type: "send", room: "h", text: `m${i}`, ref: String(i) })
      yield* a.nextOf("ack", (f) => f.ref === "130")
      const b = yield* TestServer.jsonClient({ name: "b", rooms: ["h"] })
      const joined = yield* b.nextOf("history")
      expect(joined.messages.map((m: { id: number }) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => 81 + i))
      expect(joined.more).toBe(true)
      b.send({ type: "history", room: "h", before: 81, limit: 1000, ref: "p1" })
      const page = yield* b.nextOf("history", (f) => f.ref === "p1")
      // 100 retained: 31..130; limit clamped to 100
      expect(page.messages.map((m: { id: number }) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => 31 + i))
      expect(page.more).toBe(false)
      b.send({ type: "history", room: "h", before: 41, limit: 5, ref: "p2" })
      const small = yield* b.nextOf("history", (f) => f.ref === "p2")
      expect(small.messages.map((m: { id: number }) => m.id)).toEqual([36, 37, 38, 39, 40])
      expect(small.more).toBe(true)
      b.send({ type: "history", room: "h", limit: 0, ref: "bad" })
      expect(yield* b.nextOf("error")).toMatchObject({ code: "invalid_frame" })
    }).pipe(serve(fast))
  )
})

describe("history requests", () => {
  it.live("a history reply never holds a message that then also arrives live", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "a" })
      yield* a.nextOf("history")
      for (let i = 0; i < 20; i++) {
        a.send({ type: "send", room: "lobby", text: `m${i}` })
        a.send({ type: "history", room: "lobby", ref: `h${i}` })
      }
      yield* a.nextOf("history", (f) => f.ref === "h19")
      yield* a.nextOf("message", (m) => m.id === 20)
      const seen = a.received.flatMap((f) =>
        f.type === "message" ? [f.id] : f.type === "history" && f.ref !== undefined ? [] : []
      )
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
      // a page never reaches past the last message already received live before it
      let live = 0
      for (const f of a.received) {
        if (f.type === "message") live = f.id
        if (f.type === "history" && f.ref !== undefined) {
          expect(Math.max(0, ...f.messages.map((m: { id: number }) => m.id))).toBeLessThanOrEqual(live)
        }
      }
    }).pipe(serve())
  )
})

describe("nicknames", () => {
  it.live("honours hello.name, refuses a case-insensitive clash, frees a name at once", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "Alice" })
      expect(a.welcome.name).toBe("Alice")
      const b = yield* TestServer.jsonClient({ name: "alice" })
      expect(b.welcome.name).toMatch(/^user\d+$/)
      expect(yield* b.nextOf("error")).toMatchObject({ code: "name_taken" })
      b.send({ type: "nick", name: "ALICE", ref: "n" })
      expect(yield* b.nextOf("error", (f) => f.ref === "n")).toMatchObject({ code: "name_taken" })
      a.send({ type: "nick", name: "alicia", ref: "n" })
      expect(yield* a.nextOf("ack")).toEqual({ type: "ack", ref: "n" })
      b.send({ type: "nick", name: "alice", ref: "n2" })
      expect(yield* b.nextOf("ack", (f) => f.ref === "n2")).toBeDefined()
    }).pipe(serve())
  )

  it.live("rejects invalid and reserved names", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "bad name" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "invalid_name" })
      for (const name of ["user7", "USER12", "", "x".repeat(33), "tab\there", "ünïcode"]) {
        a.send({ type: "nick", name, ref: name })
        expect(yield* a.nextOf("error", (f) => f.ref === name)).toMatchObject({ code: "invalid_name" })
      }
    }).pipe(serve())
  )

  it.live("in a join storm each member hears only of the arrivals after its own members list", () =>
    Effect.gen(function* () {
      const ann = yield* TestServer.jsonClient({ name: "ann", rooms: ["storm"] })
      yield* ann.nextOf("history")
      const ben = yield* TestServer.jsonClient({ name: "ben", rooms: ["storm"] })
      yield* ben.nextOf("history")
      // ben's arrival went out at once; the next ones, within the presence window, are held and go out together.
      yield* ann.nextOf("joined", (f) => f.name === "ben")
      const cat = yield* TestServer.jsonClient({ name: "cat", rooms: ["storm"] })
      yield* cat.nextOf("history")
      const dan = yield* TestServer.jsonClient({ name: "dan", rooms: ["storm"] })
      expect(yield* dan.nextOf("members")).toMatchObject({ names: ["ann", "ben", "cat", "dan"] })
      yield* dan.nextOf("history")
      yield* ann.nextOf("joined", (f) => f.name === "dan")
      yield* ben.nextOf("joined", (f) => f.name === "dan")
      yield* cat.nextOf("joined", (f) => f.name === "dan")
      // A message after the window: everything held before it has been written to everyone.
      dan.send({ type: "send", room: "storm", text: "hi", ref: "s" })
      for (const client of [ann, ben, cat, dan]) yield* client.nextOf("message", (m) => m.text === "hi")
      const heard = (client: typeof ann) => client.all("joined").map((f) => f.name)
      expect(heard(ann)).toEqual(["ben", "cat", "dan"])
      expect(heard(ben)).toEqual(["cat", "dan"])
      expect(heard(cat)).toEqual(["dan"])
      // cat was in dan's members list: being told cat joined would be old news.
      expect(heard(dan)).toEqual([])
    }).pipe(serve())
  )

  it.live("renamed reaches each member of the user's rooms once, and the user", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "ann", rooms: ["x", "y"] })
      const b = yield* TestServer.jsonClient({ name: "ben", rooms: ["x", "y"] })
      const c = yield* TestServer.jsonClient({ name: "cat", rooms: ["y"] })
      yield* a.nextOf("joined", (f) => f.name === "cat")
      a.send({ type: "nick", name: "anna", ref: "n" })
      const expected = { type: "renamed", from: "ann", to: "anna" }
      expect(yield* a.nextOf("renamed")).toMatchObject(expected)
      expect(yield* b.nextOf("renamed")).toMatchObject(expected)
      expect(yield* c.nextOf("renamed")).toMatchObject(expected)
      b.send({ type: "ping", ref: "sync" })
      yield* b.nextOf("pong")
      yield* Effect.sleep(Duration.millis(50))
      expect(b.all("renamed").length).toBe(1)
      c.send({ type: "who", room: "y", ref: "w" })
      expect((yield* c.nextOf("members", (f) => f.ref === "w")).names).toEqual(["anna", "ben", "cat"])
    }).pipe(serve())
  )
})

describe("direct messages and acknowledgements", () => {
  it.live("a direct message reaches one user in any room and is echoed to the sender", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "amy", rooms: ["r1"] })
      const b = yield* TestServer.jsonClient({ name: "Bea", rooms: ["r2"] })
      const c = yield* TestServer.jsonClient({ name: "cal", rooms: ["r1", "r2"] })
      a.send({ type: "direct", to: "bea", text: "psst", ref: "d" })
      expect(yield* a.nextOf("ack")).toEqual({ type: "ack", ref: "d" })
      const expected = { type: "direct", from: "amy", to: "Bea", text: "psst" }
      expect(yield* a.nextOf("direct")).toMatchObject(expected)
      expect(yield* b.nextOf("direct")).toMatchObject(expected)
      a.send({ type: "direct", to: "nobody", text: "hello?", ref: "d2" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "no_such_user", ref: "d2" })
      c.send({ type: "ping", ref: "sync" })
      yield* c.nextOf("pong")
      expect(c.all("direct")).toEqual([])
    }).pipe(serve())
  )

  it.live("every request with a ref gets exactly one answer carrying it", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "a" })
      const requests = [
        { type: "send", room: "lobby", text: "hi", ref: "1" },
        { type: "send", room: "lobby", text: "   ", ref: "2" },
        { type: "send", room: "lobby", text: "x".repeat(4001), ref: "3" },
        { type: "join", room: "side", ref: "4" },
        { type: "who", room: "side", ref: "5" },
        { type: "history", room: "side", ref: "6" },
        { type: "ping", ref: "7" },
        { type: "nick", name: "b", ref: "8" },
        { type: "leave", room: "side", ref: "9" },
        { type: "direct", to: "b", text: "self", ref: "10" },
        { type: "hello", ref: "11" },
        { type: "send", room: "lobby", ref: "12" }
      ]
      for (const request of requests) a.send(request)
      a.send({ type: "ping", ref: "end" })
      yield* a.nextOf("pong", (f) => f.ref === "end")
      const answers = a.received.filter((f) => f.ref !== undefined && f.ref !== "end")
      expect(answers.map((f) => `${f.ref}:${f.type}${f.code ? `:${f.code}` : ""}`)).toEqual([
        "1:ack",
        "2:error:invalid_frame",
        "3:error:message_too_long",
        "4:ack",
        "5:members",
        "6:history",
        "7:pong",
        "8:ack",
        "9:ack",
        "10:ack",
        "11:error:invalid_frame",
        "12:error:invalid_frame"
      ])
      expect(answers[0].id).toBe(1)
      // 4,000 code points is the limit, not 4,000 UTF-16 units
      a.send({ type: "send", room: "lobby", text: "😀".repeat(4000), ref: "emoji" })
      expect(yield* a.nextOf("ack", (f) => f.ref === "emoji")).toMatchObject({ id: 2 })
    }).pipe(serve())
  )
})

describe("plain dialect in rooms", () => {
  it.live("/join moves, /who lists the room, /msg reaches a JSON user, and JSON users see plain messages", () =>
    Effect.gen(function* () {
      const json = yield* TestServer.jsonClient({ name: "jay", rooms: ["lobby", "side"] })
      const plain = yield* TestServer.plainClient("?name=pia")
      yield* plain.next()
      plain.send("/join side")
      expect(yield* plain.next()).toBe("You joined side. There are 2 users here.")
      expect(yield* json.nextOf("left", (f) => f.room === "lobby")).toMatchObject({ name: "pia" })
      plain.send("/who")
      expect(yield* plain.next()).toBe("Users in side: jay, pia")
      plain.send("in side")
      expect(yield* json.nextOf("message")).toMatchObject({ room: "side", from: "pia", text: "in side" })
      json.send({ type: "send", room: "lobby", text: "lobby only" })
      json.send({ type: "send", room: "side", text: "side too" })
      expect(yield* plain.next()).toBe("[pia]: in side")
      expect(yield* plain.next()).toBe("[jay]: side too")
      plain.send("/msg JAY secret")
      expect(yield* json.nextOf("direct")).toMatchObject({ from: "pia", to: "jay", text: "secret" })
      expect(yield* plain.next()).toBe("[pia → jay]: secret")
      plain.send("/nick jay")
      expect(yield* plain.next()).toMatch(/^Error: jay is taken/)
    }).pipe(serve())
  )
})
