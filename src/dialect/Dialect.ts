/**
 * A dialect of `/chat`: how a connection's inbound text is understood (`serve`) and how the server's frames are
 * shown to it (`renderer`). The transport picks one per socket by subprotocol and hands it the socket's frames one
 * at a time, in order; a dialect holds no fiber of its own, so an idle connection costs a few small objects.
 */
import type { Effect } from "effect"
import { CloseCode } from "../protocol/Protocol.js"
import type { ConnectRequest } from "../server/ChatHooks.js"
import { bearerToken } from "../server/BearerToken.js"
import type { ChatError } from "../server/ChatError.js"
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

/** What a dialect is told of the upgrade request: enough for the connect hooks, nothing kept once the session opens. */
export interface UpgradeRequest {
  readonly url: URL
  readonly ip: string
  readonly headers: ConnectRequest["headers"]
}

export interface Dialect {
  readonly renderer: Renderer
  readonly serve: (connection: Connection, request: UpgradeRequest) => Served
}

/** The token a client presented: in its `hello`, else `?token=` on the URL, else `Authorization: Bearer`. */
export const presentedToken = (request: UpgradeRequest, inHello?: string): string | undefined => {
  if (inHello !== undefined) return inHello
  const query = request.url.searchParams.get("token")
  return query !== null && query !== "" ? query : bearerToken(request.headers)
}

/** The connect hooks' view of the request, with the token found. */
export const connectRequest = (request: UpgradeRequest, inHello?: string): ConnectRequest => ({
  url: request.url,
  ip: request.ip,
  headers: request.headers,
  token: presentedToken(request, inHello)
})

/** Longest `setTimeout` Node keeps (about 24.8 days); a later expiry is re-armed in steps. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * Calls `expired` when the connection's credential expires (`identity.expiresAt`), with one unref'd timer; `arm`
 * again after a refresh. A class, so a connection without an expiring token pays for nothing: the dialects make
 * one only for a connection that has one.
 */
export class ExpiryTimer {
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly connection: Connection,
    private readonly expired: () => void
  ) {}

  arm(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const at = this.connection.identity?.expiresAt
    if (at === undefined) return
    const wait = at - Date.now()
    this.timer =
      wait > MAX_TIMER_MS ? setTimeout(() => this.arm(), MAX_TIMER_MS) : setTimeout(this.expired, Math.max(0, wait))
    this.timer.unref()
  }

  stop(): void {
    clearTimeout(this.timer)
  }
}

/** How a session that could not open is closed: by why it was refused. */
export const refusalClose = (error: ChatError): { readonly code: number; readonly reason: string } => {
  switch (error.code) {
    case "unauthorized":
      return { code: CloseCode.unauthorized, reason: "unauthorized" }
    case "forbidden":
      return { code: CloseCode.removed, reason: "forbidden" }
    case "name_taken":
      return { code: CloseCode.policy, reason: "name taken" }
    default:
      return { code: CloseCode.internalError, reason: "try again later" }
  }
}
