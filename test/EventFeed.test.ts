/**
 * The client's event streams: who gets which events, where a run starts and ends, and that a run that stopped
 * stops collecting.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import * as EventFeed from "../src/client/EventFeed.js"

type Event = { readonly type: "event"; readonly n: number } | { readonly type: "closed" }
const event = (n: number): Event => ({ type: "event", n })
const closed: Event = { type: "closed" }
const feed = () => EventFeed.make<Event>((e) => e.type === "closed")
const collect = (stream: Stream.Stream<Event>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)
/** Lets the forked runs start until `n` of them collect. */
const untilRuns = (f: EventFeed.EventFeed<Event>, n: number) =>
  Effect.repeat(Effect.yieldNow(), { until: () => f.runs() === n })

describe("EventFeed", () => {
  it.effect("the first run gets everything since the feed was made, up to and including the last event", () =>
    Effect.gen(function* () {
      const f = feed()
      f.publish(event(1))
      f.publish(event(2))
      const run = yield* Effect.fork(collect(f.stream))
      yield* Effect.yieldNow()
      f.publish(event(3))
      f.publish(closed)
      f.publish(event(4))
      expect(yield* Fiber.join(run)).toEqual([event(1), event(2), event(3), closed])
    })
  )

  it.effect("a later run starts at its start; one after the last event gets that alone", () =>
    Effect.gen(function* () {
      const f = feed()
      const first = yield* Effect.fork(collect(f.stream))
      f.publish(event(1))
      const second = yield* Effect.fork(collect(f.stream))
      yield* untilRuns(f, 2)
      f.publish(event(2))
      f.publish(closed)
      expect(yield* Fiber.join(first)).toEqual([event(1), event(2), closed])
      expect(yield* Fiber.join(second)).toEqual([event(2), closed])
      expect(f.runs()).toBe(0)
      expect(yield* collect(f.stream)).toEqual([closed])
    })
  )

  it.effect("a run that ended early stops collecting, and the others go on", () =>
    Effect.gen(function* () {
      const f = feed()
      const all = yield* Effect.fork(collect(f.stream))
      const two = yield* Effect.fork(collect(Stream.take(f.stream, 2)))
      yield* untilRuns(f, 2)
      for (let n = 1; n <= 5; n++) {
        f.publish(event(n))
        yield* Effect.yieldNow()
      }
      expect(yield* Fiber.join(two)).toEqual([event(1), event(2)])
      expect(f.runs()).toBe(1)
      const waiting = yield* Effect.fork(collect(f.stream))
      yield* untilRuns(f, 2)
      yield* Fiber.interrupt(waiting)
      expect(f.runs()).toBe(1)
      f.publish(closed)
      expect(yield* Fiber.join(all)).toEqual([event(1), event(2), event(3), event(4), event(5), closed])
    })
  )
})
