/**
 * The live connections of this node, from the socket's upgrade to its close. It holds exactly the open sockets: each
 * connection's actor adds itself on entry and removes itself in a finalizer, whatever way the socket ends.
 */
import { Context, Effect, Layer } from "effect"
import { isUserKey } from "../backend/UserKey.js"
import type { Connection } from "./Connection.js"

export interface ConnectionRegistryService {
  readonly add: (connection: Connection) => Effect.Effect<void>
  readonly remove: (connection: Connection) => Effect.Effect<void>
  /** The connection currently holding `session`, if it is on this node. */
  readonly bySession: (session: string) => Connection | undefined
  /** This node's open connections of the user (or guest session) known by `key`. */
  readonly byKey: (key: string) => ReadonlyArray<Connection>
  /** Marks `connection` as the holder of its session (after `welcome`, or after a takeover). */
  readonly bindSession: (connection: Connection) => void
  readonly size: () => number
  readonly countForIp: (ip: string) => number
  readonly all: () => ReadonlyArray<Connection>
}

export class ConnectionRegistry extends Context.Tag("effect-chat/ConnectionRegistry")<
  ConnectionRegistry,
  ConnectionRegistryService
>() {
  static layer = Layer.sync(ConnectionRegistry, () => make())
}

export const make = (): ConnectionRegistryService => {
  const connections = new Set<Connection>()
  const sessions = new Map<string, Connection>()
  const perIp = new Map<string, number>()
  /** Connections of authenticated users, by user key: a user may have several (tabs, devices). */
  const users = new Map<string, Set<Connection>>()
  return {
    add: (connection) =>
      Effect.sync(() => {
        connections.add(connection)
        perIp.set(connection.ip, (perIp.get(connection.ip) ?? 0) + 1)
      }),
    remove: (connection) =>
      Effect.sync(() => {
        if (!connections.delete(connection)) return
        const left = (perIp.get(connection.ip) ?? 1) - 1
        if (left === 0) perIp.delete(connection.ip)
        else perIp.set(connection.ip, left)
        if (sessions.get(connection.session.id) === connection) sessions.delete(connection.session.id)
        if (connection.identity !== undefined) {
          const own = users.get(connection.key)
          if (own !== undefined && own.delete(connection) && own.size === 0) users.delete(connection.key)
        }
      }),
    bySession: (session) => sessions.get(session),
    byKey: (key) => {
      if (isUserKey(key)) return Array.from(users.get(key) ?? [])
      const connection = sessions.get(key)
      return connection === undefined ? [] : [connection]
    },
    bindSession: (connection) => {
      sessions.set(connection.session.id, connection)
      if (connection.identity === undefined) return
      let own = users.get(connection.key)
      if (own === undefined) users.set(connection.key, (own = new Set()))
      own.add(connection)
    },
    size: () => connections.size,
    countForIp: (ip) => perIp.get(ip) ?? 0,
    all: () => Array.from(connections)
  }
}
