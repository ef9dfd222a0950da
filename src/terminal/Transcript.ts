/**
 * What the terminal client knows of the messages it has shown: enough to quote the original of a reply, count the
 * reactions of a message when one changes, and tell whether a reaction is the user's own (so `/react` toggles, also
 * on a message not shown here). Bounded per room, the oldest forgotten first. Effect-free and socket-free.
 */
import type { ChatEvent } from "../client/ChatClient.js"
import type * as Protocol from "../protocol/Protocol.js"
import { nameKey } from "../protocol/Rules.js"

/** Messages remembered per room, as many as `Seen` remembers. */
export const DEFAULT_PER_ROOM = 1000

export interface Entry {
  readonly from: string
  readonly text: string
  readonly deleted: boolean
  /** Who reacted with each emoji, in the order they did; an emoji nobody holds any more is gone. */
  readonly reactions: ReadonlyMap<string, ReadonlyArray<string>>
}

export interface Transcript {
  /** Follows an event: messages (live and history), edits, deletions, reactions and renames. */
  readonly apply: (event: ChatEvent) => void
  readonly get: (room: string, id: number) => Entry | undefined
  /** True when the user holds `emoji` on message `id`, as far as this client knows. */
  readonly mine: (room: string, id: number, emoji: string) => boolean
  /** The user's own `react`, ahead of the server's `reaction` frame (and undone with `!on` if refused). */
  readonly react: (room: string, id: number, emoji: string, on: boolean) => void
}

interface Mutable {
  from: string
  text: string
  deleted: boolean
  reactions: Map<string, Array<string>>
}

/** `me` is the user's name now (it follows renames). */
export const make = (me: () => string | undefined, perRoom: number = DEFAULT_PER_ROOM): Transcript => {
  const rooms = new Map<string, Map<number, Mutable>>()
  /** The user's own emoji per `room id`: kept apart from the entries, which forget old messages. */
  const own = new Map<string, Set<string>>()
  const ownKey = (room: string, id: number) => `${room} ${id}`
  const isMe = (name: string) => {
    const current = me()
    return current !== undefined && nameKey(current) === nameKey(name)
  }

  const entry = (room: string, id: number) => rooms.get(room)?.get(id)

  const remember = (message: Protocol.Message) => {
    let entries = rooms.get(message.room)
    if (entries === undefined) rooms.set(message.room, (entries = new Map()))
    entries.delete(message.id)
    entries.set(message.id, {
      from: message.from,
      text: message.deleted === true ? "" : message.text,
      deleted: message.deleted === true,
      reactions: new Map(Object.entries(message.reactions ?? {}).map(([emoji, names]) => [emoji, [...names]]))
    })
    if (entries.size > perRoom) entries.delete(entries.keys().next().value!)
    if (message.reactions === undefined) return
    // A message's reactions in full: what the user holds on it now, whatever this client thought before.
    const mine = Object.entries(message.reactions).flatMap(([emoji, names]) => (names.some(isMe) ? [emoji] : []))
    if (mine.length > 0) own.set(ownKey(message.room, message.id), new Set(mine))
    else own.delete(ownKey(message.room, message.id))
  }

  const react = (room: string, id: number, emoji: string, name: string, on: boolean) => {
    if (isMe(name)) {
      const key = ownKey(room, id)
      const mine = own.get(key) ?? new Set()
      if (on) own.set(key, mine.add(emoji))
      else if (mine.delete(emoji) && mine.size === 0) own.delete(key)
    }
    const known = entry(room, id)
    if (known === undefined) return
    const names = (known.reactions.get(emoji) ?? []).filter((other) => nameKey(other) !== nameKey(name))
    if (on) names.push(name)
    if (names.length > 0) known.reactions.set(emoji, names)
    else known.reactions.delete(emoji)
  }

  const rename = (from: string, to: string) => {
    const key = nameKey(from)
    for (const entries of rooms.values()) {
      for (const known of entries.values()) {
        if (nameKey(known.from) === key) known.from = to
        for (const [emoji, names] of known.reactions) {
          known.reactions.set(
            emoji,
            names.map((name) => (nameKey(name) === key ? to : name))
          )
        }
      }
    }
  }

  return {
    apply: (event) => {
      switch (event.type) {
        case "message":
          return remember(event)
        case "history":
          return event.messages.forEach(remember)
        case "edited": {
          const known = entry(event.room, event.id)
          if (known !== undefined && !known.deleted) known.text = event.text
          return
        }
        case "deleted": {
          const known = entry(event.room, event.id)
          if (known === undefined) return
          known.deleted = true
          known.text = ""
          return
        }
        case "reaction":
          return react(event.room, event.id, event.emoji, event.name, event.on)
        case "renamed":
          return rename(event.from, event.to)
      }
    },
    get: entry,
    mine: (room, id, emoji) => own.get(ownKey(room, id))?.has(emoji) ?? false,
    react: (room, id, emoji, on) => {
      const name = me()
      if (name !== undefined) react(room, id, emoji, name, on)
    }
  }
}
