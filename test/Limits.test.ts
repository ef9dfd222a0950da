import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Net from "node:net"
import WebSocket from "ws"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import { ChatServer } from "../src/http/ChatServer.js"
import * as TestServer from "./support/TestServer.js"

const { serve, waitUntil } = TestServer

/** The HTTP status of a refused upgrade, or "open" when the WebSocket opened. */
const handshake = (url: string, options: WebSocket.ClientOptions = {}) =>
  Effect.async<number | "open">((resume) => {
    const ws = new WebSocket(url, options)
    ws.on("open", () => {
      ws.terminate()
      resume(Effect.succeed("open"))
    })
    ws.on("unexpected-response", (_request, response) => resume(Effect.succeed(response.statusCode ?? 0)))
    ws.on("error", () => {})
  })

describe("rate limits", () => {
  it.live("answers rate_limited past the bucket and does not deliver the message", () =>
    Effect.gen(function* () {
      const flooder = yield* TestServer.jsonClient({ name: "flooder" })
      const listener = yield* TestServer.jsonClient({ name: "listener" })
      for (let i = 0; i < 8; i++) flooder.send({ type: "send", room: "lobby", text: `m${i}`, ref: String(i) })
      const answers = []
      for (let i = 0; i < 8; i++) answers.push(yield* flooder.next((f) => f.ref === String(i)))
      expect(answers.map((f) => f.type)).toEqual(["ack", "ack", "ack", "ack", "error", "error", "error", "error"])
      expect(answers[4]).toMatchObject({ code: "rate_limited" })
      listener.send({ type: "ping", ref: "sync" })
      yield* listener.nextOf("pong")
      yield* Effect.sleep(Duration.millis(50))
      expect(listener.all("message").map((m) => m.text)).toEqual(["m0", "m1", "m2", "m3"])
    }).pipe(serve({ rateLimit: { perSecond: 0.01, burst: 4, strikesBeforeClose: 100 } }))
  )

  it.live("closes a connection that keeps flooding after repeated errors with 1008", () =>
    Effect.gen(function* () {
      const flooder = yield* TestServer.jsonClient()
      const plain = yield* TestServer.plainClient()
      for (let i = 0; i < 20; i++) {
        flooder.send({ type: "send", room: "lobby", text: "spam" })
        plain.send("spam")
      }
      expect((yield* flooder.waitClosed()).code).toBe(1008)
      expect((yield* plain.waitClosed()).code).toBe(1008)
    }).pipe(serve({ rateLimit: { perSecond: 0.01, burst: 2, strikesBeforeClose: 3 } }))
  )
})

describe("junk floods", () => {
  it.live("refused frames cost tokens too: a stream of junk is rate limited and then closed with 1008", () =>
    Effect.gen(function* () {
      const junk = yield* TestServer.jsonClient()
      for (let i = 0; i < 30; i++) junk.send({})
      expect((yield* junk.waitClosed()).code).toBe(1008)
      expect(junk.all("error").some((e) => e.code === "rate_limited")).toBe(true)
    }).pipe(serve({ rateLimit: { perSecond: 0.01, burst: 5, strikesBeforeClose: 5 } }))
  )
})

describe("connection limits", () => {
  it.live("closes connections past the server's limit with 1013", () =>
    Effect.gen(function* () {
      yield* TestServer.jsonClient()
      yield* TestServer.plainClient()
      const third = yield* TestServer.plainClient()
      expect((yield* third.waitClosed()).code).toBe(1013)
    }).pipe(serve({ maxConnections: 2 }))
  )

  it.live("closes connections past the per-address limit with 1013", () =>
    Effect.gen(function* () {
      yield* TestServer.plainClient()
      const second = yield* TestServer.plainClient()
      expect((yield* second.waitClosed()).code).toBe(1013)
    }).pipe(serve({ maxConnectionsPerIp: 1 }))
  )
})

describe("handshake", () => {
  it.live("refuses a foreign Origin with 403 when an allow-list is set", () =>
    Effect.gen(function* () {
      const url = yield* TestServer.chatUrl
      expect(yield* handshake(url, { origin: "https://evil.example" })).toBe(403)
      expect(yield* handshake(url)).toBe(403)
      expect(yield* handshake(url, { origin: "https://chat.example" })).toBe("open")
    }).pipe(serve({ allowedOrigins: ["https://chat.example"] }))
  )

  it.live("answers an upgrade whose target is not a URL with 400 and keeps serving", () =>
    Effect.gen(function* () {
      const address = yield* ChatHttpServer.ServerAddress
      const answer = yield* Effect.async<string>((resume) => {
        const socket = Net.connect(address.port, "127.0.0.1", () => {
          socket.write(
            "GET //[ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
          )
        })
        let text = ""
        socket.on("data", (chunk) => void (text += chunk.toString()))
        socket.on("error", () => {})
        socket.on("close", () => resume(Effect.succeed(text)))
      })
      expect(answer).toMatch(/^HTTP\/1.1 400/)
      const client = yield* TestServer.jsonClient()
      expect(client.welcome.type).toBe("welcome")
    }).pipe(serve())
  )

  it.live("answers other paths with 404", () =>
    Effect.gen(function* () {
      const url = yield* TestServer.chatUrl
      expect(yield* handshake(url.replace("/chat", "/elsewhere"))).toBe(404)
    }).pipe(serve())
  )

  it.live("drops a half-sent upgrade request after the header timeout (slowloris)", () =>
    Effect.gen(function* () {
      const address = yield* ChatHttpServer.ServerAddress
      const started = Date.now()
      const closedAfter = yield* Effect.async<number>((resume) => {
        const socket = Net.connect(address.port, "127.0.0.1", () => {
          socket.write("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        })
        socket.on("error", () => {})
        socket.on("close", () => resume(Effect.succeed(Date.now() - started)))
      })
      expect(closedAfter).toBeLessThan(5000)
    }).pipe(serve({ headersTimeout: Duration.millis(500) }))
  )
})

describe("dead peers", () => {
  it.live("terminates a peer that stops answering pings; its entry and rooms are gone", () =>
    Effect.gen(function* () {
      const chat = yield* ChatServer
      const watcher = yield* TestServer.jsonClient({ name: "watcher" })
      const dead = yield* TestServer.jsonClient({ name: "dead" })
      yield* watcher.nextOf("joined")
      // a paused socket reads nothing, so it never sees a ping and never answers
      dead.ws.pause()
      expect(yield* watcher.nextOf("left", () => true, 5000)).toMatchObject({ name: "dead" })
      yield* waitUntil(() => chat.registry.size() === 1)
      watcher.send({ type: "who", room: "lobby", ref: "w" })
      expect((yield* watcher.nextOf("members", (f) => f.ref === "w")).names).toEqual(["watcher"])
    }).pipe(serve({ pingInterval: Duration.millis(200) }))
  )
})

describe("malformed input", () => {
  it.live("closes with 1007 on invalid UTF-8 and others keep chatting", () =>
    Effect.gen(function* () {
      const bad = yield* TestServer.jsonClient()
      const good = yield* TestServer.jsonClient()
      bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
      expect((yield* bad.waitClosed()).code).toBe(1007)
      good.send({ type: "send", room: "lobby", text: "ok", ref: "1" })
      expect(yield* good.nextOf("ack")).toMatchObject({ id: 1 })
    }).pipe(serve())
  )

  it.live("treats control characters in names and rooms as invalid", () =>
    Effect.gen(function* () {
      const a = yield* TestServer.jsonClient({ name: "evil\u0007", rooms: ["lobby", "ro\u0000om"] })
      expect(a.welcome.name).toMatch(/^user\d+$/)
      expect(a.welcome.rooms).toEqual(["lobby"])
      const errors = [yield* a.nextOf("error"), yield* a.nextOf("error")]
      expect(errors.map((e) => e.code).sort()).toEqual(["invalid_name", "invalid_room"])
    }).pipe(serve())
  )
})
