/**
 * What a line typed into the terminal client means. Parsing is pure and checks arguments here, so a typo gets a
 * one-line explanation at once instead of a round trip to the server.
 */
import { Data } from "effect"
import * as Protocol from "../protocol/Protocol.js"

export type ClientCommand = Data.TaggedEnum<{
  /** Nothing to do: a blank line. */
  Empty: {}
  Say: { readonly text: string }
  Join: { readonly room: string }
  /** `room` undefined: the current room. */
  Leave: { readonly room: string | undefined }
  Nick: { readonly name: string }
  Who: {}
  Msg: { readonly to: string; readonly text: string }
  /** `limit` undefined: the server's default. */
  History: { readonly limit: number | undefined }
  /** The message ids of `Reply`, `Edit`, `Delete` and `React` are of the current room. */
  Reply: { readonly id: number; readonly text: string }
  Edit: { readonly id: number; readonly text: string }
  Delete: { readonly id: number }
  /** Toggles: adds the user's `emoji`, or removes it when the user already reacted with it. */
  React: { readonly id: number; readonly emoji: string }
  /** Shows or hides message ids. */
  Ids: {}
  /** The user's rooms with their unread counts. */
  Rooms: {}
  Help: {}
  Quit: {}
  Invalid: { readonly message: string }
}>
export const ClientCommand = Data.taggedEnum<ClientCommand>()

export const HELP: ReadonlyArray<string> = [
  "Type a line to say it in the current room. Commands:",
  "  /join ROOM       join ROOM and make it the current room",
  "  /leave [ROOM]    leave ROOM (default: the current room)",
  "  /nick NAME       change your name",
  "  /who             who is in the current room",
  "  /msg NAME TEXT   private message to NAME",
  "  /history [N]     the last N messages of the current room (default 50, at most 100)",
  "  /rooms           your rooms, with how many messages you have not read in each",
  "  /ids             show or hide message ids (the ID below; --show-ids starts with them shown)",
  "  /reply ID TEXT   answer message ID of the current room",
  "  /edit ID TEXT    change your message ID",
  "  /delete ID       take back your message ID",
  "  /react ID EMOJI  add EMOJI to message ID, or take yours back if you already did",
  "  /help            this help",
  "  /quit or exit    leave the chat (so does Ctrl-D)",
  "A line starting with // says the rest of it, starting with /."
]

/** The name and room rules in words, for a one-line explanation. */
export const NAME_RULE = "1-32 letters, digits, _ - . (user<digits> is reserved)"
export const ROOM_RULE = "1-64 letters, digits, _ - ."
export const EMOJI_RULE = "1-16 characters, no spaces"

export const parse = (line: string): ClientCommand => {
  const trimmed = line.trim()
  if (trimmed === "") return ClientCommand.Empty()
  if (trimmed === "exit") return ClientCommand.Quit()
  if (trimmed.startsWith("//")) return say(line.slice(line.indexOf("/") + 1))
  if (!trimmed.startsWith("/")) return say(line)

  const [command = "", ...args] = trimmed.split(/\s+/)
  const arity = (min: number, max: number, usage: string) =>
    args.length >= min && args.length <= max ? undefined : ClientCommand.Invalid({ message: `usage: ${usage}` })
  switch (command.toLowerCase()) {
    case "/join":
      return arity(1, 1, "/join ROOM") ?? room(args[0]!, (room) => ClientCommand.Join({ room }))
    case "/leave":
      return (
        arity(0, 1, "/leave [ROOM]") ??
        (args[0] === undefined
          ? ClientCommand.Leave({ room: undefined })
          : room(args[0], (room) => ClientCommand.Leave({ room })))
      )
    case "/nick": {
      const name = args[0]!
      return (
        arity(1, 1, "/nick NAME") ??
        (Protocol.isValidName(name)
          ? ClientCommand.Nick({ name })
          : ClientCommand.Invalid({ message: `not a valid name: ${name} (${NAME_RULE})` }))
      )
    }
    case "/who":
      return arity(0, 0, "/who") ?? ClientCommand.Who()
    case "/msg": {
      // The text is the rest of the line as typed, spacing included.
      const match = /^\/msg\s+(\S+)\s+(.*)$/is.exec(trimmed)
      if (match === null) return ClientCommand.Invalid({ message: "usage: /msg NAME TEXT" })
      const problem = Protocol.checkText(match[2]!)
      return problem === undefined
        ? ClientCommand.Msg({ to: match[1]!, text: match[2]! })
        : ClientCommand.Invalid({ message: textProblem(problem) })
    }
    case "/history": {
      const usage = arity(0, 1, "/history [N]")
      if (usage !== undefined) return usage
      if (args[0] === undefined) return ClientCommand.History({ limit: undefined })
      const limit = Number(args[0])
      return Number.isInteger(limit) && limit >= 1 && limit <= 100
        ? ClientCommand.History({ limit })
        : ClientCommand.Invalid({ message: `usage: /history [N] with N from 1 to 100` })
    }
    case "/reply":
      return withIdAndText(trimmed, "/reply ID TEXT", (id, text) => ClientCommand.Reply({ id, text }))
    case "/edit":
      return withIdAndText(trimmed, "/edit ID TEXT", (id, text) => ClientCommand.Edit({ id, text }))
    case "/delete":
      return arity(1, 1, "/delete ID") ?? messageId(args[0]!, (id) => ClientCommand.Delete({ id }))
    case "/react": {
      const usage = arity(2, 2, "/react ID EMOJI")
      if (usage !== undefined) return usage
      const emoji = args[1]!
      return messageId(args[0]!, (id) =>
        Protocol.checkEmoji(emoji)
          ? ClientCommand.React({ id, emoji })
          : ClientCommand.Invalid({ message: `not an emoji: ${emoji} (${EMOJI_RULE})` })
      )
    }
    case "/ids":
      return arity(0, 0, "/ids") ?? ClientCommand.Ids()
    case "/rooms":
      return arity(0, 0, "/rooms") ?? ClientCommand.Rooms()
    case "/help":
      return ClientCommand.Help()
    case "/quit":
    case "/exit":
      return ClientCommand.Quit()
    default:
      return ClientCommand.Invalid({ message: `unknown command ${command} (try /help)` })
  }
}

const say = (text: string): ClientCommand => {
  const problem = Protocol.checkText(text)
  return problem === undefined ? ClientCommand.Say({ text }) : ClientCommand.Invalid({ message: textProblem(problem) })
}

/** `/command ID TEXT`: the text is the rest of the line as typed, spacing included. */
const withIdAndText = (
  line: string,
  usage: string,
  make: (id: number, text: string) => ClientCommand
): ClientCommand => {
  const match = /^\/\S+\s+(\S+)\s+(.*)$/s.exec(line)
  if (match === null) return ClientCommand.Invalid({ message: `usage: ${usage}` })
  const text = match[2]!
  return messageId(match[1]!, (id) => {
    const problem = Protocol.checkText(text)
    return problem === undefined ? make(id, text) : ClientCommand.Invalid({ message: textProblem(problem) })
  })
}

/** A message id as shown with `/ids`: `12` or `#12`. */
const messageId = (arg: string, make: (id: number) => ClientCommand): ClientCommand => {
  const digits = arg.startsWith("#") ? arg.slice(1) : arg
  const id = /^[0-9]{1,15}$/.test(digits) ? Number(digits) : NaN
  return id >= 1 ? make(id) : ClientCommand.Invalid({ message: `not a message id: ${arg} (a number; /ids shows them)` })
}

const room = (name: string, make: (room: string) => ClientCommand): ClientCommand =>
  Protocol.isValidRoom(name)
    ? make(name)
    : ClientCommand.Invalid({ message: `not a valid room: ${name} (${ROOM_RULE})` })

const textProblem = (problem: Protocol.TextProblem): string =>
  problem === "blank" ? "nothing to send" : `message too long (at most ${Protocol.MAX_TEXT_CODE_POINTS} characters)`
