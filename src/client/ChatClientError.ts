import { Data } from "effect"

/**
 * - `Connect`: the first connection could not be opened or did not get a `welcome`.
 * - `Rejected`: the server answered a request with an `error` frame (`code` is its error code).
 * - `Closed`: the client was closed, or the server ended the session, before the request was answered.
 */
export class ChatClientError extends Data.TaggedError("ChatClientError")<{
  readonly reason: "Connect" | "Rejected" | "Closed"
  readonly message: string
  readonly code?: string | undefined
  /** The WebSocket close code that ended the connection, when one did (4001: sign in again; 4003: removed). */
  readonly closeCode?: number | undefined
}> {}

export const closedError = (message: string) => new ChatClientError({ reason: "Closed", message })
