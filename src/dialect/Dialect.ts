/**
 * A dialect of `/chat`: how a connection's inbound text is read (`run`, from its mailbox, until the socket closes)
 * and how the server's frames are shown to it (`renderer`). The transport picks one per socket by subprotocol.
 */
import type { Effect } from "effect"
import type { Chat } from "../server/Chat.js"
import type { Connection, Renderer } from "../server/Connection.js"
import type { ServerConfig } from "../server/ServerConfig.js"

/** A socket's inbound text frames, in order; the transport bounds it and stops it once the socket is closing. */
export interface Mailbox {
  readonly take: Effect.Effect<string>
}

export interface Dialect {
  readonly renderer: Renderer
  /** Serves one connection: opens its session, then answers its frames. Ends only by interruption or a close. */
  readonly run: (
    connection: Connection,
    mailbox: Mailbox,
    request: { readonly url: URL }
  ) => Effect.Effect<void, never, Chat | ServerConfig>
}
