/**
 * The plain dialect: text lines, as in the classic Ktor chat, so any raw WebSocket tool can chat. A plain user is in
 * one room at a time (`lobby` first); `/join` moves them.
 */
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { Clock, Effect } from "effect"
import { CloseCode } from "../protocol/Protocol.js"
import type * as Protocol from "../protocol/Protocol.js"
import { Chat } from "../server/Chat.js"
import type { ChatError } from "../server/ChatError.js"
import type { Connection, Renderer } from "../server/Connection.js"
import * as RateLimiter from "../server/RateLimiter.js"
import { securityLog } from "../server/SecurityLog.js"
import { ServerConfig } from "../server/ServerConfig.js"
import { connectRequest, type Dialect, ExpiryTimer, refusalClose, type Served, type UpgradeRequest } from "./Dialect.js"

/**
 * How server frames read as lines: only what a person at a raw WebSocket tool needs — messages, direct messages and
 * errors. Presence, acks and room state have no line.
 */
export const renderer: Renderer = {
  render: (frame: Protocol.ServerFrame) => {
    switch (frame.type) {
      case "message":
        return `[${frame.from}]: ${frame.text}`
      case "direct":
        return `[${frame.from} → ${frame.to}]: ${frame.text}`
      case "error":
        return `Error: ${frame.message}`
      default:
        return undefined
    }
  },
  showsRoomState: false
}

const HELP = "Commands: /nick NAME, /join ROOM, /who, /msg NAME TEXT, /help, /quit. Anything else is said in your room."

/** The plain dialect over the chat core in context. */
export const make = Effect.gen(function* () {
  const chat = yield* Chat
  const config = yield* ServerConfig

  const serve = (connection: Connection, upgrade: UpgradeRequest): Served => {
    // Held until the session opens (the connect hooks read its headers), not for the life of the connection.
    let request: UpgradeRequest | undefined = upgrade
    let bucket: RateLimiter.TokenBucket | undefined
    let strikes = 0
    let expiry: ExpiryTimer | undefined

    const start = Effect.gen(function* () {
      const connect = connectRequest(request!)
      const requested = request!.url.searchParams.get("name") ?? undefined
      request = undefined
      const opened = yield* chat.open(connection, { name: requested, rooms: ["lobby"], connect }).pipe(Effect.either)
      if (opened._tag === "Left") {
        const error = opened.left
        connection.sendText(
          error.code === "unauthorized"
            ? `Unauthorized: ${error.message}`
            : error.code === "unavailable"
              ? "The server cannot take you right now; try again later."
              : `Error: ${error.message}`
        )
        const close = refusalClose(error)
        return connection.close(close.code, close.reason)
      }
      if (connection.identity?.expiresAt !== undefined) {
        // A plain connection cannot refresh its token: at expiry it is told to reconnect with a new one.
        expiry = new ExpiryTimer(connection, () => {
          if (!connection.acceptsFrames) return
          connection.sendText("Session expired: reconnect with a new token.")
          connection.close(CloseCode.unauthorized, "token expired")
        })
        expiry.arm()
      }
      connection.sendText(`You are connected! There are ${opened.right.welcome.users} users here.`)
      for (const problem of opened.right.problems) {
        connection.sendText(`${problem.message}; you are ${connection.name}.`)
      }
      yield* opened.right.enterRooms
    })

    const say = (line: string) => Effect.sync(() => connection.sendText(line))
    const report = (error: ChatError) => say(`Error: ${error.message}`)
    const room = () => connection.rooms.values().next().value as string | undefined

    const command = (line: string): Effect.Effect<void, ChatError> => {
      const [verb = "", ...args] = line.trim().split(/\s+/)
      switch (verb.toLowerCase()) {
        case "/nick":
          return args.length !== 1
            ? say("Usage: /nick NAME")
            : Effect.zipRight(chat.nick(connection, args[0]!), say(`You are now known as ${args[0]}.`))
        case "/join": {
          if (args.length !== 1) return say("Usage: /join ROOM")
          const target = args[0]!
          const current = room()
          if (current === target) return say(`You are already in ${target}.`)
          return Effect.gen(function* () {
            yield* chat.join(connection, target)
            if (current !== undefined) yield* chat.leave(connection, current)
            const names = yield* chat.who(connection, target)
            yield* say(`You joined ${target}. There are ${names.length} users here.`)
          })
        }
        case "/who": {
          const current = room()
          if (current === undefined) return say("You are in no room; /join one.")
          return Effect.flatMap(chat.who(connection, current), (names) =>
            say(`Users in ${current}: ${names.join(", ")}`)
          )
        }
        case "/msg": {
          const match = /^\/msg\s+(\S+)\s+([\s\S]+)$/i.exec(line.trim())
          return match === null ? say("Usage: /msg NAME TEXT") : chat.direct(connection, match[1]!, match[2]!)
        }
        case "/help":
          return say(HELP)
        case "/quit":
          return Effect.sync(() => connection.close(CloseCode.normal, "bye"))
        default:
          return say(`Unknown command ${verb.slice(0, 32)}. ${HELP}`)
      }
    }

    const receive = (text: string) =>
      Effect.gen(function* () {
        for (const line of text.split(/\r?\n/)) {
          if (line.trim() === "" || !connection.acceptsFrames) continue
          const now = yield* Clock.currentTimeMillis
          if (!(bucket ??= new RateLimiter.TokenBucket(config.rateLimit, now)).takeAt(now)) {
            if (++strikes > config.rateLimit.strikesBeforeClose) {
              connection.close(CloseCode.policy, "rate limit exceeded repeatedly")
              return yield* securityLog("closing a flooding connection", connection)
            }
            ChatMetrics.add(ChatMetrics.rateLimited, 1)
            yield* say("Error: rate limited, slow down; that line was not delivered.")
            continue
          }
          strikes = 0
          const current = room()
          const act = line.startsWith("/")
            ? command(line)
            : current === undefined
              ? say("You are in no room; /join one.")
              : Effect.asVoid(chat.send(connection, current, line))
          yield* Effect.catchAll(act, report)
        }
      })

    return { start, receive, stop: () => expiry?.stop() }
  }

  return { renderer, serve } satisfies Dialect
})
