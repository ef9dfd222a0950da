/**
 * The server API on a cluster: two nodes in this process over one real Redis. A call to either node acts on the
 * whole cluster — a publish reaches members on the other node, a disconnect closes a connection held by the other
 * node (and counts it), rooms and members are counted across nodes, a delete reaches members everywhere.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { ChatServer } from "../src/http/ChatServer.js"
import * as RedisBackend from "../src/redis/RedisBackend.js"
import { ServerConfig } from "../src/server/ServerConfig.js"
import * as ApiClient from "./support/ApiClient.js"
import * as RedisServer from "./support/RedisServer.js"
import * as TestServer from "./support/TestServer.js"

type Address = typeof ChatHttpServer.ServerAddress.Service

class TestRedis extends Context.Tag("test/ApiTestRedis")<TestRedis, { readonly url: string }>() {
  static layer = Layer.scoped(
    TestRedis,
    Effect.acquireRelease(Effect.promise(RedisServer.acquire), (redis) => Effect.promise(redis.stop))
  )
}

const startNode = (url: string) =>
  Layer.build(
    ChatHttpServer.layer.pipe(
      Layer.provideMerge(ChatServer.layer),
      Layer.provide(RedisBackend.layer({ url })),
      Layer.provide(
        ServerConfig.layer({
          port: 0,
          host: "127.0.0.1",
          apiKey: Redacted.make(ApiClient.KEY),
          ...TestServer.noRateLimit
        })
      )
    )
  ).pipe(Effect.map((context) => Context.get(context, ChatHttpServer.ServerAddress)))

const json = (node: Address, hello: Record<string, unknown> = {}) => TestServer.jsonClientAt(node, hello)

let counter = 0
const unique = (base: string) => `${base}${Date.now().toString(36)}${counter++}`

describe.skipIf(RedisServer.skipReason !== undefined)(
  `server API on two Redis nodes${RedisServer.skipReason === undefined ? "" : ` (skipped: ${RedisServer.skipReason})`}`,
  () => {
    layer(TestRedis.layer, { excludeTestServices: true })((it) => {
      it.effect("publish on one node reaches members on the other, in order with theirs", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const room = unique("room")
          const onB = yield* json(b, { name: unique("bob"), rooms: [room] })
          yield* onB.nextOf("history")
          onB.send({ type: "send", room, text: "from B", ref: "b1" })
          yield* onB.nextOf("ack", (f) => f.ref === "b1")
          const published = yield* ApiClient.withKey(a, "POST", "/api/v1/publish", { room, text: "from the API on A" })
          expect(published).toMatchObject({ status: 200, body: { id: 2 } })
          const first = yield* onB.nextOf("message")
          const second = yield* onB.nextOf("message")
          expect([first.id, second.id, second.from, second.text]).toEqual([1, 2, "server", "from the API on A"])
          const page = yield* ApiClient.withKey(b, "GET", `/api/v1/rooms/${room}/history`)
          expect(page.body.messages.map((m: any) => m.text)).toEqual(["from B", "from the API on A"])
        }).pipe(Effect.scoped)
      )

      it.effect("disconnect on node A closes the user's connection on node B, and counts it", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const name = unique("carol")
          const onB = yield* json(b, { name })
          yield* onB.nextOf("history")
          const answer = yield* ApiClient.withKey(a, "POST", "/api/v1/disconnect", { name })
          expect(answer).toMatchObject({ status: 200, body: { disconnected: 1 } })
          expect((yield* onB.waitClosed()).code).toBe(4003)
          const other = unique("erin")
          const coded = yield* json(b, { name: other })
          yield* coded.nextOf("history")
          const again = yield* ApiClient.withKey(a, "POST", "/api/v1/disconnect", { name: other, code: 4100 })
          expect(again.body).toEqual({ disconnected: 1 })
          expect((yield* coded.waitClosed()).code).toBe(4100)
          expect((yield* ApiClient.withKey(a, "POST", "/api/v1/disconnect", { name: unique("nobody") })).status).toBe(
            404
          )
        }).pipe(Effect.scoped)
      )

      it.effect("rooms and members count the whole cluster; a delete on A reaches members on B", () =>
        Effect.gen(function* () {
          const { url } = yield* TestRedis
          const a = yield* startNode(url)
          const b = yield* startNode(url)
          const [big, small] = [unique("big"), unique("small")]
          const [alice, bob, dave] = [unique("alice"), unique("bob"), unique("dave")]
          const onA = yield* json(a, { name: alice, rooms: [big] })
          yield* onA.nextOf("history")
          const onB = yield* json(b, { name: bob, rooms: [big, small], features: ["edits"] })
          yield* onB.nextOf("history", (f) => f.room === small)
          const other = yield* json(b, { name: dave, rooms: [big] })
          yield* other.nextOf("history")

          for (const node of [a, b]) {
            const rooms = yield* ApiClient.withKey(node, "GET", "/api/v1/rooms")
            expect(rooms.status).toBe(200)
            const ours = (rooms.body as Array<{ room: string; members: number }>).filter(
              (entry) => entry.room === big || entry.room === small
            )
            expect(ours).toEqual([
              { room: big, members: 3 },
              { room: small, members: 1 }
            ])
            const members = yield* ApiClient.withKey(node, "GET", `/api/v1/rooms/${big}/members`)
            expect(members.body.names).toEqual([alice, bob, dave].sort((x, y) => x.localeCompare(y)))
          }

          onA.send({ type: "send", room: big, text: "oops", ref: "a1" })
          const { id } = yield* onA.nextOf("ack", (f) => f.ref === "a1")
          yield* onB.nextOf("message", (f) => f.id === id)
          const deleted = yield* ApiClient.withKey(a, "DELETE", `/api/v1/rooms/${big}/messages/${id}`)
          expect(deleted.body).toEqual({ deleted: true })
          expect(yield* onB.nextOf("deleted")).toMatchObject({ room: big, id })
        }).pipe(Effect.scoped)
      )
    })

    describe.skipIf(RedisServer.restartSkipReason !== undefined)("with Redis down", () => {
      it.live(
        "calls that need Redis answer 503 unavailable in JSON, and work again once it is back",
        () =>
          Effect.gen(function* () {
            const redis = yield* Effect.acquireRelease(Effect.promise(RedisServer.RedisProcess.start), (r) =>
              Effect.promise(() => r.stop())
            )
            const node = yield* startNode(redis.url)
            const room = unique("room")
            const client = yield* json(node, { name: unique("fay"), rooms: [room] })
            yield* client.nextOf("history")
            yield* Effect.promise(() => redis.stop())
            for (const [method, path, body] of [
              ["GET", "/api/v1/rooms", undefined],
              ["GET", `/api/v1/rooms/${room}/members`, undefined],
              ["POST", "/api/v1/publish", { room, text: "anyone?" }],
              ["GET", "/api/v1/stats", undefined]
            ] as const) {
              const answer = yield* ApiClient.withKey(node, method, path, body)
              expect([answer.status, answer.body?.error], `${method} ${path}`).toEqual([503, "unavailable"])
            }
            yield* Effect.promise(() => redis.start())
            const deadline = Date.now() + 20_000
            let status = 0
            while (status !== 200 && Date.now() < deadline) {
              status = (yield* ApiClient.withKey(node, "GET", "/api/v1/rooms")).status
              if (status !== 200) yield* Effect.sleep("200 millis")
            }
            expect(status).toBe(200)
          }).pipe(Effect.scoped),
        60_000
      )
    })
  }
)
