/**
 * Who a connection is, once a `connect` hook (the built-in JWT check, or the embedding application's own) has said
 * so. A connection without one is a guest, exactly as in v1. Pure: the rules here are unit-tested apart from I/O.
 */

export interface Identity {
  /** The user's stable id (a JWT's `sub`): connections with the same one are one user. */
  readonly user: string
  /** The display name the user has in every room: a valid, unreserved name. */
  readonly name: string
  /** Room patterns the user may join, read and post in (`general`, `team-*`, `*`); undefined: every room. */
  readonly rooms?: ReadonlyArray<string> | undefined
  /** When the credential stops being valid, in ms since the epoch; undefined: it does not expire. */
  readonly expiresAt?: number | undefined
}

/** A room pattern: `*` any room, `prefix*` rooms starting with prefix, anything else exactly that room. */
export const matchesRoom = (pattern: string, room: string): boolean =>
  pattern === "*" ? true : pattern.endsWith("*") ? room.startsWith(pattern.slice(0, -1)) : pattern === room

/** Whether `rooms` patterns (undefined: no restriction) let their holder into `room`. */
export const roomAllowed = (rooms: ReadonlyArray<string> | undefined, room: string): boolean =>
  rooms === undefined || rooms.some((pattern) => matchesRoom(pattern, room))
