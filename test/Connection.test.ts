/**
 * One client connection against a scripted WebSocket server (real sockets): frames are handled in the socket's own
 * callbacks, so what a handler does wrong must stay inside the connection — a frame that is not one is ignored, a
 * handler that throws is logged — and the frames after it still arrive, in order, until the close says how it ended.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import type * as Net from "node:net"
import { WebSocketServer } from "ws"
import * as Connection from "../src/client/Connection.js"
import * as Protocol from "../src/protocol/Protocol.js"

/** A server that answers `hello` with a welcome, then `after` (raw texts), then closes with 4000 (`silent`: never). */
const scripted = (after: ReadonlyArray<string>, silent = false) =>
  Effect.acquireRelease(
    Effect.async<WebSocketServer>((resume) => {
      const wss: WebSocketServer = new WebSocketServer(
        { port: 0, host: "127.0.0.1", handleProtocols: () => Protocol.SUBPROTOCOL },
        () => resume(Effect.succeed(wss))
      )
      wss.on("connection", (ws) => {
        ws.on("message", () => {
          if (silent) return
          const welcome: Protocol.ServerFrame = {
            type: "welcome",
            protocol: 1,
            name: "ann",
            rooms: ["lobby"],
            users: 1,
            resume: "token",
            resumed: false
          }
          ws.send(Protocol.encode(welcome))
          for (const text of after) ws.send(text)
          ws.close(4000, "done")
        })
      })
    }),
    (wss) => Effect.async<void>((resume) => wss.close(() => resume(Effect.void)))
  ).pipe(Effect.map((wss) => `ws://127.0.0.1:${(wss.address() as Net.AddressInfo).port}/chat`))

/** A connection that must end before any welcome or frame. */
const unwelcomed = (url: string, connectTimeout: Duration.Duration) =>
  Connection.run({
    url,
    connectTimeout,
    heartbeat: Duration.seconds(30),
    hello: () => ({ type: "hello" }),
    onSocket: () => {},
    onWelcome: () => assert.fail("no welcome expected"),
    onFrame: () => assert.fail("no frame expected")
  })

const joined = (name: string) => Protocol.encode({ type: "joined", room: "lobby", name, at: 1 })

describe("client Connection", () => {
  it.scoped(
    "a frame that is not one is ignored and a handler that throws is logged; the frames after them arrive",
    () =>
      Effect.gen(function* () {
        const url = yield* scripted(["not json", joined("bob"), joined("cy"), joined("dee")])
        const seen: Array<string> = []
        let welcomed = 0
        const end = yield* Connection.run({
          url,
          connectTimeout: Duration.seconds(5),
          heartbeat: Duration.seconds(30),
          hello: () => ({ type: "hello", rooms: ["lobby"] }),
          onSocket: () => {},
          onWelcome: () => void welcomed++,
          onFrame: (frame) => {
            if (frame.type === "joined") seen.push(frame.name)
            if (frame.type === "joined" && frame.name === "bob") throw new Error("a bug in the handler")
          }
        })
        assert.strictEqual(welcomed, 1)
        assert.deepStrictEqual(seen, ["bob", "cy", "dee"])
        assert.deepStrictEqual(
          { welcomed: end.welcomed, code: end.code, reason: end.reason },
          {
            welcomed: true,
            code: 4000,
            reason: "done"
          }
        )
      })
  )

  it.live("a server that takes the socket and never welcomes it: the attempt ends at the deadline, timed out", () =>
    Effect.gen(function* () {
      const end = yield* unwelcomed(yield* scripted([], true), Duration.millis(200))
      assert.strictEqual(end.welcomed, false)
      assert.strictEqual(end.error, "timed out")
    }).pipe(Effect.scoped)
  )

  it.live("a server that is not there ends the connection with why, unwelcomed", () =>
    Effect.gen(function* () {
      const end = yield* unwelcomed(yield* Effect.scoped(scripted([])), Duration.seconds(5))
      assert.strictEqual(end.welcomed, false)
      assert.strictEqual(end.error, "connection refused")
    })
  )
})
