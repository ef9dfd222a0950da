/**
 * Requests and their answers, without sockets: a connection is a list of written frames, time a list of timers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { ChatClientError } from "../src/client/ChatClientError.js"
import * as Requests from "../src/client/Requests.js"
import type * as Protocol from "../src/protocol/Protocol.js"

/** A connection that records what is written on it, as `type:text-or-room@ref`. */
const connection = () => {
  const frames: Array<Protocol.ClientFrame> = []
  const write: Requests.Write = (frame) => void frames.push(frame)
  const log = () =>
    frames.map(
      (frame) => `${frame.type}:${"text" in frame ? frame.text : "room" in frame ? frame.room : ""}@${frame.ref}`
    )
  return { write, log }
}

/** Timers that run only when the test says so. */
const manualTime = () => {
  const timers: Array<{ readonly ms: number; readonly run: () => void; cancelled: boolean }> = []
  const timer: Requests.Timer = (run, ms) => {
    const entry = { ms, run, cancelled: false }
    timers.push(entry)
    return () => void (entry.cancelled = true)
  }
  const waiting = () => timers.filter((entry) => !entry.cancelled).map((entry) => entry.ms)
  /** Runs the timers due, as if their time had passed. */
  const elapse = () => {
    for (const entry of timers.splice(0)) if (!entry.cancelled) entry.run()
  }
  return { timer, waiting, elapse }
}

const ack = (ref: string, id?: number): Protocol.ServerFrame =>
  id === undefined ? { type: "ack", ref } : { type: "ack", ref, id }
const refused = (ref: string, code: Protocol.ErrorCode): Protocol.ServerFrame => ({
  type: "error",
  code,
  message: `refused: ${code}`,
  ref
})

const say = (text: string): Requests.Request => ({ type: "send", room: "lobby", text })

/** "waiting", or how the request ended. */
const outcome = (answer: Deferred.Deferred<Protocol.ServerFrame, ChatClientError>) =>
  Effect.gen(function* () {
    if (!(yield* Deferred.isDone(answer))) return "waiting"
    return yield* Effect.exit(Deferred.await(answer))
  })

describe("Requests", () => {
  it.effect("writes one request at a time, in the order they were made", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      const wire = connection()
      requests.attach(wire.write)
      const first = requests.add(say("one"))
      const second = requests.add(say("two"))
      assert.deepStrictEqual(wire.log(), ["send:one@t-0"])
      assert.strictEqual(yield* outcome(second), "waiting")

      assert.isTrue(requests.settle("t-0", ack("t-0", 7)))
      assert.deepStrictEqual(yield* outcome(first), Exit.succeed(ack("t-0", 7)))
      assert.deepStrictEqual(wire.log(), ["send:one@t-0", "send:two@t-1"])
      assert.isTrue(requests.settle("t-1", ack("t-1", 8)))
      assert.deepStrictEqual(yield* outcome(second), Exit.succeed(ack("t-1", 8)))
    })
  )

  it.effect("requests made while disconnected wait for the next connection", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      requests.add(say("one"))
      requests.add({ type: "join", room: "dev" })
      const wire = connection()
      requests.attach(wire.write)
      assert.deepStrictEqual(wire.log(), ["send:one@t-0"])
      requests.settle("t-0", ack("t-0", 1))
      assert.deepStrictEqual(wire.log(), ["send:one@t-0", "join:dev@t-1"])
    })
  )

  it.effect("a request whose answer was lost is written again on the next connection, with the same ref", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      const lost = connection()
      requests.attach(lost.write)
      const answer = requests.add(say("once"))
      requests.add(say("after"))
      requests.detach()
      assert.deepStrictEqual(lost.log(), ["send:once@t-0"])

      const next = connection()
      requests.attach(next.write)
      assert.deepStrictEqual(next.log(), ["send:once@t-0"])
      requests.settle("t-0", ack("t-0", 3))
      assert.deepStrictEqual(yield* outcome(answer), Exit.succeed(ack("t-0", 3)))
      assert.deepStrictEqual(next.log(), ["send:once@t-0", "send:after@t-1"])
      assert.deepStrictEqual(lost.log(), ["send:once@t-0"])
    })
  )

  it.effect("frames that answer none of its requests are left to the caller", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      requests.attach(connection().write)
      requests.add(say("one"))
      assert.isFalse(requests.settle(undefined, refused("t-0", "invalid_frame")))
      assert.isFalse(requests.settle("someone-else", ack("someone-else")))
      assert.isTrue(requests.settle("t-0", ack("t-0", 1)))
      assert.isFalse(requests.settle("t-0", ack("t-0", 1)))
    })
  )

  it.effect("an error answer fails the request with Rejected and the server's code; the next one goes out", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      const wire = connection()
      requests.attach(wire.write)
      const answer = requests.add(say("nowhere"))
      requests.add(say("next"))
      requests.settle("t-0", refused("t-0", "not_in_room"))
      const error = new ChatClientError({ reason: "Rejected", code: "not_in_room", message: "refused: not_in_room" })
      assert.deepStrictEqual(yield* outcome(answer), Exit.fail(error))
      assert.deepStrictEqual(wire.log(), ["send:nowhere@t-0", "send:next@t-1"])
    })
  )

  it.effect("rate_limited: the same request again after 100 ms, the pause doubling up to 2 s, reset by a success", () =>
    Effect.gen(function* () {
      const time = manualTime()
      const requests = Requests.make({ prefix: "t", timer: time.timer })
      const wire = connection()
      requests.attach(wire.write)
      const answer = requests.add(say("hurry"))
      requests.add(say("behind"))

      const pauses: Array<number> = []
      for (let i = 0; i < 7; i++) {
        assert.isTrue(requests.settle("t-0", refused("t-0", "rate_limited")))
        pauses.push(...time.waiting())
        time.elapse()
      }
      assert.deepStrictEqual(pauses, [100, 200, 400, 800, 1600, 2000, 2000])
      assert.strictEqual(yield* outcome(answer), "waiting")
      assert.deepStrictEqual(wire.log(), Array(8).fill("send:hurry@t-0"))

      requests.settle("t-0", ack("t-0", 1))
      assert.deepStrictEqual(wire.log().at(-1), "send:behind@t-1")
      requests.settle("t-1", refused("t-1", "rate_limited"))
      assert.deepStrictEqual(time.waiting(), [100])
    })
  )

  it.effect("while paused by rate_limited, a new connection does not write before the pause is over", () =>
    Effect.gen(function* () {
      const time = manualTime()
      const requests = Requests.make({ prefix: "t", timer: time.timer })
      requests.attach(connection().write)
      requests.add(say("hurry"))
      requests.settle("t-0", refused("t-0", "rate_limited"))
      requests.detach()
      const next = connection()
      requests.attach(next.write)
      assert.deepStrictEqual(next.log(), [])
      time.elapse()
      assert.deepStrictEqual(next.log(), ["send:hurry@t-0"])
    })
  )

  it.effect("failAll fails every waiting request and cancels a pending retry", () =>
    Effect.gen(function* () {
      const time = manualTime()
      const requests = Requests.make({ prefix: "t", timer: time.timer })
      const wire = connection()
      requests.attach(wire.write)
      const answers = [requests.add(say("one")), requests.add(say("two"))]
      requests.settle("t-0", refused("t-0", "rate_limited"))
      const error = new ChatClientError({ reason: "Closed", message: "closed" })
      requests.failAll(error)
      for (const answer of answers) assert.deepStrictEqual(yield* outcome(answer), Exit.fail(error))
      assert.deepStrictEqual(time.waiting(), [])
      assert.deepStrictEqual(wire.log(), ["send:one@t-0"])
    })
  )

  it.effect("now: written at once beside the queue on this connection only, answered or failed, never again", () =>
    Effect.gen(function* () {
      const requests = Requests.make({ prefix: "t" })
      const typing: Requests.Request = { type: "typing", room: "lobby" }
      assert.strictEqual(requests.now(typing), undefined)
      const wire = connection()
      requests.attach(wire.write)
      requests.add(say("waiting"))
      const first = requests.now(typing)!
      assert.deepStrictEqual(wire.log(), ["send:waiting@t-0", "typing:lobby@t-1"])
      assert.isTrue(requests.settle("t-1", ack("t-1")))
      assert.deepStrictEqual(yield* outcome(first), Exit.succeed(ack("t-1")))

      const limited = requests.now(typing)!
      requests.settle("t-2", refused("t-2", "rate_limited"))
      assert.deepStrictEqual(
        yield* outcome(limited),
        Exit.fail(new ChatClientError({ reason: "Rejected", code: "rate_limited", message: "refused: rate_limited" }))
      )

      const lost = requests.now(typing)!
      requests.detach()
      const next = connection()
      requests.attach(next.write)
      // The queued send goes out again; the hint does not.
      assert.deepStrictEqual(next.log(), ["send:waiting@t-0"])
      const error = yield* Effect.flip(Deferred.await(lost))
      assert.strictEqual(error.reason, "Closed")
      assert.isFalse(requests.settle("t-3", ack("t-3")))
    })
  )
})
