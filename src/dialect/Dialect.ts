/**
 * A dialect of `/chat`: how a connection's inbound text is understood (`serve`) and how the server's frames are
 * shown to it (`renderer`). The transport picks one per socket by subprotocol and hands it the socket's frames one
 * at a time, in order; a dialect holds no fiber of its own, so an idle connection costs a few small objects.
 */
import type { Effect } from "effect"
import type { Connection, Renderer } from "../server/Connection.js"

/** One connection as its dialect serves it. */
export interface Served {
  /** Runs before any frame is handled: the plain dialect opens its session here, JSON waits for `hello`. */
  readonly start: Effect.Effect<void>
  /** Handles one inbound text frame; the next is handed over only when this one is done. */
  readonly receive: (text: string) => Effect.Effect<void>
  /** The socket is gone: release what `start` set up (timers). */
  readonly stop: () => void
}

export interface Dialect {
  readonly renderer: Renderer
  readonly serve: (connection: Connection, request: { readonly url: URL }) => Served
}
