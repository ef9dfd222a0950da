import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as Heartbeat from "../src/transport/Heartbeat.js"

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
      yield* Effect.fork(Heartbeat.sweep(() => [alive, silent], Duration.seconds(30)))
      yield* TestClock.adjust(Duration.seconds(30))
      expect(log).toEqual(["ping alive", "ping silent"])
      alive.answered = true
      yield* TestClock.adjust(Duration.seconds(30))
      expect(log.slice(2)).toEqual(["ping alive", "terminate silent"])
    })
  )
})
