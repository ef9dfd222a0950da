import { Data } from "effect"

/**
 * A backend (Redis) could not do what was asked. The core turns it into an answer the user sees (an `error` frame,
 * a refused join) instead of losing the request silently.
 */
export class BackendError extends Data.TaggedError("BackendError")<{
  readonly reason: "Unavailable" | "Timeout"
  readonly operation: string
  readonly cause?: unknown
}> {
  get message() {
    return `${this.operation}: backend ${this.reason === "Timeout" ? "timed out" : "unavailable"}`
  }
}
