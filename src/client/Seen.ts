/**
 * Messages already delivered, so that a resume, a join history or a restarted server never shows one twice, and the
 * `since` of a resume: where each room continues. Effect-free and socket-free.
 *
 * A message is known by (room, id, at): ids let a resume say where to continue, and the timestamp tells a restarted
 * server, which numbers its rooms from 1 again, from a repeat of a known message.
 */
import type * as Protocol from "../protocol/Protocol.js"

/** How many messages per room are remembered; the oldest is forgotten first. */
export const DEFAULT_PER_ROOM = 1000

export interface Seen {
  /** True the first time a message is seen: deliver it. */
  readonly admit: (message: Protocol.Message) => boolean
  /** The `since` of a resume: per room, the id of the last message admitted (0: none yet). */
  readonly since: (rooms: ReadonlyArray<string>) => Record<string, number>
}

export const make = (perRoom: number = DEFAULT_PER_ROOM): Seen => {
  const rooms = new Map<string, Map<number, number>>()
  const latest = new Map<string, number>()
  return {
    admit: (message) => {
      let ids = rooms.get(message.room)
      if (ids === undefined) rooms.set(message.room, (ids = new Map()))
      if (ids.get(message.id) === message.at) return false
      ids.delete(message.id)
      ids.set(message.id, message.at)
      if (ids.size > perRoom) ids.delete(ids.keys().next().value!)
      latest.set(message.room, message.id)
      return true
    },
    since: (names) => Object.fromEntries(names.map((room) => [room, latest.get(room) ?? 0]))
  }
}
