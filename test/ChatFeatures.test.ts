/**
 * The chat features end to end, with real sockets (PROTOCOL.md, "Chat features"): replies, typing, edit and delete,
 * reactions and read markers, each seen by a client that asked for the feature and by a v1 client beside it that
 * must see exactly the v1 frames. Then across a resume, a restart of the built server with the embedded store, and
 * two nodes sharing Redis.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import { createClient } from "redis"
import { SignJWT } from "jose"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { ChatServer } from "../src/http/ChatServer.js"
import { Hub } from "../src/backend/Hub.js"
import * as RedisBackend from "../src/redis/RedisBackend.js"
import { DEFAULT_PREFIX, makeKeys } from "../src/redis/RedisKeys.js"
import { ServerConfig } from "../src/server/ServerConfig.js"
import { ChatHooks } from "../src/server/ChatHooks.js"
import * as RedisServer from "./support/RedisServer.js"
import * as ServerProcess from "./support/ServerProcess.js"
import * as TempDir from "./support/TempDir.js"
import * as TestServer from "./support/TestServer.js"

const { serve } = TestServer
const ALL = ["typing", "edits", "reactions", "receipts"]
const featured = (hello: Record<string, unknown> = {}) => TestServer.jsonClient({ features: ALL, ...hello })

/** The frame types of effect-chat.v1 before the additions: all a v1 client may ever receive. */
const V1_TYPES = new Set(["welcome", "message", "direct", "history", "members", "joined", "left", "renamed", "ack"])
const V1_TYPES_WITH_ERRORS = new Set([...V1_TYPES, "error", "pong"])
const onlyV1 = (client: TestServer.TestClient) =>
  expect(client.received.filter((f) => !V1_TYPES_WITH_ERRORS.has(f.type)).map((f) => f.type)).toEqual([])

const dropAbruptly = (client: TestServer.TestClient) =>
  Effect.sync(() => (client.ws as unknown as { _socket: { destroy(): void } })._socket.destroy())

/** Sends `frame` with a fresh ref and waits for its answer (`ack` or `error`). */
let refs = 0
const ask = (client: TestServer.TestClient, frame: Record<string, unknown>) =>
  Effect.suspend(() => {
    const ref = `q${refs++}`
    client.send({ ...frame, ref })
    return client.next((f) => (f.type === "ack" || f.type === "error") && f.ref === ref)
  })

describe("features are opt-in", () => {
  it.live("welcome lists the features enabled; a v1 hello gets a v1 welcome; unknown names are ignored", () =>
    Effect.gen(function* () {
      const v1 = yield* TestServer.jsonClient({ name: "old" })
      expect(v1.welcome).not.toHaveProperty("features")
      const some = yield* TestServer.jsonClient({ name: "some", features: ["edits", "teleport", "typing"] })
      expect([...some.welcome.features].sort()).toEqual(["edits", "typing"])
      const all = yield* featured({ name: "all" })
      expect([...all.welcome.features].sort()).toEqual([...ALL].sort())
    }).pipe(serve())
  )
})

describe("replies", () => {
  it.live("reply_to rides on the message and in history; an id the room never had is no_such_message", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const old = yield* TestServer.jsonClient({ name: "old" })
      expect(yield* ask(a, { type: "send", room: "lobby", text: "question?" })).toMatchObject({ id: 1 })
      expect(yield* ask(a, { type: "send", room: "lobby", text: "answer", reply_to: 1 })).toMatchObject({ id: 2 })
      expect(yield* old.nextOf("message", (m) => m.id === 2)).toMatchObject({ reply_to: 1, text: "answer" })
      for (const bad of [3, 0, 99]) {
        expect(yield* ask(a, { type: "send", room: "lobby", text: "x", reply_to: bad })).toMatchObject({
          type: "error",
          code: "no_such_message"
        })
      }
      a.send({ type: "history", room: "lobby", ref: "h" })
      const page = yield* a.nextOf("history", (f) => f.ref === "h")
      expect(page.messages.map((m: Record<string, unknown>) => m.reply_to)).toEqual([undefined, 1])
      onlyV1(old)
    }).pipe(serve())
  )
})

describe("typing", () => {
  it.live("reaches the other members that asked for it, at most one a second, never stored", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const b = yield* featured({ name: "bea" })
      const old = yield* TestServer.jsonClient({ name: "old" })
      a.send({ type: "typing", room: "lobby" })
      expect(yield* b.nextOf("typing")).toEqual({ type: "typing", room: "lobby", name: "ann" })
      // Extra hints within the second are dropped, not refused; a request with a ref is still acked.
      expect(yield* ask(a, { type: "typing", room: "lobby" })).toMatchObject({ type: "ack" })
      a.send({ type: "typing", room: "lobby" })
      yield* Effect.sleep(Duration.millis(1100))
      a.send({ type: "typing", room: "lobby" })
      yield* b.nextOf("typing")
      yield* Effect.sleep(Duration.millis(100))
      expect(b.all("typing")).toHaveLength(2)
      expect(a.all("typing")).toHaveLength(0)
      expect(yield* ask(a, { type: "typing", room: "elsewhere" })).toMatchObject({ code: "not_in_room" })
      a.send({ type: "history", room: "lobby", ref: "h" })
      expect((yield* a.nextOf("history", (f) => f.ref === "h")).messages).toEqual([])
      onlyV1(old)
    }).pipe(serve())
  )
})

describe("edit and delete", () => {
  it.live("by the author only; members with the feature see it before the author's ack; v1 sees [deleted]", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const b = yield* featured({ name: "bea" })
      const old = yield* TestServer.jsonClient({ name: "old" })
      yield* ask(a, { type: "send", room: "lobby", text: "helo wrold" })
      yield* ask(a, { type: "send", room: "lobby", text: "a secret" })
      yield* ask(b, { type: "send", room: "lobby", text: "bea's" })

      expect(yield* ask(b, { type: "edit", room: "lobby", id: 1, text: "mine now" })).toMatchObject({
        code: "forbidden"
      })
      expect(yield* ask(b, { type: "delete", room: "lobby", id: 1 })).toMatchObject({ code: "forbidden" })
      expect(yield* ask(a, { type: "edit", room: "lobby", id: 42, text: "x" })).toMatchObject({
        code: "no_such_message"
      })
      expect(yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "   " })).toMatchObject({
        code: "invalid_frame"
      })
      expect(yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "x".repeat(4001) })).toMatchObject({
        code: "message_too_long"
      })

      a.send({ type: "edit", room: "lobby", id: 1, text: "hello world", ref: "e1" })
      const edited = yield* a.next((f) => f.type === "edited" || f.ref === "e1")
      expect(edited).toMatchObject({ type: "edited", room: "lobby", id: 1, text: "hello world" })
      yield* a.nextOf("ack", (f) => f.ref === "e1")
      expect(yield* b.nextOf("edited")).toEqual(edited)

      expect(yield* ask(a, { type: "delete", room: "lobby", id: 2 })).toMatchObject({ type: "ack" })
      expect(yield* b.nextOf("deleted")).toMatchObject({ type: "deleted", room: "lobby", id: 2 })
      // Taken back for good: no editing a deleted message.
      expect(yield* ask(a, { type: "edit", room: "lobby", id: 2, text: "back" })).toMatchObject({
        code: "no_such_message"
      })
      // Ids do not move: the next message is 4.
      expect(yield* ask(b, { type: "send", room: "lobby", text: "next" })).toMatchObject({ id: 4 })

      b.send({ type: "history", room: "lobby", ref: "h" })
      const page = (yield* b.nextOf("history", (f) => f.ref === "h")).messages
      expect(page.map((m: Record<string, unknown>) => [m.id, m.text, m.deleted ?? false])).toEqual([
        [1, "hello world", false],
        [2, "", true],
        [3, "bea's", false],
        [4, "next", false]
      ])
      expect(page[0].edited).toBe(edited.at)
      old.send({ type: "history", room: "lobby", ref: "h" })
      const v1Page = (yield* old.nextOf("history", (f) => f.ref === "h")).messages
      expect(v1Page.map((m: Record<string, unknown>) => m.text)).toEqual(["hello world", "[deleted]", "bea's", "next"])
      // The deleted text is never sent again to anyone, in any frame.
      for (const client of [a, b, old]) {
        const later = client.received.slice(client.received.findIndex((f) => f.type === "deleted" || f.ref === "h"))
        expect(JSON.stringify(later)).not.toContain("a secret")
      }
      onlyV1(old)
      // The v1 client saw the original text live, before the edit: what v1 cannot be told again.
      expect(old.all("message").map((m) => m.text)).toEqual(["helo wrold", "a secret", "bea's", "next"])
    }).pipe(serve())
  )

  it.live("a join's history carries each message's current state", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      yield* ask(a, { type: "send", room: "lobby", text: "one" })
      yield* ask(a, { type: "send", room: "lobby", text: "two" })
      yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "uno" })
      yield* ask(a, { type: "delete", room: "lobby", id: 2 })
      yield* ask(a, { type: "react", room: "lobby", id: 1, emoji: "👍", on: true })
      const late = yield* featured({ name: "late" })
      const history = yield* late.nextOf("history", (f) => f.room === "lobby")
      expect(history.messages).toMatchObject([
        { id: 1, text: "uno", reactions: { "👍": ["ann"] } },
        { id: 2, text: "", deleted: true }
      ])
      expect(history.messages[0].edited).toBeTypeOf("number")
    }).pipe(serve())
  )
})

describe("reactions", () => {
  it.live("toggle per user and emoji; frames to members with the feature; counts by name in history", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const b = yield* featured({ name: "bea" })
      const old = yield* TestServer.jsonClient({ name: "old" })
      yield* ask(a, { type: "send", room: "lobby", text: "ship it?" })
      expect(yield* ask(b, { type: "react", room: "lobby", id: 1, emoji: "🚀", on: true })).toMatchObject({
        type: "ack"
      })
      expect(yield* a.nextOf("reaction")).toEqual({
        type: "reaction",
        room: "lobby",
        id: 1,
        emoji: "🚀",
        name: "bea",
        on: true
      })
      // The same toggle again changes nothing and tells nobody.
      yield* ask(b, { type: "react", room: "lobby", id: 1, emoji: "🚀", on: true })
      yield* ask(a, { type: "react", room: "lobby", id: 1, emoji: "🚀", on: true })
      yield* ask(b, { type: "react", room: "lobby", id: 1, emoji: "🚀", on: false })
      yield* a.nextOf("reaction", (f) => f.name === "bea" && f.on === false)
      expect(a.all("reaction").map((f) => [f.name, f.on])).toEqual([
        ["bea", true],
        ["ann", true],
        ["bea", false]
      ])
      for (const emoji of ["", "two words", "x".repeat(17), "\u0007", "__proto__", "constructor"]) {
        expect(yield* ask(a, { type: "react", room: "lobby", id: 1, emoji, on: true })).toMatchObject({
          code: "invalid_frame"
        })
      }
      for (let i = 1; i < 20; i++) yield* ask(a, { type: "react", room: "lobby", id: 1, emoji: `e${i}`, on: true })
      expect(yield* ask(b, { type: "react", room: "lobby", id: 1, emoji: "🎉", on: true })).toMatchObject({
        code: "too_many_reactions"
      })
      expect(yield* ask(b, { type: "react", room: "lobby", id: 7, emoji: "🎉", on: true })).toMatchObject({
        code: "no_such_message"
      })
      old.send({ type: "history", room: "lobby", ref: "h" })
      const [message] = (yield* old.nextOf("history", (f) => f.ref === "h")).messages
      expect(message.reactions["🚀"]).toEqual(["ann"])
      expect(Object.keys(message.reactions)).toHaveLength(20)
      onlyV1(old)
    }).pipe(serve())
  )
})

describe("read markers", () => {
  it.live("unread after each join's history; moving the marker tells the user's connections, never back", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      for (const text of ["1", "2", "3"]) yield* ask(a, { type: "send", room: "lobby", text })
      const b = yield* featured({ name: "bea" })
      const history = yield* b.next((f) => f.type === "history" || f.type === "unread")
      expect(history.type).toBe("history")
      expect(yield* b.next((f) => f.type !== "members")).toEqual({
        type: "unread",
        room: "lobby",
        last_read: 0,
        count: 3
      })
      expect(yield* ask(b, { type: "read", room: "lobby", id: 2 })).toMatchObject({ type: "ack" })
      expect(yield* b.nextOf("unread")).toEqual({ type: "unread", room: "lobby", last_read: 2, count: 1 })
      // Back is no move: nothing is sent; nor does anyone else hear of bea's marker.
      yield* ask(b, { type: "read", room: "lobby", id: 1 })
      yield* ask(a, { type: "send", room: "lobby", text: "4" })
      yield* ask(a, { type: "delete", room: "lobby", id: 4 })
      expect(b.all("unread")).toHaveLength(2)
      expect(a.all("unread")).toEqual([{ type: "unread", room: "lobby", last_read: 0, count: 0 }])
      // A deleted message is not unread; a marker past the newest id stops at it.
      b.send({ type: "join", room: "side" })
      yield* b.nextOf("unread", (f) => f.room === "side")
      yield* ask(b, { type: "leave", room: "lobby" })
      yield* ask(b, { type: "join", room: "lobby" })
      expect(yield* b.nextOf("unread", (f) => f.room === "lobby")).toMatchObject({ last_read: 2, count: 1 })
      yield* ask(b, { type: "read", room: "lobby", id: 1000 })
      expect(yield* b.nextOf("unread", (f) => f.room === "lobby")).toMatchObject({ last_read: 4, count: 0 })
      expect(yield* ask(b, { type: "read", room: "nowhere", id: 1 })).toMatchObject({ code: "not_in_room" })
    }).pipe(serve())
  )

  it.live("a signed-in user's marker is the user's: every device hears it, and a new device starts from it", () =>
    Effect.gen(function* () {
      const secret = "test-secret-that-is-long-enough-for-hs256"
      const token = yield* Effect.promise(() =>
        new SignJWT({ sub: "u-7", name: "sam" })
          .setProtectedHeader({ alg: "HS256" })
          .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
          .sign(new TextEncoder().encode(secret))
      )
      const other = yield* featured({ name: "ann" })
      for (const text of ["1", "2", "3"]) yield* ask(other, { type: "send", room: "lobby", text })
      const phone = yield* featured({ token })
      const laptop = yield* featured({ token })
      const v1Tab = yield* TestServer.jsonClient({ token })
      yield* phone.nextOf("unread")
      yield* laptop.nextOf("unread")
      yield* ask(phone, { type: "read", room: "lobby", id: 3 })
      expect(yield* laptop.nextOf("unread", (f) => f.last_read === 3)).toMatchObject({ count: 0 })
      expect(yield* phone.nextOf("unread", (f) => f.last_read === 3)).toMatchObject({ count: 0 })
      const tablet = yield* featured({ token })
      expect(yield* tablet.nextOf("unread")).toMatchObject({ last_read: 3, count: 0 })
      onlyV1(v1Tab)
      expect(other.all("unread")).toHaveLength(1)
    }).pipe(
      serve({ auth: { mode: "optional", grace: Duration.seconds(30) } }, [
        JwtHooks.hooks(Effect.runSync(JwtVerifier.make({ secret: "test-secret-that-is-long-enough-for-hs256" })))
      ])
    )
  )
})

describe("resume keeps changes", () => {
  it.live("a message edited and then deleted while away comes back as deleted only: its text is never sent", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const b = yield* featured({ name: "bea" })
      yield* ask(a, { type: "send", room: "lobby", text: "oops" })
      yield* b.nextOf("message", (f) => f.id === 1)
      yield* dropAbruptly(b)
      yield* a.nextOf("left", (f) => f.name === "bea")
      yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "SECRET" })
      yield* ask(a, { type: "delete", room: "lobby", id: 1 })
      const back = yield* featured({ resume: { token: b.welcome.resume, since: { lobby: 1 } } })
      expect(yield* back.nextOf("deleted")).toMatchObject({ id: 1 })
      yield* back.nextOf("unread")
      expect(JSON.stringify(back.received)).not.toContain("SECRET")
      expect(back.all("edited")).toEqual([])
    }).pipe(serve())
  )

  it.live("changes made while away to messages it had arrive right after the catch-up history, once", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      const b = yield* featured({ name: "bea" })
      for (const text of ["one", "two", "three"]) yield* ask(a, { type: "send", room: "lobby", text })
      // Seen live before the drop: not to be repeated.
      yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "ONE" })
      yield* b.nextOf("edited", (f) => f.id === 1)
      yield* b.nextOf("message", (f) => f.id === 3)
      yield* dropAbruptly(b)
      yield* a.nextOf("left", (f) => f.name === "bea")
      // While bea is away: changes to messages she had, and a new message changed too.
      yield* ask(a, { type: "edit", room: "lobby", id: 2, text: "TWO" })
      yield* ask(a, { type: "react", room: "lobby", id: 3, emoji: "👍", on: true })
      yield* ask(a, { type: "delete", room: "lobby", id: 1 })
      yield* ask(a, { type: "send", room: "lobby", text: "four" })
      yield* ask(a, { type: "edit", room: "lobby", id: 4, text: "FOUR" })
      const back = yield* featured({ resume: { token: b.welcome.resume, since: { lobby: 3 } } })
      expect(back.welcome.resumed).toBe(true)
      const history = yield* back.nextOf("history")
      // The new message comes in its current state; the others as changes after the history, in order.
      expect(history.messages).toMatchObject([{ id: 4, text: "FOUR" }])
      const after = back.received.slice(back.received.indexOf(history) + 1)
      yield* back.nextOf("unread")
      const changes = back.received
        .slice(back.received.indexOf(history) + 1)
        .filter((f) => f.type === "edited" || f.type === "deleted" || f.type === "reaction")
      expect(changes.map((f) => [f.type, f.id])).toEqual([
        ["edited", 2],
        ["reaction", 3],
        ["deleted", 1]
      ])
      expect(after[0].type).not.toBe("message")
      // Live again: a later change arrives once.
      yield* ask(a, { type: "react", room: "lobby", id: 2, emoji: "🎉", on: true })
      yield* back.nextOf("reaction", (f) => f.emoji === "🎉")
      yield* Effect.sleep(Duration.millis(100))
      expect(back.all("edited").map((f) => f.id)).toEqual([2])
      expect(back.all("reaction").map((f) => f.emoji)).toEqual(["👍", "🎉"])
    }).pipe(serve())
  )

  it.live("a change written to a connection that never confirmed it is sent again on resume (it may be lost)", () =>
    Effect.gen(function* () {
      const a = yield* featured({ name: "ann" })
      // A peer that answers no ping: the server cannot know that what it wrote arrived.
      const b = yield* TestServer.jsonClient({ features: ALL, name: "bea" }, { autoPong: false })
      yield* ask(a, { type: "send", room: "lobby", text: "one" })
      yield* ask(a, { type: "send", room: "lobby", text: "two" })
      yield* b.nextOf("message", (f) => f.id === 2)
      yield* ask(a, { type: "edit", room: "lobby", id: 1, text: "ONE" })
      // Read here, but as far as the server knows it may have been lost with the connection.
      yield* b.nextOf("edited", (f) => f.id === 1)
      yield* dropAbruptly(b)
      yield* a.nextOf("left", (f) => f.name === "bea")
      yield* ask(a, { type: "edit", room: "lobby", id: 2, text: "TWO" })
      const back = yield* featured({ resume: { token: b.welcome.resume, since: { lobby: 2 } } })
      expect(back.welcome.resumed).toBe(true)
      yield* back.nextOf("unread")
      expect(back.all("edited").map((f) => [f.id, f.text])).toEqual([
        [1, "ONE"],
        [2, "TWO"]
      ])
      // This connection answers pings: a drop now repeats nothing it has confirmed.
      yield* ask(a, { type: "react", room: "lobby", id: 1, emoji: "👍", on: true })
      yield* back.nextOf("reaction", (f) => f.id === 1)
      yield* Effect.sleep(Duration.millis(50))
      yield* dropAbruptly(back)
      yield* a.nextOf("left", (f) => f.name === "bea")
      const again = yield* featured({ resume: { token: back.welcome.resume, since: { lobby: 2 } } })
      expect(again.welcome.resumed).toBe(true)
      yield* again.nextOf("unread")
      expect(again.received.filter((f) => f.type === "edited" || f.type === "reaction")).toEqual([])
    }).pipe(serve())
  )
})

// ---------------------------------------------------------------------------------------------------------------------
// The embedded store across a restart of the built server
// ---------------------------------------------------------------------------------------------------------------------

describe("with the embedded store (dist/server.js)", () => {
  const fast = ["--rate", "100000", "--burst", "100000"]
  const at = (server: ServerProcess.ServerProcess, hello: Record<string, unknown>) =>
    TestServer.jsonClientAt({ host: "127.0.0.1", port: server.port, url: server.httpUrl }, { features: ALL, ...hello })

  it.scopedLive("an unread count is exact where it arrives, with messages still coming in around the read", () =>
    Effect.gen(function* () {
      // The embedded store: a read is a write, committed in a later group than messages already on their way.
      const server = yield* ServerProcess.start({ args: fast })
      for (let round = 0; round < 5; round++) {
        const room = `race${round}`
        const a = yield* at(server, { name: `poster${round}`, rooms: [room] })
        const b = yield* at(server, { name: `reader${round}`, rooms: [room] })
        yield* ask(a, { type: "send", room, text: "first" })
        yield* b.nextOf("message", (f) => f.room === room && f.id === 1)
        // The read and four more messages cross on the wire.
        b.send({ type: "read", room, id: 1 })
        for (let i = 0; i < 4; i++) a.send({ type: "send", room, text: `more ${i}` })
        yield* b.nextOf("message", (f) => f.room === room && f.id === 5)
        yield* Effect.sleep(Duration.millis(50))
        const frames = b.received.filter((f) => f.room === room)
        const last = frames.map((f) => f.type).lastIndexOf("unread")
        const unread = frames[last]
        expect(unread.last_read).toBe(1)
        // What a client shows: the count it was told plus each message that came after it.
        const after = frames.slice(last + 1).filter((f) => f.type === "message").length
        expect(unread.count + after).toBe(4)
      }
    })
  )

  it.scopedLive(
    "edits, deletions, reactions and read markers survive a kill -9; a resume across it gets what changed",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* TempDir.scoped("features-")
        const room = "r"
        const before = yield* Effect.scoped(
          Effect.gen(function* () {
            const server = yield* ServerProcess.start({ args: ["--data-dir", dataDir, ...fast] })
            const a = yield* at(server, { name: "ann", rooms: [room] })
            const b = yield* at(server, { name: "bea", rooms: [room] })
            for (const text of ["one", "two", "three"]) yield* ask(a, { type: "send", room, text })
            yield* ask(a, { type: "edit", room, id: 1, text: "ONE" })
            yield* ask(b, { type: "read", room, id: 2 })
            yield* b.nextOf("message", (f) => f.id === 3)
            yield* b.nextOf("edited")
            yield* dropAbruptly(b)
            yield* a.nextOf("left", (f) => f.name === "bea")
            yield* ask(a, { type: "delete", room, id: 2 })
            yield* ask(a, { type: "react", room, id: 3, emoji: "👍", on: true })
            yield* server.kill
            return { bea: b.welcome.resume }
          })
        )
        const server = yield* ServerProcess.start({ args: ["--data-dir", dataDir, ...fast] })
        const b = yield* at(server, { resume: { token: before.bea, since: { [room]: 3 } } })
        expect(b.welcome.resumed).toBe(true)
        yield* b.nextOf("history", (f) => f.room === room)
        expect(yield* b.nextOf("deleted")).toMatchObject({ id: 2 })
        expect(yield* b.nextOf("reaction")).toMatchObject({ id: 3, emoji: "👍", name: "ann", on: true })
        // Read marker kept: message 2 is deleted, so only 3 is unread.
        expect(yield* b.nextOf("unread")).toMatchObject({ room, last_read: 2, count: 1 })
        expect(b.all("edited")).toEqual([])
        const c = yield* at(server, { name: "cy", rooms: [room] })
        const history = yield* c.nextOf("history", (f) => f.room === room)
        expect(history.messages).toMatchObject([
          { id: 1, text: "ONE" },
          { id: 2, text: "", deleted: true },
          { id: 3, text: "three", reactions: { "👍": ["ann"] } }
        ])
        // The author's right to edit survives the restart too (guest: the same session, resumed).
        const a = yield* at(server, { name: "zed", rooms: [room] })
        expect(yield* ask(a, { type: "edit", room, id: 3, text: "not mine" })).toMatchObject({ code: "forbidden" })
      }),
    60_000
  )
})

// ---------------------------------------------------------------------------------------------------------------------
// Two nodes sharing Redis
// ---------------------------------------------------------------------------------------------------------------------

const redisSkip = RedisServer.skipReason
describe.skipIf(redisSkip !== undefined)(
  `two nodes on Redis${redisSkip === undefined ? "" : ` (${redisSkip})`}`,
  () => {
    const startNode = (url: string) =>
      Layer.build(
        ChatHttpServer.layer.pipe(
          Layer.provideMerge(ChatServer.layer),
          Layer.provide(RedisBackend.layer({ url })),
          Layer.provide(ChatHooks.layer()),
          Layer.provide(ServerConfig.layer({ port: 0, host: "127.0.0.1", ...TestServer.noRateLimit }))
        )
      ).pipe(Effect.map((context) => Context.get(context, ChatHttpServer.ServerAddress)))
    // Acquired in the test's scope before the nodes, so it stops after them.
    const redisServer = Effect.acquireRelease(Effect.promise(RedisServer.acquire), (redis) =>
      Effect.promise(redis.stop)
    )

    it.scopedLive(
      "replies, edits, deletions, reactions, typing and read markers cross nodes; a resume on the other node keeps changes",
      () =>
        Effect.gen(function* () {
          const { url } = yield* redisServer
          const one = yield* startNode(url)
          const two = yield* startNode(url)
          const room = `x${Date.now().toString(36)}`
          const a = yield* TestServer.jsonClientAt(one, { name: "ann", rooms: [room], features: ALL })
          const b = yield* TestServer.jsonClientAt(two, { name: "bea", rooms: [room], features: ALL })
          const old = yield* TestServer.jsonClientAt(two, { name: "old", rooms: [room] })
          yield* ask(a, { type: "send", room, text: "one" })
          yield* ask(b, { type: "send", room, text: "re: one", reply_to: 1 })
          expect(yield* a.nextOf("message", (f) => f.id === 2)).toMatchObject({ reply_to: 1 })
          a.send({ type: "typing", room })
          expect(yield* b.nextOf("typing")).toMatchObject({ name: "ann" })
          yield* ask(a, { type: "edit", room, id: 1, text: "ONE" })
          expect(yield* b.nextOf("edited")).toMatchObject({ id: 1, text: "ONE" })
          expect(yield* ask(a, { type: "delete", room, id: 2 })).toMatchObject({ code: "forbidden" })
          yield* ask(b, { type: "react", room, id: 1, emoji: "👍", on: true })
          expect(yield* a.nextOf("reaction")).toMatchObject({ name: "bea", on: true })
          yield* ask(b, { type: "read", room, id: 2 })
          expect(yield* b.nextOf("unread", (f) => f.last_read === 2)).toMatchObject({ count: 0 })
          yield* b.nextOf("message", (f) => f.id === 2)
          yield* dropAbruptly(b)
          yield* a.nextOf("left", (f) => f.name === "bea")
          // While bea is away, on the node she was not on.
          yield* ask(a, { type: "react", room, id: 1, emoji: "🎉", on: true })
          yield* ask(a, { type: "edit", room, id: 1, text: "One." })
          const back = yield* TestServer.jsonClientAt(one, {
            resume: { token: b.welcome.resume, since: { [room]: 2 } },
            features: ALL
          })
          expect(back.welcome.resumed).toBe(true)
          yield* back.nextOf("history", (f) => f.room === room)
          expect(yield* back.nextOf("reaction")).toMatchObject({ emoji: "🎉", name: "ann" })
          expect(yield* back.nextOf("edited")).toMatchObject({ id: 1, text: "One." })
          expect(yield* back.nextOf("unread")).toMatchObject({ last_read: 2, count: 0 })
          expect(back.all("edited")).toHaveLength(1)
          old.send({ type: "history", room, ref: "h" })
          const page = (yield* old.nextOf("history", (f) => f.ref === "h")).messages
          expect(page).toMatchObject([
            { id: 1, text: "One.", reactions: { "👍": ["bea"], "🎉": ["ann"] } },
            { id: 2, reply_to: 1 }
          ])
          onlyV1(old)
        }),
      60_000
    )

    it.scopedLive(
      "the state of changed messages and the deleted ids are trimmed along with the log",
      () =>
        Effect.gen(function* () {
          const { url } = yield* redisServer
          const context = yield* Layer.build(RedisBackend.layer({ url, historyRetain: 50 }))
          const hub = Context.get(context, Hub)
          const room = `trim${Date.now().toString(36)}`
          for (let i = 1; i <= 20; i++) {
            yield* hub.publish(room, { from: "ann", text: `m${i}`, author: "k" })
            yield* hub.change(room, { _tag: "React", id: i, emoji: "👍", on: true, by: "k2", name: "bea" })
            if (i % 2 === 0) yield* hub.change(room, { _tag: "Delete", id: i, by: "k" })
          }
          for (let i = 21; i <= 300; i++) yield* hub.publish(room, { from: "ann", text: `m${i}`, author: "k" })
          const admin = yield* Effect.acquireRelease(
            Effect.promise(() => createClient({ url }).connect()),
            (client) => Effect.promise(() => client.close())
          )
          const keys = makeKeys(DEFAULT_PREFIX)
          const state = yield* Effect.promise(() => admin.hLen(keys.roomState(room)))
          const deleted = yield* Effect.promise(() => admin.zCard(`${DEFAULT_PREFIX}room:${room}:deleted`))
          // Messages 1-20 fell out of a log of about 50: nothing of them is kept.
          expect(state).toBe(0)
          expect(deleted).toBe(0)
          // The unread count of what is retained is still right.
          expect((yield* hub.unread(room, "someone")).count).toBe(
            (yield* hub.bounds(room)).latest - (yield* hub.bounds(room)).oldest + 1
          )
        }),
      30_000
    )
  }
)
