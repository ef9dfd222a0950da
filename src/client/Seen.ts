/**
 * Messages already delivered, so that a resume, a join history or a restarted server never shows one twice, and the
 * `since` of a resume: where each room continues. Effect-free and socket-free.
 *
 * A message is known by (room, id, at): ids let a resume say where to continue, and the timestamp tells a restarted
 * server, which numbers its rooms from 1 again, from a repeat of a known message. What a known message looked like
 * (its text, edit, deletion and reactions) is kept too: a history that repeats it changed since (a reconnect that
 * could not resume, a room joined again) tells those changes as the `edited`, `deleted` and `reaction` events a
 * live client would have had, so nothing changes unseen.
 */
import type * as Protocol from "../protocol/Protocol.js"

/** How many messages per room are remembered; the oldest is forgotten first. */
export const DEFAULT_PER_ROOM = 1000

export interface Seen {
  /** True the first time a message is seen: deliver it. */
  readonly admit: (message: Protocol.Message) => boolean
  /**
   * For a message admitted before (`admit` was false): how it changed since, as change events. `now` stands in for
   * the time of a deletion, which history does not carry; with `reactions` (the connection has the feature) a
   * message without the field has none, otherwise its reactions are not compared.
   */
  readonly changes: (
    message: Protocol.Message,
    options: { readonly now: number; readonly reactions: boolean }
  ) => ReadonlyArray<Protocol.Change>
  /** A live change: remembered, so a later history showing it is not taken for another change. */
  readonly track: (change: Protocol.Change) => void
  /** The `since` of a resume: per room, the id of the last message admitted (0: none yet). */
  readonly since: (rooms: ReadonlyArray<string>) => Record<string, number>
}

interface Known {
  readonly at: number
  text: string
  deleted: boolean
  reactions: Record<string, ReadonlyArray<string>>
}

export const make = (perRoom: number = DEFAULT_PER_ROOM): Seen => {
  const rooms = new Map<string, Map<number, Known>>()
  const latest = new Map<string, number>()
  const known = (room: string, id: number) => rooms.get(room)?.get(id)
  return {
    admit: (message) => {
      let ids = rooms.get(message.room)
      if (ids === undefined) rooms.set(message.room, (ids = new Map()))
      if (ids.get(message.id)?.at === message.at) return false
      ids.delete(message.id)
      ids.set(message.id, {
        at: message.at,
        text: message.text,
        deleted: message.deleted === true,
        reactions: message.reactions ?? {}
      })
      if (ids.size > perRoom) ids.delete(ids.keys().next().value!)
      latest.set(message.room, message.id)
      return true
    },
    changes: (message, { now, reactions }) => {
      const before = known(message.room, message.id)
      if (before === undefined || before.at !== message.at) return []
      const { room, id } = message
      if (message.deleted === true) {
        const changes: ReadonlyArray<Protocol.Change> = before.deleted ? [] : [{ type: "deleted", room, id, at: now }]
        before.deleted = true
        before.text = message.text
        before.reactions = message.reactions ?? {}
        return changes
      }
      const changes: Array<Protocol.Change> = []
      if (message.text !== before.text) {
        changes.push({ type: "edited", room, id, text: message.text, at: message.edited ?? now })
        before.text = message.text
      }
      const after = message.reactions ?? (reactions ? {} : undefined)
      if (after !== undefined) {
        changes.push(...reactionChanges(room, id, before.reactions, after))
        before.reactions = after
      }
      return changes
    },
    track: (change) => {
      const before = known(change.room, change.id)
      if (before === undefined) return
      switch (change.type) {
        case "edited":
          before.text = change.text
          return
        case "deleted":
          before.deleted = true
          before.text = ""
          before.reactions = {}
          return
        case "reaction": {
          const names = (before.reactions[change.emoji] ?? []).filter((name) => name !== change.name)
          before.reactions = { ...before.reactions, [change.emoji]: change.on ? [...names, change.name] : names }
          return
        }
      }
    },
    since: (names) => Object.fromEntries(names.map((room) => [room, latest.get(room) ?? 0]))
  }
}

/** Who added or took back which emoji between two states of a message's reactions. */
const reactionChanges = (
  room: string,
  id: number,
  before: Record<string, ReadonlyArray<string>>,
  after: Record<string, ReadonlyArray<string>>
): ReadonlyArray<Protocol.Reaction> => {
  const diff = (from: typeof before, to: typeof after, on: boolean) =>
    Object.entries(to).flatMap(([emoji, names]) =>
      names
        .filter((name) => !(from[emoji] ?? []).includes(name))
        .map((name): Protocol.Reaction => ({ type: "reaction", room, id, emoji, name, on }))
    )
  return [...diff(after, before, false), ...diff(before, after, true)]
}
