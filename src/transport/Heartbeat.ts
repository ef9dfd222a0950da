/**
 * Dead-peer detection for the server's connections: every `interval`, ping every peer; one that has not answered
 * the previous ping by the next one is dead. One fiber for all sockets, not a sleeping fiber and a timer per socket.
 * Runs on Effect's clock, so `TestClock` drives it in tests.
 */
import { type Duration, Effect } from "effect"

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
