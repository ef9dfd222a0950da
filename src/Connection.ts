/**
 * A live WebSocket connection as the rest of the server sees it: who it is, which rooms it is in, and a bounded
 * outbound path. Writes go straight to the TCP socket as pre-built frames (no fiber per recipient); the bound is ours,
 * in bytes waiting in the socket and in messages written since it last drained. A connection that passes either bound
 * is a slow consumer: it is sent close 4008 and cut, and the session is held so it can resume from history.
 */
import type * as Net from "node:net"
import type { WebSocket } from "ws"
import { plainLine } from "./PlainText.js"
import { CloseCode } from "./protocol/Protocol.js"
import type * as Heartbeat from "./Heartbeat.js"
import type * as Protocol from "./protocol/Protocol.js"
import { textFrame } from "./WireFrame.js"

export type Dialect = "json" | "plain"

export interface OutboundLimits {
  readonly maxBufferedBytes: number
  readonly maxQueuedMessages: number
  readonly closeGraceMs: number
}

let nextId = 0

export class Connection implements Heartbeat.Peer {
  readonly id = nextId++
  session = ""
  name = ""
  /** Rooms joined; a plain-dialect connection is in at most one, its current room. */
  readonly rooms = new Set<string>()
  /** Set once the session is established (`welcome` sent / plain greeting sent). */
  established = false
  /** Why the server closed it, when it did: decides whether the session is held for resume. */
  closedBy: number | undefined
  /** Set when another connection took the session over: this one's end must not touch the session. */
  takenOver = false
  /** The peer answered (pong or any frame) since the last heartbeat. */
  answered = true
  private readonly renames: Array<string> = []
  private waiting = 0
  private cut = false

  constructor(
    readonly ws: WebSocket,
    readonly dialect: Dialect,
    readonly ip: string,
    private readonly limits: OutboundLimits
  ) {}

  private get socket(): Net.Socket | undefined {
    // `ws` keeps the TCP socket private; writing pre-framed bytes to it is what keeps the fan-out cheap. No
    // permessage-deflate is negotiated, so `ws` itself writes synchronously and frames never interleave.
    return (this.ws as unknown as { _socket?: Net.Socket })._socket
  }

  get isOpen(): boolean {
    return this.ws.readyState === 1 && !this.cut
  }

  /**
   * Writes pre-built frames carrying `messages` messages, or cuts the connection if it is not keeping up: when the
   * bytes it has not taken yet pass the bound, or when messages keep piling up behind an unflushed backlog.
   */
  write(frames: Buffer, messages = 1): void {
    this.writeAll([frames], messages)
  }

  /** `write` for several buffers: one system call for all of them (corked). */
  writeAll(parts: ReadonlyArray<Buffer>, messages: number): void {
    if (!this.isOpen) return
    const socket = this.socket
    if (socket === undefined || socket.destroyed) return
    const backlog = socket.writableLength
    if (backlog > this.limits.maxBufferedBytes) return this.slowConsumer()
    this.waiting = backlog === 0 ? 0 : this.waiting + messages
    if (this.waiting > this.limits.maxQueuedMessages) return this.slowConsumer()
    if (parts.length === 1) {
      socket.write(parts[0]!)
      return
    }
    socket.cork()
    for (const part of parts) socket.write(part)
    socket.uncork()
  }

  /** Sends one text payload (a JSON frame or a plain line). */
  sendText(text: string): void {
    this.write(textFrame(Buffer.from(text, "utf8")))
  }

  /** Sends a server frame in this connection's dialect; the plain dialect shows only what it has a line for. */
  send(frame: Protocol.ServerFrame): void {
    if (this.dialect === "json") return this.sendText(JSON.stringify(frame))
    const line = plainLine(frame)
    if (line !== undefined) this.sendText(line)
  }

  /** Closes with `code`; a peer that does not complete the close handshake within the grace is destroyed. */
  close(code: number, reason = ""): void {
    if (this.closedBy === undefined) this.closedBy = code
    if (this.ws.readyState >= 2) return
    this.ws.close(code, reason)
    const timer = setTimeout(() => this.ws.terminate(), this.limits.closeGraceMs)
    timer.unref()
    this.ws.once("close", () => clearTimeout(timer))
  }

  ping(): void {
    if (this.ws.readyState === 1) this.ws.ping()
  }

  terminate(): void {
    this.ws.terminate()
  }

  /** A `renamed` event reaches a connection once even when it shares several rooms with the renamed user. */
  firstSightOfRename(eventId: string): boolean {
    if (this.renames.includes(eventId)) return false
    this.renames.push(eventId)
    if (this.renames.length > 16) this.renames.shift()
    return true
  }

  private slowConsumer(): void {
    this.cut = true
    this.closedBy = CloseCode.slowConsumer
    const socket = this.socket
    // The close frame would wait behind the backlog the peer is not reading; it goes out if the peer reads within
    // the grace, and the socket is destroyed either way.
    this.ws.close(CloseCode.slowConsumer, "slow consumer")
    const timer = setTimeout(() => {
      this.ws.terminate()
      socket?.destroy()
    }, this.limits.closeGraceMs)
    timer.unref()
    this.ws.once("close", () => clearTimeout(timer))
  }
}
