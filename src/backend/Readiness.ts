import { Context, Effect, Layer } from "effect"

/** Whether the backends answer (`/readyz`); the memory backends always do, Redis ones while Redis answers. */
export class Readiness extends Context.Tag("effect-chat/Readiness")<Readiness, Effect.Effect<boolean>>() {
  static layerAlways = Layer.succeed(Readiness, Effect.succeed(true))
}
