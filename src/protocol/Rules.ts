/**
 * The rules of `effect-chat.v1` that every client applies before anything reaches the wire: names, rooms, message
 * text, close codes and error codes. No `effect` here, so the browser bundle carries these few lines without the
 * schema library; `Protocol.ts` builds the wire schemas on top of them.
 */

export const SUBPROTOCOL = "effect-chat.v1"
export const PROTOCOL_VERSION = 1

/** Close codes of PROTOCOL.md, by meaning. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policy: 1008,
  tooLarge: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  unauthorized: 4001,
  removed: 4003,
  slowConsumer: 4008,
  takenOver: 4009
} as const

/** Every `error` frame code a server sends; a client can switch on them. */
export const ERROR_CODES = [
  "invalid_frame",
  "invalid_name",
  "name_taken",
  "invalid_room",
  "not_in_room",
  "too_many_rooms",
  "no_such_user",
  "message_too_long",
  "rate_limited",
  "unauthorized",
  "forbidden",
  "token_expired",
  "no_such_message",
  "too_many_reactions",
  // extension: a backend (Redis, the store) is unreachable; retry later with the same ref
  "unavailable"
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

/** The opt-in event types of `hello.features` (PROTOCOL.md, Chat features). */
export const FEATURES = ["typing", "edits", "reactions", "receipts"] as const
export type Feature = (typeof FEATURES)[number]
export const isFeature = (name: string): name is Feature => (FEATURES as ReadonlyArray<string>).includes(name)

/** Distinct emoji one message may carry. */
export const MAX_REACTIONS = 20
/** `unread.count` is exact up to this; the count says this many for anything more. */
export const UNREAD_CAP = 1000
/** A typing hint lasts this long on screen, and a user's hints in a room pass at most one per second. */
export const TYPING_SHOWN_MS = 5000
export const TYPING_INTERVAL_MS = 1000
/** What a client without the `edits` feature sees instead of a deleted message's text. */
export const DELETED_TEXT = "[deleted]"

/** An emoji for a reaction: 1-16 characters (code points), no white space, no control characters. */
export const checkEmoji = (emoji: string): boolean => {
  // Not the name of an Object property (`__proto__`, `constructor`): reactions are keyed by emoji in JSON objects.
  if (emoji in Object.prototype) return false
  let count = 0
  for (const _ of emoji) if (++count > 16) return false
  return count > 0 && !/[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(emoji.replace(/\u200d|\ufe0f/g, ""))
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,32}$/
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/
const RESERVED_RE = /^user[0-9]+$/i
export const MAX_TEXT_CODE_POINTS = 4000
export const MAX_REF_LENGTH = 64

/** A name a user may ask for: valid characters and length, and not of the reserved `user<digits>` form. */
export const isValidName = (name: string): boolean => NAME_RE.test(name) && !RESERVED_RE.test(name)
/** Names of the form `user<digits>` are the server's to assign, in any letter case. */
export const isReservedName = (name: string): boolean => RESERVED_RE.test(name)
export const isValidRoom = (room: string): boolean => ROOM_RE.test(room)
/** Names compare case-insensitively; this is the key they are stored under. */
export const nameKey = (name: string): string => name.toLowerCase()
// One collator for every comparison: `localeCompare` builds one per call.
const collator = new Intl.Collator()

/** The order of `members` lists: case-insensitive, as the server sorts them. */
export const compareNames = (a: string, b: string): number => collator.compare(a.toLowerCase(), b.toLowerCase())

export type TextProblem = "blank" | "too_long"
/** Message text: 1..4000 code points, not only Unicode white space. */
export const checkText = (text: string): TextProblem | undefined => {
  if (text.trim().length === 0) return "blank"
  if (text.length > MAX_TEXT_CODE_POINTS) {
    // Only count code points when UTF-16 length could exceed the limit.
    let count = 0
    for (const _ of text) if (++count > MAX_TEXT_CODE_POINTS) return "too_long"
  }
  return undefined
}
