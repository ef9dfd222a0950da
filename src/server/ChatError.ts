import { Effect, Schema } from "effect"
import type { BackendError } from "../backend/BackendError.js"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { ErrorCode } from "../protocol/Protocol.js"

/** A request refused with a protocol error code; crosses the wire as an `error` frame. */
export class ChatError extends Schema.TaggedError<ChatError>()("ChatError", {
  code: ErrorCode,
  message: Schema.String
}) {}

/** A hook's refusal (`HookRefusal`) as the error the client sees. */
export const fromRefusal = (refusal: { readonly code: ErrorCode; readonly message: string }) =>
  new ChatError({ code: refusal.code, message: refusal.message })

export const fail = (code: ErrorCode, message: string) => Effect.fail(new ChatError({ code, message }))

/**
 * A backend failure becomes a refusal the user sees, never a silent loss. The backend logs the outage itself, once
 * (a Redis connection lost, the store's writes failing), not once per request: this is only a debug line.
 */
export const unavailable = (error: BackendError) =>
  Effect.suspend(() => {
    ChatMetrics.add(ChatMetrics.backendErrors, 1)
    return Effect.logDebug("backend failure", error.message).pipe(
      Effect.zipRight(Effect.fail(new ChatError({ code: "unavailable", message: "temporarily unavailable, retry" })))
    )
  })

/** Names and rooms quoted in error messages are cut short: the text is for a person, not an echo of the input. */
export const truncate = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s)

export const invalidRoom = (room: string) => fail("invalid_room", `invalid room name: ${truncate(room)}`)

export const invalidNameMessage = (name: string) =>
  /^user[0-9]+$/i.test(name)
    ? `${name}: names of the form user<digits> are reserved`
    : `invalid name ${JSON.stringify(truncate(name))}: 1-32 letters, digits, _ - .`
