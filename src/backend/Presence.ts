/**
 * Who is connected and who is in which room. Counts established sessions (not sockets waiting for `hello`, not
 * sessions held for resume). `layerMemory` serves one process; the Redis layer makes it cluster-wide.
 */
import { Context, Effect, Layer } from "effect"
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

export const makeMemory = (): PresenceService => {
  const sessions = new Set<string>()
  const rooms = new Map<string, Map<string, string>>()
  return {
    online: (session) => Effect.sync(() => void sessions.add(session)),
    offline: (session) => Effect.sync(() => void sessions.delete(session)),
    users: Effect.sync(() => sessions.size),
    isOnline: (session) => Effect.sync(() => sessions.has(session)),
    join: (room, session, name) =>
      Effect.sync(() => {
        let members = rooms.get(room)
        if (members === undefined) rooms.set(room, (members = new Map()))
        members.set(session, name)
      }),
    leave: (room, session) =>
      Effect.sync(() => {
        const members = rooms.get(room)
        if (members !== undefined && members.delete(session) && members.size === 0) rooms.delete(room)
      }),
    rename: (session, names, name) =>
      Effect.sync(() => {
        for (const room of names) {
          const members = rooms.get(room)
          if (members?.has(session)) members.set(session, name)
        }
      }),
    members: (room) => Effect.sync(() => sortNames(rooms.get(room)?.values() ?? []))
  }
}

export const sortNames = (names: Iterable<string>): Array<string> =>
  Array.from(names).sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))
