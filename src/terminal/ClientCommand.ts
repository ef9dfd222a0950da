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
  "  /help            this help",
  "  /quit or exit    leave the chat (so does Ctrl-D)",
  "A line starting with // says the rest of it, starting with /."
]

/** The name and room rules in words, for a one-line explanation. */
export const NAME_RULE = "1-32 letters, digits, _ - . (user<digits> is reserved)"
export const ROOM_RULE = "1-64 letters, digits, _ - ."

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

const room = (name: string, make: (room: string) => ClientCommand): ClientCommand =>
  Protocol.isValidRoom(name)
    ? make(name)
    : ClientCommand.Invalid({ message: `not a valid room: ${name} (${ROOM_RULE})` })

const textProblem = (problem: Protocol.TextProblem): string =>
  problem === "blank" ? "nothing to send" : `message too long (at most ${Protocol.MAX_TEXT_CODE_POINTS} characters)`
