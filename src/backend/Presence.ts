/**
 * Who is connected and who is in which room. Counts established sessions (not sockets waiting for `hello`, not
 * sessions held for resume). `layerMemory` serves one process; the Redis layer makes it cluster-wide.
 */
import { Context, Effect, Layer } from "effect"
import { compareNames } from "../protocol/Rules.js"
import type { BackendError } from "./BackendError.js"

export interface PresenceService {
  readonly online: (session: string, name: string) => Effect.Effect<void, BackendError>
  readonly offline: (session: string) => Effect.Effect<void, BackendError>
  readonly users: Effect.Effect<number, BackendError>
  /** Whether `session` is connected on `node` now (not merely held for resume). */
  readonly isOnline: (session: string, node: string) => Effect.Effect<boolean, BackendError>
  readonly join: (room: string, session: string, name: string) => Effect.Effect<void, BackendError>
  readonly leave: (room: string, session: string) => Effect.Effect<void, BackendError>
  readonly rename: (session: string, rooms: Iterable<string>, name: string) => Effect.Effect<void, BackendError>
  /** Names of a room's members, sorted case-insensitively. */
  readonly members: (room: string) => Effect.Effect<ReadonlyArray<string>, BackendError>
}

export class Presence extends Context.Tag("effect-chat/Presence")<Presence, PresenceService>() {
  static layerMemory = Layer.sync(Presence, () => makeMemory())
}

/** A room's members: who is in it, and their names kept sorted, so a join costs O(log n) comparisons, not a sort. */
class RoomMembers {
  readonly bySession = new Map<string, string>()
  private sorted: Array<string> = []

  add(session: string, name: string): void {
    const previous = this.bySession.get(session)
    if (previous === name) return
    if (previous !== undefined) this.removeName(previous)
    this.bySession.set(session, name)
    this.sorted.splice(this.position(name), 0, name)
  }

  remove(session: string): boolean {
    const name = this.bySession.get(session)
    if (name === undefined) return false
    this.bySession.delete(session)
    this.removeName(name)
    return true
  }

  names(): Array<string> {
    return this.sorted.slice()
  }

  private removeName(name: string): void {
    let at = this.position(name)
    while (at < this.sorted.length && this.sorted[at] !== name) at++
    if (at < this.sorted.length) this.sorted.splice(at, 1)
  }

  /** The first index whose name sorts at or after `name`. */
  private position(name: string): number {
    let low = 0
    let high = this.sorted.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (compareNames(this.sorted[mid]!, name) < 0) low = mid + 1
      else high = mid
    }
    return low
  }
}

export const makeMemory = (): PresenceService => {
  const sessions = new Set<string>()
  const rooms = new Map<string, RoomMembers>()
  return {
    online: (session) => Effect.sync(() => void sessions.add(session)),
    offline: (session) => Effect.sync(() => void sessions.delete(session)),
    users: Effect.sync(() => sessions.size),
    isOnline: (session) => Effect.sync(() => sessions.has(session)),
    join: (room, session, name) =>
      Effect.sync(() => {
        let members = rooms.get(room)
        if (members === undefined) rooms.set(room, (members = new RoomMembers()))
        members.add(session, name)
      }),
    leave: (room, session) =>
      Effect.sync(() => {
        const members = rooms.get(room)
        if (members !== undefined && members.remove(session) && members.bySession.size === 0) rooms.delete(room)
      }),
    rename: (session, names, name) =>
      Effect.sync(() => {
        for (const room of names) {
          const members = rooms.get(room)
          if (members?.bySession.has(session)) members.add(session, name)
        }
      }),
    members: (room) => Effect.sync(() => rooms.get(room)?.names() ?? [])
  }
}

export const sortNames = (names: Iterable<string>): Array<string> => Array.from(names).sort(compareNames)
