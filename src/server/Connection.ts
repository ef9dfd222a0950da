/**
 * A live connection as the core sees it: the session it carries, the dialect that renders its frames, the outlet its
 * bytes go to, and where it is in its life. Transport and dialect supply the two ends (`Outlet`, `Renderer`), so the
 * core never touches a socket and never asks which dialect it is talking to.
 */
import { userKey } from "../backend/UserKey.js"
import type * as Protocol from "../protocol/Protocol.js"
import type { Feature } from "../protocol/Rules.js"
import type { Identity } from "./Identity.js"
import { Session } from "./Session.js"
import { textFrameOf } from "./WireFrame.js"

/** Where a connection's bytes go: pre-built WebSocket frames, with a bound of its own (a slow consumer is cut). */
export interface Outlet {
  /** Writes `parts` (frames carrying `messages` messages) in one system call; nothing once closed or cut. */
  readonly write: (parts: ReadonlyArray<Uint8Array>, messages: number) => void
  /** Sends a close frame; a peer that does not complete the handshake within the grace is destroyed. */
  readonly close: (code: number, reason: string) => void
  /**
   * Writes between `hold` and `release` go out together in one system call (a session's welcome, members and
   * history; a request's answers). Calls nest.
   */
  readonly hold: () => void
  readonly release: () => void
  /**
   * The number of the last ping the peer answered (`Receipts`): every frame written before that ping has arrived.
   * 0 until one is answered.
   */
  readonly confirmed: number
  /** Asks the peer to confirm what it has been sent so far: a ping now, or once the outstanding one is answered. */
  readonly receipt: () => void
}

/** How a dialect shows the server's frames. The core asks; the dialect decides what its users see. */
export interface Renderer {
  /** The text payload of `frame` in this dialect, or undefined when the dialect does not show it. */
  readonly render: (frame: Protocol.ServerFrame) => string | undefined
  /** Whether a join sends the room's state (`members`, `history`): reading it costs backend calls. */
  readonly showsRoomState: boolean
  /** The opt-in event types this renderer shows (`hello.features`); undefined when none were asked for. */
  readonly features?: ReadonlySet<Feature> | undefined
}

export type ConnectionState =
  /** Upgraded, session not established yet (JSON: waiting for `hello`). */
  | { readonly _tag: "Opening" }
  | { readonly _tag: "Open" }
  /** The server is closing it with `code` (or `ws` did, after a protocol violation). */
  | { readonly _tag: "Closing"; readonly code: number; readonly opened: boolean }
  /** Another connection resumed its session: this one's end must not touch the session. */
  | { readonly _tag: "TakenOver" }

let nextId = 0

export class Connection {
  /** For logs: names the connection without naming the user. */
  readonly id = nextId++
  state: ConnectionState = { _tag: "Opening" }
  /** The session carried; replaced when the connection opens or resumes one. */
  session: Session = Session.unopened
  /** Who the connect hooks said this is (a JWT's `sub`, an app's session cookie); undefined for a guest. */
  identity: Identity | undefined = undefined
  private renames: Array<string> | undefined

  constructor(
    readonly outlet: Outlet,
    /** Replaced once, at `hello`, by the dialect's renderer for the features the client asked for. */
    public renderer: Renderer,
    readonly ip: string
  ) {}

  /** Whether the client asked for `feature` (`hello.features`). */
  has(feature: Feature): boolean {
    return this.renderer.features?.has(feature) === true
  }

  get name(): string {
    return this.session.name
  }

  get rooms(): Set<string> {
    return this.session.rooms
  }

  /** What presence and names know this connection's user by: one key per user, or the guest's session. */
  get key(): string {
    return this.identity === undefined ? this.session.id : userKey(this.identity.user)
  }

  /** Frames from the peer are acted on only while the session is opening or open. */
  get acceptsFrames(): boolean {
    return this.state._tag === "Opening" || this.state._tag === "Open"
  }

  /** The code the server closed it with, when it did. */
  get closedBy(): number | undefined {
    return this.state._tag === "Closing" ? this.state.code : undefined
  }

  /** Sends a server frame, as this connection's dialect shows it. */
  send(frame: Protocol.ServerFrame): void {
    const text = this.renderer.render(frame)
    if (text !== undefined) this.sendText(text)
  }

  /** Sends one text payload as it is (a JSON frame, a plain line). */
  sendText(text: string): void {
    this.outlet.write([textFrameOf(text)], 1)
  }

  /** The session is established: `welcome` sent (JSON) or the greeting (plain). */
  opened(): void {
    if (this.state._tag === "Opening") this.state = { _tag: "Open" }
    // Closed by the server while it was opening: its end must still see an established session.
    else if (this.state._tag === "Closing") this.state = { ...this.state, opened: true }
  }

  /** The server closes the connection with `code`; the first reason to close is the one that counts. */
  close(code: number, reason = ""): void {
    this.closing(code)
    this.outlet.close(code, reason)
  }

  /** Records that the connection is being closed with `code` (by the outlet's cut, or by `ws` itself). */
  closing(code: number): void {
    if (this.state._tag === "Opening" || this.state._tag === "Open") {
      this.state = { _tag: "Closing", code, opened: this.state._tag === "Open" }
    }
  }

  takenOver(): void {
    this.state = { _tag: "TakenOver" }
  }

  /** A `renamed` event reaches a connection once even when it shares several rooms with the renamed user. */
  firstSightOfRename(eventId: string): boolean {
    const seen = (this.renames ??= [])
    if (seen.includes(eventId)) return false
    seen.push(eventId)
    if (seen.length > 16) seen.shift()
    return true
  }
}
