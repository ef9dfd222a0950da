/**
 * The wire contract of effect-chat (`effect-chat.v1`, see docs/PROTOCOL.md), defined once and shared by the server,
 * the terminal client, the browser client's build and the benchmarks. Frames are decoded here, at the edge; code
 * past the edge only sees the typed values.
 */
// Deep imports: through the `effect` index a bundler keeps every export of Schema (the browser bundle: 356 KB against
// 217 KB this way).
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ERROR_CODES, MAX_REF_LENGTH, PROTOCOL_VERSION } from "./Rules.js"

export * from "./Rules.js"

export const ErrorCode = Schema.Literal(...ERROR_CODES)
export type ErrorCode = typeof ErrorCode.Type

// ---------------------------------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------------------------------

const Ref = Schema.String.pipe(Schema.maxLength(MAX_REF_LENGTH))
const MessageId = Schema.NonNegativeInt
const optionalRef = Schema.optional(Ref)
/** A JWT: long for a token, short enough that a frame of junk is refused before anything parses it. */
const Token = Schema.String.pipe(Schema.maxLength(8192))

export const Hello = Schema.Struct({
  type: Schema.Literal("hello"),
  name: Schema.optional(Schema.String),
  rooms: Schema.optional(Schema.Array(Schema.String)),
  resume: Schema.optional(
    Schema.Struct({
      token: Schema.String.pipe(Schema.maxLength(256)),
      since: Schema.optionalWith(Schema.Record({ key: Schema.String, value: MessageId }), { default: () => ({}) })
    })
  ),
  /** A JWT, on servers with `--auth optional|required`. */
  token: Schema.optional(Token),
  /** Opt-in event types (see Chat features); names the server does not know are ignored. */
  features: Schema.optional(Schema.Array(Schema.String.pipe(Schema.maxLength(32))).pipe(Schema.maxItems(16))),
  ref: optionalRef
})
export const Send = Schema.Struct({
  type: Schema.Literal("send"),
  room: Schema.String,
  text: Schema.String,
  /** The id of the message of the same room this one answers. */
  reply_to: Schema.optional(MessageId),
  ref: optionalRef
})
export const Join = Schema.Struct({ type: Schema.Literal("join"), room: Schema.String, ref: optionalRef })
export const Leave = Schema.Struct({ type: Schema.Literal("leave"), room: Schema.String, ref: optionalRef })
export const Nick = Schema.Struct({ type: Schema.Literal("nick"), name: Schema.String, ref: optionalRef })
export const DirectRequest = Schema.Struct({
  type: Schema.Literal("direct"),
  to: Schema.String,
  text: Schema.String,
  ref: optionalRef
})
export const HistoryRequest = Schema.Struct({
  type: Schema.Literal("history"),
  room: Schema.String,
  before: Schema.optional(MessageId),
  limit: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))),
  ref: optionalRef
})
export const Who = Schema.Struct({ type: Schema.Literal("who"), room: Schema.String, ref: optionalRef })
export const Ping = Schema.Struct({ type: Schema.Literal("ping"), ref: optionalRef })
/** A new token for the same user, after `token_expired` (or before it). */
export const Refresh = Schema.Struct({ type: Schema.Literal("refresh"), token: Token, ref: optionalRef })
export const TypingRequest = Schema.Struct({ type: Schema.Literal("typing"), room: Schema.String, ref: optionalRef })
export const Edit = Schema.Struct({
  type: Schema.Literal("edit"),
  room: Schema.String,
  id: MessageId,
  text: Schema.String,
  ref: optionalRef
})
export const Delete = Schema.Struct({
  type: Schema.Literal("delete"),
  room: Schema.String,
  id: MessageId,
  ref: optionalRef
})
/** 1-16 characters, no white space or control characters (checked by `checkEmoji`). */
export const React = Schema.Struct({
  type: Schema.Literal("react"),
  room: Schema.String,
  id: MessageId,
  emoji: Schema.String.pipe(Schema.maxLength(64)),
  on: Schema.Boolean,
  ref: optionalRef
})
export const Read = Schema.Struct({
  type: Schema.Literal("read"),
  room: Schema.String,
  id: MessageId,
  ref: optionalRef
})

/** Every request, once: the union and the per-type decoders below are built from this list. */
const clientSchemas = [
  Hello,
  Send,
  Join,
  Leave,
  Nick,
  DirectRequest,
  HistoryRequest,
  Who,
  Ping,
  Refresh,
  TypingRequest,
  Edit,
  Delete,
  React,
  Read
] as const
export const ClientFrame = Schema.Union(...clientSchemas)
export type ClientFrame = typeof ClientFrame.Type
export type Hello = typeof Hello.Type

// ---------------------------------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------------------------------

export const Welcome = Schema.Struct({
  type: Schema.Literal("welcome"),
  protocol: Schema.Literal(PROTOCOL_VERSION),
  name: Schema.String,
  rooms: Schema.Array(Schema.String),
  users: Schema.Number,
  resume: Schema.String,
  resumed: Schema.Boolean,
  /** Extension: the signed-in user's id (a token's `sub`, or what the app's connect hook said); absent for a guest. */
  user: Schema.optional(Schema.String),
  /** The features of `hello.features` this server enabled for the connection. */
  features: Schema.optional(Schema.Array(Schema.String))
})
/** Who reacted with each emoji, in the order they did. */
export const Reactions = Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })
export type Reactions = typeof Reactions.Type
export const Message = Schema.Struct({
  type: Schema.Literal("message"),
  room: Schema.String,
  id: Schema.Number,
  from: Schema.String,
  text: Schema.String,
  at: Schema.Number,
  reply_to: Schema.optional(Schema.Number),
  /** When it was last edited (history only: live edits arrive as `edited`). */
  edited: Schema.optional(Schema.Number),
  /** Taken back by its author (or a moderator): the text is gone for good. */
  deleted: Schema.optional(Schema.Boolean),
  reactions: Schema.optional(Reactions)
})
export type Message = typeof Message.Type
export const Direct = Schema.Struct({
  type: Schema.Literal("direct"),
  from: Schema.String,
  to: Schema.String,
  text: Schema.String,
  at: Schema.Number
})
export type Direct = typeof Direct.Type
export const History = Schema.Struct({
  type: Schema.Literal("history"),
  room: Schema.String,
  messages: Schema.Array(Message),
  more: Schema.Boolean,
  ref: optionalRef
})
export type History = typeof History.Type
export const Members = Schema.Struct({
  type: Schema.Literal("members"),
  room: Schema.String,
  names: Schema.Array(Schema.String),
  ref: optionalRef
})
export const Joined = Schema.Struct({
  type: Schema.Literal("joined"),
  room: Schema.String,
  name: Schema.String,
  at: Schema.Number
})
export type Joined = typeof Joined.Type
export const Left = Schema.Struct({
  type: Schema.Literal("left"),
  room: Schema.String,
  name: Schema.String,
  at: Schema.Number
})
export type Left = typeof Left.Type
export const Renamed = Schema.Struct({
  type: Schema.Literal("renamed"),
  from: Schema.String,
  to: Schema.String,
  at: Schema.Number
})
export type Renamed = typeof Renamed.Type
export const Ack = Schema.Struct({
  type: Schema.Literal("ack"),
  ref: Schema.String,
  id: Schema.optional(Schema.Number)
})
export const ErrorFrame = Schema.Struct({
  type: Schema.Literal("error"),
  code: ErrorCode,
  message: Schema.String,
  ref: optionalRef
})
export const Pong = Schema.Struct({ type: Schema.Literal("pong"), ref: optionalRef })
export const Typing = Schema.Struct({
  type: Schema.Literal("typing"),
  room: Schema.String,
  name: Schema.String
})
export type Typing = typeof Typing.Type
export const Edited = Schema.Struct({
  type: Schema.Literal("edited"),
  room: Schema.String,
  id: Schema.Number,
  text: Schema.String,
  at: Schema.Number
})
export type Edited = typeof Edited.Type
export const Deleted = Schema.Struct({
  type: Schema.Literal("deleted"),
  room: Schema.String,
  id: Schema.Number,
  at: Schema.Number
})
export type Deleted = typeof Deleted.Type
export const Reaction = Schema.Struct({
  type: Schema.Literal("reaction"),
  room: Schema.String,
  id: Schema.Number,
  emoji: Schema.String,
  name: Schema.String,
  on: Schema.Boolean
})
export type Reaction = typeof Reaction.Type
export const Unread = Schema.Struct({
  type: Schema.Literal("unread"),
  room: Schema.String,
  last_read: Schema.Number,
  count: Schema.Number
})
export type Unread = typeof Unread.Type
/** A change to a message that is already in history. */
export type Change = Edited | Deleted | Reaction

/** Every server frame, once: the union and the per-type decoders below are built from this list. */
const serverSchemas = [
  Welcome,
  Message,
  Direct,
  History,
  Members,
  Joined,
  Left,
  Renamed,
  Ack,
  ErrorFrame,
  Pong,
  Typing,
  Edited,
  Deleted,
  Reaction,
  Unread
] as const
export const ServerFrame = Schema.Union(...serverSchemas)
export type ServerFrame = typeof ServerFrame.Type

// ---------------------------------------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------------------------------------

const decodeOptions = { onExcessProperty: "ignore" } as const

/**
 * One decoder per server frame type, as for requests: a client checks a frame against its own type's schema rather
 * than trying each member of the union in turn (the union costs a load generator of 5,000 clients most of its CPU).
 */
const serverDecoders: ReadonlyMap<string, (value: unknown) => Either.Either<ServerFrame, ParseResult.ParseError>> =
  new Map(
    serverSchemas.map((schema) => [
      schema.fields.type.literals[0],
      Schema.decodeUnknownEither(schema as Schema.Schema<ServerFrame, any>, decodeOptions)
    ])
  )

/** One decoder per request type: a frame is parsed once and checked against its own type's schema only. */
const requestDecoders: ReadonlyMap<string, (value: unknown) => Either.Either<ClientFrame, ParseResult.ParseError>> =
  new Map(
    clientSchemas.map((schema) => [
      schema.fields.type.literals[0],
      Schema.decodeUnknownEither(schema as Schema.Schema<ClientFrame, any>, decodeOptions)
    ])
  )
export const CLIENT_TYPES: ReadonlySet<string> = new Set(requestDecoders.keys())

/** Why a frame was rejected, short enough for an `error` frame (`path: message`). */
const describe = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  if (first === undefined) return "invalid frame"
  const path = first.path.length > 0 ? `${first.path.join(".")}: ` : ""
  return truncate(`${path}${first.message}`, 200)
}

/** Why a request frame was rejected, and its `ref` when it had a usable one, so the `error` can carry it. */
export interface DecodeFailure {
  readonly message: string
  readonly ref?: string
}

/** Decodes one text frame of the JSON dialect; the failure is fit for an `invalid_frame` error frame. */
export const decodeClientFrame = (text: string): Either.Either<ClientFrame, DecodeFailure> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left({ message: truncate(`invalid JSON: ${(error as Error).message}`, 200) })
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return Either.left({ message: 'a frame must be a JSON object with a string "type"' })
  }
  const { ref, type } = value as { readonly ref?: unknown; readonly type?: unknown }
  const failed = (message: string): DecodeFailure =>
    typeof ref === "string" && ref.length <= MAX_REF_LENGTH ? { message, ref } : { message }
  const failure = (message: string) => Either.left(failed(message))
  if (typeof type !== "string") return failure("type: must be a string")
  const decode = requestDecoders.get(type)
  if (decode === undefined) return failure(`unknown frame type "${truncate(type, 32)}"`)
  try {
    return Either.mapLeft(decode(value), (error) => failed(describe(error)))
  } catch {
    // describing a deeply nested wrong value can exhaust the stack; the frame is refused all the same
    return failure("a field is nested too deeply")
  }
}

/** Decodes one frame sent by a server (used by clients). */
export const decodeServerFrame = (text: string): Either.Either<ServerFrame, string> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return Either.left(truncate(`invalid JSON: ${(error as Error).message}`, 200))
  }
  const type = typeof value === "object" && value !== null ? (value as { readonly type?: unknown }).type : undefined
  const decode = typeof type === "string" ? serverDecoders.get(type) : undefined
  if (decode === undefined) return Either.left(`unknown frame type "${truncate(String(type), 32)}"`)
  try {
    return Either.mapLeft(decode(value), describe)
  } catch {
    return Either.left("a field is nested too deeply")
  }
}

/** Encodes a server frame; the server encodes a broadcast once and sends the same bytes to every recipient. */
export const encode = (frame: ServerFrame | ClientFrame): string => JSON.stringify(frame)

const truncate = (s: string, max: number) => (s.length > max ? `${s.slice(0, max)}…` : s)
