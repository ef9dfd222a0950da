/**
 * The JSON dialect (`effect-chat.v1`): `hello` first, then requests answered with `ack`/`error` carrying their `ref`,
 * or with their own frame (`members`, `history`, `pong`). Frames are decoded here, once; what follows sees types.
 */
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { Duration, Effect, Either, Runtime } from "effect"
import { forV1 } from "../backend/MessageState.js"
import {
  type ClientFrame,
  CloseCode,
  DELETED_TEXT,
  decodeClientFrame,
  encode,
  type Feature,
  FEATURES,
  isFeature,
  type ServerFrame
} from "../protocol/Protocol.js"
import { Chat } from "../server/Chat.js"
import { ChatError } from "../server/ChatError.js"
import type { Connection, Renderer } from "../server/Connection.js"
import * as RateLimiter from "../server/RateLimiter.js"
import { securityLog } from "../server/SecurityLog.js"
import { ServerConfig } from "../server/ServerConfig.js"
import { connectRequest, type Dialect, ExpiryTimer, refusalClose, type Served, type UpgradeRequest } from "./Dialect.js"

/** The feature a frame type needs the client to have asked for; the others go to every JSON client. */
const FEATURE_OF: Partial<Record<ServerFrame["type"], Feature>> = {
  typing: "typing",
  edited: "edits",
  deleted: "edits",
  reaction: "reactions",
  unread: "receipts"
}

/**
 * Server frames as JSON for a client that asked for `features`: the frames of other features are not shown, and
 * without `edits` a deleted message in history reads `[deleted]` (the original text is never sent again to anyone).
 * One renderer per set of features, shared by every connection with that set, so a room's fan-out still encodes a
 * batch once per kind of member.
 */
const makeRenderer = (features: ReadonlySet<Feature> | undefined): Renderer => {
  const edits = features?.has("edits") === true
  return {
    render: (frame) => {
      const feature = FEATURE_OF[frame.type]
      if (feature !== undefined) return features?.has(feature) === true ? encode(frame) : undefined
      if (frame.type === "history" && !edits && frame.messages.some((message) => message.deleted === true)) {
        return encode({ ...frame, messages: frame.messages.map((message) => forV1(message, DELETED_TEXT)) })
      }
      return encode(frame)
    },
    showsRoomState: true,
    features
  }
}

/** Every v1 frame, as JSON: the renderer of a client that asked for no features. */
export const renderer: Renderer = makeRenderer(undefined)

const renderers = new Map<number, Renderer>()

/** The renderer for `hello.features` (names the server does not know are ignored). */
export const rendererFor = (requested: ReadonlyArray<string> | undefined): Renderer => {
  if (requested === undefined) return renderer
  const features = FEATURES.filter((feature) => requested.includes(feature))
  const mask = features.reduce((bits, feature) => bits | (1 << FEATURES.indexOf(feature)), 0)
  let found = renderers.get(mask)
  if (found === undefined) renderers.set(mask, (found = makeRenderer(new Set(features.filter(isFeature)))))
  return found
}

/** The JSON dialect over the chat core in context. */
export const make = Effect.gen(function* () {
  const chat = yield* Chat
  const config = yield* ServerConfig
  const runtime = yield* Effect.runtime<never>()
  const helloTimeoutMs = Duration.toMillis(config.helloTimeout)
  const graceMs = Duration.toMillis(config.auth.grace)

  const serve = (connection: Connection, upgrade: UpgradeRequest): Served => {
    // The upgrade's headers are needed until `hello` only (the connect hooks read them); then only the URL stays.
    let pending: UpgradeRequest | undefined = upgrade
    // Kept for `refresh`, without a `?token=`: a credential is not held for the life of the connection.
    const url = withoutToken(upgrade.url)
    let phase: "hello" | "open" = "hello"
    let strikes = 0
    let bucket: RateLimiter.TokenBucket | undefined
    // One timer until `hello`, not a sleeping fiber.
    let helloTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
      helloTimer = undefined
      if (phase !== "hello" || !connection.acceptsFrames) return
      Runtime.runFork(runtime)(securityLog("no hello in time", connection))
      connection.close(CloseCode.policy, "no hello")
    }, helloTimeoutMs)
    helloTimer.unref()

    // An authenticated connection whose token expires is told so and given the grace to send `refresh`.
    let expiry: ExpiryTimer | undefined
    let graceTimer: ReturnType<typeof setTimeout> | undefined
    const watchExpiry = () =>
      new ExpiryTimer(connection, () => {
        if (!connection.acceptsFrames || graceTimer !== undefined) return
        const seconds = Math.round(graceMs / 1000)
        connection.send({
          type: "error",
          code: "token_expired",
          message: `your token expired: send refresh with a new one within ${seconds} s`
        })
        graceTimer = setTimeout(() => {
          if (connection.acceptsFrames) connection.close(CloseCode.unauthorized, "token expired")
        }, graceMs)
        graceTimer.unref()
      })

    const refresh = (token: string, ref: string | undefined) =>
      chat.refresh(connection, connectRequest({ url, ip: connection.ip, headers: {} }, token)).pipe(
        Effect.map((outcome) => {
          if (outcome === "other_user") {
            connection.send(
              withRef({ type: "error", code: "unauthorized", message: "that token is another user's" }, ref)
            )
            return connection.close(CloseCode.unauthorized, "another user's token")
          }
          clearTimeout(graceTimer)
          graceTimer = undefined
          ;(expiry ??= watchExpiry()).arm()
          if (ref !== undefined) connection.send({ type: "ack", ref })
        })
      )

    const hello = (text: string) =>
      Effect.gen(function* () {
        clearTimeout(helloTimer)
        helloTimer = undefined
        const frame = decodeClientFrame(text)
        if (Either.isLeft(frame) || frame.right.type !== "hello") {
          const message = Either.isLeft(frame) ? frame.left.message : `expected hello, got ${frame.right.type}`
          connection.send({ type: "error", code: "invalid_frame", message })
          yield* securityLog("first frame was not hello", connection)
          return connection.close(CloseCode.policy, "hello expected")
        }
        const connect = pending === undefined ? undefined : connectRequest(pending, frame.right.token)
        pending = undefined
        connection.renderer = rendererFor(frame.right.features)
        const opened = yield* chat
          .open(connection, {
            name: frame.right.name,
            rooms: frame.right.rooms ?? ["lobby"],
            resume: frame.right.resume,
            connect
          })
          .pipe(Effect.either)
        if (Either.isLeft(opened)) {
          connection.send(errorFrame(opened.left))
          const close = refusalClose(opened.left)
          return connection.close(close.code, close.reason)
        }
        phase = "open"
        if (connection.identity?.expiresAt !== undefined) (expiry = watchExpiry()).arm()
        connection.send(opened.right.welcome)
        for (const problem of opened.right.problems) connection.send(errorFrame(problem))
        yield* opened.right.enterRooms
      })

    const request = (text: string) =>
      Effect.suspend(() => {
        const now = Date.now()
        const frame = decodeClientFrame(text)
        const ref = Either.isLeft(frame) ? frame.left.ref : frame.right.ref
        // Every frame costs a token, refused ones included, so a stream of junk is a flood like any other.
        if (!(bucket ??= new RateLimiter.TokenBucket(config.rateLimit, now)).takeAt(now)) {
          if (++strikes > config.rateLimit.strikesBeforeClose) {
            connection.close(CloseCode.policy, "rate limit exceeded repeatedly")
            return securityLog("closing a flooding connection", connection)
          }
          ChatMetrics.add(ChatMetrics.rateLimited, 1)
          connection.send(withRef({ type: "error", code: "rate_limited", message: "slow down" }, ref))
          return Effect.void
        }
        strikes = 0
        if (Either.isLeft(frame)) {
          connection.send(withRef({ type: "error", code: "invalid_frame", message: frame.left.message }, ref))
          return Effect.void
        }
        const handled =
          frame.right.type === "refresh" ? refresh(frame.right.token, ref) : handle(chat, connection, frame.right)
        return handled.pipe(
          Effect.catchAll((error) => Effect.sync(() => connection.send(withRef(errorFrame(error), ref))))
        )
      })

    return {
      start: Effect.void,
      receive: (text) => (phase === "hello" ? hello(text) : request(text)),
      stop: () => {
        clearTimeout(helloTimer)
        clearTimeout(graceTimer)
        expiry?.stop()
      }
    }
  }

  return { renderer, serve } satisfies Dialect
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
      return Effect.flatMap(chat.send(connection, frame.room, frame.text, frame.ref, frame.reply_to), ack)
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
    case "refresh":
      return Effect.fail(new ChatError({ code: "invalid_frame", message: "refresh is handled by the dialect" }))
    case "typing":
      return Effect.zipRight(chat.typing(connection, frame.room), ack())
    case "edit":
      return Effect.zipRight(
        chat.change(connection, frame.room, { _tag: "Edit", id: frame.id, text: frame.text }),
        ack()
      )
    case "delete":
      return Effect.zipRight(chat.change(connection, frame.room, { _tag: "Delete", id: frame.id }), ack())
    case "react":
      return Effect.zipRight(
        chat.change(connection, frame.room, { _tag: "React", id: frame.id, emoji: frame.emoji, on: frame.on }),
        ack()
      )
    case "read":
      return Effect.zipRight(chat.read(connection, frame.room, frame.id), ack())
  }
}

const errorFrame = (error: ChatError) => ({ type: "error" as const, code: error.code, message: error.message })
const withRef = <A extends object>(frame: A, ref: string | undefined): A =>
  ref === undefined ? frame : { ...frame, ref }

const withoutToken = (url: URL): URL => {
  if (!url.searchParams.has("token")) return url
  const copy = new URL(url)
  copy.searchParams.delete("token")
  return copy
}
