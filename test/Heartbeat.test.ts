import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import * as Heartbeat from "../src/Heartbeat.js"
import * as ServerHeartbeat from "../src/transport/Heartbeat.js"
import * as RateLimiter from "../src/server/RateLimiter.js"

describe("Heartbeat", () => {
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

describe("Heartbeat.sweep", () => {
  it.effect("pings every peer each interval and terminates the ones that did not answer the previous ping", () =>
    Effect.gen(function* () {
      const log: Array<string> = []
      const peer = (name: string): Heartbeat.Peer => ({
        answered: true,
        ping: () => void log.push(`ping ${name}`),
        terminate: () => void log.push(`terminate ${name}`)
      })
      const alive = peer("alive")
      const silent = peer("silent")
      yield* Effect.fork(ServerHeartbeat.sweep(() => [alive, silent], Duration.seconds(30)))
      yield* TestClock.adjust(Duration.seconds(30))
      expect(log).toEqual(["ping alive", "ping silent"])
      alive.answered = true
      yield* TestClock.adjust(Duration.seconds(30))
      expect(log.slice(2)).toEqual(["ping alive", "terminate silent"])
    })
  )
})

describe("RateLimiter", () => {
  it.effect("allows a burst, then the sustained rate", () =>
    Effect.gen(function* () {
      const limiter = yield* RateLimiter.make({ perSecond: 2, burst: 3 })
      const takes = []
      for (let i = 0; i < 4; i++) takes.push(yield* limiter.take)
      expect(takes).toEqual([true, true, true, false])
      yield* TestClock.adjust(Duration.millis(499))
      expect(yield* limiter.take).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* limiter.take).toBe(true)
      expect(yield* limiter.take).toBe(false)
      yield* TestClock.adjust(Duration.hours(1))
      const refilled = []
      for (let i = 0; i < 4; i++) refilled.push(yield* limiter.take)
      expect(refilled).toEqual([true, true, true, false])
    })
  )
})
