/**
 * The server API (`/api/v1/`) against a real server on a real port, with real WebSocket clients: the key check, every
 * endpoint's answers and errors, and that what the API does is what members see — a published message in order and
 * with its id, a beforeSend hook obeyed, a disconnect's close code, a moderator's delete.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { NotFound } from "../src/api/ApiErrors.js"
import { API_USER } from "../src/api/Publisher.js"
import { ServerApi } from "../src/api/ServerApi.js"
import { SignJWT } from "jose"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import { HookRefusal, type Hooks, type SendContext } from "../src/server/ChatHooks.js"
import * as ApiClient from "./support/ApiClient.js"
import * as ServerProcess from "./support/ServerProcess.js"
import * as TestServer from "./support/TestServer.js"

const withApi = (hooks: ReadonlyArray<Hooks> = []) =>
  TestServer.serve({ ...TestServer.noRateLimit, apiKey: Redacted.make(ApiClient.KEY) }, hooks)

const address = ChatHttpServer.ServerAddress

/** Every endpoint once, with a body where it takes one. */
const endpoints: ReadonlyArray<readonly [string, string, unknown?]> = [
  ["POST", "/api/v1/publish", { room: "lobby", text: "hi" }],
  ["POST", "/api/v1/disconnect", { name: "alice" }],
  ["GET", "/api/v1/rooms"],
  ["GET", "/api/v1/rooms/lobby/members"],
  ["GET", "/api/v1/rooms/lobby/history"],
  ["DELETE", "/api/v1/rooms/lobby/messages/1"],
  ["GET", "/api/v1/stats"]
]

describe("server API", () => {
  it.live("off without a key: every call but openapi.json answers 404 in JSON", () =>
    Effect.gen(function* () {
      const server = yield* address
      for (const [method, path, body] of endpoints) {
        const answer = yield* ApiClient.call(server, method, path, { key: ApiClient.KEY, body })
        expect(answer.status, `${method} ${path}`).toBe(404)
        expect(answer.body).toMatchObject({ error: "api_disabled" })
      }
      const document = yield* ApiClient.call(server, "GET", "/api/v1/openapi.json", {})
      expect(document.status).toBe(200)
      expect(document.body.openapi).toMatch(/^3\./)
    }).pipe(TestServer.serve())
  )

  it.live("every endpoint: 401 without the key, 403 with another; openapi.json describes them all, no key needed", () =>
    Effect.gen(function* () {
      const server = yield* address
      for (const [method, path, body] of endpoints) {
        const without = yield* ApiClient.call(server, method, path, { body })
        expect(without.status, `${method} ${path}`).toBe(401)
        expect(without.body).toEqual({ error: "unauthorized", message: expect.any(String) })
        const basic = yield* ApiClient.call(server, method, path, {
          body,
          headers: { authorization: "Basic Zm9vOmJhcg==" }
        })
        expect(basic.status).toBe(401)
        const wrong = yield* ApiClient.call(server, method, path, { body, key: `${ApiClient.KEY}x` })
        expect(wrong.status, `${method} ${path}`).toBe(403)
        expect(wrong.body).toEqual({ error: "forbidden", message: expect.any(String) })
      }
      const document = yield* ApiClient.call(server, "GET", "/api/v1/openapi.json", {})
      expect(document.status).toBe(200)
      expect(Object.keys(document.body.paths).sort()).toEqual(
        [
          "/api/v1/disconnect",
          "/api/v1/publish",
          "/api/v1/rooms",
          "/api/v1/rooms/{room}/history",
          "/api/v1/rooms/{room}/members",
          "/api/v1/rooms/{room}/messages/{id}",
          "/api/v1/stats"
        ].sort()
      )
      expect(document.body.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" })
      // Every operation is under the bearer key: none says `security: []` (no auth), and the errors are ours.
      expect(document.body.security).toEqual([{ bearer: [] }])
      for (const operations of Object.values<any>(document.body.paths)) {
        for (const operation of Object.values<any>(operations)) {
          expect(operation.security).toBeUndefined()
          expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403", "413"]))
        }
      }
      expect(JSON.stringify(document.body)).not.toContain("HttpApiDecodeError")
    }).pipe(withApi())
  )

  it.live("publish: members get the message with the answered id, in order with their own, and in history", () =>
    Effect.gen(function* () {
      const server = yield* address
      // The counter is the process's metric, shared with the other tests' servers: compared as a difference.
      const before = (yield* ApiClient.withKey(server, "GET", "/api/v1/stats")).body.messages as number
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      yield* alice.nextOf("history")
      alice.send({ type: "send", room: "lobby", text: "first", ref: "a1" })
      expect(yield* alice.nextOf("ack", (f) => f.ref === "a1")).toMatchObject({ id: 1 })
      const ids: Array<number> = []
      for (const text of ["two", "three", "four"]) {
        const answer = yield* ApiClient.withKey(server, "POST", "/api/v1/publish", { room: "lobby", text })
        expect(answer.status).toBe(200)
        ids.push(answer.body.id)
      }
      expect(ids).toEqual([2, 3, 4])
      const named = yield* ApiClient.withKey(server, "POST", "/api/v1/publish", {
        room: "lobby",
        text: "five",
        from: "ops"
      })
      expect(named.body).toEqual({ id: 5 })
      const received = []
      for (let i = 0; i < 5; i++) received.push(yield* alice.nextOf("message"))
      expect(received.map((m) => [m.id, m.from, m.text])).toEqual([
        [1, "alice", "first"],
        [2, "server", "two"],
        [3, "server", "three"],
        [4, "server", "four"],
        [5, "ops", "five"]
      ])
      const page = yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/lobby/history")
      expect(page.status).toBe(200)
      expect(page.body.room).toBe("lobby")
      expect(page.body.more).toBe(false)
      expect(page.body.messages.map((m: any) => m.text)).toEqual(["first", "two", "three", "four", "five"])
      const stats = yield* ApiClient.withKey(server, "GET", "/api/v1/stats")
      expect(stats.body).toMatchObject({ connections: 1, users: 1, rooms: 1, messages: before + 5 })
    }).pipe(withApi())
  )

  it.live("publish refuses what a member's send would: bad text, room or name, a user's name, an unknown room", () =>
    Effect.gen(function* () {
      const server = yield* address
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      yield* alice.nextOf("history")
      const publish = (body: unknown) => ApiClient.withKey(server, "POST", "/api/v1/publish", body)
      const cases: ReadonlyArray<readonly [unknown, number, string]> = [
        [{ room: "lobby", text: "  \n " }, 400, "invalid_text"],
        [{ room: "lobby", text: "x".repeat(4001) }, 400, "message_too_long"],
        [{ room: "no room", text: "hi" }, 400, "invalid_room"],
        [{ room: "lobby", text: "hi", from: "bad name" }, 400, "invalid_name"],
        [{ room: "lobby", text: "hi", from: "user12" }, 400, "invalid_name"],
        [{ room: "lobby", text: "hi", from: "ALICE" }, 409, "name_taken"],
        [{ room: "nowhere", text: "hi" }, 404, "no_such_room"],
        [{ room: "lobby" }, 400, "invalid_request"],
        [{ room: "lobby", text: 5 }, 400, "invalid_request"],
        [[], 400, "invalid_request"]
      ]
      for (const [body, status, error] of cases) {
        const answer = yield* publish(body)
        expect([answer.status, answer.body?.error], JSON.stringify(body).slice(0, 80)).toEqual([status, error])
        expect(typeof answer.body.message).toBe("string")
      }
      // 4,000 code points is the limit, not 4,000 UTF-16 units.
      expect((yield* publish({ room: "lobby", text: "😀".repeat(4000) })).status).toBe(200)
      expect((yield* alice.nextOf("message")).id).toBe(1)
      expect(alice.all("message")).toHaveLength(1)
    }).pipe(withApi())
  )

  const seen: Array<SendContext> = []
  const moderator: Hooks = {
    beforeSend: (message) => {
      seen.push(message)
      return message.text.includes("spam")
        ? Effect.fail(new HookRefusal({ code: "forbidden", message: "no spam here" }))
        : Effect.succeed(message.text.replace(/darn/g, "****"))
    }
  }

  it.live("publish goes through beforeSend hooks: rewritten, or refused with 409 and never delivered", () =>
    Effect.gen(function* () {
      const server = yield* address
      const bob = yield* TestServer.jsonClient({ name: "bob" })
      yield* bob.nextOf("history")
      const refused = yield* ApiClient.withKey(server, "POST", "/api/v1/publish", { room: "lobby", text: "buy spam" })
      expect(refused.status).toBe(409)
      expect(refused.body).toEqual({ error: "refused", message: "forbidden: no spam here" })
      const rewritten = yield* ApiClient.withKey(server, "POST", "/api/v1/publish", { room: "lobby", text: "darn it" })
      expect(rewritten.body).toEqual({ id: 1 })
      expect(yield* bob.nextOf("message")).toMatchObject({ id: 1, from: "server", text: "**** it" })
      expect(seen.map((s) => [s.user?.user, s.name, s.room])).toEqual([
        [API_USER, "server", "lobby"],
        [API_USER, "server", "lobby"]
      ])
      expect(bob.all("message")).toHaveLength(1)
    }).pipe(withApi([moderator]))
  )

  it.live("disconnect closes the user's connection with 4003 or the given code; unknown names are 404", () =>
    Effect.gen(function* () {
      const server = yield* address
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      const bob = yield* TestServer.jsonClient({ name: "bob" })
      yield* bob.nextOf("history")
      const first = yield* ApiClient.withKey(server, "POST", "/api/v1/disconnect", { name: "ALICE" })
      expect(first).toMatchObject({ status: 200, body: { disconnected: 1 } })
      expect((yield* alice.waitClosed()).code).toBe(4003)
      yield* bob.nextOf("left", (f) => f.name === "alice")
      // 4003 ends the session: the name is free, so there is nobody by that name any more.
      const again = yield* ApiClient.withKey(server, "POST", "/api/v1/disconnect", { name: "alice" })
      expect(again).toMatchObject({ status: 404, body: { error: "no_such_user" } })

      const coded = yield* ApiClient.withKey(server, "POST", "/api/v1/disconnect", { name: "bob", code: 4000 })
      expect(coded.body).toEqual({ disconnected: 1 })
      expect((yield* bob.waitClosed()).code).toBe(4000)

      const cases: ReadonlyArray<readonly [unknown, number, string]> = [
        [{ name: "nobody" }, 404, "no_such_user"],
        [{ name: "bad name" }, 400, "invalid_name"],
        [{ name: "carol", code: 1001 }, 400, "invalid_code"],
        [{ name: "carol", code: 4008 }, 400, "invalid_code"],
        [{ name: "carol", code: "4003" }, 400, "invalid_request"],
        [{}, 400, "invalid_request"]
      ]
      yield* TestServer.jsonClient({ name: "carol" })
      for (const [body, status, error] of cases) {
        const answer = yield* ApiClient.withKey(server, "POST", "/api/v1/disconnect", body)
        expect([answer.status, answer.body?.error], JSON.stringify(body)).toEqual([status, error])
      }
    }).pipe(withApi())
  )

  const SECRET = "test-secret-that-is-long-enough-for-hs256"
  const jwtHooks = JwtHooks.hooks(Effect.runSync(JwtVerifier.make({ secret: SECRET })))

  it.live("disconnect of a signed-in user's name closes every tab of theirs; the name is theirs, not from's", () =>
    Effect.gen(function* () {
      const server = yield* address
      const token = yield* Effect.promise(() =>
        new SignJWT({ name: "dana" })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("u-dana")
          .setExpirationTime("1h")
          .sign(new TextEncoder().encode(SECRET))
      )
      const tab1 = yield* TestServer.jsonClient({ token })
      const tab2 = yield* TestServer.jsonClient({ token })
      yield* tab2.nextOf("history")
      const impersonation = yield* ApiClient.withKey(server, "POST", "/api/v1/publish", {
        room: "lobby",
        text: "hi",
        from: "Dana"
      })
      expect(impersonation).toMatchObject({ status: 409, body: { error: "name_taken" } })
      const answer = yield* ApiClient.withKey(server, "POST", "/api/v1/disconnect", { name: "dana" })
      expect(answer.body).toEqual({ disconnected: 2 })
      expect((yield* tab1.waitClosed()).code).toBe(4003)
      expect((yield* tab2.waitClosed()).code).toBe(4003)
    }).pipe(
      TestServer.serve(
        { ...TestServer.noRateLimit, apiKey: Redacted.make(ApiClient.KEY), auth: { mode: "optional" } },
        [jwtHooks]
      )
    )
  )

  it.live("rooms lists rooms with member counts, members lists names; unknown rooms are 404", () =>
    Effect.gen(function* () {
      const server = yield* address
      yield* TestServer.jsonClient({ name: "alice", rooms: ["lobby", "dev"] })
      yield* TestServer.jsonClient({ name: "bob", rooms: ["lobby"] })
      const plain = yield* TestServer.plainClient("?name=carol")
      yield* plain.next((line) => typeof line === "string" && line.startsWith("You are connected"))
      const rooms = yield* ApiClient.withKey(server, "GET", "/api/v1/rooms")
      expect(rooms.body).toEqual([
        { room: "lobby", members: 3 },
        { room: "dev", members: 1 }
      ])
      const members = yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/lobby/members")
      expect(members.body).toEqual({ room: "lobby", names: ["alice", "bob", "carol"] })
      expect((yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/ghost/members")).status).toBe(404)
      expect((yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/ghost/history")).body.error).toBe("no_such_room")
      expect((yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/a..b%20c/members")).body.error).toBe(
        "invalid_room"
      )
    }).pipe(withApi())
  )

  it.live("history pages like the history frame: before is exclusive, limit defaults to 50 and stops at 100", () =>
    Effect.gen(function* () {
      const server = yield* address
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      yield* alice.nextOf("history")
      for (let i = 1; i <= 120; i++) {
        alice.send({ type: "send", room: "lobby", text: `m${i}`, ref: `r${i}` })
      }
      yield* alice.nextOf("ack", (f) => f.ref === "r120")
      const history = (query: string) => ApiClient.withKey(server, "GET", `/api/v1/rooms/lobby/history${query}`)
      const byDefault = yield* history("")
      expect(byDefault.body.messages.map((m: any) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i))
      expect(byDefault.body.more).toBe(true)
      const older = yield* history("?before=71&limit=10")
      expect(older.body.messages.map((m: any) => m.id)).toEqual(Array.from({ length: 10 }, (_, i) => 61 + i))
      const clamped = yield* history("?limit=1000")
      // The room retains 100 by default: the oldest retained is 21, and nothing older is left.
      expect(clamped.body.messages).toHaveLength(100)
      expect(clamped.body.more).toBe(false)
      expect((yield* history("?limit=0")).body.messages).toEqual([])
      for (const bad of ["?limit=-1", "?limit=x", "?before=0", "?before=1.5"]) {
        const answer = yield* history(bad)
        expect([answer.status, answer.body.error], bad).toEqual([400, "invalid_request"])
      }
    }).pipe(withApi())
  )

  it.live("delete: members with edits get deleted, others [deleted] in history; unknown messages are 404", () =>
    Effect.gen(function* () {
      const server = yield* address
      const alice = yield* TestServer.jsonClient({ name: "alice", features: ["edits"] })
      yield* alice.nextOf("history")
      const plainBob = yield* TestServer.jsonClient({ name: "bob" })
      yield* plainBob.nextOf("history")
      alice.send({ type: "send", room: "lobby", text: "regrettable", ref: "a1" })
      yield* alice.nextOf("ack", (f) => f.ref === "a1")
      const deleted = yield* ApiClient.withKey(server, "DELETE", "/api/v1/rooms/lobby/messages/1")
      expect(deleted).toMatchObject({ status: 200, body: { deleted: true } })
      expect(yield* alice.nextOf("deleted")).toMatchObject({ type: "deleted", room: "lobby", id: 1 })
      // Deleting it again changes nothing and is not an error.
      expect((yield* ApiClient.withKey(server, "DELETE", "/api/v1/rooms/lobby/messages/1")).body).toEqual({
        deleted: true
      })
      const page = yield* ApiClient.withKey(server, "GET", "/api/v1/rooms/lobby/history")
      expect(page.body.messages[0]).toMatchObject({ id: 1, deleted: true, text: "" })
      plainBob.send({ type: "history", room: "lobby", ref: "h" })
      expect((yield* plainBob.nextOf("history", (f) => f.ref === "h")).messages[0]).toMatchObject({
        id: 1,
        text: "[deleted]"
      })
      expect(plainBob.all("deleted")).toEqual([])
      const cases: ReadonlyArray<readonly [string, number, string]> = [
        ["/api/v1/rooms/lobby/messages/2", 404, "no_such_message"],
        ["/api/v1/rooms/ghost/messages/1", 404, "no_such_room"],
        ["/api/v1/rooms/lobby/messages/abc", 400, "invalid_request"],
        ["/api/v1/rooms/lobby/messages/0", 400, "invalid_request"]
      ]
      for (const [path, status, error] of cases) {
        const answer = yield* ApiClient.withKey(server, "DELETE", path)
        expect([answer.status, answer.body.error], path).toEqual([status, error])
      }
    }).pipe(withApi())
  )

  it.live("a typed client derived from the contract publishes, reads history and gets typed errors", () =>
    Effect.gen(function* () {
      const server = yield* address
      const client = yield* HttpApiClient.make(ServerApi, {
        baseUrl: server.url,
        transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(ApiClient.KEY))
      })
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      yield* alice.nextOf("history")
      const { id } = yield* client.messages.publish({ payload: { room: "lobby", text: "typed", from: "bot" } })
      expect(yield* alice.nextOf("message")).toMatchObject({ id, from: "bot", text: "typed" })
      const page = yield* client.rooms.history({ path: { room: "lobby" }, urlParams: { limit: 10 } })
      expect(page.messages.map((m) => m.text)).toEqual(["typed"])
      const missing = yield* Effect.flip(client.rooms.members({ path: { room: "ghost" } }))
      assert.instanceOf(missing, NotFound)
      expect(missing).toMatchObject({ error: "no_such_room" })
    }).pipe(Effect.provide(FetchHttpClient.layer), withApi())
  )

  it.live("bad bodies and paths: JSON errors with 400, 404, 413 and 415, and the server keeps chatting", () =>
    Effect.gen(function* () {
      const server = yield* address
      const alice = yield* TestServer.jsonClient({ name: "alice" })
      yield* alice.nextOf("history")
      const raw = (raw: string, headers: Record<string, string> = {}) =>
        ApiClient.call(server, "POST", "/api/v1/publish", { key: ApiClient.KEY, raw, headers })
      const cases: ReadonlyArray<readonly [Effect.Effect<ApiClient.Answer>, number, string]> = [
        [raw("{bad"), 400, "invalid_json"],
        [raw(""), 400, "invalid_request"],
        [raw("null"), 400, "invalid_request"],
        [raw(JSON.stringify({ room: "lobby", text: "x".repeat(70_000) })), 413, "payload_too_large"],
        [
          raw("room=lobby&text=hi", { "content-type": "application/x-www-form-urlencoded" }),
          415,
          "unsupported_media_type"
        ],
        [ApiClient.withKey(server, "GET", "/api/v1/nope"), 404, "not_found"],
        [ApiClient.withKey(server, "GET", "/api/v1/publish"), 404, "not_found"],
        [ApiClient.withKey(server, "PUT", "/api/v1/rooms"), 404, "not_found"]
      ]
      for (const [request, status, error] of cases) {
        const answer = yield* request
        expect([answer.status, answer.body?.error]).toEqual([status, error])
        expect(answer.contentType).toContain("application/json")
      }
      alice.send({ type: "send", room: "lobby", text: "still here", ref: "s" })
      expect(yield* alice.nextOf("ack", (f) => f.ref === "s")).toMatchObject({ id: 1 })
      assert.strictEqual((yield* ApiClient.withKey(server, "GET", "/api/v1/rooms")).status, 200)
    }).pipe(withApi())
  )
})

describe("server API in the built binary", () => {
  it.live("CHAT_API_KEY enables it as --api-key does", () =>
    Effect.gen(function* () {
      process.env.CHAT_API_KEY = ApiClient.KEY
      const server = yield* ServerProcess.start({ args: ["--store", "memory"] }).pipe(
        Effect.ensuring(Effect.sync(() => delete process.env.CHAT_API_KEY))
      )
      const address = { host: "127.0.0.1", port: server.port, url: server.httpUrl }
      expect((yield* ApiClient.withKey(address, "GET", "/api/v1/rooms")).status).toBe(200)
      expect((yield* ApiClient.call(address, "GET", "/api/v1/rooms", {})).status).toBe(401)
    }).pipe(Effect.scoped)
  )

  it("a key shorter than 16 characters or an invalid --api-name is a usage error (exit 2)", () => {
    const server = fileURLToPath(new URL("../dist/server.js", import.meta.url))
    for (const args of [
      ["--api-key", "short"],
      ["--api-key", ApiClient.KEY, "--api-name", "bad name"]
    ]) {
      const run = spawnSync(process.execPath, [server, "--port", "0", "--store", "memory", ...args], {
        encoding: "utf8",
        timeout: 10_000
      })
      expect(run.status, args.join(" ")).toBe(2)
      expect(run.stderr).toMatch(/--api-(key|name)/)
    }
  })
})
