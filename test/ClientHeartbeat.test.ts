import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import * as Heartbeat from "../src/client/Heartbeat.js"

describe("client/Heartbeat.make", () => {
  it.effect("pings every interval and declares a peer dead when a ping goes unanswered", () =>
    Effect.gen(function* () {
      let pings = 0
      let dead = false
      const heartbeat = Heartbeat.make({
        interval: Duration.seconds(30),
        ping: Effect.sync(() => void pings++),
        onDead: Effect.sync(() => void (dead = true))
      })
      const fiber = yield* Effect.fork(heartbeat.run)
      yield* TestClock.adjust(Duration.seconds(29))
      expect(pings).toBe(0)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(pings).toBe(1)
      heartbeat.alive()
      yield* TestClock.adjust(Duration.seconds(30))
      expect(pings).toBe(2)
      expect(dead).toBe(false)
      // no answer to the second ping
      yield* TestClock.adjust(Duration.seconds(30))
      expect(dead).toBe(true)
      expect(pings).toBe(2)
      yield* Fiber.join(fiber)
    })
  )

  it.effect("keeps a peer that answers every ping alive", () =>
    Effect.gen(function* () {
      let dead = false
      const heartbeat = Heartbeat.make({
        interval: Duration.seconds(1),
        ping: Effect.sync(() => heartbeat.alive()),
        onDead: Effect.sync(() => void (dead = true))
      })
      yield* Effect.fork(heartbeat.run)
      yield* TestClock.adjust(Duration.minutes(10))
      expect(dead).toBe(false)
    })
  )
})
