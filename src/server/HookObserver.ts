/**
 * Runs the observing hooks (`afterPublish`, `presence`) off the delivery path: the core hands each event over with
 * one synchronous offer to a bounded queue, and one fiber feeds them to the hooks in order. A hook that is slow
 * delays only later observations; one that fails is logged and the next event goes on. With no observing hook
 * there is no queue and no fiber, and handing over is a no-op.
 */
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { Context, Effect, Layer, Queue } from "effect"
import * as ChatHooks from "./ChatHooks.js"

/** Events waiting for slow observers; past this they are dropped (and counted in a warning), never the messages. */
const BACKLOG = 10_000

type Observed =
  | { readonly _tag: "Published"; readonly published: ChatHooks.Published }
  | { readonly _tag: "Presence"; readonly event: ChatHooks.PresenceEvent }

export interface HookObserverService {
  /** Whether any observer is installed: building an event is skipped otherwise. */
  readonly active: boolean
  readonly published: (published: ChatHooks.Published) => void
  readonly presence: (event: ChatHooks.PresenceEvent) => void
}

const inactive: HookObserverService = { active: false, published: () => {}, presence: () => {} }

export class HookObserver extends Context.Tag("effect-chat/HookObserver")<HookObserver, HookObserverService>() {
  static layer = Layer.scoped(
    HookObserver,
    Effect.suspend(() => make)
  )
}

const make = Effect.gen(function* () {
  const hooks = yield* ChatHooks.current
  if (hooks.afterPublish.length === 0 && hooks.presence.length === 0) return inactive
  const queue = yield* Queue.dropping<Observed>(BACKLOG)
  let dropped = 0

  const guarded = (name: string, run: Effect.Effect<void, unknown>) =>
    Effect.catchAllCause(run, (cause) =>
      Effect.zipRight(
        Effect.sync(() => ChatMetrics.add(ChatMetrics.hookFailures, 1)),
        Effect.logWarning(`${name} hook failed`, cause)
      )
    )
  const observe = (item: Observed): Effect.Effect<void> =>
    item._tag === "Published"
      ? Effect.forEach(hooks.afterPublish, (hook) => guarded("afterPublish", hook(item.published)), { discard: true })
      : Effect.forEach(hooks.presence, (hook) => guarded("presence", hook(item.event)), { discard: true })

  yield* Effect.forkScoped(
    Effect.forever(
      Effect.flatMap(Queue.takeBetween(queue, 1, 256), (items) =>
        Effect.zipRight(
          Effect.suspend(() => {
            if (dropped === 0) return Effect.void
            const count = dropped
            dropped = 0
            return Effect.logWarning(`observing hooks fell ${count} events behind; those were not observed`)
          }),
          Effect.forEach(items, observe, { discard: true })
        )
      )
    )
  )

  const offer = (item: Observed) => {
    if (!queue.unsafeOffer(item)) dropped++
  }
  return {
    active: true,
    published: (published) => offer({ _tag: "Published", published }),
    presence: (event) => offer({ _tag: "Presence", event })
  } satisfies HookObserverService
})
