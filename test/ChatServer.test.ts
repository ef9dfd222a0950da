import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Scope } from "effect"
import { ChatServer } from "../src/http/ChatServer.js"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import * as TestServer from "./support/TestServer.js"

const { serve: withServer, waitUntil } = TestServer

describe("plain dialect", () => {
  it.live("greets with the number of users, counting the newcomer", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.plainClient()
      expect(yield* a.next()).toBe("You are connected! There are 1 users here.")
      const b = yield* TestServer.plainClient()
      expect(yield* b.next()).toBe("You are connected! There are 2 users here.")
      const c = yield* TestServer.jsonClient()
      expect(c.welcome.users).toBe(3)
    }).pipe(withServer())
  )

  it.live("broadcasts a line to everyone in the room, the sender included", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.plainClient()
      yield* a.next()
      const b = yield* TestServer.plainClient()
      yield* b.next()
      a.send("hello")
      expect(yield* a.next()).toBe("[user0]: hello")
      expect(yield* b.next()).toBe("[user0]: hello")
      b.send("hi back")
      expect(yield* a.next()).toBe("[user1]: hi back")
      expect(yield* b.next()).toBe("[user1]: hi back")
    }).pipe(withServer())
  )

  it.live("honours ?name= and explains unknown commands without closing", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.plainClient("?name=alice")
      yield* a.next()
      a.send("/frobnicate")
      expect(yield* a.next()).toMatch(/^Unknown command \/frobnicate/)
      a.send("still here")
      expect(yield* a.next()).toBe("[alice]: still here")
    }).pipe(withServer())
  )

  it.live("closes with 1003 on a binary frame", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.plainClient()
      yield* a.next()
      a.ws.send(Buffer.from([1, 2, 3]))
      expect((yield* a.waitClosed()).code).toBe(1003)
    }).pipe(withServer())
  )
})

describe("JSON dialect", () => {
  it.live("answers hello with welcome, then members and history of the lobby", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "alice" })
      expect(a.welcome).toMatchObject({
        type: "welcome",
        protocol: 1,
        name: "alice",
        rooms: ["lobby"],
        users: 1,
        resumed: false
      })
      expect(typeof a.welcome.resume).toBe("string")
      expect(yield* a.next()).toEqual({ type: "members", room: "lobby", names: ["alice"] })
      expect(yield* a.next()).toEqual({ type: "history", room: "lobby", messages: [], more: false })
    }).pipe(withServer())
  )

  it.live("acknowledges a send with its id, and ids rise by exactly 1", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "alice" })
      const b = yield* TestServer.jsonClient({ name: "bob" })
      for (let i = 0; i < 5; i++) a.send({ type: "send", room: "lobby", text: `m${i}`, ref: `r${i}` })
      const ids: Array<number> = []
      for (let i = 0; i < 5; i++) ids.push((yield* a.nextOf("ack", (f) => f.ref === `r${i}`)).id)
      expect(ids).toEqual([1, 2, 3, 4, 5])
      for (let i = 0; i < 5; i++) {
        expect(yield* b.nextOf("message")).toMatchObject({ room: "lobby", id: i + 1, from: "alice", text: `m${i}` })
      }
    }).pipe(withServer())
  )

  it.live("shares the lobby with plain users both ways", () =>
    Effect.gen(function* () {
      const plain = yield* TestServer.plainClient("?name=pat")
      yield* plain.next()
      const json = yield* TestServer.jsonClient({ name: "jo" })
      json.send({ type: "send", room: "lobby", text: "from json" })
      expect(yield* plain.next()).toBe("[jo]: from json")
      plain.send("from plain")
      expect(yield* json.nextOf("message", (m) => m.text === "from plain")).toMatchObject({
        from: "pat",
        room: "lobby"
      })
    }).pipe(withServer())
  )

  it.live("answers bad JSON, unknown types and wrong field types with invalid_frame and keeps the connection", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient()
      const bad = [
        "{not json",
        JSON.stringify({ type: "nope" }),
        JSON.stringify({ type: "send", room: 5, text: "x" }),
        "[]",
        "42"
      ]
      for (const text of bad) {
        a.send(text)
        const error = yield* a.nextOf("error")
        expect(error.code).toBe("invalid_frame")
        expect(error.message.length).toBeGreaterThan(0)
      }
      a.send({ type: "send", room: "lobby", text: "still works", ref: "ok" })
      expect(yield* a.nextOf("ack")).toMatchObject({ ref: "ok", id: 1 })
    }).pipe(withServer())
  )

  it.live("closes with 1003 on a binary frame", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient()
      a.ws.send(Buffer.from("{}"))
      expect((yield* a.waitClosed()).code).toBe(1003)
    }).pipe(withServer())
  )

  it.live("requires hello first: anything else gets invalid_frame and close 1008", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.rawJsonClient()
      a.send({ type: "send", room: "lobby", text: "too early" })
      expect((yield* a.nextOf("error")).code).toBe("invalid_frame")
      expect((yield* a.waitClosed()).code).toBe(1008)
    }).pipe(withServer())
  )

  it.live("closes with 1008 when no hello arrives in time", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.rawJsonClient()
      expect((yield* a.waitClosed()).code).toBe(1008)
    }).pipe(withServer({ helloTimeout: Duration.millis(200) }))
  )
})

describe("limits and lifecycle", () => {
  it.live("closes with 1009 on a frame over the limit, and others keep chatting", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient()
      const b = yield* TestServer.jsonClient()
      a.send({ type: "send", room: "lobby", text: "x".repeat(3000) })
      expect((yield* a.waitClosed()).code).toBe(1009)
      b.send({ type: "send", room: "lobby", text: "fine", ref: "1" })
      expect(yield* b.nextOf("ack")).toMatchObject({ ref: "1" })
    }).pipe(withServer({ maxFrameBytes: 2048 }))
  )

  it.live(
    "cuts a client that does not read with 4008 while the others receive everything",
    () =>
      Effect.gen(function* () {
        const sender = yield* TestServer.jsonClient({ name: "sender" })
        const reader = yield* TestServer.jsonClient({ name: "reader" })
        const sleeper = yield* TestServer.jsonClient({ name: "sleeper" })
        yield* sleeper.nextOf("history")
        sleeper.ws.pause()
        const count = 3000
        const text = "y".repeat(3900)
        // paced by the reader, so a healthy client is never far behind however busy the machine is
        for (let i = 0; i < count; i++) {
          sender.send({ type: "send", room: "lobby", text, ref: String(i) })
          if (i % 100 === 99) yield* reader.nextOf("message", (m) => m.id === i + 1, 30_000)
        }
        yield* sender.nextOf("ack", (f) => f.ref === String(count - 1), 30_000)
        const ids = reader.all("message").map((m) => m.id)
        expect(ids).toEqual(Array.from({ length: count }, (_, i) => i + 1))
        sleeper.ws.resume()
        expect((yield* sleeper.waitClosed(10_000)).code).toBe(4008)
        expect(sleeper.all("message").length).toBeLessThan(count)
      }).pipe(
        withServer({
          maxBufferedBytes: 1024 * 1024,
          maxQueuedMessages: 1000,
          closeGrace: Duration.seconds(20),
          rateLimit: { perSecond: 100_000, burst: 100_000, strikesBeforeClose: 10 }
        })
      ),
    60_000
  )

  it.live("holds exactly the live connections, whatever way they end", () =>
    Effect.gen(function* () {
      const chat = yield* ChatServer
      const clients = []
      for (let i = 0; i < 6; i++)
        clients.push(i % 2 === 0 ? yield* TestServer.jsonClient() : yield* TestServer.plainClient())
      yield* waitUntil(() => chat.registry.size() === 6)
      clients[0]!.ws.terminate()
      ;(clients[1]!.ws as unknown as { _socket: { destroy(): void } })._socket.destroy()
      yield* clients[2]!.close(1000)
      yield* clients[3]!.close(4000)
      yield* waitUntil(() => chat.registry.size() === 2)
      yield* clients[4]!.close()
      clients[5]!.ws.terminate()
      yield* waitUntil(() => chat.registry.size() === 0)
    }).pipe(withServer())
  )

  it.live("shutdown sends 1001 to every client, even to one that never answers", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(TestServer.layer(), scope)
      const connect = <A>(effect: Effect.Effect<A, never, Scope.Scope | ChatHttpServer.ServerAddress>) =>
        effect.pipe(Effect.provide(context))
      const a = yield* connect(TestServer.jsonClient())
      const b = yield* connect(TestServer.plainClient())
      const silent = yield* connect(TestServer.plainClient())
      // a peer that stops reading never completes the close handshake
      silent.ws.pause()
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(2000)
      expect((yield* a.waitClosed()).code).toBe(1001)
      expect((yield* b.waitClosed()).code).toBe(1001)
    }).pipe(Effect.scoped)
  )

  it.live("serves a page at / and health at /healthz", () =>
    Effect.gen(function* () {
      const address = yield* ChatHttpServer.ServerAddress
      const page = yield* Effect.promise(() => fetch(`http://127.0.0.1:${address.port}/`))
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toContain("text/html")
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'")
      const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${address.port}/healthz`))
      expect(health.status).toBe(200)
      expect(yield* Effect.promise(() => health.json())).toMatchObject({ status: "ok", connections: 0 })
      const ready = yield* Effect.promise(() => fetch(`http://127.0.0.1:${address.port}/readyz`))
      expect(ready.status).toBe(200)
    }).pipe(withServer())
  )
})
