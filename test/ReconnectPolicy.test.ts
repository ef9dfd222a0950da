/**
 * The reconnect policy shared by ChatClient and the browser: how long a client waits before each attempt, and after
 * which closes it gives up.
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Random, Schedule } from "effect"
import { reconnectSchedule } from "../src/client/ChatClient.js"
import { backoffDelay, FINAL_CLOSES, isFinalClose } from "../src/client/ReconnectPolicy.js"

const middle = () => 0.5
const attempts = (n: number) => Array.from({ length: n }, (_, attempt) => attempt)

describe("ReconnectPolicy.backoffDelay", () => {
  it("starts at 250 ms and doubles per attempt up to 10 s", () => {
    assert.deepStrictEqual(
      attempts(8).map((attempt) => backoffDelay(attempt, {}, middle)),
      [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]
    )
  })

  it("randomises each delay by at most ±20 %, also at the cap", () => {
    assert.strictEqual(
      backoffDelay(0, {}, () => 0),
      200
    )
    assert.strictEqual(
      backoffDelay(0, {}, () => 0.999_999),
      300
    )
    assert.strictEqual(
      backoffDelay(20, {}, () => 0),
      8000
    )
    assert.strictEqual(
      backoffDelay(20, {}, () => 0.999_999),
      12_000
    )
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, {})
      assert.isAtLeast(delay, 1600)
      assert.isAtMost(delay, 2400)
    }
  })

  it("follows its options, and stays finite and non-negative for any attempt", () => {
    const options = { initialMs: 50, maxMs: 500, jitter: 0 }
    assert.deepStrictEqual(
      attempts(6).map((attempt) => backoffDelay(attempt, options, Math.random)),
      [50, 100, 200, 400, 500, 500]
    )
    assert.strictEqual(backoffDelay(-3, options), 50)
    assert.strictEqual(backoffDelay(1e9, options), 500)
    assert.strictEqual(
      backoffDelay(2, { jitter: 2 }, () => 0),
      0
    )
  })
})

describe("ReconnectPolicy.isFinalClose", () => {
  it("gives up after a normal close, a refused frame, a policy close, a too large frame, a refused identity, a removal and a takeover", () => {
    assert.deepStrictEqual([1000, 1003, 1008, 1009, 4001, 4003, 4009].map(isFinalClose), Array(7).fill(true))
    assert.deepStrictEqual(Object.keys(FINAL_CLOSES).map(Number).sort(), [1000, 1003, 1008, 1009, 4001, 4003, 4009])
  })

  it("reconnects after a lost connection, a shutdown, a server error, a full server and a slow-consumer cut", () => {
    assert.deepStrictEqual([1001, 1005, 1006, 1011, 1013, 4008].map(isFinalClose), [
      false,
      false,
      false,
      false,
      false,
      false
    ])
  })
})

describe("ChatClient.reconnectSchedule", () => {
  const delays = (schedule: Schedule.Schedule<unknown, unknown>, random: number, n: number) =>
    Schedule.run(Schedule.delays(schedule), 0, attempts(n)).pipe(
      Effect.map((out) => Chunk.toArray(out).map(Duration.toMillis)),
      Effect.withRandom(Random.fixed([random]))
    )

  it.effect("waits backoffDelay before each attempt", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(
        yield* delays(reconnectSchedule(), 0.5, 8),
        [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]
      )
      assert.deepStrictEqual(
        yield* delays(reconnectSchedule(), 0, 3),
        attempts(3).map((attempt) => backoffDelay(attempt, {}, () => 0))
      )
    })
  )

  it.effect("takes its first delay and cap from initialDelay and maxDelay", () =>
    Effect.gen(function* () {
      const schedule = reconnectSchedule({ initialDelay: "50 millis", maxDelay: "500 millis" })
      assert.deepStrictEqual(yield* delays(schedule, 0.5, 6), [50, 100, 200, 400, 500, 500])
      assert.deepStrictEqual(yield* delays(schedule, 0.999_999, 6), [60, 120, 240, 480, 600, 600])
    })
  )
})
