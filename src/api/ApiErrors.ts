/**
 * The errors of the server API, one schema per status. Each answers `{"error": code, "message"}`: `code` is stable,
 * for a program to switch on; `message` is for a person. Classes rather than tagged errors, so the JSON carries only
 * those two fields.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Schema from "effect/Schema"

/** `error` is one of the class's own codes: that is also how the encoder tells the classes apart. */
const fields = <const Codes extends ReadonlyArray<string>>(...codes: Codes) => ({
  error: Schema.Literal(...codes).annotations({ description: "a stable code to switch on" }),
  message: Schema.String
})

/** Malformed JSON, wrong types, an invalid room, name, text or close code. */
export class BadRequest extends Schema.Class<BadRequest>("BadRequest")(
  fields(
    "invalid_request",
    "invalid_json",
    "invalid_room",
    "invalid_name",
    "invalid_text",
    "message_too_long",
    "invalid_code"
  ),
  HttpApiSchema.annotations({ status: 400 })
) {}

/** No `Authorization: Bearer` header. */
export class Unauthorized extends Schema.Class<Unauthorized>("Unauthorized")(
  fields("unauthorized"),
  HttpApiSchema.annotations({ status: 401 })
) {}

/** A bearer token that is not the API key. */
export class Forbidden extends Schema.Class<Forbidden>("Forbidden")(
  fields("forbidden"),
  HttpApiSchema.annotations({ status: 403 })
) {}

/** An unknown room, user, message or path; also every call while the API is off (`api_disabled`). */
export class NotFound extends Schema.Class<NotFound>("NotFound")(
  fields("no_such_room", "no_such_user", "no_such_message", "not_found", "api_disabled"),
  HttpApiSchema.annotations({ status: 404 })
) {}

/** Well formed, but refused: `from` is a user's name (`name_taken`), or a `beforeSend` hook said no (`refused`). */
export class Conflict extends Schema.Class<Conflict>("Conflict")(
  fields("name_taken", "refused"),
  HttpApiSchema.annotations({ status: 409 })
) {}

/** A body above the API's bound (`ApiHttp.MAX_BODY_BYTES`). */
export class PayloadTooLarge extends Schema.Class<PayloadTooLarge>("PayloadTooLarge")(
  fields("payload_too_large"),
  HttpApiSchema.annotations({ status: 413 })
) {}

/** A body sent as something other than JSON. */
export class UnsupportedMediaType extends Schema.Class<UnsupportedMediaType>("UnsupportedMediaType")(
  fields("unsupported_media_type"),
  HttpApiSchema.annotations({ status: 415 })
) {}

/** A backend (Redis, the store) is unreachable: retry later. */
export class Unavailable extends Schema.Class<Unavailable>("Unavailable")(
  fields("unavailable"),
  HttpApiSchema.annotations({ status: 503 })
) {}

/** What a request about rooms, users or messages may fail with once it is past the key check. */
export type RequestError = BadRequest | NotFound | Unavailable

export const unavailable = () => new Unavailable({ error: "unavailable", message: "temporarily unavailable, retry" })
