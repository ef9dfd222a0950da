import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as fc from "fast-check"
import { ChatServer } from "../src/http/ChatServer.js"
import * as TestServer from "./support/TestServer.js"

/** Frames a hostile or broken client might send: valid shapes with wrong values, junk, and protocol violations. */
const hostileFrame: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        type: fc.constantFrom(
          "hello",
          "send",
          "join",
          "leave",
          "nick",
          "direct",
          "history",
          "who",
          "ping",
          "typing",
          "edit",
          "delete",
          "react",
          "read",
          "refresh",
          "nope",
          "__proto__"
        ),
        room: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null)),
        text: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(" \u00a0 "), fc.integer()),
        name: fc.oneof(fc.string({ maxLength: 40 }), fc.constant("user1"), fc.constant("a\u0000b")),
        to: fc.string({ maxLength: 40 }),
        before: fc.oneof(fc.integer(), fc.double(), fc.constant(1e308)),
        limit: fc.oneof(fc.integer(), fc.constant(-1), fc.constant(1e9)),
        // The chat features: ids of messages that exist (the two members' own), and others.
        id: fc.oneof(fc.integer({ min: -2, max: 50 }), fc.double(), fc.constant(1e308), fc.string({ maxLength: 5 })),
        reply_to: fc.oneof(fc.integer({ min: -2, max: 50 }), fc.constant("1")),
        emoji: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("👍", "🎉", " ", "\u0000", "x".repeat(17))),
        on: fc.oneof(fc.boolean(), fc.constant("yes")),
        features: fc.oneof(fc.array(fc.string({ maxLength: 40 }), { maxLength: 20 }), fc.string(), fc.constant(null)),
        ref: fc.oneof(fc.string({ maxLength: 80 }), fc.integer())
      },
      { requiredKeys: ["type"] }
    )
    .map((v) => JSON.stringify(v)),
  fc.constant(`{"type":"send","__proto__":{"admin":true},"constructor":{"prototype":{}},"room":"lobby","text":"x"}`),
  fc.nat({ max: 3000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.constant("x".repeat(70 * 1024))
)

describe("fuzz", () => {
  it.live(
    "thousands of hostile frames hurt nobody: well-behaved clients get everything, the registry holds only them",
    () =>
      Effect.gen(function* () {
        const chat = yield* ChatServer
        const alice = yield* TestServer.jsonClient({
          name: "alice",
          features: ["typing", "edits", "reactions", "receipts"]
        })
        const bob = yield* TestServer.jsonClient({ name: "bob" })
        const frames = fc.sample(hostileFrame, { numRuns: 3000, seed: 42 })
        const perClient = 100
        let sent = 0
        for (let start = 0; start < frames.length; start += perClient) {
          // hostile clients of both dialects, some saying hello first, each closed abruptly or cleanly afterwards
          const dialect = (start / perClient) % 3
          const hostile =
            dialect === 0
              ? yield* TestServer.rawJsonClient()
              : dialect === 1
                ? yield* TestServer.jsonClient({ name: `h${start}` })
                : yield* TestServer.plainClient()
          for (const frame of frames.slice(start, start + perClient)) {
            if (hostile.ws.readyState !== 1) break
            hostile.ws.send(frame, { binary: Buffer.isBuffer(frame) })
          }
          // meanwhile the well-behaved clients chat
          alice.send({ type: "send", room: "lobby", text: `a${sent}`, ref: `a${sent}` })
          bob.send({ type: "send", room: "lobby", text: `b${sent}`, ref: `b${sent}` })
          sent++
          if (start % (3 * perClient) === 0) hostile.ws.terminate()
          else yield* hostile.close()
        }
        for (let i = 0; i < sent; i++) {
          yield* alice.nextOf("ack", (f) => f.ref === `a${i}`, 10_000)
          yield* bob.nextOf("ack", (f) => f.ref === `b${i}`, 10_000)
        }
        const texts = (client: typeof alice) =>
          client
            .all("message")
            .filter((m) => m.from === "alice" || m.from === "bob")
            .map((m) => m.text)
        const expected = new Set(Array.from({ length: sent }, (_, i) => [`a${i}`, `b${i}`]).flat())
        const deadline = Date.now() + 10_000
        while ((texts(alice).length < expected.size || texts(bob).length < expected.size) && Date.now() < deadline) {
          yield* Effect.sleep(Duration.millis(20))
        }
        expect(new Set(texts(alice))).toEqual(expected)
        expect(texts(bob)).toEqual(texts(alice))
        // every delivered message id is gapless for both
        const ids = alice.all("message").map((m) => m.id)
        expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1))
        while (chat.registry.size() !== 2 && Date.now() < deadline) yield* Effect.sleep(Duration.millis(20))
        expect(chat.registry.size()).toBe(2)
        expect(alice.ws.readyState).toBe(1)
        expect(bob.ws.readyState).toBe(1)
      }).pipe(
        Effect.scoped,
        Effect.provide(
          TestServer.layer({
            helloTimeout: Duration.seconds(2),
            // a generous bucket, so the hostile frames reach the decoder instead of the rate limiter
            rateLimit: { perSecond: 100_000, burst: 100_000, strikesBeforeClose: 10 }
          })
        )
      ),
    60_000
  )
})
