/**
 * Identity end to end, as a user sees it: tokens on every path (hello, ?token=, Bearer), refusals and their close
 * codes, room permissions, names from tokens, one user on many connections, expiry and refresh, resume bound to the
 * user, and the hooks an embedding application plugs in.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { SignJWT } from "jose"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import { ChatServer } from "../src/http/ChatServer.js"
import { HookRefusal, type Hooks } from "../src/server/ChatHooks.js"
import type { Message } from "../src/protocol/Protocol.js"
import * as TestServer from "./support/TestServer.js"

const SECRET = "test-secret-that-is-long-enough-for-hs256"

const mint = (claims: Record<string, unknown>, options: { ttlSeconds?: number; secret?: string } = {}) =>
  Effect.promise(() =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + (options.ttlSeconds ?? 3600))
      .sign(new TextEncoder().encode(options.secret ?? SECRET))
  )

const jwt = Effect.runSync(JwtVerifier.make({ secret: SECRET }))
const jwtHooks = JwtHooks.hooks(jwt)

const required = (extra: Array<Hooks> = [], grace = Duration.seconds(30)) =>
  TestServer.serve({ auth: { mode: "required", grace } }, [jwtHooks, ...extra])
const optional = (extra: Array<Hooks> = []) => TestServer.serve({ auth: { mode: "optional" } }, [jwtHooks, ...extra])

describe("tokens", () => {
  it.live("required: no token is refused with unauthorized and 4001, in both dialects", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.rawJsonClient()
      a.send({ type: "hello" })
      expect(yield* a.nextOf("error")).toMatchObject({ code: "unauthorized" })
      expect((yield* a.waitClosed()).code).toBe(4001)
      const p = yield* TestServer.plainClient()
      expect(yield* p.next()).toMatch(/^Unauthorized: /)
      expect((yield* p.waitClosed()).code).toBe(4001)
    }).pipe(required())
  )

  it.live("a token in hello, in ?token= or as Bearer signs the user in with the token's name", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const a = yield* TestServer.jsonClient({ token, name: "mallory" })
      expect(a.welcome).toMatchObject({ name: "alice", user: "u-1" })
      const url = yield* TestServer.chatUrl
      const b = yield* TestServer.rawJsonClient({ headers: { authorization: `Bearer ${token}` } })
      b.send({ type: "hello" })
      expect((yield* b.nextOf("welcome")).name).toBe("alice")
      const p = yield* TestServer.plainClient(`?token=${token}`)
      expect(yield* p.next()).toMatch(/^You are connected!/)
      p.send("hi from plain")
      expect(yield* a.nextOf("message")).toMatchObject({ from: "alice", text: "hi from plain" })
      expect(url).toMatch(/^ws:/)
    }).pipe(required())
  )

  it.live("a wrongly signed or expired token is refused even where tokens are optional; no token is a guest", () =>
    Effect.gen(function* () {
      const forged = yield* mint({ sub: "u-1", name: "alice" }, { secret: "another-secret-another-secret-xx" })
      const a = yield* TestServer.rawJsonClient()
      a.send({ type: "hello", token: forged })
      expect(yield* a.nextOf("error")).toMatchObject({
        code: "unauthorized",
        message: expect.stringMatching(/signature/)
      })
      expect((yield* a.waitClosed()).code).toBe(4001)
      const stale = yield* mint({ sub: "u-1", name: "alice" }, { ttlSeconds: -60 })
      const b = yield* TestServer.rawJsonClient()
      b.send({ type: "hello", token: stale })
      expect(yield* b.nextOf("error")).toMatchObject({
        code: "unauthorized",
        message: expect.stringMatching(/expired/)
      })
      expect((yield* b.waitClosed()).code).toBe(4001)
      const guest = yield* TestServer.jsonClient({ name: "visitor" })
      expect(guest.welcome.name).toBe("visitor")
      expect(guest.welcome).not.toHaveProperty("user")
    }).pipe(optional())
  )
})

describe("permissions", () => {
  it.live("rooms outside the token's patterns are forbidden: hello.rooms, join, send, history, who", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice", rooms: ["general", "team-*"] })
      const a = yield* TestServer.jsonClient({ token, rooms: ["general", "secret"] })
      expect(a.welcome.rooms).toEqual(["general"])
      expect(yield* a.nextOf("error")).toMatchObject({ code: "forbidden" })
      a.send({ type: "join", room: "secret", ref: "j1" })
      expect(yield* a.nextOf("error", (f) => f.ref === "j1")).toMatchObject({ code: "forbidden" })
      // forbidden comes before not_in_room
      a.send({ type: "send", room: "secret", text: "x", ref: "s1" })
      expect(yield* a.nextOf("error", (f) => f.ref === "s1")).toMatchObject({ code: "forbidden" })
      a.send({ type: "history", room: "secret", ref: "h1" })
      expect(yield* a.nextOf("error", (f) => f.ref === "h1")).toMatchObject({ code: "forbidden" })
      a.send({ type: "who", room: "secret", ref: "w1" })
      expect(yield* a.nextOf("error", (f) => f.ref === "w1")).toMatchObject({ code: "forbidden" })
      a.send({ type: "join", room: "team-blue", ref: "j2" })
      expect(yield* a.nextOf("ack", (f) => f.ref === "j2")).toBeDefined()
      a.send({ type: "send", room: "team-blue", text: "allowed", ref: "s2" })
      expect(yield* a.nextOf("message", (f) => f.room === "team-blue")).toMatchObject({ text: "allowed" })
    }).pipe(required())
  )

  it.live("a signed-in user's name is the token's: nick is forbidden, guests cannot take it", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const a = yield* TestServer.jsonClient({ token })
      a.send({ type: "nick", name: "alice2", ref: "n1" })
      expect(yield* a.nextOf("error", (f) => f.ref === "n1")).toMatchObject({ code: "forbidden" })
      const guest = yield* TestServer.jsonClient({ name: "alice" })
      expect(guest.welcome.name).toMatch(/^user\d+$/)
      expect(yield* guest.nextOf("error")).toMatchObject({ code: "name_taken" })
      guest.send({ type: "nick", name: "ALICE", ref: "n2" })
      expect(yield* guest.nextOf("error", (f) => f.ref === "n2")).toMatchObject({ code: "name_taken" })
    }).pipe(optional())
  )

  it.live("a guest holding the name is renamed when its user signs in; another user with the name is refused", () =>
    Effect.gen(function* () {
      const guest = yield* TestServer.jsonClient({ name: "alice" })
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const a = yield* TestServer.jsonClient({ token })
      expect(a.welcome.name).toBe("alice")
      const renamed = yield* guest.nextOf("renamed")
      expect(renamed).toMatchObject({ from: "alice", to: expect.stringMatching(/^user\d+$/) })
      const other = yield* mint({ sub: "u-2", name: "alice" })
      const b = yield* TestServer.rawJsonClient()
      b.send({ type: "hello", token: other })
      expect(yield* b.nextOf("error")).toMatchObject({ code: "name_taken" })
      expect((yield* b.waitClosed()).code).toBe(1008)
    }).pipe(optional())
  )
})

describe("narrower tokens and held names", () => {
  it.live("a resume or a refresh with a token of narrower rooms leaves the rooms it no longer allows", () =>
    Effect.gen(function* () {
      const wide = yield* mint({ sub: "u-1", name: "alice", rooms: ["*"] })
      const narrow = yield* mint({ sub: "u-1", name: "alice", rooms: ["general"] })
      const a = yield* TestServer.jsonClient({ token: wide, rooms: ["general", "secret"] })
      expect(a.welcome.rooms).toEqual(["general", "secret"])
      a.ws.terminate()
      yield* a.waitClosed()
      const resumed = yield* TestServer.jsonClient({ token: narrow, resume: { token: a.welcome.resume } })
      expect(resumed.welcome).toMatchObject({ resumed: true, rooms: ["general"] })
      expect(yield* resumed.nextOf("error")).toMatchObject({ code: "forbidden" })

      const b = yield* TestServer.jsonClient({ token: yield* mint({ sub: "u-2", name: "bob" }), rooms: ["secret"] })
      yield* b.nextOf("history")
      b.send({ type: "refresh", token: yield* mint({ sub: "u-2", name: "bob", rooms: ["general"] }), ref: "r" })
      expect(yield* b.nextOf("error", (f) => f.code === "forbidden")).toBeDefined()
      yield* b.nextOf("ack", (f) => f.ref === "r")
      const carol = yield* TestServer.jsonClient({
        token: yield* mint({ sub: "u-3", name: "carol" }),
        rooms: ["secret"]
      })
      yield* carol.nextOf("history")
      carol.send({ type: "send", room: "secret", text: "not for bob", ref: "s" })
      yield* carol.nextOf("ack", (f) => f.ref === "s")
      b.send({ type: "ping", ref: "p" })
      yield* b.nextOf("pong", (f) => f.ref === "p")
      expect(b.all("message")).toEqual([])
    }).pipe(optional())
  )

  it.live("a signed-in user's name stays theirs while their session is held for resume", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const a = yield* TestServer.jsonClient({ token })
      a.ws.terminate()
      yield* a.waitClosed()
      yield* Effect.sleep(Duration.millis(100))
      const guest = yield* TestServer.jsonClient({ name: "alice" })
      expect(guest.welcome.name).toMatch(/^user\d+$/)
      expect(yield* guest.nextOf("error")).toMatchObject({ code: "name_taken" })
    }).pipe(optional())
  )

  it.live("a second connection whose token names the user differently shares the first one's name", () =>
    Effect.gen(function* () {
      const tab1 = yield* TestServer.jsonClient({ token: yield* mint({ sub: "u-1", name: "alice" }) })
      const tab2 = yield* TestServer.jsonClient({ token: yield* mint({ sub: "u-1", name: "alicia" }) })
      expect(tab2.welcome.name).toBe("alice")
      tab2.send({ type: "who", room: "lobby", ref: "w" })
      expect((yield* tab2.nextOf("members", (f) => f.ref === "w")).names).toEqual(["alice"])
      expect(tab1.welcome.name).toBe("alice")
    }).pipe(optional())
  )
})

describe("one user, many connections", () => {
  it.live("counts and lists the user once, announces joined/left once, and a direct reaches every connection", () =>
    Effect.gen(function* () {
      const bob = yield* TestServer.jsonClient({ name: "bob" })
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const tab1 = yield* TestServer.jsonClient({ token })
      expect(yield* bob.nextOf("joined")).toMatchObject({ name: "alice" })
      const tab2 = yield* TestServer.jsonClient({ token })
      expect(tab2.welcome.users).toBe(2)
      expect(tab2.welcome.name).toBe("alice")
      bob.send({ type: "who", room: "lobby", ref: "w" })
      expect((yield* bob.nextOf("members", (f) => f.ref === "w")).names).toEqual(["alice", "bob"])
      bob.send({ type: "direct", to: "alice", text: "psst", ref: "d" })
      expect(yield* tab1.nextOf("direct")).toMatchObject({ from: "bob", text: "psst" })
      expect(yield* tab2.nextOf("direct")).toMatchObject({ from: "bob", text: "psst" })
      yield* tab1.close()
      yield* tab1.waitClosed()
      bob.send({ type: "send", room: "lobby", text: "marker", ref: "m" })
      yield* bob.nextOf("ack", (f) => f.ref === "m")
      yield* tab2.close()
      expect(yield* bob.nextOf("left")).toMatchObject({ name: "alice" })
      expect(bob.all("joined")).toHaveLength(1)
      // The left came after the marker: the first tab's close announced nothing.
      const order = bob.received.filter((f) => f.type === "left" || (f.type === "message" && f.text === "marker"))
      expect(order.map((f) => f.type)).toEqual(["message", "left"])
    }).pipe(optional())
  )
})

describe("removal and presence hooks", () => {
  it.live("a removed user's connections all close with 4003; presence hooks see the user once", () => {
    const events: Array<string> = []
    const recorder: Hooks = {
      presence: (event) =>
        Effect.sync(() => void events.push(`${event._tag} ${event.name}${"room" in event ? ` ${event.room}` : ""}`))
    }
    return Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const tab1 = yield* TestServer.jsonClient({ token })
      yield* tab1.nextOf("history")
      const tab2 = yield* TestServer.jsonClient({ token })
      yield* tab2.nextOf("history")
      const bob = yield* TestServer.jsonClient({ name: "bob" })
      yield* bob.nextOf("history")
      const chat = yield* ChatServer
      expect(yield* chat.removeUser("u-1")).toBe(2)
      expect((yield* tab1.waitClosed()).code).toBe(4003)
      expect((yield* tab2.waitClosed()).code).toBe(4003)
      expect(yield* bob.nextOf("left")).toMatchObject({ name: "alice" })
      yield* TestServer.waitUntil(() => events.includes("Offline alice"))
      expect(events).toEqual([
        "Online alice",
        "Joined alice lobby",
        "Online bob",
        "Joined bob lobby",
        "Left alice lobby",
        "Offline alice"
      ])
    }).pipe(optional([recorder]))
  })
})

describe("expiry and refresh", () => {
  it.live("token_expired, then refresh with a new token of the same user: the connection goes on", () =>
    Effect.gen(function* () {
      const short = yield* mint({ sub: "u-1", name: "alice" }, { ttlSeconds: 1 })
      const a = yield* TestServer.jsonClient({ token: short })
      expect(yield* a.nextOf("error", (f) => f.code === "token_expired", 4000)).toBeDefined()
      a.send({ type: "refresh", token: yield* mint({ sub: "u-1", name: "alice" }), ref: "r" })
      expect(yield* a.nextOf("ack", (f) => f.ref === "r")).toBeDefined()
      yield* Effect.sleep(Duration.millis(1500))
      a.send({ type: "send", room: "lobby", text: "still here", ref: "s" })
      expect(yield* a.nextOf("ack", (f) => f.ref === "s")).toBeDefined()
    }).pipe(required([], Duration.seconds(1)))
  )

  it.live("no refresh within the grace, or another user's token, closes with 4001", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ token: yield* mint({ sub: "u-1", name: "alice" }, { ttlSeconds: 1 }) })
      yield* a.nextOf("error", (f) => f.code === "token_expired", 4000)
      expect((yield* a.waitClosed(4000)).code).toBe(4001)
      const b = yield* TestServer.jsonClient({ token: yield* mint({ sub: "u-2", name: "bob" }, { ttlSeconds: 1 }) })
      yield* b.nextOf("error", (f) => f.code === "token_expired", 4000)
      b.send({ type: "refresh", token: yield* mint({ sub: "u-3", name: "carol" }), ref: "r" })
      expect(yield* b.nextOf("error", (f) => f.ref === "r")).toMatchObject({ code: "unauthorized" })
      expect((yield* b.waitClosed()).code).toBe(4001)
    }).pipe(required([], Duration.seconds(1)))
  )

  it.live("a plain connection is told its session expired and closed with 4001", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" }, { ttlSeconds: 1 })
      const p = yield* TestServer.plainClient(`?token=${token}`)
      yield* p.next()
      expect(yield* p.next((line) => line.startsWith("Session"), 4000)).toBe(
        "Session expired: reconnect with a new token."
      )
      expect((yield* p.waitClosed()).code).toBe(4001)
    }).pipe(required())
  )
})

describe("resume", () => {
  it.live("needs a token of the session's user: the same user resumes, another is refused with 4001", () =>
    Effect.gen(function* () {
      const token = yield* mint({ sub: "u-1", name: "alice" })
      const a = yield* TestServer.jsonClient({ token })
      const resumeToken = a.welcome.resume as string
      a.ws.terminate()
      yield* a.waitClosed()
      const thief = yield* TestServer.rawJsonClient()
      thief.send({ type: "hello", token: yield* mint({ sub: "u-2", name: "mallory" }), resume: { token: resumeToken } })
      expect(yield* thief.nextOf("error")).toMatchObject({ code: "unauthorized" })
      expect((yield* thief.waitClosed()).code).toBe(4001)

      const b = yield* TestServer.jsonClient({ token })
      const again = b.welcome.resume as string
      b.ws.terminate()
      yield* b.waitClosed()
      const c = yield* TestServer.jsonClient({ token, resume: { token: again } })
      expect(c.welcome).toMatchObject({ resumed: true, name: "alice" })
    }).pipe(required())
  )
})

describe("hooks", () => {
  it.live("an app's cookie connect hook, a word filter that refuses and rewrites, and after-publish in order", () => {
    const sessions = new Map([["s3cr3t", { user: "42", name: "carol" }]])
    const seen: Array<Message> = []
    const cookieHook: Hooks = {
      connect: (request) =>
        Effect.sync(() => {
          const cookie = String(request.headers.cookie ?? "")
          const id = /(?:^|;\s*)sid=([^;]+)/.exec(cookie)?.[1]
          return Option.fromNullable(id === undefined ? undefined : sessions.get(id))
        })
    }
    const wordFilter: Hooks = {
      beforeSend: ({ text }) =>
        /\bspam\b/i.test(text)
          ? Effect.fail(new HookRefusal({ code: "forbidden", message: "no spam here" }))
          : Effect.succeed(text.replace(/\bdarn\b/gi, "d**n"))
    }
    const recorder: Hooks = { afterPublish: ({ message }) => Effect.sync(() => void seen.push(message)) }
    return Effect.gen(function* () {
      const carol = yield* TestServer.jsonClient({}, { headers: { cookie: "theme=dark; sid=s3cr3t" } })
      expect(carol.welcome.name).toBe("carol")
      const stranger = yield* TestServer.rawJsonClient({ headers: { cookie: "sid=nope" } })
      stranger.send({ type: "hello" })
      expect((yield* stranger.waitClosed()).code).toBe(4001)
      carol.send({ type: "send", room: "lobby", text: "buy spam now", ref: "1" })
      expect(yield* carol.nextOf("error", (f) => f.ref === "1")).toMatchObject({
        code: "forbidden",
        message: "no spam here"
      })
      carol.send({ type: "send", room: "lobby", text: "darn it", ref: "2" })
      expect(yield* carol.nextOf("message")).toMatchObject({ text: "d**n it" })
      for (let i = 0; i < 20; i++) carol.send({ type: "send", room: "lobby", text: `n${i}` })
      yield* TestServer.waitUntil(() => seen.length === 21)
      expect(seen.map((m) => m.text)).toEqual(["d**n it", ...Array.from({ length: 20 }, (_, i) => `n${i}`)])
      expect(seen.map((m) => m.id)).toEqual(seen.map((_, i) => seen[0]!.id + i))
    }).pipe(required([cookieHook, wordFilter, recorder]))
  })

  it.live("failing and stuck observers hurt nobody: every message is still delivered at once", () => {
    let calls = 0
    const failing: Hooks = {
      afterPublish: () => Effect.sync(() => calls++).pipe(Effect.zipRight(Effect.fail("database down"))),
      presence: () => Effect.die(new Error("presence hook crashed"))
    }
    const stuck: Hooks = { afterPublish: () => Effect.never }
    return Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "a" })
      const b = yield* TestServer.jsonClient({ name: "b" })
      for (let i = 0; i < 10; i++) a.send({ type: "send", room: "lobby", text: `m${i}`, ref: `r${i}` })
      for (let i = 0; i < 10; i++) expect(yield* b.nextOf("message", (f) => f.text === `m${i}`, 2000)).toBeDefined()
      expect(yield* a.nextOf("ack", (f) => f.ref === "r9", 2000)).toBeDefined()
      expect(calls).toBe(1)
    }).pipe(TestServer.serve({}, [failing, stuck]))
  })
})
