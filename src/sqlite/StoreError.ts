import { Data } from "effect"

/**
 * The embedded store cannot be opened: the server stops at start with this one line (exit 1) rather than run
 * without its history or write over a file that is not ours.
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}
