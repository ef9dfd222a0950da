/**
 * The one module that relies on `ws` internals. Writing pre-built frames straight to `ws`'s TCP socket is what
 * makes the fan-out fast (one buffer per batch shared by all members, one system call per member); it works because
 * no permessage-deflate is negotiated, so `ws` writes synchronously and frames never interleave. test/WsOutlet.test.ts
 * fails loudly if a `ws` upgrade changes what this relies on.
 */
import type * as Net from "node:net"
import type { WebSocket } from "ws"
import { CloseCode } from "../protocol/Protocol.js"
import type { Outlet } from "../server/Connection.js"
import * as Receipts from "../server/Receipts.js"
import type * as Heartbeat from "./Heartbeat.js"
import { admit, type OutboundLimits } from "./OutboundBound.js"

/** `ws` keeps the TCP socket in a private field. */
export const tcpSocket = (ws: WebSocket): Net.Socket | undefined => (ws as unknown as { _socket?: Net.Socket })._socket

export interface WsOutletOptions extends OutboundLimits {
  /** Time between a close frame and destroying the TCP socket of a peer that does not answer it. */
  readonly closeGraceMs: number
}

/** Where the outlet is: open; cut as a slow consumer (nothing more is written); or closing. */
type OutletState = "open" | "cut" | "closing"

export class WsOutlet implements Outlet, Heartbeat.Peer {
  /** The peer answered (pong or any frame) since the last heartbeat. */
  answered = true
  confirmed = 0
  /** The number of the last ping sent. */
  private pinged = 0
  /** A receipt was asked for while a ping was outstanding: ping again once it is answered. */
  private wantsReceipt = false
  private state: OutletState = "open"
  private socket: Net.Socket | undefined
  private held = 0
  private waiting = 0

  constructor(
    readonly ws: WebSocket,
    private readonly options: WsOutletOptions,
    /** Told when the outlet cuts a slow consumer, so the connection's state says why it closed. */
    private readonly onCut: () => void
  ) {}

  write(parts: ReadonlyArray<Uint8Array>, messages: number): void {
    if (this.state === "cut" || this.ws.readyState !== 1) return
    const socket = (this.socket ??= tcpSocket(this.ws))
    if (socket === undefined || socket.destroyed) return
    const verdict = admit(socket.writableLength, this.waiting, messages, this.options)
    if (verdict === "cut") return this.cut(socket)
    this.waiting = verdict
    if (parts.length === 1) {
      // Not corked for one buffer: a corked single write takes Node's writev path, which allocates more per call.
      socket.write(parts[0]!)
    } else {
      socket.cork()
      for (const part of parts) socket.write(part)
      socket.uncork()
    }
  }

  hold(): void {
    if (this.held++ === 0) this.socket ??= tcpSocket(this.ws)
    this.socket?.cork()
  }

  release(): void {
    if (this.held === 0) return
    this.held--
    this.socket?.uncork()
  }

  close(code: number, reason: string): void {
    if (this.state === "open") this.state = "closing"
    if (this.ws.readyState >= 2) return
    this.ws.close(code, reason)
    this.destroyAfterGrace()
  }

  ping(): void {
    if (this.ws.readyState !== 1) return
    this.pinged = Receipts.nextPing()
    this.ws.ping(String(this.pinged))
  }

  receipt(): void {
    if (this.pinged > this.confirmed) this.wantsReceipt = true
    else this.ping()
  }

  /** A pong: the peer is alive, and if it echoes one of our pings, it has everything written before that ping. */
  pong(payload: Uint8Array): void {
    this.answered = true
    const answered = Receipts.pingNumber(payload)
    // A number we never sent (an unsolicited pong, a peer that makes one up) proves nothing.
    if (answered === undefined || answered <= this.confirmed || answered > this.pinged) return
    this.confirmed = answered
    if (this.wantsReceipt && answered === this.pinged) {
      this.wantsReceipt = false
      this.ping()
    }
  }

  terminate(): void {
    this.ws.terminate()
  }

  private cut(socket: Net.Socket): void {
    this.state = "cut"
    this.onCut()
    // The close frame waits behind the backlog the peer is not reading; it goes out if the peer reads within the
    // grace, and the socket is destroyed either way.
    this.ws.close(CloseCode.slowConsumer, "slow consumer")
    this.destroyAfterGrace(socket)
  }

  private destroyAfterGrace(socket?: Net.Socket): void {
    const timer = setTimeout(() => {
      this.ws.terminate()
      socket?.destroy()
    }, this.options.closeGraceMs)
    timer.unref()
    this.ws.once("close", () => clearTimeout(timer))
  }
}
