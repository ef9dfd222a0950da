import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as RateLimiter from "../src/server/RateLimiter.js"

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

describe("TokenBucket", () => {
  it("refills at the sustained rate up to the burst, whatever the time between takes", () => {
    const bucket = new RateLimiter.TokenBucket({ perSecond: 10, burst: 2 }, 0)
    expect([bucket.takeAt(0), bucket.takeAt(0), bucket.takeAt(0)]).toEqual([true, true, false])
    expect(bucket.takeAt(99)).toBe(false)
    expect(bucket.takeAt(100)).toBe(true)
    // an hour of silence refills only the burst
    expect([bucket.takeAt(3_600_000), bucket.takeAt(3_600_000), bucket.takeAt(3_600_000)]).toEqual([true, true, false])
  })
})
