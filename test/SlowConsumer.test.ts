/**
 * The slow-consumer cut as a user sees it (PROTOCOL.md, Limits; issue 15): a client that stops reading is cut with
 * 4008 once its backlog passes the bound; at the cut it leaves its rooms at once (the others see `left` then, not
 * when its socket is finally destroyed), nothing more is queued for it, and the close frame reaches it if it reads
 * again within the grace. A client that never reads again is destroyed after the grace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import type * as Net from "node:net"
import * as ChatHttpServer from "../src/http/ChatHttpServer.js"
import * as TestServer from "./support/TestServer.js"

const GRACE_MS = 1000
const limits = {
  ...TestServer.noRateLimit,
  maxBufferedBytes: 64 * 1024,
  maxQueuedMessages: 100_000,
  closeGrace: Duration.millis(GRACE_MS)
}

const socketOf = (client: TestServer.TestClient) => (client.ws as unknown as { _socket: Net.Socket })._socket

/** Floods `room` from `sender` until `until` holds (bounded), in bursts that fill a paused reader's buffers. */
const flood = (sender: TestServer.TestClient, until: () => boolean) =>
  Effect.gen(function* () {
    const text = "x".repeat(2000)
    for (let burst = 0; burst < 400 && !until(); burst++) {
      for (let i = 0; i < 20; i++) sender.send({ type: "send", room: "lobby", text })
      yield* Effect.sleep(Duration.millis(5))
    }
  })

describe("slow consumers", () => {
  it.live("leave their rooms at the cut, and get 4008 when they read again within the grace", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher" })
      const sender = yield* TestServer.jsonClient({ name: "sender" })
      const slow = yield* TestServer.jsonClient({ name: "slow" })
      // Stop reading: the kernel's buffers fill, then the server's backlog passes the bound.
      socketOf(slow).pause()
      let leftAt: number | undefined
      watcher.ws.on("message", (data) => {
        const frame = JSON.parse(data.toString())
        if (frame.type === "left" && frame.name === "slow") leftAt ??= Date.now()
      })
      yield* flood(sender, () => leftAt !== undefined)
      expect(leftAt).toBeDefined()
      // Read again well within the grace: the close frame must arrive, not only a TCP close.
      yield* Effect.sleep(Duration.millis(GRACE_MS / 4))
      socketOf(slow).resume()
      const closed = yield* slow.waitClosed(10_000)
      expect(closed.code).toBe(4008)
      // Its session is held for resume (a slow client may catch up from history).
      const again = yield* TestServer.jsonClient({ resume: { token: slow.welcome.resume, since: {} } })
      expect(again.welcome).toMatchObject({ resumed: true, name: "slow" })
    }).pipe(TestServer.serve(limits))
  )

  it.live("a cut client that never reads again is destroyed after the grace; the room goes on", () =>
    Effect.gen(function* () {
      const watcher = yield* TestServer.jsonClient({ name: "watcher" })
      const sender = yield* TestServer.jsonClient({ name: "sender" })
      const slow = yield* TestServer.jsonClient({ name: "slow" })
      socketOf(slow).pause()
      let cut = false
      watcher.ws.on("message", (data) => {
        const frame = JSON.parse(data.toString())
        if (frame.type === "left" && frame.name === "slow") cut = true
      })
      yield* flood(sender, () => cut)
      const cutAt = Date.now()
      // The server lets go of the connection (its socket destroyed) once the grace is over.
      const { url } = yield* ChatHttpServer.ServerAddress
      const connections = () =>
        Effect.promise(() => fetch(`${url}/healthz`).then((r) => r.json() as Promise<{ connections: number }>))
      while ((yield* connections()).connections > 2) {
        expect(Date.now() - cutAt).toBeLessThan(GRACE_MS + 2000)
        yield* Effect.sleep(Duration.millis(50))
      }
      expect(Date.now() - cutAt).toBeGreaterThanOrEqual(GRACE_MS - 100)
      sender.send({ type: "send", room: "lobby", text: "after", ref: "a" })
      yield* watcher.nextOf("message", (m) => m.text === "after", 10_000)
    }).pipe(TestServer.serve(limits))
  )
})
