/**
 * `/metrics` as an operator's Prometheus sees it: scraped from the built server before and after real traffic, each
 * series moving by what happened. And the same numbers as Effect metrics, seen in process the way an embedding
 * application's own telemetry sees them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Metric, Tracer } from "effect"
import type * as Net from "node:net"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import * as ServerProcess from "./support/ServerProcess.js"
import * as TestServer from "./support/TestServer.js"

// The built-in tracer, to hand spans on to.
const nativeTracer = Effect.runSync(Effect.tracer)

/** `name{labels} value` lines of a scrape, by series (labels without the exporter's scope label). */
const parse = (text: string): Map<string, number> => {
  const series = new Map<string, number>()
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line)
    if (match === null) continue
    const labels = (match[2] ?? "")
      .replace(/,?otel_scope_name="[^"]*"/, "")
      .replace(/^\{,/, "{")
      .replace(/^\{\}$/, "")
    series.set(`${match[1]}${labels}`, Number(match[3]))
  }
  return series
}

const scrape = (server: ServerProcess.ServerProcess) =>
  Effect.promise(async () => {
    const response = await fetch(`${server.httpUrl}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/)
    return parse(await response.text())
  })

const at = (server: ServerProcess.ServerProcess, hello: Record<string, unknown> = {}) =>
  TestServer.jsonClientAt({ host: "127.0.0.1", port: server.port, url: server.httpUrl }, hello)

const value = (series: Map<string, number>, name: string) => series.get(name) ?? 0

describe("/metrics (dist/server.js)", () => {
  it.scopedLive(
    "every series is there from the start and moves with real traffic",
    () =>
      Effect.gen(function* () {
        const server = yield* ServerProcess.start({
          args: ["--store", "memory", "--rate", "5", "--burst", "5", "--max-buffered-bytes", "65536"]
        })
        const before = yield* scrape(server)
        for (const name of [
          'effect_chat_connections{dialect="json"}',
          'effect_chat_connections{dialect="plain"}',
          "effect_chat_users",
          "effect_chat_rooms",
          "effect_chat_messages_published_total",
          "effect_chat_deliveries_total",
          "effect_chat_bytes_out_total",
          "effect_chat_slow_consumer_cuts_total",
          "effect_chat_rate_limited_total",
          "effect_chat_auth_refusals_total",
          'effect_chat_resumes_total{resumed="true"}',
          'effect_chat_resumes_total{resumed="false"}',
          "effect_chat_hook_failures_total",
          "effect_chat_backend_errors_total",
          "effect_chat_publish_to_fanout_ms_count",
          "effect_chat_join_ms_count"
        ]) {
          expect(before.has(name), name).toBe(true)
        }
        expect(value(before, 'effect_chat_connections{dialect="json"}')).toBe(0)

        const a = yield* at(server, { name: "ann" })
        const b = yield* at(server, { name: "bea" })
        for (const text of ["one", "two", "three"]) {
          a.send({ type: "send", room: "lobby", text, ref: text })
          yield* a.nextOf("ack", (f) => f.ref === text)
        }
        yield* b.nextOf("message", (f) => f.text === "three")
        // Past the burst of 5: refused as rate_limited.
        for (let i = 0; i < 8; i++) a.send({ type: "ping" })
        yield* a.nextOf("error", (f) => f.code === "rate_limited")
        const resumed = yield* at(server, { resume: { token: "not-a-token", since: {} } })
        expect(resumed.welcome.resumed).toBe(false)
        yield* Effect.sleep(Duration.millis(1100))
        yield* resumed.close(1000)
        yield* resumed.waitClosed()
        yield* Effect.sleep(Duration.millis(100))

        const during = yield* scrape(server)
        expect(value(during, 'effect_chat_connections{dialect="json"}')).toBe(2)
        expect(value(during, "effect_chat_users")).toBe(2)
        expect(value(during, "effect_chat_rooms")).toBe(1)
        expect(value(during, "effect_chat_messages_published_total")).toBe(3)
        // Each message went to both members.
        expect(value(during, "effect_chat_deliveries_total")).toBeGreaterThanOrEqual(6)
        expect(value(during, "effect_chat_bytes_out_total")).toBeGreaterThan(6 * 40)
        expect(value(during, "effect_chat_rate_limited_total")).toBeGreaterThanOrEqual(1)
        expect(value(during, 'effect_chat_resumes_total{resumed="false"}')).toBe(1)
        expect(value(during, 'effect_chat_closes_total{code="1000"}')).toBe(1)
        expect(value(during, "effect_chat_publish_to_fanout_ms_count")).toBe(3)
        expect(value(during, "effect_chat_join_ms_count")).toBe(3)
      }),
    60_000
  )

  it.scopedLive(
    "a slow consumer's cut counts, and its close by code",
    () =>
      Effect.gen(function* () {
        const server = yield* ServerProcess.start({
          args: ["--store", "memory", "--rate", "100000", "--burst", "100000", "--max-buffered-bytes", "65536"]
        })
        const slow = yield* at(server, { name: "slow" })
        ;(slow.ws as unknown as { _socket: Net.Socket })._socket.pause()
        const flooder = yield* at(server, { name: "flooder" })
        const big = "x".repeat(3000)
        for (let round = 0; round < 100; round++) {
          for (let i = 0; i < 50; i++) flooder.send({ type: "send", room: "lobby", text: big })
          yield* Effect.sleep(Duration.millis(20))
          if (value(yield* scrape(server), "effect_chat_slow_consumer_cuts_total") > 0) break
        }
        expect(value(yield* scrape(server), "effect_chat_slow_consumer_cuts_total")).toBe(1)
        // Closed once the grace is over (its socket destroyed), counted under 4008.
        yield* Effect.sleep(Duration.millis(1500))
        expect(value(yield* scrape(server), 'effect_chat_closes_total{code="4008"}')).toBe(1)
      }),
    60_000
  )

  it.scopedLive("auth refusals count the connections refused for want of a valid token", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start({
        args: ["--store", "memory", "--auth", "required", "--jwt-secret", "a-secret-of-at-least-32-bytes-for-hs256"]
      })
      const refused = yield* TestServer.rawJsonClient().pipe(
        Effect.provideService(ChatHttpServer.ServerAddress, {
          host: "127.0.0.1",
          port: server.port,
          url: server.httpUrl
        })
      )
      refused.send({ type: "hello" })
      expect((yield* refused.waitClosed()).code).toBe(4001)
      const series = yield* scrape(server)
      expect(value(series, "effect_chat_auth_refusals_total")).toBe(1)
    })
  )
})

describe("the same numbers as Effect metrics, in process", () => {
  it.live("an embedding application's Metric.snapshot sees effect-chat's series", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "ann" })
      a.send({ type: "send", room: "lobby", text: "counted", ref: "c" })
      yield* a.nextOf("ack")
      const snapshot = yield* Metric.snapshot
      const names = new Set(snapshot.map((pair) => pair.metricKey.name))
      for (const name of [
        "effect_chat_connections",
        "effect_chat_messages_published_total",
        "effect_chat_deliveries_total",
        "effect_chat_publish_to_fanout_ms"
      ]) {
        expect(names.has(name), name).toBe(true)
      }
    }).pipe(TestServer.serve())
  )
})

describe("spans", () => {
  it.live("an application's own tracer sees the requests as named spans", () => {
    const names: Array<string> = []
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) => {
        names.push(name)
        return nativeTracer.span(name, parent, context, links, startTime, kind, options)
      },
      context: (f) => f()
    })
    return Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "ann" })
      a.send({ type: "send", room: "lobby", text: "traced", ref: "t" })
      yield* a.nextOf("ack")
      a.send({ type: "join", room: "side", ref: "j" })
      yield* a.nextOf("ack", (f) => f.ref === "j")
      for (const name of ["chat.open", "chat.send", "chat.join"]) expect(names, name).toContain(name)
    }).pipe(TestServer.serve(), Effect.withTracer(tracer))
  })
})
