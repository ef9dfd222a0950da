/**
 * What the composer's text asks for. Plain text is a message; a leading `/` is a command, as in the plain dialect
 * and the terminal client, so the same habits work everywhere. `//` sends a message that starts with a slash.
 */
import { checkText, MAX_TEXT_CODE_POINTS } from "../src/protocol/Rules.js"

export type ComposerAction =
  | { readonly kind: "say"; readonly text: string }
  | { readonly kind: "direct"; readonly to: string; readonly text: string }
  | { readonly kind: "join"; readonly room: string }
  | { readonly kind: "leave" }
  | { readonly kind: "nick"; readonly name: string }
  | { readonly kind: "help" }
  /** Blank input: nothing to do, nothing to complain about. */
  | { readonly kind: "ignore" }
  | { readonly kind: "invalid"; readonly message: string }

export const HELP =
  "Commands: /msg NAME text (direct message), /join ROOM, /leave, /nick NAME, /help. " +
  "Start a message with // to send a leading slash."

const TOO_LONG = `Messages are at most ${MAX_TEXT_CODE_POINTS.toLocaleString("en")} characters.`
/** Any name a user can have, assigned `user<digits>` names included. */
const TARGET_RE = /^[A-Za-z0-9_.-]{1,32}$/

const message = (text: string): ComposerAction => {
  const problem = checkText(text)
  return problem === "blank"
    ? { kind: "ignore" }
    : problem === "too_long"
      ? { kind: "invalid", message: TOO_LONG }
      : { kind: "say", text }
}

export const parseComposer = (raw: string): ComposerAction => {
  const text = raw.replace(/\s+$/, "")
  if (!text.startsWith("/")) return message(text)
  if (text.startsWith("//")) return message(text.slice(1))
  const [command = "", ...rest] = text.slice(1).split(/\s+/)
  const argument = rest.join(" ")
  const usage = (form: string): ComposerAction => ({ kind: "invalid", message: `Usage: ${form}` })
  switch (command.toLowerCase()) {
    case "msg":
    case "dm": {
      const match = /^\/\S+\s+(\S+)\s+([\s\S]+)$/.exec(text)
      if (match === null) return usage("/msg NAME text")
      const [, to = "", body = ""] = match
      if (!TARGET_RE.test(to)) return { kind: "invalid", message: `“${to}” is not a valid name.` }
      const problem = checkText(body)
      if (problem === "blank") return usage("/msg NAME text")
      if (problem === "too_long") return { kind: "invalid", message: TOO_LONG }
      return { kind: "direct", to, text: body }
    }
    case "join":
      return argument === "" ? usage("/join ROOM") : { kind: "join", room: argument }
    case "leave":
    case "part":
      return { kind: "leave" }
    case "nick":
      return argument === "" ? usage("/nick NAME") : { kind: "nick", name: argument }
    case "help":
      return { kind: "help" }
    default:
      return { kind: "invalid", message: `Unknown command /${command}. ${HELP}` }
  }
}
