/**
 * One chat session over a series of WebSockets: it connects, says `hello`, reconnects with exponential backoff and
 * jitter when the socket drops, and keeps an outbox of requests that must reach the server even across drops. A
 * request in the outbox is re-sent with its original `ref` on every new connection until the server answers that
 * ref (`ack` or `error`) or the caller settles it; the server recognises a repeated `send` ref, so nothing is posted
 * twice.
 */
// Deep imports keep the bundle small: esbuild drops what a module does not use, but not what a barrel re-exports.
import * as Either from "effect/Either"
import { backoffDelay, FINAL_CLOSES, isFinalClose } from "../src/client/ReconnectPolicy.js"
import { type ClientFrame, decodeServerFrame, encode, type ServerFrame, SUBPROTOCOL } from "../src/protocol/Protocol.js"

export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "online" }
  | { readonly kind: "reconnecting"; readonly at: number }
  /** `code`: the close that ended the session for good, if one did (not a lost network). */
  | { readonly kind: "offline"; readonly reason: string; readonly code?: number }

export interface ConnectionHooks {
  /** The `hello` for a new socket; called on every (re)connect so it carries the latest resume token. */
  readonly hello: () => ClientFrame
  readonly onFrame: (frame: ServerFrame) => void
  readonly onState: (state: ConnectionState) => void
  /** The server ended the session for good with `code` (no resume possible with the old token). */
  readonly onSessionEnded: (code: number) => void
}

/** Without any frame for this long the socket is presumed dead (a sleeping laptop, a silently dropped NAT entry). */
const IDLE_PING_MS = 25_000
const DEAD_AFTER_MS = 45_000

interface Outgoing {
  readonly ref: string
  readonly frame: ClientFrame
  /** The socket generation it was last written to; re-sent when a newer socket comes online. */
  sentOn: number
}

export class ChatConnection {
  private socket: WebSocket | undefined
  private generation = 0
  private attempt = 0
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined
  private lastFrameAt = 0
  private welcomed = false
  private flushHeld = false
  private readonly outbox = new Map<string, Outgoing>()
  private current: ConnectionState = { kind: "connecting" }

  constructor(
    private readonly url: string,
    private readonly hooks: ConnectionHooks
  ) {
    window.addEventListener("online", () => {
      if (this.current.kind === "offline" && this.current.reason === OFFLINE_NETWORK) this.connectNow()
    })
  }

  get state(): ConnectionState {
    return this.current
  }

  get isOnline(): boolean {
    return this.current.kind === "online"
  }

  start(): void {
    this.open()
  }

  /** Skips the wait of a pending reconnect, or reconnects after a final close. */
  connectNow(): void {
    if (this.current.kind === "online" || this.current.kind === "connecting") return
    this.clearRetry()
    this.open()
  }

  /** Sends a request that only makes sense on the current connection; false when not online. */
  send(frame: ClientFrame): boolean {
    if (!this.isOnline || this.socket === undefined) return false
    this.socket.send(encode(frame))
    return true
  }

  /** Queues a request that must be delivered; it goes out now when online, else after the next `welcome`. */
  enqueue(ref: string, frame: ClientFrame): void {
    const outgoing: Outgoing = { ref, frame, sentOn: -1 }
    this.outbox.set(ref, outgoing)
    if (this.isOnline && !this.flushHeld) this.write(outgoing)
  }

  /** Drops a request from the outbox: answered, or known to have arrived. */
  settle(ref: string): void {
    this.outbox.delete(ref)
  }

  /**
   * Holds the outbox after a `welcome` until `releaseOutbox`, so the caller can first look at the catch-up history
   * and settle requests that already arrived before the drop.
   */
  holdOutbox(): void {
    this.flushHeld = true
  }

  releaseOutbox(): void {
    this.flushHeld = false
    if (!this.isOnline) return
    for (const outgoing of this.outbox.values()) {
      if (outgoing.sentOn !== this.generation) this.write(outgoing)
    }
  }

  private write(outgoing: Outgoing): void {
    if (this.socket === undefined || this.socket.readyState !== WebSocket.OPEN) return
    this.socket.send(encode(outgoing.frame))
    outgoing.sentOn = this.generation
  }

  private setState(state: ConnectionState): void {
    this.current = state
    this.hooks.onState(state)
  }

  private open(): void {
    if (!navigator.onLine) {
      this.setState({ kind: "offline", reason: OFFLINE_NETWORK })
      return
    }
    const generation = ++this.generation
    this.welcomed = false
    this.setState({ kind: "connecting" })
    let socket: WebSocket
    try {
      socket = new WebSocket(this.url, SUBPROTOCOL)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.addEventListener("open", () => {
      if (generation !== this.generation) return
      this.lastFrameAt = Date.now()
      socket.send(encode(this.hooks.hello()))
    })
    socket.addEventListener("message", (event: MessageEvent) => {
      if (generation !== this.generation || typeof event.data !== "string") return
      this.lastFrameAt = Date.now()
      // A frame this client does not understand is dropped here, at the edge, instead of breaking the UI further in.
      const frame = decodeServerFrame(event.data)
      if (Either.isRight(frame)) this.onFrame(frame.right)
    })
    socket.addEventListener("close", (event: CloseEvent) => {
      if (generation !== this.generation) return
      this.onClosed(event.code)
    })
  }

  private onFrame(frame: ServerFrame): void {
    if (frame.type === "welcome") {
      this.welcomed = true
      this.attempt = 0
      this.startHeartbeat()
      this.setState({ kind: "online" })
    }
    if ((frame.type === "ack" || frame.type === "error") && frame.ref !== undefined) this.outbox.delete(frame.ref)
    this.hooks.onFrame(frame)
    if (frame.type === "welcome" && !this.flushHeld) this.releaseOutbox()
  }

  private onClosed(code: number): void {
    this.stopHeartbeat()
    this.socket = undefined
    // A session the server refused before `welcome` with 1008 is as final as one it closed later.
    if (isFinalClose(code)) {
      this.hooks.onSessionEnded(code)
      this.setState({ kind: "offline", reason: FINAL_CLOSES[code] ?? "The session was closed.", code })
      return
    }
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    this.clearRetry()
    if (!navigator.onLine) {
      this.setState({ kind: "offline", reason: OFFLINE_NETWORK })
      return
    }
    const delay = backoffDelay(this.attempt++)
    this.setState({ kind: "reconnecting", at: Date.now() + delay })
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.open()
    }, delay)
  }

  private clearRetry(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private startHeartbeat(): void {
    this.stopHeartbeat()
    this.heartbeatTimer = setInterval(() => {
      const socket = this.socket
      if (socket === undefined || !this.welcomed) return
      const idle = Date.now() - this.lastFrameAt
      if (idle > DEAD_AFTER_MS) {
        // The close event of a dead TCP connection can take minutes; stop waiting for it.
        this.generation++
        socket.close()
        this.onClosed(1006)
      } else if (idle > IDLE_PING_MS) {
        socket.send(encode({ type: "ping" }))
      }
    }, 5_000)
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }
}

export const OFFLINE_NETWORK = "No network connection."
