/**
 * The server API under random input: methods, paths, queries, headers and bodies a broken or hostile caller might
 * send. Every answer must be JSON — a success of the endpoint's own shape, or `{"error", "message"}` with a 4xx
 * status — while WebSocket members keep chatting with gapless ids, and the server stays up.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Redacted, Schema } from "effect"
import * as fc from "fast-check"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import * as ServerApi from "../src/api/ServerApi.js"
import * as ApiClient from "./support/ApiClient.js"
import * as TestServer from "./support/TestServer.js"

const segment = fc.oneof(
  fc.constantFrom("lobby", "dev", "ghost", "", "..", "%2e%2e", "a%20b", "%00", "😀", "x".repeat(70)),
  fc.string({ maxLength: 20 }).map(encodeURIComponent)
)
const id = fc.oneof(
  fc.integer({ min: -5, max: 50 }).map(String),
  fc.constantFrom("1e3", "abc", "1.5", "", "9".repeat(30))
)

const path: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("/api/v1/publish", "/api/v1/disconnect", "/api/v1/rooms", "/api/v1/stats", "/api/v1", "/api/v1/"),
  segment.map((room) => `/api/v1/rooms/${room}/members`),
  fc
    .tuple(segment, fc.option(id), fc.option(id))
    .map(
      ([room, before, limit]) =>
        `/api/v1/rooms/${room}/history?${before === null ? "" : `before=${before}&`}${limit === null ? "" : `limit=${limit}`}`
    ),
  fc.tuple(segment, id).map(([room, message]) => `/api/v1/rooms/${room}/messages/${message}`),
  fc.string({ maxLength: 30 }).map((rest) => `/api/v1/${encodeURIComponent(rest)}`),
  fc.constantFrom("/api/v2/rooms", "/api/v1/rooms?limit=1&limit=2", "/api/v1/rooms/lobby/history?before=1&before=2")
)

const field = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom("lobby", "alice", "bob", "server", "user1", " ", "x".repeat(5000)),
  fc.integer(),
  fc.double(),
  fc.constant(null),
  fc.boolean(),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.constant({ __proto__: { admin: true } })
)

const body: fc.Arbitrary<string | undefined> = fc
  .oneof(
    fc.constant(undefined),
    fc.string({ maxLength: 100 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc
      .record(
        { room: field, text: field, from: field, name: field, code: fc.oneof(field, fc.integer()) },
        { requiredKeys: [] }
      )
      .map((v) => JSON.stringify(v)),
    fc.constantFrom(
      '{"room":"lobby","text":"hello from the fuzzer"}',
      '{"room":"dev","text":"hello dev","from":"fuzzer"}',
      '{"name":"alice","code":4000}',
      '{"__proto__":{"room":"lobby"},"text":"x"}',
      '{"room":"lobby","text":"x"',
      "[".repeat(5000)
    ),
    fc.constant(JSON.stringify({ room: "lobby", text: "x".repeat(70 * 1024) }))
  )
  .chain((b) => (b !== undefined && b.length > 64 * 1024 ? fc.constantFrom(b, undefined, undefined) : fc.constant(b)))

/** Mostly the right key and JSON, so most calls get past the gate to the endpoints' own checks. */
const headers: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    authorization: fc.oneof(
      { arbitrary: fc.constant(`Bearer ${ApiClient.KEY}`), weight: 12 },
      {
        arbitrary: fc.constantFrom(
          `bearer ${ApiClient.KEY}`,
          `Bearer ${ApiClient.KEY} `,
          "Bearer wrong",
          "Bearer ",
          "Basic abc",
          "",
          ApiClient.KEY,
          "\u00e9"
        ),
        weight: 3
      }
    ),
    "content-type": fc.oneof(
      { arbitrary: fc.constant("application/json"), weight: 8 },
      {
        arbitrary: fc.constantFrom(
          "application/json; charset=utf-8",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "",
          "application/octet-stream"
        ),
        weight: 2
      }
    )
  },
  { requiredKeys: ["authorization"] }
)

const request = fc.record({
  method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"),
  path,
  body,
  headers
})

/** The success schema of the endpoint a request reached, by method and path. */
const successOf = (method: string, url: string): Schema.Schema.Any | undefined => {
  const { pathname } = new URL(url, "http://localhost")
  if (method === "POST" && pathname === "/api/v1/publish") return ServerApi.Published
  if (method === "POST" && pathname === "/api/v1/disconnect") return ServerApi.Disconnected
  if (method === "GET" && pathname === "/api/v1/rooms") return Schema.Array(ServerApi.RoomCount)
  if (method === "GET" && pathname === "/api/v1/stats") return ServerApi.Stats
  if (method === "GET" && /^\/api\/v1\/rooms\/[^/]+\/members$/.test(pathname)) return ServerApi.Members
  if (method === "GET" && /^\/api\/v1\/rooms\/[^/]+\/history$/.test(pathname)) return ServerApi.HistoryPage
  if (method === "DELETE" && /^\/api\/v1\/rooms\/[^/]+\/messages\/[^/]+$/.test(pathname)) return ServerApi.Deleted
  return undefined
}

const ErrorBody = Schema.Struct({ error: Schema.String, message: Schema.String })

describe("server API fuzz", () => {
  it.live(
    "random calls: each answer is JSON, a valid success or a 4xx error; members keep chatting; the server stays up",
    () =>
      Effect.gen(function* () {
        const server = yield* ChatHttpServer.ServerAddress
        const alice = yield* TestServer.jsonClient({ name: "alice", rooms: ["lobby", "dev"], features: ["edits"] })
        const bob = yield* TestServer.jsonClient({ name: "bob" })
        yield* bob.nextOf("history")
        const requests = fc.sample(request, { numRuns: 800, seed: 7 })
        const statuses = new Map<number, number>()
        let said = 0
        for (let start = 0; start < requests.length; start += 8) {
          const batch = requests.slice(start, start + 8)
          const answers = yield* Effect.forEach(
            batch,
            (r) =>
              ApiClient.call(server, r.method, r.path, {
                key: undefined,
                headers: r.headers,
                ...(r.body === undefined || r.method === "GET" ? {} : { raw: r.body })
              }),
            { concurrency: "unbounded" }
          )
          answers.forEach((answer, i) => {
            const r = batch[i]!
            const what = `${r.method} ${r.path} ${JSON.stringify(r.headers)} ${String(r.body).slice(0, 100)}`
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
            expect(answer.contentType, what).toContain("application/json")
            expect(answer.body, what).not.toBeUndefined()
            if (answer.status >= 200 && answer.status < 300) {
              const schema = successOf(r.method, r.path)
              expect(schema, what).toBeDefined()
              expect(Either.isRight(Schema.decodeUnknownEither(schema as any)(answer.body)), what).toBe(true)
            } else {
              expect(answer.status, what).toBeGreaterThanOrEqual(400)
              expect(answer.status, what).toBeLessThan(500)
              expect(Either.isRight(Schema.decodeUnknownEither(ErrorBody)(answer.body)), what).toBe(true)
            }
          })
          alice.send({ type: "send", room: "lobby", text: `a${said}`, ref: `a${said}` })
          bob.send({ type: "send", room: "lobby", text: `b${said}`, ref: `b${said}` })
          said++
        }
        for (let i = 0; i < said; i++) {
          yield* bob.nextOf("ack", (f) => f.ref === `b${i}`, 10_000)
        }
        // The fuzzer reached more than the key check: successes and errors past it both happened.
        expect(statuses.get(200) ?? 0).toBeGreaterThan(0)
        expect([400, 404].every((status) => (statuses.get(status) ?? 0) > 0)).toBe(true)
        // alice may have been disconnected by a random call; bob kept chatting with gapless ids either way.
        const ids = bob.all("message").map((m) => m.id)
        expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1))
        expect(bob.all("message").filter((m) => m.from === "bob")).toHaveLength(said)
        const health = yield* Effect.promise(() => fetch(`${server.url}/healthz`).then((r) => r.json()))
        expect(health.status).toBe("ok")
      }).pipe(
        TestServer.serve({
          ...TestServer.noRateLimit,
          apiKey: Redacted.make(ApiClient.KEY),
          helloTimeout: Duration.seconds(2)
        })
      ),
    90_000
  )
})
