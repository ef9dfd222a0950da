/**
 * A token bucket per connection: `perSecond` tokens a second up to `burst`. Time comes from Effect's `Clock`, so
 * tests drive it with `TestClock`.
 */
import { Clock, Effect } from "effect"

export interface RateLimiter {
  /** Takes one token; false when the bucket is empty. */
  readonly take: Effect.Effect<boolean>
}

export const make = (options: { readonly perSecond: number; readonly burst: number }): Effect.Effect<RateLimiter> =>
  Effect.map(Clock.currentTimeMillis, (start) => {
    let tokens = options.burst
    let last = start
    return {
      take: Effect.map(Clock.currentTimeMillis, (now) => {
        tokens = Math.min(options.burst, tokens + ((now - last) / 1000) * options.perSecond)
        last = now
        if (tokens < 1) return false
        tokens -= 1
        return true
      })
    }
  })
