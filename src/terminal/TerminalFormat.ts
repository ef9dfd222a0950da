/**
 * How the terminal client shows what happens: one function from an event to the lines to print. In the current
 * room a message reads exactly `[name]: text`, as in the plain dialect; colour is only added when asked for (a TTY
 * without NO_COLOR), so piped output never holds escape codes.
 */
import { Duration } from "effect"
import type { ChatEvent } from "../client/ChatClient.js"
import * as Protocol from "../protocol/Protocol.js"
import type { Entry } from "./Transcript.js"

export interface View {
  /** The room lines are typed into; its messages carry no `#room` prefix. */
  readonly room: string | undefined
  readonly color: boolean
  /** Messages start with their id (`#12`), for `/reply`, `/edit`, `/delete` and `/react`. */
  readonly showIds?: boolean | undefined
  /** A message shown before, to quote the original of a reply and count reactions (see `Transcript`). */
  readonly known?: ((room: string, id: number) => Entry | undefined) | undefined
}

/** How much of the original a reply quotes. */
export const QUOTE_LENGTH = 30

// Bright-ish foreground colours that read on dark and light backgrounds.
const PALETTE = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96]

/** A stable colour per name (FNV-1a hash), so the same person always looks the same. */
export const nameColor = (name: string): number => {
  let hash = 0x811c9dc5
  for (const char of name.toLowerCase()) hash = Math.imul(hash ^ char.codePointAt(0)!, 0x01000193)
  return PALETTE[(hash >>> 0) % PALETTE.length]!
}

const paint = (view: View, code: number, text: string) => (view.color ? `\x1b[${code}m${text}\x1b[0m` : text)
const dim = (view: View, text: string) => paint(view, 2, text)
const who = (view: View, name: string) => paint(view, nameColor(name), name)

/**
 * Control characters from other people are shown, not obeyed: an escape sequence in a message must not move the
 * cursor or recolour the terminal.
 */
export const sanitize = (text: string): string => text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd")

/** `#room ` for a room other than the current one, then `#id ` when ids are shown (or `withId`). */
const prefix = (view: View, room: string, id: number, withId = view.showIds === true) =>
  (room === view.room ? "" : `${paint(view, 1, `#${room}`)} `) + (withId ? `${dim(view, `#${id}`)} ` : "")

/** The start of a text on one line, for a quote: `"hello there…"`, cut after a word when one ends late enough. */
export const quote = (text: string, length: number = QUOTE_LENGTH): string => {
  const chars = Array.from(sanitize(text).replace(/\s+/g, " ").trim())
  if (chars.length <= length) return `"${chars.join("")}"`
  const start = chars.slice(0, length).join("")
  const space = start.lastIndexOf(" ")
  return `"${space >= length / 2 ? start.slice(0, space) : start}…"`
}

/** ` ↪ ann "the original…"`, or ` ↪ #12` when the original was not shown here. */
const replyTo = (view: View, room: string, id: number) => {
  const original = view.known?.(room, id)
  if (original === undefined) return ` ↪ ${dim(view, `#${id}`)}`
  return ` ↪ ${who(view, original.from)} ${dim(view, original.deleted ? Protocol.DELETED_TEXT : quote(original.text))}`
}

const body = (view: View, text: string, deleted: boolean, edited: boolean) =>
  deleted ? dim(view, Protocol.DELETED_TEXT) : `${sanitize(text)}${edited ? ` ${dim(view, "(edited)")}` : ""}`

export const formatMessage = (view: View, message: Protocol.Message): string => {
  const reply = message.reply_to === undefined ? "" : replyTo(view, message.room, message.reply_to)
  const text = body(view, message.text, message.deleted === true, message.edited !== undefined)
  return `${prefix(view, message.room, message.id)}[${who(view, message.from)}]${reply}: ${text}`
}

/** `  ↳ #12 👍 2 ❤️ 1`: the reactions a message holds now. */
export const formatReactions = (
  view: View,
  room: string,
  id: number,
  reactions: ReadonlyMap<string, ReadonlyArray<string>>
): string => {
  const counts = Array.from(reactions, ([emoji, names]) => `${sanitize(emoji)} ${names.length}`)
  return `  ↳ ${prefix(view, room, id, true)}${counts.length === 0 ? dim(view, "no reactions") : counts.join(" ")}`.trimEnd()
}

/** A message, and its reactions below it when it has some (history). */
const messageLines = (view: View, message: Protocol.Message): ReadonlyArray<string> => {
  const reactions = Object.entries(message.reactions ?? {}).filter(([, names]) => names.length > 0)
  return reactions.length === 0
    ? [formatMessage(view, message)]
    : [formatMessage(view, message), formatReactions(view, message.room, message.id, new Map(reactions))]
}

/** A change to a message shown before: always with its id, since it may be far up the screen. */
const formatChange = (view: View, event: Protocol.Change): string => {
  const original = view.known?.(event.room, event.id)
  const start = prefix(view, event.room, event.id, true)
  const from = original === undefined ? "" : `[${who(view, original.from)}]`
  switch (event.type) {
    case "edited":
      return from === ""
        ? `${start}${dim(view, "(edited)")}: ${sanitize(event.text)}`
        : `${start}${from}: ${body(view, event.text, false, true)}`
    case "deleted":
      return `${start}${from === "" ? "" : `${from}: `}${dim(view, Protocol.DELETED_TEXT)}`
    case "reaction":
      // Counts only for a message whose reactions are known; otherwise what changed.
      return original === undefined
        ? `  ↳ ${start}${sanitize(event.name)} ${event.on ? "" : "took back "}${sanitize(event.emoji)}`
        : formatReactions(view, event.room, event.id, original.reactions)
  }
}

export const formatDirect = (view: View, direct: Protocol.Direct): string =>
  `${paint(view, 35, "(direct)")} [${who(view, direct.from)} → ${who(view, direct.to)}]: ${sanitize(direct.text)}`

export const formatError = (view: View, code: string, message: string): string =>
  paint(view, 31, `error (${code}): ${sanitize(message)}`)

const CLOSE_REASONS: Record<number, string> = {
  1000: "normal close",
  1001: "server going away",
  1003: "unsupported data",
  1006: "connection lost",
  1008: "policy violation",
  1009: "message too big",
  1011: "server error",
  1013: "server full, try again later",
  4001: "not signed in: the token is missing, invalid or expired (give a new one with --token or CHAT_TOKEN)",
  4003: "removed by the server: do not reconnect with the same token",
  4008: "too slow to keep up",
  4009: "session taken over by another connection"
}

/** A close code for a person: `4009 session taken over by another connection`, plus the server's reason. */
export const describeClose = (code: number, reason: string): string =>
  [String(code), CLOSE_REASONS[code], reason === "" ? undefined : `(${sanitize(reason)})`].filter(Boolean).join(" ")

const seconds = (delay: Duration.Duration) => `${(Duration.toMillis(delay) / 1000).toFixed(1)}s`

/** The lines an event prints; none for events the user need not see. */
export const formatEvent = (view: View, event: ChatEvent): ReadonlyArray<string> => {
  switch (event.type) {
    case "message":
      return messageLines(view, event)
    case "history":
      return event.messages.flatMap((message) => messageLines(view, message))
    case "edited":
    case "deleted":
    case "reaction":
      return [formatChange(view, event)]
    case "direct":
      return [formatDirect(view, event)]
    case "members":
      return [dim(view, `in #${event.room}: ${event.names.map(sanitize).join(", ")}`)]
    case "joined":
      return [dim(view, `* ${sanitize(event.name)} joined #${event.room}`)]
    case "left":
      return [dim(view, `* ${sanitize(event.name)} left #${event.room}`)]
    case "renamed":
      return [dim(view, `* ${sanitize(event.from)} is now known as ${sanitize(event.to)}`)]
    case "error":
      return [formatError(view, event.code, event.message)]
    case "connected": {
      const { name, users } = event.welcome
      if (!event.reconnected) {
        const count = users === 1 ? "is 1 user" : `are ${users} users`
        return [`You are connected as ${who(view, name)}! There ${count} here.`]
      }
      return [
        dim(
          view,
          event.resumed ? "reconnected (session resumed)" : "reconnected (new session: earlier messages may be missing)"
        )
      ]
    }
    case "disconnected":
      return [dim(view, `disconnected: ${describeClose(event.code, event.reason)}`)]
    case "reconnecting":
      return [dim(view, `reconnecting (attempt ${event.attempt}, in ${seconds(event.delay)})…`)]
    case "connecting":
    case "closed":
    // Typing is on the status line, unread counts in `/rooms`.
    case "typing":
    case "unread":
      return []
  }
}
