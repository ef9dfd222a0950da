/**
 * Dead-peer detection for one peer, the client's server: ping every `interval`; a server that has not answered the
 * previous ping by the next one is dead. Runs on Effect's clock, so `TestClock` drives it in tests; the transport
 * supplies `ping` and reports pongs.
 */
import { type Duration, Effect, Schedule } from "effect"

export interface Heartbeat {
  /** Call when the peer answered (a pong, or any frame). */
  readonly alive: () => void
  /** Runs until the peer is found dead, then runs `onDead`. */
  readonly run: Effect.Effect<void>
}

export const make = (options: {
  readonly interval: Duration.Duration
  readonly ping: Effect.Effect<void>
  readonly onDead: Effect.Effect<void>
}): Heartbeat => {
  let answered = true
  const beat = Effect.suspend(() => {
    if (!answered) return Effect.succeed(false)
    answered = false
    return Effect.as(options.ping, true)
  })
  return {
    alive: () => {
      answered = true
    },
    run: beat.pipe(
      Effect.repeat({ schedule: Schedule.spaced(options.interval), while: (ok) => ok }),
      Effect.delay(options.interval),
      Effect.zipRight(options.onDead)
    )
  }
}
