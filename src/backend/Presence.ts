/**
 * Who is connected and who is in which room. Counts established sessions (not sockets waiting for `hello`, not
 * sessions held for resume). `layerMemory` serves one process; the Redis layer makes it cluster-wide.
 */
import { Context, Effect, Layer } from "effect"
import { compareNames } from "../protocol/Rules.js"
import type { BackendError } from "./BackendError.js"
import { isUserKey } from "./UserKey.js"

export interface PresenceService {
  /**
   * `key` (a guest's session, or an authenticated user's `u:<sub>`) is connected with `name`. A user key counts its
   * connections: true when this is the user's first anywhere, so `Online` is reported once per user.
   */
  readonly online: (key: string, name: string) => Effect.Effect<boolean, BackendError>
  /** One connection of `key` is gone (or held for resume); true when the user has no connection left anywhere. */
  readonly offline: (key: string) => Effect.Effect<boolean, BackendError>
  /** Users online: a user with several connections, on any node, counts once. */
  readonly users: Effect.Effect<number, BackendError>
  /** Nodes other than `self` where `key` is connected now (not merely held for resume): where a direct must go. */
  readonly remoteNodes: (key: string, self: string) => Effect.Effect<ReadonlyArray<string>, BackendError>
  /** `key` enters `room`; true when it is the user's first connection in the room (announce `joined`). */
  readonly join: (room: string, key: string, name: string) => Effect.Effect<boolean, BackendError>
  /** One connection of `key` leaves `room`; true when it was the user's last one there (announce `left`). */
  readonly leave: (room: string, key: string) => Effect.Effect<boolean, BackendError>
  readonly rename: (key: string, rooms: Iterable<string>, name: string) => Effect.Effect<void, BackendError>
  /** Names of a room's members, once per user, sorted case-insensitively. */
  readonly members: (room: string) => Effect.Effect<ReadonlyArray<string>, BackendError>
  /**
   * Rooms that have members (on any live node), each with its members counted once per user: the `limit` with most
   * members, then by name. Bounded, so a listing of a big cluster is one answer of known size.
   */
  readonly rooms: (limit: number) => Effect.Effect<ReadonlyArray<RoomCount>, BackendError>
}

export interface RoomCount {
  readonly room: string
  readonly members: number
}

/** Most members first, then by name: the order `rooms` answers in, on every backend. */
export const byMembers = (a: RoomCount, b: RoomCount): number =>
  b.members - a.members || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0)

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

  /** Renames a member already in the room; no-op otherwise. */
  rename(session: string, name: string): void {
    if (this.bySession.has(session)) this.add(session, name)
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

/**
 * Connections per key: a guest key (a session) is one connection at a time, as in v1; a user key counts its
 * connections, so a user's second tab changes nothing anyone sees.
 */
export class KeyCounts {
  private readonly counts = new Map<string, number>()

  /** True when `key` was not counted before. */
  add(key: string): boolean {
    const count = this.counts.get(key) ?? 0
    if (count > 0 && !isCounted(key)) return false
    this.counts.set(key, count + 1)
    return count === 0
  }

  /** True when `key` is not counted any more. */
  remove(key: string): boolean {
    const count = this.counts.get(key)
    if (count === undefined) return false
    if (count <= 1 || !isCounted(key)) {
      this.counts.delete(key)
      return true
    }
    this.counts.set(key, count - 1)
    return false
  }

  has(key: string): boolean {
    return this.counts.has(key)
  }

  get size(): number {
    return this.counts.size
  }
}

/** User keys count connections; guest keys are sessions, connected or not. */
const isCounted = isUserKey

export const makeMemory = (): PresenceService => {
  const online = new KeyCounts()
  const rooms = new Map<string, { readonly counts: KeyCounts; readonly members: RoomMembers }>()
  return {
    online: (key) => Effect.sync(() => online.add(key)),
    offline: (key) => Effect.sync(() => online.remove(key)),
    users: Effect.sync(() => online.size),
    remoteNodes: () => Effect.succeed([]),
    join: (room, key, name) =>
      Effect.sync(() => {
        let entry = rooms.get(room)
        if (entry === undefined) rooms.set(room, (entry = { counts: new KeyCounts(), members: new RoomMembers() }))
        const first = entry.counts.add(key)
        if (first) entry.members.add(key, name)
        return first
      }),
    leave: (room, key) =>
      Effect.sync(() => {
        const entry = rooms.get(room)
        if (entry === undefined || !entry.counts.remove(key)) return false
        entry.members.remove(key)
        if (entry.members.bySession.size === 0) rooms.delete(room)
        return true
      }),
    rename: (key, names, name) =>
      Effect.sync(() => {
        for (const room of names) rooms.get(room)?.members.rename(key, name)
      }),
    members: (room) => Effect.sync(() => rooms.get(room)?.members.names() ?? []),
    rooms: (limit) =>
      Effect.sync(() =>
        Array.from(rooms, ([room, entry]) => ({ room, members: entry.members.bySession.size }))
          .sort(byMembers)
          .slice(0, Math.max(0, limit))
      )
  }
}

export const sortNames = (names: Iterable<string>): Array<string> => Array.from(names).sort(compareNames)
