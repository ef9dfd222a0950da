/**
 * The client side of identity: `ChatClient` presents its token, refreshes it when the server says it expired
 * (`onTokenExpired`), ends with 4001 without one, and fails its first connection with the close code. (The terminal
 * client's `CHAT_TOKEN` and exit code 3: ClientCli.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Layer, Stream } from "effect"
import { SignJWT } from "jose"
import * as JwtHooks from "../src/auth/JwtHooks.js"
import * as JwtVerifier from "../src/auth/JwtVerifier.js"
import { ChatClient, type ChatEvent } from "../src/client/ChatClient.js"
import * as TestServer from "./support/TestServer.js"

const SECRET = "client-auth-test-secret-client-auth"
const mint = (sub: string, name: string, ttlSeconds = 3600) =>
  Effect.promise(() =>
    new SignJWT({ sub, name })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(new TextEncoder().encode(SECRET))
  )
const hooks = [JwtHooks.hooks(Effect.runSync(JwtVerifier.make({ secret: SECRET })))]
const server = (grace = Duration.seconds(30)) => TestServer.serve({ auth: { mode: "required", grace } }, hooks)

const withClient = <A, E>(
  options: Omit<Parameters<typeof ChatClient.layer>[0], "url">,
  use: (client: typeof ChatClient.Service) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const url = yield* TestServer.chatUrl
    return yield* Effect.flatMap(ChatClient, use).pipe(Effect.provide(ChatClient.layer({ url, ...options })))
  })

describe("ChatClient with a token", () => {
  it.live("signs in with its token and fetches a new one when the old one expires", () =>
    Effect.gen(function* () {
      let fetched = 0
      yield* withClient(
        {
          token: yield* mint("u-1", "alice", 1),
          onTokenExpired: Effect.suspend(() => {
            fetched++
            return mint("u-1", "alice")
          })
        },
        (client) =>
          Effect.gen(function* () {
            expect((yield* client.session).name).toBe("alice")
            const events = yield* Effect.fork(Stream.runCollect(client.events.pipe(Stream.take(64))))
            // Past the expiry (1 s) and the grace (1 s): still connected, still sending.
            yield* Effect.sleep(Duration.millis(3000))
            expect(fetched).toBe(1)
            expect(yield* client.send("lobby", "still here")).toBeGreaterThan(0)
            yield* Fiber.interrupt(events)
          })
      )
    }).pipe(server(Duration.seconds(1)))
  )

  it.live("without a way to refresh, the session ends with 4001 after the grace", () =>
    Effect.gen(function* () {
      const events = yield* withClient({ token: yield* mint("u-2", "bob", 1) }, (client) =>
        Stream.runCollect(client.events.pipe(Stream.timeout("6 seconds")))
      )
      const seen = Chunk.toArray(events) as Array<ChatEvent>
      expect(seen.some((e) => e.type === "error" && e.code === "token_expired")).toBe(true)
      expect(seen[seen.length - 1]).toMatchObject({ type: "closed", code: 4001 })
      expect(seen.filter((e) => e.type === "reconnecting")).toEqual([])
    }).pipe(server(Duration.seconds(1)))
  )

  it.live("the first connection refused for want of a token fails with its close code", () =>
    Effect.gen(function* () {
      const url = yield* TestServer.chatUrl
      const error = yield* Layer.build(ChatClient.layer({ url })).pipe(Effect.scoped, Effect.flip)
      expect(error).toMatchObject({ reason: "Connect", closeCode: 4001 })
    }).pipe(server())
  )
})
