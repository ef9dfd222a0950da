/**
 * What the browser knows about each conversation (a room, or direct messages with one person): its timeline in
 * display order, deduplicated, plus the room's members and paging state. No DOM here; the page mirrors `items`.
 * Only the reducer (state.ts) changes a conversation. Items are immutable: a change replaces the item, so the page
 * can tell by identity which ones to redraw.
 *
 * Timeline order: room messages sort by their id, so history pages, resume catch-up and live messages interleave
 * correctly whatever order they arrive in; a presence or notice line sorts right after the newest message known when
 * it happened; messages still being sent stay at the end.
 */
import { compareNames, nameKey } from "../src/protocol/Rules.js"

export type ItemBody =
  | {
      readonly kind: "message"
      readonly id: number
      readonly from: string
      readonly text: string
      readonly at: number
      readonly mine: boolean
      /** Built from our own `ack` before the server's copy arrived; the copy replaces its time. */
      readonly provisional: boolean
    }
  | {
      readonly kind: "direct"
      readonly from: string
      readonly to: string
      readonly text: string
      readonly at: number
      readonly mine: boolean
    }
  | { readonly kind: "event"; readonly text: string; readonly at: number; readonly warning: boolean }
  | {
      readonly kind: "pending"
      readonly ref: string
      readonly text: string
      /** Our name when it was sent, and the room's newest id then: the server's copy must come from that name, later. */
      readonly sender: string
      readonly afterId: number
      readonly state: PendingState
      readonly error: string | undefined
    }

/** `queued`: waits for the connection; `sending`: written, no answer yet; `sent`: acknowledged, no copy yet. */
export type PendingState = "queued" | "sending" | "sent" | "failed"
export type PendingBody = Extract<ItemBody, { kind: "pending" }>
export type PendingItem = Item & { readonly body: PendingBody }

export interface Item {
  /** See `Conversation.startEpoch`; pending sends use +Infinity so they stay last. */
  readonly epoch: number
  readonly major: number
  readonly minor: number
  readonly body: ItemBody
}

const before = (a: Item, b: Item) =>
  a.epoch !== b.epoch ? a.epoch < b.epoch : a.major !== b.major ? a.major < b.major : a.minor < b.minor

export type MessageBody = Extract<ItemBody, { kind: "message" }>
export type DirectBody = Extract<ItemBody, { kind: "direct" }>

const sameMessage = (a: ItemBody, b: MessageBody) =>
  a.kind === "message" && a.id === b.id && a.from === b.from && a.text === b.text && a.at === b.at

export type ConversationKind = "room" | "dm"

/** Room names are case-sensitive on the server; user names are not. */
export const conversationId = (kind: ConversationKind, name: string) =>
  kind === "room" ? `room:${name}` : `dm:${nameKey(name)}`

export class Conversation {
  /** Changes when the peer of a direct conversation is renamed. */
  id: string
  readonly items: Array<Item> = []
  private messageIds = new Map<number, Item>()
  /** Messages of earlier epochs by id, to recognise them if the server sends them again. */
  private previous = new Map<number, Item>()
  private epoch = 0
  private readonly directKeys = new Set<string>()
  /** Orders lines that share a position (events, direct messages of the same millisecond) by arrival. */
  private sequence = 0
  /** Highest and lowest room message id known; -1 / Infinity while none. */
  maxId = -1
  minId = Number.POSITIVE_INFINITY
  /** The server retains messages older than `minId`. */
  more = false
  /** The first `history` for this room has arrived, so later arrivals are news. */
  initialized = false
  loadingOlder: string | undefined
  members: Array<string> = []
  unread = 0

  constructor(
    readonly kind: ConversationKind,
    public title: string
  ) {
    this.id = conversationId(kind, title)
  }

  hasMessage(id: number): Item | undefined {
    return this.messageIds.get(id)
  }

  /**
   * Message ids are only comparable within one server session: a server restarted without shared storage numbers
   * a room from 1 again. After a session that could not be resumed, ids start a new epoch that sorts after the old
   * one; a message seen before (same id, sender, text and time: the same server still had it) is recognised instead
   * of shown twice.
   */
  startEpoch(): void {
    for (const [id, item] of this.messageIds) this.previous.set(id, item)
    this.messageIds = new Map()
    this.epoch++
    this.maxId = -1
    this.minId = Number.POSITIVE_INFINITY
    this.more = false
  }

  /** Inserts in display order and returns the index, or -1 when the item is already there. */
  insert(item: Item): number {
    const body = item.body
    if (body.kind === "message") {
      if (this.messageIds.has(body.id)) return -1
      const earlier = this.previous.get(body.id)
      const known = earlier !== undefined && sameMessage(earlier.body, body)
      this.messageIds.set(body.id, known ? earlier : item)
      this.maxId = Math.max(this.maxId, body.id)
      this.minId = Math.min(this.minId, body.id)
      if (known) return -1
    } else if (body.kind === "direct") {
      const key = `${nameKey(body.from)}\u0000${nameKey(body.to)}\u0000${body.at}\u0000${body.text}`
      if (this.directKeys.has(key)) return -1
      this.directKeys.add(key)
    }
    let low = 0
    let high = this.items.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (before(this.items[mid]!, item)) low = mid + 1
      else high = mid
    }
    this.items.splice(low, 0, item)
    return low
  }

  remove(item: Item): void {
    const index = this.items.indexOf(item)
    if (index >= 0) this.items.splice(index, 1)
  }

  /** Puts `next` where `item` is; `next` must sort at the same place (same epoch, major and minor). */
  replace(item: Item, next: Item): void {
    const index = this.items.indexOf(item)
    if (index >= 0) this.items[index] = next
    if (next.body.kind === "message" && this.messageIds.get(next.body.id) === item) {
      this.messageIds.set(next.body.id, next)
    }
  }

  messageItem(body: MessageBody): Item {
    return { epoch: this.epoch, major: body.id, minor: 0, body }
  }

  directItem(body: DirectBody): Item {
    return { epoch: this.epoch, major: body.at, minor: ++this.sequence, body }
  }

  /** A line placed after everything currently known (a presence change, a warning). */
  eventItem(text: string, at: number, warning = false): Item {
    const major = this.kind === "room" ? this.maxId : at
    return { epoch: this.epoch, major, minor: ++this.sequence, body: { kind: "event", text, at, warning } }
  }

  pendingItem(ref: string, text: string, sender: string, online: boolean): PendingItem {
    return {
      epoch: Number.POSITIVE_INFINITY,
      major: 0,
      minor: ++this.sequence,
      body: {
        kind: "pending",
        ref,
        text,
        sender,
        afterId: this.maxId,
        state: online ? "sending" : "queued",
        error: undefined
      }
    }
  }

  /** Pending sends, oldest first; they are always the last items. */
  pendings(): Array<PendingItem> {
    let first = this.items.length
    while (first > 0 && this.items[first - 1]!.body.kind === "pending") first--
    return this.items.slice(first) as Array<PendingItem>
  }

  pending(ref: string): PendingItem | undefined {
    return this.pendings().find((item) => item.body.ref === ref)
  }

  setMembers(names: ReadonlyArray<string>): void {
    this.members = sortNames(names)
  }

  addMember(name: string): boolean {
    if (this.members.some((m) => nameKey(m) === nameKey(name))) return false
    this.members = sortNames([...this.members, name])
    return true
  }

  removeMember(name: string): boolean {
    const next = this.members.filter((m) => nameKey(m) !== nameKey(name))
    const changed = next.length !== this.members.length
    this.members = next
    return changed
  }

  renameMember(from: string, to: string): boolean {
    if (!this.members.some((m) => nameKey(m) === nameKey(from))) return false
    this.members = sortNames(this.members.map((m) => (nameKey(m) === nameKey(from) ? to : m)))
    return true
  }
}

const sortNames = (names: ReadonlyArray<string>) => [...new Set(names)].sort(compareNames)
