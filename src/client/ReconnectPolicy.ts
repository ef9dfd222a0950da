/**
 * When a client reconnects, and when it must not: one policy for `ChatClient` and the browser. Effect-free, so the
 * browser bundle shares it; `ChatClient` turns it into a `Schedule`.
 */
import { CloseCode } from "../protocol/Rules.js"

export interface BackoffOptions {
  /** First delay (default 250 ms); it doubles per attempt. */
  readonly initialMs?: number
  /** Cap of the doubling (default 10 s). */
  readonly maxMs?: number
  /** Each delay is randomised by ± this fraction (default 0.2), so clients dropped together spread out. */
  readonly jitter?: number
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 250, maxMs: 10_000, jitter: 0.2 }

/** The delay before reconnect attempt `attempt` (0 for the first), from a uniform `random()` in [0, 1). */
export const backoffDelay = (attempt: number, options: BackoffOptions = {}, random: () => number = Math.random) => {
  const { initialMs, jitter, maxMs } = { ...DEFAULT_BACKOFF, ...options }
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt, 0), 30))
  return Math.max(0, Math.round(ceiling * (1 - jitter + 2 * jitter * random())))
}

/**
 * Closes after which reconnecting would not help: the session ended or was refused for good. Each maps to what a
 * person is told.
 */
export const FINAL_CLOSES: Readonly<Record<number, string>> = {
  [CloseCode.normal]: "The session was closed.",
  [CloseCode.unsupportedData]: "The server rejected a frame from this client.",
  [CloseCode.policy]: "The server closed the session (policy).",
  [CloseCode.tooLarge]: "A message was too large for the server.",
  [CloseCode.unauthorized]: "The server did not accept your identity: sign in again.",
  [CloseCode.removed]: "You were removed from the chat.",
  [CloseCode.takenOver]: "This session was opened in another tab or window."
}

export const isFinalClose = (code: number): boolean => Object.hasOwn(FINAL_CLOSES, code)
