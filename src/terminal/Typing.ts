/**
 * Who is typing, per room, for the status line: a `typing` frame shows its sender for `Rules.TYPING_SHOWN_MS`
 * (a hint repeats about once a second while they type), and their message ends it at once. Time is passed in, so
 * it is Effect-free and socket-free.
 */
import { typingLine } from "../client/TypingLine.js"
import { nameKey, TYPING_SHOWN_MS } from "../protocol/Rules.js"

export interface Typing {
  readonly typing: (room: string, name: string, now: number) => void
  /** `name` said something in `room`: not typing any more. */
  readonly stopped: (room: string, name: string) => void
  /** Who types in `room` at `now`, in the order they started. */
  readonly who: (room: string, now: number) => ReadonlyArray<string>
}

export const make = (shownMs: number = TYPING_SHOWN_MS): Typing => {
  const rooms = new Map<string, Map<string, { readonly name: string; readonly until: number }>>()
  return {
    typing: (room, name, now) => {
      let names = rooms.get(room)
      if (names === undefined) rooms.set(room, (names = new Map()))
      // Setting a key that exists keeps its place: the order stays the order they started in.
      names.set(nameKey(name), { name, until: now + shownMs })
    },
    stopped: (room, name) => void rooms.get(room)?.delete(nameKey(name)),
    who: (room, now) => {
      const names = rooms.get(room)
      if (names === undefined) return []
      for (const [key, { until }] of names) if (until <= now) names.delete(key)
      return Array.from(names.values(), ({ name }) => name)
    }
  }
}

/** The status line: the same wording as every client's (`TypingLine`). */
export const describe = typingLine
