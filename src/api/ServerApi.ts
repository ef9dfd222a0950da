/**
 * The server API's contract (`/api/v1/`): endpoints, their schemas and errors, as one `HttpApi`. The handlers
 * (`ApiHandlers`) implement it, the OpenAPI document is generated from it, and a client program could derive a
 * typed client from it (`HttpApiClient`). Message schemas are the wire protocol's own, so a history page here is
 * exactly a `history` frame's content.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import { Message } from "../protocol/Protocol.js"
import {
  BadRequest,
  Conflict,
  Forbidden,
  NotFound,
  PayloadTooLarge,
  Unauthorized,
  Unavailable,
  UnsupportedMediaType
} from "./ApiErrors.js"

export const PREFIX = "/api/v1"

const Room = Schema.String.annotations({
  description: "a room: 1-64 letters, digits, _ - . (invalid_room otherwise)"
})
const Name = Schema.String.annotations({
  description: "a user name: 1-32 letters, digits, _ - ., not user<digits> (invalid_name otherwise)"
})
const MessageId = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
const Count = Schema.Int.pipe(Schema.nonNegative())

/** `Authorization: Bearer <key>`; 401 without it, 403 with another key. */
export class ApiKey extends HttpApiMiddleware.Tag<ApiKey>()("effect-chat/ApiKey", {
  failure: Schema.Union(Unauthorized, Forbidden),
  security: { bearer: HttpApiSecurity.bearer }
}) {}

export const Publish = Schema.Struct({
  room: Room,
  text: Schema.String.annotations({ description: "1-4000 characters, not only white space" }),
  from: Schema.optional(Name).annotations({ description: "the name shown; default: the server's (--api-name)" })
})

export const Published = Schema.Struct({ id: Count.annotations({ description: "the message's id in its room" }) })

export const Disconnect = Schema.Struct({
  name: Name,
  code: Schema.optional(
    Schema.Int.annotations({ description: "close code: 1000, 1008 or 3000-4999 (default 4003, final for clients)" })
  )
})

export const Disconnected = Schema.Struct({
  disconnected: Count.annotations({
    description: "connections closed: on this node, plus those other nodes reported within a second"
  })
})

export const RoomCount = Schema.Struct({ room: Schema.String, members: Count })

export const Members = Schema.Struct({ room: Schema.String, names: Schema.Array(Schema.String) })

export const HistoryQuery = Schema.Struct({
  before: Schema.optional(MessageId).annotations({ description: "only messages with a smaller id" }),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())).annotations({
    description: "at most this many (default 50, at most 100)"
  })
})

/** A `history` frame's content: messages oldest first, `more` when the room retains older ones. */
export const HistoryPage = Schema.Struct({ room: Schema.String, messages: Schema.Array(Message), more: Schema.Boolean })

export const Deleted = Schema.Struct({ deleted: Schema.Literal(true) })

export const Stats = Schema.Struct({
  connections: Count.annotations({ description: "open WebSocket connections on this node" }),
  users: Count.annotations({ description: "users online, cluster-wide" }),
  rooms: Count.annotations({ description: "rooms with members on this node" }),
  messages: Count.annotations({
    description: "messages published through this process since it started (effect_chat_messages_published_total)"
  }),
  at: Schema.Number.annotations({ description: "when these were read, epoch ms" })
})

const roomParam = HttpApiSchema.param("room", Room)
const idParam = HttpApiSchema.param("id", MessageId)

export class MessagesApi extends HttpApiGroup.make("messages")
  .add(
    HttpApiEndpoint.post("publish", "/publish")
      .setPayload(Publish)
      .addSuccess(Published)
      .addError(NotFound)
      .addError(Conflict)
      .annotate(
        OpenApi.Description,
        "Posts into a room as the server (or `from`), under every rule a user's send obeys"
      )
  )
  .add(
    HttpApiEndpoint.del("delete")`/rooms/${roomParam}/messages/${idParam}`
      .addSuccess(Deleted)
      .addError(NotFound)
      .annotate(OpenApi.Description, "Moderation: deletes a message; members get `deleted` as for its author's delete")
  ) {}

export class UsersApi extends HttpApiGroup.make("users").add(
  HttpApiEndpoint.post("disconnect", "/disconnect")
    .setPayload(Disconnect)
    .addSuccess(Disconnected)
    .addError(NotFound)
    .annotate(OpenApi.Description, "Closes every connection of the name's owner, on every node")
) {}

export class RoomsApi extends HttpApiGroup.make("rooms")
  .add(
    HttpApiEndpoint.get("list", "/rooms")
      .addSuccess(Schema.Array(RoomCount))
      .annotate(OpenApi.Description, "Rooms with members, cluster-wide: the 1000 with most members")
  )
  .add(
    HttpApiEndpoint.get("members")`/rooms/${roomParam}/members`
      .addSuccess(Members)
      .addError(NotFound)
      .annotate(OpenApi.Description, "A room's members, one name per user")
  )
  .add(
    HttpApiEndpoint.get("history")`/rooms/${roomParam}/history`
      .setUrlParams(HistoryQuery)
      .addSuccess(HistoryPage)
      .addError(NotFound)
      .annotate(OpenApi.Description, "A page of a room's history, as the `history` frame")
  ) {}

export class StatsApi extends HttpApiGroup.make("stats").add(
  HttpApiEndpoint.get("stats", "/stats")
    .addSuccess(Stats)
    .annotate(OpenApi.Description, "Counts to poll: the admin page draws messages per second from `messages`")
) {}

/**
 * Two corrections to the generated document, so it says what the server does: every operation is under the API's
 * bearer security (the generator writes an empty `security` per operation, which in OpenAPI means none), and a
 * request that does not decode answers a `BadRequest` (`ApiHttp` turns the platform's decode error into one).
 */
const describeAsServed = (spec: Record<string, any>): Record<string, any> => {
  const decodeError = "#/components/schemas/HttpApiDecodeError"
  for (const operations of Object.values<Record<string, any>>(spec.paths ?? {})) {
    for (const operation of Object.values<Record<string, any>>(operations)) {
      if (Array.isArray(operation.security) && operation.security.length === 0) delete operation.security
      for (const response of Object.values<Record<string, any>>(operation.responses ?? {})) {
        const content = response.content?.["application/json"]
        const anyOf = content?.schema?.anyOf
        if (!Array.isArray(anyOf)) continue
        const rest = anyOf.filter((schema: { $ref?: string }) => schema.$ref !== decodeError)
        content.schema = rest.length === 1 ? rest[0] : { anyOf: rest }
        if (rest.length !== anyOf.length) response.description = "The request is malformed or invalid"
      }
    }
  }
  for (const unused of ["HttpApiDecodeError", "Issue", "PropertyKey"]) delete spec.components?.schemas?.[unused]
  return spec
}

export class ServerApi extends HttpApi.make("effect-chat")
  .add(MessagesApi)
  .add(UsersApi)
  .add(RoomsApi)
  .add(StatsApi)
  .addError(BadRequest)
  .addError(PayloadTooLarge)
  .addError(UnsupportedMediaType)
  .addError(Unavailable)
  .middleware(ApiKey)
  .prefix(PREFIX)
  .annotate(OpenApi.Title, "effect-chat server API")
  .annotate(OpenApi.Version, "1")
  .annotate(OpenApi.Transform, describeAsServed) {}
