/**
 * Several nodes over one Redis behave as one server: chat, order, presence, names, direct messages and resume span
 * the nodes; a node that dies leaves presence and its sessions resume elsewhere; a Redis restart is an outage the
 * nodes ride out without dropping a socket. Nodes run in this process (each `RedisBackend.layer` + an HTTP
 * listener on port 0) or, where one must crash, as `node dist/server.js --redis URL` child processes.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option } from "effect"
import { createClient } from "redis"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { type HistoryPage, Hub } from "../src/backend/Hub.js"
import { Names } from "../src/backend/Names.js"
import * as RedisBackend from "../src/redis/RedisBackend.js"
import { RedisClient } from "../src/redis/RedisClient.js"
import { DEFAULT_PREFIX, makeKeys } from "../src/redis/RedisKeys.js"
import { ChatServer } from "../src/http/ChatServer.js"
import { ServerConfig, type ServerOverrides } from "../src/server/ServerConfig.js"
import { ChatHooks, type Hooks } from "../src/server/ChatHooks.js"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import { SignJWT } from "jose"
import { Sessions } from "../src/backend/Sessions.js"
import * as RedisServer from "./support/RedisServer.js"
import * as ServerProcess from "./support/ServerProcess.js"
import * as TestServer from "./support/TestServer.js"

type Address = typeof ChatHttpServer.ServerAddress.Service

class TestRedis extends Context.Tag("test/TestRedis")<TestRedis, { readonly url: string }>() {
  static layer = Layer.scoped(
    TestRedis,
    Effect.acquireRelease(Effect.promise(RedisServer.acquire), (redis) => Effect.promise(redis.stop))
  )
}

/** A node in this process: the Redis backends and an HTTP listener on a free port, stopped with the scope. */
const startNode = (url: string, overrides: ServerOverrides = {}, hooks: ReadonlyArray<Hooks> = []) =>
  Layer.build(
    ChatHttpServer.layer.pipe(
      Layer.provideMerge(ChatServer.layer),
      Layer.provide(RedisBackend.layer({ url })),
      Layer.provide(ChatHooks.layer(...hooks)),
      Layer.provide(ServerConfig.layer({ port: 0, host: "127.0.0.1", ...overrides }))
    )
  ).pipe(Effect.map((context) => Context.get(context, ChatHttpServer.ServerAddress)))

/** The Redis backends alone (no HTTP), for what a socket cannot show directly. */
const startBackends = (url: string, options: Omit<RedisBackend.RedisBackendOptions, "url"> = {}) =>
  Layer.build(RedisBackend.layer({ url, ...options }))

const at = (node: Address) => Effect.provideService(ChatHttpServer.ServerAddress, node)

const json = (node: Address, hello: Record<string, unknown> = {}) => TestServer.jsonClient(hello).pipe(at(node))

/** Names and rooms unique to this run, so tests never meet each other's state in a shared Redis. */
let counter = 0
const unique = (base: string) => `${base}${Date.now().toString(36)}${counter++}`

const waitUntil = <E, R>(condition: Effect.Effect<boolean, E, R>, timeoutMs: number, what: string) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* Effect.sleep(Duration.millis(100))
    }
  })

const readyz = (node: Address) =>
  Effect.promise(() =>
    fetch(`${node.url}/readyz`).then(
      (response) => response.status,
      () => 0
    )
  )

/** `node dist/server.js --redis URL` on a free port, for a node that must really crash; stopped with the scope. */
const startChild = (url: string) =>
  ServerProcess.start({ args: ["--redis", url] }).pipe(
    Effect.map((server) => ({ server, address: { host: "127.0.0.1", port: server.port, url: server.httpUrl } }))
  )

const healthUsers = (node: Address) =>
  Effect.promise(() =>
    fetch(`${node.url}/healthz`).then((response) => response.json() as Promise<{ users: number }>)
  ).pipe(Effect.map((health) => health.users))

const who = (client: TestServer.TestClient, room: string) =>
  Effect.gen(function* () {
    const ref = unique("who")
    client.send({ type: "who", room, ref })
    return (yield* client.nextOf("members", (f) => f.ref === ref)).names as Array<string>
  })

describe.skipIf(RedisServer.skipReason !== undefined)(
  `Redis backend${RedisServer.skipReason === undefined ? "" : ` (skipped: ${RedisServer.skipReason})`}`,
  () => {
    layer(TestRedis.layer, { excludeTestServices: true })((it) => {
      it.effect("chat, members, names and direct messages span the nodes", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const room = unique("room")
          const [alice, bob, carol] = [unique("alice"), unique("bob"), unique("carol")]

          const onA = yield* json(a, { name: alice, rooms: [room] })
          yield* onA.nextOf("history")
          const onB = yield* json(b, { name: bob, rooms: [room] })
          expect(onB.welcome.users).toBe(onA.welcome.users + 1)
          expect((yield* onB.nextOf("members")).names).toEqual([alice, bob].sort())
          expect(yield* onA.nextOf("joined")).toMatchObject({ room, name: bob })

          onA.send({ type: "send", room, text: "hello from A", ref: "s1" })
          expect(yield* onA.nextOf("ack", (f) => f.ref === "s1")).toMatchObject({ id: 1 })
          expect(yield* onB.nextOf("message")).toMatchObject({ room, id: 1, from: alice, text: "hello from A" })
          expect(yield* onA.nextOf("message")).toMatchObject({ id: 1 })
          expect(yield* who(onB, room)).toEqual([alice, bob].sort())

          // A name held on A is taken on B, whatever the letter case.
          const intruder = yield* json(b, { name: alice.toUpperCase() })
          expect(yield* intruder.nextOf("error")).toMatchObject({ code: "name_taken" })
          intruder.send({ type: "nick", name: alice, ref: "n1" })
          expect(yield* intruder.nextOf("error", (f) => f.ref === "n1")).toMatchObject({ code: "name_taken" })
          intruder.send({ type: "nick", name: carol, ref: "n2" })
          yield* intruder.nextOf("ack", (f) => f.ref === "n2")

          onB.send({ type: "direct", to: alice.toUpperCase(), text: "psst", ref: "d1" })
          expect(yield* onA.nextOf("direct")).toMatchObject({ from: bob, to: alice, text: "psst" })
          expect(yield* onB.nextOf("direct")).toMatchObject({ from: bob, to: alice, text: "psst" })

          // Dropped, alice's name is held for resume on A: nobody can read a direct message to it now.
          onA.ws.terminate()
          yield* onB.nextOf("left", (f) => f.name === alice)
          onB.send({ type: "direct", to: alice, text: "are you there?", ref: "d2" })
          expect(yield* onB.nextOf("error", (f) => f.ref === "d2")).toMatchObject({ code: "no_such_user" })
        }).pipe(Effect.scoped)
      )

      it.effect("resuming a live session on another node takes it over; direct messages follow it", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const room = unique("move")
          const [alice, bob] = [unique("alice"), unique("bob")]
          const bobOnA = yield* json(a, { name: bob, rooms: [room] })
          const aliceOnA = yield* json(a, { name: alice, rooms: [room] })
          yield* bobOnA.nextOf("history")
          yield* aliceOnA.nextOf("history")
          bobOnA.send({ type: "send", room, text: "one", ref: "one" })
          yield* aliceOnA.nextOf("message")

          const aliceOnB = yield* json(b, { resume: { token: aliceOnA.welcome.resume, since: { [room]: 1 } } })
          expect(aliceOnB.welcome).toMatchObject({ resumed: true, name: alice, users: bobOnA.welcome.users + 1 })
          expect((yield* aliceOnA.waitClosed()).code).toBe(4009)
          expect(yield* aliceOnB.nextOf("history")).toMatchObject({ messages: [] })
          expect(yield* who(bobOnA, room)).toEqual([alice, bob].sort())

          bobOnA.send({ type: "direct", to: alice, text: "found you" })
          expect(yield* aliceOnB.nextOf("direct")).toMatchObject({ from: bob, text: "found you" })
          bobOnA.send({ type: "send", room, text: "two" })
          expect(yield* aliceOnB.nextOf("message")).toMatchObject({ id: 2, text: "two" })
          expect(bobOnA.all("joined").concat(bobOnA.all("left"))).toEqual([
            expect.objectContaining({ type: "joined", name: alice })
          ])
        }).pipe(Effect.scoped)
      )

      it.effect("one signed-in user on two nodes: counted, listed and announced once, a direct reaches both", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const secret = "redis-test-secret-redis-test-secret"
          const hooks = [JwtHooks.hooks(Effect.runSync(JwtVerifier.make({ secret })))]
          const a = yield* startNode(url, { auth: { mode: "optional" } }, hooks)
          const b = yield* startNode(url, { auth: { mode: "optional" } }, hooks)
          const room = unique("tabs")
          const [alice, bob] = [unique("alice"), unique("bob")]
          const token = yield* Effect.promise(() =>
            new SignJWT({ sub: unique("sub"), name: alice })
              .setProtectedHeader({ alg: "HS256" })
              .setExpirationTime("1h")
              .sign(new TextEncoder().encode(secret))
          )
          const bobOnA = yield* json(a, { name: bob, rooms: [room] })
          yield* bobOnA.nextOf("history")
          const aliceOnA = yield* json(a, { token, rooms: [room] })
          yield* aliceOnA.nextOf("history")
          expect(yield* bobOnA.nextOf("joined")).toMatchObject({ name: alice })
          const aliceOnB = yield* json(b, { token, rooms: [room] })
          expect(aliceOnB.welcome.name).toBe(alice)
          yield* aliceOnB.nextOf("history")
          expect(yield* who(bobOnA, room)).toEqual([alice, bob].sort())
          bobOnA.send({ type: "direct", to: alice, text: "both of you" })
          expect(yield* aliceOnA.nextOf("direct")).toMatchObject({ from: bob, text: "both of you" })
          expect(yield* aliceOnB.nextOf("direct")).toMatchObject({ from: bob, text: "both of you" })
          yield* aliceOnA.close()
          yield* aliceOnA.waitClosed()
          bobOnA.send({ type: "send", room, text: "marker", ref: "m" })
          yield* bobOnA.nextOf("ack", (f) => f.ref === "m")
          expect(yield* who(bobOnA, room)).toEqual([alice, bob].sort())
          yield* aliceOnB.close()
          expect(yield* bobOnA.nextOf("left", () => true, 5000)).toMatchObject({ name: alice })
          expect(bobOnA.all("joined")).toHaveLength(1)
          expect(bobOnA.all("left")).toHaveLength(1)
        }).pipe(Effect.scoped)
      )

      it.effect("concurrent senders on three nodes: every receiver sees the same gapless id order", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const nodes = [yield* startNode(url), yield* startNode(url), yield* startNode(url)]
          const room = unique("order")
          const clients = yield* Effect.forEach(nodes, (node) => json(node, { rooms: [room] }))
          for (const client of clients) yield* client.nextOf("history")
          const perSender = 25
          for (let i = 0; i < perSender; i++) {
            clients.forEach((client, n) => client.send({ type: "send", room, text: `n${n}-${i}` }))
          }
          const total = perSender * clients.length
          const seen = yield* Effect.forEach(
            clients,
            (client) =>
              Effect.gen(function* () {
                const messages: Array<{ id: number; text: string }> = []
                while (messages.length < total) messages.push(yield* client.nextOf("message", () => true, 10_000))
                return messages.map((m) => `${m.id}:${m.text}`)
              }),
            { concurrency: "unbounded" }
          )
          const ids = seen[0]!.map((entry) => Number(entry.split(":")[0]))
          expect(ids).toEqual(Array.from({ length: total }, (_, i) => i + 1))
          expect(seen[1]).toEqual(seen[0])
          expect(seen[2]).toEqual(seen[0])
        }).pipe(Effect.scoped)
      )

      it.effect("a lost pub/sub connection comes back by itself, and what it missed is read from the room log", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const room = unique("gap")
          const onA = yield* json(a, { rooms: [room] })
          const onB = yield* json(b, { rooms: [room] })
          yield* onA.nextOf("history")
          yield* onB.nextOf("history")
          onB.send({ type: "send", room, text: "first" })
          expect(yield* onA.nextOf("message")).toMatchObject({ id: 1 })

          const admin = yield* Effect.acquireRelease(
            Effect.promise(() => createClient({ url }).connect()),
            (client) => Effect.promise(() => client.close())
          )
          // Another node's publish landing while every subscriber is away: the kill and the publish are one
          // pipeline, so Redis runs both before a subscriber can reconnect, and no channel carries the message.
          const keys = makeKeys(DEFAULT_PREFIX)
          const body = JSON.stringify({ from: "ghost", text: "missed", at: Date.now() })
          yield* Effect.promise(() =>
            admin
              .multi()
              .addCommand(["CLIENT", "KILL", "TYPE", "pubsub"])
              .addCommand(["INCR", keys.roomSeq(room)])
              .addCommand(["XADD", keys.roomLog(room), "2-0", "m", body])
              .addCommand(["PUBLISH", keys.roomChannel(room), `M2 ${body}`])
              .exec()
          )
          expect(yield* onA.nextOf("message")).toMatchObject({ id: 2, from: "ghost", text: "missed" })
          expect(yield* onB.nextOf("message", (f) => f.id === 2)).toMatchObject({ text: "missed" })
          onA.send({ type: "send", room, text: "live again" })
          expect(yield* onB.nextOf("message", (f) => f.id === 3)).toMatchObject({ text: "live again" })
          // A's own copy travels through its node's subscription: wait for it rather than for B's
          yield* onA.nextOf("message", (f) => f.id === 3)
          expect(onA.all("message").map((m: { id: number }) => m.id)).toEqual([1, 2, 3])
        }).pipe(Effect.scoped)
      )

      it.effect("history pages by exclusive bounds, says when older messages remain, and expires idle rooms", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const context = yield* startBackends(url)
          const hub = Context.get(context, Hub)
          const redis = Context.get(context, RedisClient)
          const room = unique("paging")
          for (let i = 1; i <= 5; i++) yield* hub.publish(room, { from: "x", text: `t${i}` })
          const ids = (page: HistoryPage) => page.messages.map((m) => m.id)
          const older = yield* hub.history(room, { before: 4, limit: 2 })
          expect([ids(older), older.more]).toEqual([[2, 3], true])
          const newer = yield* hub.history(room, { after: 3, limit: 10, oldestFirst: true })
          expect([ids(newer), newer.more]).toEqual([[4, 5], true])
          const all = yield* hub.history(room, { limit: 50 })
          expect([ids(all), all.more]).toEqual([[1, 2, 3, 4, 5], false])
          expect((yield* hub.history(room, { before: 1, limit: 50 })).messages).toEqual([])
          expect(yield* hub.bounds(room)).toEqual({ oldest: 1, latest: 5 })
          const ttl = Number(yield* redis.command("ttl", ["PTTL", redis.keys.roomLog(room)]))
          expect(ttl).toBeGreaterThan(0)
          expect(ttl).toBeLessThanOrEqual(10 * 60 * 1000)
        }).pipe(Effect.scoped)
      )

      it.effect("names: taken once in the cluster, freed only by their owner", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = Context.get(yield* startBackends(url), Names)
          const b = Context.get(yield* startBackends(url), Names)
          const name = unique("Dora")
          expect(yield* a.claim({ name, session: "s1", node: "A" })).toBe(true)
          expect(yield* b.claim({ name: name.toLowerCase(), session: "s2", node: "B" })).toBe(false)
          yield* b.release(name, "s2")
          expect(Option.map(yield* b.owner(name.toUpperCase()), (o) => o.session)).toEqual(Option.some("s1"))
          yield* a.release(name, "s1")
          expect(yield* b.claim({ name, session: "s2", node: "B" })).toBe(true)
          const guests = [yield* a.nextGuest, yield* b.nextGuest, yield* a.nextGuest]
          expect(new Set(guests).size).toBe(3)
        }).pipe(Effect.scoped)
      )

      it.effect("a dead node's sessions: held from its last beat, resumable once, expired on exactly one node", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const fast = { heartbeat: Duration.millis(100), deadAfter: Duration.millis(500) }
          const windowMs = 60_000
          const a = yield* startBackends(url, { resumeWindow: Duration.millis(windowMs), ...fast })
          const b = yield* startBackends(url, { resumeWindow: Duration.millis(windowMs), ...fast })
          const redis = Context.get(a, RedisClient)
          const [seconds, micros] = (yield* redis.command("time", ["TIME"])) as [string, string]
          const lastBeat = Number(seconds) * 1000 - 20_000 + Math.floor(Number(micros) / 1000)
          const ghost = unique("ghost")
          yield* redis.command("beat", ["ZADD", redis.keys.nodes, lastBeat, ghost])
          const session = unique("session")
          const sessions = Context.get(a, Sessions)
          const token = yield* sessions.issue({ session, name: unique("gus"), rooms: ["lobby"], node: ghost })

          const redeemed = yield* Context.get(b, Sessions).redeem(token)
          expect(Option.map(redeemed, (r) => [r.session, r.heldUntil])).toEqual(
            Option.some([session, lastBeat + windowMs])
          )
          expect(yield* sessions.redeem(token)).toEqual(Option.none())

          yield* waitUntil(
            Effect.map(redis.command("ghost", ["ZSCORE", redis.keys.nodes, ghost]), (score) => score === null),
            5000,
            "the dead node is buried"
          )
          const later = lastBeat + windowMs + 1
          const [fromA, fromB] = yield* Effect.all([sessions.expire(later), Context.get(b, Sessions).expire(later)], {
            concurrency: "unbounded"
          })
          expect([...fromA, ...fromB].filter((r) => r.session === session)).toHaveLength(1)
        }).pipe(Effect.scoped)
      )

      it.effect(
        "a node killed: its members leave within 30 s, its sessions resume on another node",
        () =>
          Effect.gen(function* () {
            const { url } = yield* TestRedis
            const a = yield* startNode(url)
            const c = yield* startChild(url)
            const room = unique("crash")
            const [alice, carol, xavier] = [unique("alice"), unique("carol"), unique("xavier")]
            const onA = yield* json(a, { name: alice, rooms: [room] })
            const carolOnC = yield* json(c.address, { name: carol, rooms: [room] })
            const xavierOnC = yield* json(c.address, { name: xavier, rooms: [room] })
            for (const client of [onA, carolOnC, xavierOnC]) yield* client.nextOf("history")
            expect(yield* who(onA, room)).toEqual([alice, carol, xavier].sort())
            const usersBefore = yield* healthUsers(a)
            for (let i = 1; i <= 3; i++) onA.send({ type: "send", room, text: `m${i}` })
            for (let i = 1; i <= 3; i++) expect(yield* xavierOnC.nextOf("message")).toMatchObject({ id: i })

            yield* c.server.kill
            yield* xavierOnC.waitClosed()
            onA.send({ type: "send", room, text: "m4" })
            onA.send({ type: "send", room, text: "m5", ref: "m5" })
            yield* onA.nextOf("ack", (f) => f.ref === "m5")

            // At once, while the dead node still looks alive: the session is taken over from it.
            const xavierOnA = yield* json(a, { resume: { token: xavierOnC.welcome.resume, since: { [room]: 3 } } })
            expect(xavierOnA.welcome).toMatchObject({ resumed: true, name: xavier })
            expect((yield* xavierOnA.nextOf("history")).messages.map((m: { id: number }) => m.id)).toEqual([4, 5])
            onA.send({ type: "send", room, text: "m6" })
            expect(yield* xavierOnA.nextOf("message")).toMatchObject({ id: 6, text: "m6" })

            yield* waitUntil(
              Effect.map(who(onA, room), (names) => names.join() === [alice, xavier].sort().join()),
              25_000,
              "the dead node's members are gone"
            )
            expect(yield* healthUsers(a)).toBe(usersBefore - 1)

            // Once the node is found dead its sessions are held from its last heartbeat: carol resumes too.
            const carolOnA = yield* json(a, { resume: { token: carolOnC.welcome.resume, since: { [room]: 3 } } })
            expect(carolOnA.welcome).toMatchObject({ resumed: true, name: carol })
            const missed = (yield* carolOnA.nextOf("history")).messages.map((m: { text: string }) => m.text)
            expect(missed).toEqual(["m4", "m5", "m6"])
            expect(xavierOnA.all("message").map((m: { id: number }) => m.id)).toEqual([6])
          }).pipe(Effect.scoped),
        { timeout: 40_000 }
      )
    })

    describe.skipIf(RedisServer.restartSkipReason !== undefined)(
      `Redis outages${RedisServer.restartSkipReason === undefined ? "" : ` (skipped: ${RedisServer.restartSkipReason})`}`,
      () => {
        const ownRedis = (start: boolean) =>
          Effect.acquireRelease(
            Effect.promise(async () => {
              const redis = new RedisServer.RedisProcess(await RedisServer.freePort())
              if (start) await redis.start()
              return redis
            }),
            (redis) => Effect.promise(() => redis.stop())
          )

        it.live("a restart of Redis: 503 and error frames during the outage, chat on the same sockets after", () =>
          Effect.gen(function* () {
            const redis = yield* ownRedis(true)
            const a = yield* startNode(redis.url)
            const b = yield* startNode(redis.url)
            const room = unique("restart")
            const [alice, bob] = [unique("alice"), unique("bob")]
            const onA = yield* json(a, { name: alice, rooms: [room] })
            const onB = yield* json(b, { name: bob, rooms: [room] })
            yield* onA.nextOf("history")
            yield* onB.nextOf("history")
            onA.send({ type: "send", room, text: "before" })
            expect(yield* onB.nextOf("message")).toMatchObject({ id: 1, text: "before" })
            expect(yield* readyz(a)).toBe(200)

            yield* Effect.promise(() => redis.stop())
            yield* waitUntil(
              Effect.map(readyz(a), (status) => status === 503),
              5000,
              "A reports 503"
            )
            yield* waitUntil(
              Effect.map(readyz(b), (status) => status === 503),
              5000,
              "B reports 503"
            )
            onA.send({ type: "send", room, text: "during", ref: "lost" })
            expect(yield* onA.nextOf("error", (f) => f.ref === "lost")).toMatchObject({ code: "unavailable" })

            // Redis comes back empty (no persistence): the nodes write their state back.
            yield* Effect.promise(() => redis.start())
            yield* waitUntil(
              Effect.map(readyz(a), (status) => status === 200),
              10_000,
              "A reports 200"
            )
            yield* waitUntil(
              Effect.map(readyz(b), (status) => status === 200),
              10_000,
              "B reports 200"
            )
            onA.send({ type: "send", room, text: "after", ref: "back" })
            expect(yield* onA.nextOf("ack", (f) => f.ref === "back")).toMatchObject({ id: 2 })
            expect(yield* onB.nextOf("message")).toMatchObject({ id: 2, from: alice, text: "after" })
            onB.send({ type: "send", room, text: "reply" })
            expect(yield* onA.nextOf("message", (f) => f.text === "reply")).toMatchObject({ id: 3, from: bob })
            yield* waitUntil(
              Effect.map(who(onB, room), (names) => names.join() === [alice, bob].sort().join()),
              5000,
              "both members are listed again"
            )
            const intruder = yield* json(b, { name: alice })
            expect(yield* intruder.nextOf("error")).toMatchObject({ code: "name_taken" })
            expect(onA.ws.readyState).toBe(1)
            expect(onB.ws.readyState).toBe(1)
          }).pipe(Effect.scoped)
        )

        it.live("Redis losing its data under running nodes: each node writes its own state back", () =>
          Effect.gen(function* () {
            const redis = yield* ownRedis(true)
            const a = yield* startNode(redis.url)
            const b = yield* startNode(redis.url)
            const room = unique("wiped")
            const [alice, bob] = [unique("alice"), unique("bob")]
            const bobOnA = yield* json(a, { name: bob, rooms: [room] })
            const aliceOnA = yield* json(a, { name: alice, rooms: [room] })
            yield* aliceOnA.nextOf("history")
            // alice moves to B: A must not count her again when it restores its own users.
            const aliceOnB = yield* json(b, { resume: { token: aliceOnA.welcome.resume, since: {} } })
            expect(aliceOnB.welcome.resumed).toBe(true)
            yield* aliceOnA.waitClosed()
            bobOnA.send({ type: "send", room, text: "before", ref: "before" })
            yield* bobOnA.nextOf("ack", (f) => f.ref === "before")
            expect(yield* healthUsers(a)).toBe(2)

            const admin = yield* Effect.acquireRelease(
              Effect.promise(() => createClient({ url: redis.url }).connect()),
              (client) => Effect.promise(() => client.close())
            )
            yield* Effect.promise(() => admin.flushAll())
            yield* waitUntil(
              Effect.zipWith(
                healthUsers(a),
                who(bobOnA, room),
                (users, names) => users === 2 && names.join() === [alice, bob].sort().join()
              ),
              10_000,
              "both nodes wrote their users and members back"
            )
            const intruder = yield* json(a, { name: alice })
            expect(yield* intruder.nextOf("error")).toMatchObject({ code: "name_taken" })
            aliceOnB.send({ type: "send", room, text: "after", ref: "after" })
            expect(yield* aliceOnB.nextOf("ack", (f) => f.ref === "after")).toMatchObject({ id: 2 })
            expect(yield* bobOnA.nextOf("message", (f) => f.text === "after")).toMatchObject({ id: 2, from: alice })
            expect(yield* healthUsers(b)).toBe(3)
          }).pipe(Effect.scoped)
        )

        it.live("a node starts while Redis is down, and serves once it is up", () =>
          Effect.gen(function* () {
            const redis = yield* ownRedis(false)
            const node = yield* startNode(redis.url)
            expect(yield* readyz(node)).toBe(503)
            yield* Effect.promise(() => redis.start())
            yield* waitUntil(
              Effect.map(readyz(node), (status) => status === 200),
              10_000,
              "the node reports 200"
            )
            const room = unique("late")
            const client = yield* json(node, { rooms: [room] })
            yield* client.nextOf("history")
            client.send({ type: "send", room, text: "finally", ref: "f" })
            expect(yield* client.nextOf("ack", (f) => f.ref === "f")).toMatchObject({ id: 1 })
          }).pipe(Effect.scoped)
        )
      }
    )
  }
)
