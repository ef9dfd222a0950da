/**
 * Whether spans of the hot path are worth their cost: only when the application has installed a tracer of its own
 * (an OpenTelemetry exporter, say). Effect's built-in tracer keeps spans that nothing reads, and creating one costs
 * more than the rest of a `send` on its way to the room (see `SessionRequests.send`).
 */
import { Effect } from "effect"

/** The tracer every Effect runtime starts with. */
const builtIn = Effect.runSync(Effect.tracer)

/** True when the tracer in context is not the built-in one. */
export const installed: Effect.Effect<boolean> = Effect.map(Effect.tracer, (tracer) => tracer !== builtIn)

/** `effect` in a span named `name` when a tracer is installed, as it is otherwise. */
export const span =
  (traced: boolean, name: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    traced ? Effect.withSpan(effect, name) : effect
