/**
 * Unread messages per room, for `/rooms`: the server's count (`unread` frames, after each join and whenever the
 * user's read marker moves, from any device) plus the messages that arrived since in rooms other than the current
 * one. The current room is being read: its count stays 0 and the client moves the marker to its latest message.
 * Effect-free and socket-free.
 */
import type * as Protocol from "../protocol/Protocol.js"
import { UNREAD_CAP } from "../protocol/Rules.js"

export interface RoomUnread {
  readonly room: string
  readonly count: number
  /** The newest message id seen in the room (0: none). */
  readonly latest: number
}

export interface Unread {
  /** The server's count for a room; messages delivered after it count on top of it. */
  readonly unread: (frame: Protocol.Unread) => void
  /** A live message, shown while `current` is the room the user reads. */
  readonly message: (message: Protocol.Message, current: string | undefined) => void
  /**
   * Messages of a `history` frame: they do not count, as a join's history is mostly old; the server's `unread`
   * frame that follows it has the count.
   */
  readonly history: (messages: ReadonlyArray<Protocol.Message>, current: string | undefined) => void
  /** A message after the read marker was deleted: the server no longer counts it. */
  readonly deleted: (room: string, id: number) => void
  /** The user reads `room` up to `id` now (it is the current room). */
  readonly read: (room: string, id: number) => void
  readonly get: (room: string) => RoomUnread
}

export const make = (): Unread => {
  const rooms = new Map<string, { lastRead: number; count: number; latest: number }>()
  const state = (room: string) => {
    let known = rooms.get(room)
    if (known === undefined) rooms.set(room, (known = { lastRead: 0, count: 0, latest: 0 }))
    return known
  }
  return {
    unread: (frame) => {
      const known = state(frame.room)
      // A marker moved by this client answers after later messages were read: never undo that reading.
      if (frame.last_read < known.lastRead) return
      known.lastRead = frame.last_read
      known.count = frame.count
    },
    message: (message, current) => {
      const known = state(message.room)
      known.latest = Math.max(known.latest, message.id)
      if (message.room === current) {
        known.lastRead = Math.max(known.lastRead, message.id)
        known.count = 0
      } else if (message.id > known.lastRead && message.deleted !== true) {
        known.count++
      }
    },
    history: (messages, current) => {
      for (const message of messages) {
        const known = state(message.room)
        known.latest = Math.max(known.latest, message.id)
        if (message.room === current) known.lastRead = Math.max(known.lastRead, message.id)
      }
    },
    deleted: (room, id) => {
      const known = state(room)
      if (id > known.lastRead && known.count > 0 && known.count < UNREAD_CAP) known.count--
    },
    read: (room, id) => {
      const known = state(room)
      known.lastRead = Math.max(known.lastRead, id)
      known.count = 0
    },
    get: (room) => ({ room, count: rooms.get(room)?.count ?? 0, latest: rooms.get(room)?.latest ?? 0 })
  }
}

/** A count for a person: the server counts exactly up to `UNREAD_CAP`. */
export const describeCount = (count: number): string => (count >= UNREAD_CAP ? `${UNREAD_CAP}+` : String(count))
