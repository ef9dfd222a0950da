/**
 * The JSON dialect (`effect-chat.v1`): `hello` first, then requests answered with `ack`/`error` carrying their `ref`,
 * or with their own frame (`members`, `history`, `pong`). Frames are decoded here, once; what follows sees types.
 */
import { Effect, Either } from "effect"
import { type ClientFrame, CloseCode, decodeClientFrame, encode } from "../protocol/Protocol.js"
import { Chat } from "../server/Chat.js"
import { ChatError } from "../server/ChatError.js"
import type { Connection, Renderer } from "../server/Connection.js"
import * as RateLimiter from "../server/RateLimiter.js"
import { securityLog } from "../server/SecurityLog.js"
import { ServerConfig } from "../server/ServerConfig.js"
import type { Dialect, Mailbox } from "./Dialect.js"

/** Every server frame, as JSON. */
export const renderer: Renderer = { render: encode, showsRoomState: true }

const run = (connection: Connection, mailbox: Mailbox) =>
  Effect.gen(function* () {
    const chat = yield* Chat
    const config = yield* ServerConfig

    const first = yield* mailbox.take.pipe(Effect.timeoutOption(config.helloTimeout))
    if (first._tag === "None") {
      yield* securityLog("no hello in time", connection)
      return connection.close(CloseCode.policy, "no hello")
    }
    const hello = decodeClientFrame(first.value)
    if (Either.isLeft(hello) || hello.right.type !== "hello") {
      const message = Either.isLeft(hello) ? hello.left.message : `expected hello, got ${hello.right.type}`
      connection.send({ type: "error", code: "invalid_frame", message })
      yield* securityLog("first frame was not hello", connection)
      return connection.close(CloseCode.policy, "hello expected")
    }
    const opened = yield* chat
      .open(connection, {
        name: hello.right.name,
        rooms: hello.right.rooms ?? ["lobby"],
        resume: hello.right.resume
      })
      .pipe(Effect.either)
    if (Either.isLeft(opened)) {
      connection.send(errorFrame(opened.left))
      return connection.close(CloseCode.internalError, "try again later")
    }
    connection.send(opened.right.welcome)
    for (const problem of opened.right.problems) connection.send(errorFrame(problem))
    yield* opened.right.enterRooms

    const limiter = yield* RateLimiter.make(config.rateLimit)
    let strikes = 0
    while (true) {
      const text = yield* mailbox.take
      const frame = decodeClientFrame(text)
      const ref = Either.isLeft(frame) ? frame.left.ref : frame.right.ref
      // Every frame costs a token, refused ones included, so a stream of junk is a flood like any other.
      if (!(yield* limiter.take)) {
        if (++strikes > config.rateLimit.strikesBeforeClose) {
          yield* securityLog("closing a flooding connection", connection)
          return connection.close(CloseCode.policy, "rate limit exceeded repeatedly")
        }
        connection.send(withRef({ type: "error", code: "rate_limited", message: "slow down" }, ref))
        continue
      }
      strikes = 0
      if (Either.isLeft(frame)) {
        connection.send(withRef({ type: "error", code: "invalid_frame", message: frame.left.message }, ref))
        continue
      }
      yield* handle(chat, connection, frame.right).pipe(
        Effect.catchAll((error) => Effect.sync(() => connection.send(withRef(errorFrame(error), ref))))
      )
    }
  })

const handle = (chat: typeof Chat.Service, connection: Connection, frame: ClientFrame) => {
  const ack = (id?: number) =>
    Effect.sync(() => {
      if (frame.ref !== undefined)
        connection.send(id === undefined ? { type: "ack", ref: frame.ref } : { type: "ack", ref: frame.ref, id })
    })
  switch (frame.type) {
    case "hello":
      return Effect.fail(new ChatError({ code: "invalid_frame", message: "hello was already sent" }))
    case "send":
      return Effect.flatMap(chat.send(connection, frame.room, frame.text, frame.ref), ack)
    case "join":
      return Effect.zipRight(chat.join(connection, frame.room), ack())
    case "leave":
      return Effect.zipRight(chat.leave(connection, frame.room), ack())
    case "nick":
      return Effect.zipRight(chat.nick(connection, frame.name), ack())
    case "direct":
      return Effect.zipRight(chat.direct(connection, frame.to, frame.text), ack())
    case "history":
      return Effect.map(chat.history(connection, frame.room, { before: frame.before, limit: frame.limit }), (page) =>
        connection.send(
          withRef({ type: "history", room: frame.room, messages: page.messages, more: page.more }, frame.ref)
        )
      )
    case "who":
      return Effect.map(chat.who(connection, frame.room), (names) =>
        connection.send(withRef({ type: "members", room: frame.room, names }, frame.ref))
      )
    case "ping":
      return Effect.sync(() => connection.send(withRef({ type: "pong" }, frame.ref)))
  }
}

const errorFrame = (error: ChatError) => ({ type: "error" as const, code: error.code, message: error.message })
const withRef = <A extends object>(frame: A, ref: string | undefined): A =>
  ref === undefined ? frame : { ...frame, ref }

export const dialect: Dialect = { renderer, run }
