/**
 * Dead-peer detection: ping every `interval`; a peer that has not answered the previous ping by the next one is
 * dead. Runs on Effect's clock, so `TestClock` drives it in tests; the transport supplies `ping` and reports pongs.
 * `make` watches one peer (the client's server); `sweep` watches many with one fiber (the server's connections), so
 * a server does not keep a sleeping fiber and a timer per socket.
 */
import { Duration, Effect, Schedule } from "effect"

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

/** A peer watched by `sweep`: the transport sets `answered` on every pong or frame. */
export interface Peer {
  answered: boolean
  readonly ping: () => void
  readonly terminate: () => void
}

/** Every `interval`: terminates the peers that have not answered since the last sweep and pings the others. */
export const sweep = (peers: () => Iterable<Peer>, interval: Duration.Duration): Effect.Effect<never> =>
  Effect.sync(() => {
    for (const peer of peers()) {
      if (!peer.answered) {
        peer.terminate()
      } else {
        peer.answered = false
        peer.ping()
      }
    }
  }).pipe(Effect.delay(interval), Effect.forever)
