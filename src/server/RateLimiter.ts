/**
 * A token bucket per connection: `perSecond` tokens a second up to `burst`. The bucket itself is plain state
 * (`takeAt`), so a connection carries a few numbers, not an Effect; `make` gives the same bucket on Effect's `Clock`,
 * which tests drive with `TestClock`.
 */
import { Clock, Effect } from "effect"

export interface RateLimit {
  readonly perSecond: number
  readonly burst: number
}

export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly limit: RateLimit,
    now: number
  ) {
    this.tokens = limit.burst
    this.last = now
  }

  /** Takes one token at time `now` (ms); false when the bucket is empty. */
  takeAt(now: number): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSecond)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

export interface RateLimiter {
  /** Takes one token; false when the bucket is empty. */
  readonly take: Effect.Effect<boolean>
}

export const make = (limit: RateLimit): Effect.Effect<RateLimiter> =>
  Effect.map(Clock.currentTimeMillis, (start) => {
    const bucket = new TokenBucket(limit, start)
    return { take: Effect.map(Clock.currentTimeMillis, (now) => bucket.takeAt(now)) }
  })
