/**
 * The browser's copy of the `effect-chat.v1` wire contract (src/Protocol.ts is the source of truth). The browser
 * build has no bundler and cannot load `effect`, so frames are checked here by hand: a frame that does not have the
 * shape the rest of the client relies on is dropped at this edge instead of breaking the UI further in.
 */

export const SUBPROTOCOL = "effect-chat.v1"

const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/
const RESERVED_RE = /^user[0-9]+$/i
export const MAX_TEXT_CODE_POINTS = 4000

export const isValidName = (name: string): boolean => NAME_RE.test(name) && !RESERVED_RE.test(name)
export const isValidRoom = (room: string): boolean => ROOM_RE.test(room)
/** Names compare case-insensitively. */
export const nameKey = (name: string): string => name.toLowerCase()

export type TextProblem = "blank" | "too_long"
export const checkText = (text: string): TextProblem | undefined => {
  if (text.trim().length === 0) return "blank"
  if (text.length > MAX_TEXT_CODE_POINTS && [...text].length > MAX_TEXT_CODE_POINTS) return "too_long"
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------------------------------

export type ClientFrame =
  | {
      readonly type: "hello"
      readonly name?: string
      readonly rooms?: ReadonlyArray<string>
      readonly resume?: { readonly token: string; readonly since: Readonly<Record<string, number>> }
    }
  | { readonly type: "send"; readonly room: string; readonly text: string; readonly ref?: string }
  | { readonly type: "join"; readonly room: string; readonly ref?: string }
  | { readonly type: "leave"; readonly room: string; readonly ref?: string }
  | { readonly type: "nick"; readonly name: string; readonly ref?: string }
  | { readonly type: "direct"; readonly to: string; readonly text: string; readonly ref?: string }
  | {
      readonly type: "history"
      readonly room: string
      readonly before?: number
      readonly limit?: number
      readonly ref?: string
    }
  | { readonly type: "who"; readonly room: string; readonly ref?: string }
  | { readonly type: "ping"; readonly ref?: string }

// ---------------------------------------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------------------------------------

export interface Message {
  readonly type: "message"
  readonly room: string
  readonly id: number
  readonly from: string
  readonly text: string
  readonly at: number
}
export interface Direct {
  readonly type: "direct"
  readonly from: string
  readonly to: string
  readonly text: string
  readonly at: number
}
export interface Welcome {
  readonly type: "welcome"
  readonly protocol: number
  readonly name: string
  readonly rooms: ReadonlyArray<string>
  readonly users: number
  readonly resume: string
  readonly resumed: boolean
}
export interface History {
  readonly type: "history"
  readonly room: string
  readonly messages: ReadonlyArray<Message>
  readonly more: boolean
  readonly ref?: string
}
export interface Members {
  readonly type: "members"
  readonly room: string
  readonly names: ReadonlyArray<string>
  readonly ref?: string
}
export interface Joined {
  readonly type: "joined"
  readonly room: string
  readonly name: string
  readonly at: number
}
export interface Left {
  readonly type: "left"
  readonly room: string
  readonly name: string
  readonly at: number
}
export interface Renamed {
  readonly type: "renamed"
  readonly from: string
  readonly to: string
  readonly at: number
}
export interface Ack {
  readonly type: "ack"
  readonly ref: string
  readonly id?: number
}
export interface ErrorFrame {
  readonly type: "error"
  readonly code: string
  readonly message: string
  readonly ref?: string
}
export interface Pong {
  readonly type: "pong"
  readonly ref?: string
}

export type ServerFrame =
  Welcome | Message | Direct | History | Members | Joined | Left | Renamed | Ack | ErrorFrame | Pong

type Fields = Record<string, unknown>

const isObject = (u: unknown): u is Fields => typeof u === "object" && u !== null && !Array.isArray(u)
const isString = (u: unknown): u is string => typeof u === "string"
const isNumber = (u: unknown): u is number => typeof u === "number" && Number.isFinite(u)
const isStringArray = (u: unknown): u is Array<string> => Array.isArray(u) && u.every(isString)
const optional = (u: unknown, check: (u: unknown) => boolean): boolean => u === undefined || check(u)

const isMessage = (f: Fields): boolean =>
  isString(f.room) && isNumber(f.id) && isString(f.from) && isString(f.text) && isNumber(f.at)

const checks: Record<ServerFrame["type"], (f: Fields) => boolean> = {
  welcome: (f) =>
    isString(f.name) &&
    isStringArray(f.rooms) &&
    isNumber(f.users) &&
    isString(f.resume) &&
    typeof f.resumed === "boolean",
  message: isMessage,
  direct: (f) => isString(f.from) && isString(f.to) && isString(f.text) && isNumber(f.at),
  history: (f) =>
    isString(f.room) &&
    Array.isArray(f.messages) &&
    f.messages.every((m) => isObject(m) && isMessage(m)) &&
    typeof f.more === "boolean" &&
    optional(f.ref, isString),
  members: (f) => isString(f.room) && isStringArray(f.names) && optional(f.ref, isString),
  joined: (f) => isString(f.room) && isString(f.name) && isNumber(f.at),
  left: (f) => isString(f.room) && isString(f.name) && isNumber(f.at),
  renamed: (f) => isString(f.from) && isString(f.to) && isNumber(f.at),
  ack: (f) => isString(f.ref) && optional(f.id, isNumber),
  error: (f) => isString(f.code) && isString(f.message) && optional(f.ref, isString),
  pong: (f) => optional(f.ref, isString)
}

/** Decodes one text frame from the server, or `undefined` for anything this client does not understand. */
export const decodeServerFrame = (text: string): ServerFrame | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isObject(value) || !isString(value.type) || !Object.hasOwn(checks, value.type)) return undefined
  const check = checks[value.type as ServerFrame["type"]]
  return check(value) ? (value as unknown as ServerFrame) : undefined
}

export const encode = (frame: ClientFrame): string => JSON.stringify(frame)
