/**
 * A session: what a user's connection carries and what a resume restores — its id, name, rooms and the refs of its
 * recent sends. One record, moved from connection to connection (a resume, a takeover) and kept while the session
 * is held for resume.
 */
import { newSessionId, type SessionRecord } from "../backend/Sessions.js"
import type { Identity } from "./Identity.js"

/** Recent `send` refs kept per session for dedupe. */
const REFS_KEPT = 256

interface SentRef {
  readonly room: string
  readonly text: string
  readonly id: number
}

export class Session {
  /** The placeholder of a connection that has not opened a session yet. */
  static get unopened(): Session {
    return new Session("", "")
  }

  readonly rooms = new Set<string>()
  private refs: Map<string, SentRef> | undefined
  /**
   * Per room, the rev of the last message change the session's connection is known to have received (`Receipts`)
   * when it left the room (a drop, a takeover): a resume sends the changes after it to messages the client already
   * had. Shared with the connection taking the session over, whose predecessor's leaves write here after the
   * hand-over began.
   */
  revs = new Map<string, number>()

  constructor(
    readonly id: string,
    public name: string,
    rooms: Iterable<string> = [],
    revs?: Readonly<Record<string, number>>
  ) {
    for (const room of rooms) this.rooms.add(room)
    if (revs !== undefined) for (const room of Object.keys(revs)) this.revs.set(room, revs[room]!)
  }

  /**
   * The id a retried send got the first time: same ref, room and text. A ref reused for another message is a new
   * message.
   */
  sentBefore(ref: string, room: string, text: string): number | undefined {
    const seen = this.refs?.get(ref)
    return seen !== undefined && seen.room === room && seen.text === text ? seen.id : undefined
  }

  rememberSent(ref: string, room: string, text: string, id: number): void {
    const refs = (this.refs ??= new Map())
    refs.delete(ref)
    refs.set(ref, { room, text, id })
    if (refs.size > REFS_KEPT) refs.delete(refs.keys().next().value!)
  }

  /** A copy for a connection taking this session over: the same refs, a room set of its own. */
  handedOver(rooms: Iterable<string>): Session {
    const next = new Session(this.id, this.name, rooms)
    next.refs = this.refs
    next.revs = this.revs
    return next
  }

  /** What the `Sessions` backend stores; `heldUntil` while held for resume. */
  record(node: string, heldUntil?: number): SessionRecord {
    const rooms = Array.from(this.rooms)
    let revs: Record<string, number> | undefined
    for (const room of rooms) {
      const rev = this.revs.get(room)
      if (rev !== undefined && rev > 0) (revs ??= {})[room] = rev
    }
    return revs === undefined
      ? { session: this.id, name: this.name, rooms, node, heldUntil }
      : { session: this.id, name: this.name, rooms, node, heldUntil, revs }
  }
}

/**
 * A fresh session id. An authenticated user's names its user (`<uuid>.<sub in base64url>`), so any node can tell
 * whose session it is — a resume must present a token of that user, and a held session's name belongs to that
 * user's key — without another backend field. Session ids never reach the wire (clients see resume tokens only).
 */
export const sessionIdFor = (identity: Identity | undefined): string =>
  identity === undefined ? newSessionId() : `${newSessionId()}.${Buffer.from(identity.user).toString("base64url")}`

export { ownerOf } from "../backend/UserKey.js"
