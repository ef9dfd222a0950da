/**
 * Telling everyone a connection's name changed, the same way whatever changed it (a `nick`, or a signed-in user
 * taking a guest's name): the connection sees `renamed` at once, and each of its rooms gets one event carrying an
 * id, so a member who shares several rooms with it sees the rename once.
 */
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import type { HubService } from "../backend/Hub.js"
import type { Connection } from "./Connection.js"

export const announce = (hub: HubService, connection: Connection, from: string) =>
  Effect.gen(function* () {
    const session = connection.session
    const eventId = Crypto.randomUUID()
    const frame = { type: "renamed" as const, from, to: session.name, at: Date.now() }
    connection.firstSightOfRename(eventId)
    connection.send(frame)
    for (const room of session.rooms) {
      yield* hub.announce(room, { _tag: "Renamed", session: session.id, eventId, frame }).pipe(Effect.ignoreLogged)
    }
  })
