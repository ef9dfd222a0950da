import { Effect } from "effect"
import type { Connection } from "./Connection.js"

/** Security-relevant events name the connection and address, never message bodies or tokens. */
export const securityLog = (event: string, connection: Connection) =>
  Effect.logWarning(event).pipe(Effect.annotateLogs({ connection: connection.id, ip: connection.ip }))
