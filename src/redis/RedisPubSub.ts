/**
 * The node's one pub/sub connection to Redis. Every room feed and the node's direct channel share it: one
 * `SUBSCRIBE` per channel however many local listeners it has. node-redis renews the subscriptions after a
 * reconnect before it reports the connection ready again; what was published in between is lost, which is why
 * `renewed` exists (the hub reads those messages back from the room logs).
 */
import { Context, Duration, Effect, ExecutionStrategy, Exit, Layer, Queue, Schedule, Scope } from "effect"
import { BackendError } from "../backend/BackendError.js"
import { connect, RedisClient } from "./RedisClient.js"

export type Listener = (payload: string) => void

export interface RedisPubSubService {
  /** Delivers the channel's messages to `listener` until the scope closes; succeeds once Redis confirmed it. */
  readonly subscribe: (channel: string, listener: Listener) => Effect.Effect<void, BackendError, Scope.Scope>
  /** The same for a channel that must be heard whenever Redis is up: retried in the background until confirmed. */
  readonly subscribeRetrying: (channel: string, listener: Listener) => Effect.Effect<void, never, Scope.Scope>
  /** A signal each time the connection becomes ready again, every subscription renewed. */
  readonly renewed: Effect.Effect<Queue.Dequeue<void>, never, Scope.Scope>
  readonly isReady: () => boolean
}

export class RedisPubSub extends Context.Tag("effect-chat/RedisPubSub")<RedisPubSub, RedisPubSubService>() {
  static layer = Layer.scoped(
    RedisPubSub,
    Effect.suspend(() => make)
  )
}

interface Channel {
  readonly listeners: Set<Listener>
  readonly dispatch: Listener
  readonly confirmed: Promise<void>
}

const CONFIRM_TIMEOUT = Duration.seconds(2)
/** Quick retries first (the connection is usually a moment from ready), then twice a second through an outage. */
const retrySchedule = Schedule.exponential(Duration.millis(50)).pipe(
  Schedule.either(Schedule.spaced(Duration.millis(500)))
)

const make = Effect.gen(function* () {
  const redis = yield* RedisClient
  const subscriber = redis.duplicate()
  const { readyAgain } = yield* connect(subscriber, "pub/sub")
  const channels = new Map<string, Channel>()

  const open = (name: string): Channel => {
    const listeners = new Set<Listener>()
    const dispatch: Listener = (payload) => {
      for (const listener of listeners) listener(payload)
    }
    const confirmed = subscriber.subscribe(name, dispatch)
    const channel: Channel = { listeners, dispatch, confirmed }
    confirmed.catch(() => {
      if (channels.get(name) === channel) channels.delete(name)
    })
    channels.set(name, channel)
    return channel
  }

  const attach = (name: string, listener: Listener) =>
    Effect.sync(() => {
      const channel = channels.get(name) ?? open(name)
      channel.listeners.add(listener)
      return channel
    })

  const detach = (name: string, channel: Channel, listener: Listener) =>
    Effect.sync(() => {
      channel.listeners.delete(listener)
      if (channel.listeners.size > 0 || channels.get(name) !== channel) return
      channels.delete(name)
      subscriber.unsubscribe(name, channel.dispatch).catch(() => {})
    })

  const subscribe: RedisPubSubService["subscribe"] = (name, listener) =>
    Effect.gen(function* () {
      if (!subscriber.isReady) {
        return yield* Effect.fail(new BackendError({ reason: "Unavailable", operation: "subscribe" }))
      }
      const channel = yield* Effect.acquireRelease(attach(name, listener), (channel) => detach(name, channel, listener))
      yield* Effect.tryPromise({
        try: () => channel.confirmed,
        catch: (cause) => new BackendError({ reason: "Unavailable", operation: "subscribe", cause })
      }).pipe(
        Effect.timeoutFail({
          duration: CONFIRM_TIMEOUT,
          onTimeout: () => new BackendError({ reason: "Timeout", operation: "subscribe" })
        })
      )
    })

  const subscribeRetrying: RedisPubSubService["subscribeRetrying"] = (name, listener) =>
    Effect.gen(function* () {
      const outer = yield* Effect.scope
      // Each attempt gets its own scope, closed when it fails, so a failed attempt leaves nothing attached.
      const attempt = Effect.gen(function* () {
        const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
        yield* subscribe(name, listener).pipe(
          Scope.extend(scope),
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
      })
      yield* attempt.pipe(Effect.retry(retrySchedule), Effect.forkScoped)
    })

  return RedisPubSub.of({
    subscribe,
    subscribeRetrying,
    renewed: readyAgain,
    isReady: () => subscriber.isReady
  })
})
