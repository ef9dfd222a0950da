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
import type * as Protocol from "../src/protocol/Protocol.js"
import { compareNames, nameKey, UNREAD_CAP } from "../src/protocol/Rules.js"

/** Who reacted with one emoji, in the order they did; groups keep the order their first reaction came in. */
export interface ReactionGroup {
  readonly emoji: string
  readonly names: ReadonlyArray<string>
}
export type Reactions = ReadonlyArray<ReactionGroup>

/** What a reply shows of the message it answers, kept up to date as that message is edited, deleted or loaded. */
export type Quote =
  | { readonly kind: "message"; readonly from: string; readonly excerpt: string }
  | { readonly kind: "deleted"; readonly from: string }
  /** Not in the timeline: older than the loaded history, or gone from the server's retention. */
  | { readonly kind: "missing" }

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
      readonly replyTo: number | undefined
      /** Set exactly when `replyTo` is. */
      readonly quote: Quote | undefined
      /** When it was last edited. */
      readonly edited: number | undefined
      /** Taken back: `text` is empty and stays so. */
      readonly deleted: boolean
      readonly reactions: Reactions
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
  /** The "New messages" line before the first message after the read marker. */
  | { readonly kind: "divider" }
  | {
      readonly kind: "pending"
      readonly ref: string
      readonly text: string
      readonly replyTo: number | undefined
      readonly quote: Quote | undefined
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

/** Text, edits and reactions may differ: the same message can have changed while this page was away. */
const sameMessage = (a: ItemBody, b: MessageBody) =>
  a.kind === "message" && a.id === b.id && a.from === b.from && a.at === b.at

/** A message as the server sent it (live, or in history with its edits, deletion and reactions so far). */
export const messageFromWire = (message: Protocol.Message, mine: boolean): MessageBody => ({
  kind: "message",
  id: message.id,
  from: message.from,
  text: message.deleted === true ? "" : message.text,
  at: message.at,
  mine,
  provisional: false,
  replyTo: message.reply_to,
  quote: undefined,
  edited: message.edited,
  deleted: message.deleted === true,
  reactions: reactionsFromWire(message.reactions)
})

export const reactionsFromWire = (reactions: Protocol.Reactions | undefined): Reactions =>
  reactions === undefined
    ? []
    : Object.entries(reactions).flatMap(([emoji, names]) => (names.length > 0 ? [{ emoji, names: [...names] }] : []))

/** `name` reacted with `emoji` (`on`) or took it back; the same array when nothing changed, so replays are no-ops. */
export const toggleReaction = (reactions: Reactions, emoji: string, name: string, on: boolean): Reactions => {
  const group = reactions.find((g) => g.emoji === emoji)
  const has = group !== undefined && group.names.some((n) => nameKey(n) === nameKey(name))
  if (on === has) return reactions
  if (on) {
    return group === undefined
      ? [...reactions, { emoji, names: [name] }]
      : reactions.map((g) => (g === group ? { emoji, names: [...g.names, name] } : g))
  }
  return reactions.flatMap((g) => {
    if (g !== group) return [g]
    const names = g.names.filter((n) => nameKey(n) !== nameKey(name))
    return names.length > 0 ? [{ emoji, names }] : []
  })
}

export const sameReactions = (a: Reactions, b: Reactions): boolean =>
  a.length === b.length &&
  a.every(
    (g, i) =>
      g.emoji === b[i]!.emoji && g.names.length === b[i]!.names.length && g.names.every((n, j) => n === b[i]!.names[j])
  )

export const reactedBy = (group: ReactionGroup, name: string): boolean =>
  group.names.some((n) => nameKey(n) === nameKey(name))

const EXCERPT_CODE_POINTS = 80

/** The start of a text on one line, for a quote: white space collapsed, at most 80 characters. */
export const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  const points = [...flat]
  return points.length <= EXCERPT_CODE_POINTS
    ? flat
    : `${points
        .slice(0, EXCERPT_CODE_POINTS - 1)
        .join("")
        .trimEnd()}…`
}

const sameQuote = (a: Quote | undefined, b: Quote | undefined): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.kind === b.kind &&
    (a.kind === "missing" ||
      (a.from === (b as typeof a).from && (a.kind === "deleted" || a.excerpt === (b as typeof a).excerpt))))

/** An unread count for a badge: the server counts up to UNREAD_CAP, which means that many or more. */
export const badgeText = (count: number): string => (count >= UNREAD_CAP ? `${UNREAD_CAP - 1}+` : String(count))

/** "alice is typing…", "alice and bob are typing…"; undefined when nobody is. The terminal says it the same way. */
export { typingLine } from "../src/client/TypingLine.js"

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
  /** Messages after the read marker; for `UNREAD_CAP` or more the server says `UNREAD_CAP`. */
  unread = 0
  /** The newest message id read: the server's marker, or what this page saw. -1 while unknown. */
  readUpTo = -1
  /** The newest id this page has told the server it read (-1: none), so a `read` goes out only when it moves on. */
  readSent = -1
  /** When the last `read` went out, and whether one waits for its second to be up (see features.ts). */
  readSentAt = Number.NEGATIVE_INFINITY
  readDue = false
  /** Where the "New messages" line goes was settled for this viewing of the conversation. */
  dividerSettled = false
  /** The server has sent this room's `unread` (read markers are on, and it follows the join history). */
  unreadKnown = false
  /** Who is typing, by name key, until when (epoch ms). */
  readonly typing = new Map<string, { readonly name: string; readonly until: number }>()
  private divider: Item | undefined
  /** Reply ids by the id they answer, to refresh their quotes when the original changes or is loaded. */
  private replies = new Map<number, Set<number>>()

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
    this.replies = new Map()
    this.setDivider(undefined)
    this.epoch++
    this.maxId = -1
    this.minId = Number.POSITIVE_INFINITY
    this.more = false
    // The new numbering has markers of its own, which the server tells.
    this.readUpTo = -1
    this.readSent = -1
  }

  /** Inserts in display order and returns the index, or -1 when the item is already there. */
  insert(item: Item): number {
    let body = item.body
    if (body.kind === "message") {
      if (this.messageIds.has(body.id)) return -1
      const replyTo = body.replyTo
      if (replyTo !== undefined) {
        body = { ...body, quote: this.quoteOf(replyTo) }
        item = { ...item, body }
        let replies = this.replies.get(replyTo)
        if (replies === undefined) this.replies.set(replyTo, (replies = new Set()))
        replies.add(body.id)
      }
      const earlier = this.previous.get(body.id)
      const known = earlier !== undefined && sameMessage(earlier.body, body)
      this.messageIds.set(body.id, known ? earlier : item)
      this.maxId = Math.max(this.maxId, body.id)
      this.minId = Math.min(this.minId, body.id)
      if (known) {
        // The same message, maybe changed meanwhile: the earlier line shows what the server has now.
        const { text, edited, deleted, reactions } = body
        this.updateMessage(body.id, (shown) => merge(shown, { text, edited, deleted, reactions }))
        return -1
      }
      this.insertAt(item)
      this.refreshQuotes(body.id)
      return this.items.indexOf(item)
    } else if (body.kind === "direct") {
      const key = `${nameKey(body.from)}\u0000${nameKey(body.to)}\u0000${body.at}\u0000${body.text}`
      if (this.directKeys.has(key)) return -1
      this.directKeys.add(key)
    }
    return this.insertAt(item)
  }

  private insertAt(item: Item): number {
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

  /**
   * Replaces the message `id` by what `change` makes of it, and refreshes the quotes of its replies; false when the
   * message is not loaded or `change` returned it unchanged (the same object).
   */
  updateMessage(id: number, change: (body: MessageBody) => MessageBody): boolean {
    const item = this.messageIds.get(id)
    if (item === undefined || item.body.kind !== "message") return false
    const next = change(item.body)
    if (next === item.body) return false
    this.replace(item, { ...item, body: next })
    this.refreshQuotes(id)
    return true
  }

  quoteOf(id: number): Quote {
    const original = this.messageIds.get(id)?.body
    if (original?.kind !== "message") return { kind: "missing" }
    return original.deleted
      ? { kind: "deleted", from: original.from }
      : { kind: "message", from: original.from, excerpt: excerpt(original.text) }
  }

  private refreshQuotes(id: number): void {
    const replies = this.replies.get(id)
    if (replies === undefined) return
    const quote = this.quoteOf(id)
    for (const reply of replies) {
      const item = this.messageIds.get(reply)
      if (item?.body.kind !== "message" || sameQuote(item.body.quote, quote)) continue
      this.replace(item, { ...item, body: { ...item.body, quote } })
    }
  }

  /** Puts the "New messages" line after message `afterId` (when a newer one is loaded), or removes it. */
  setDivider(afterId: number | undefined): void {
    if (this.divider !== undefined) this.remove(this.divider)
    this.divider = undefined
    if (afterId === undefined || afterId >= this.maxId) return
    this.divider = { epoch: this.epoch, major: afterId, minor: Number.MAX_SAFE_INTEGER, body: { kind: "divider" } }
    this.insertAt(this.divider)
  }

  /**
   * A reactor renamed: the server keeps one reaction per user and names them by their current name in later
   * `reaction` frames (taking one back included), so the lists follow the new name.
   */
  renameReactor(from: string, to: string): void {
    for (const [id, item] of this.messageIds) {
      if (item.body.kind !== "message" || !item.body.reactions.some((g) => reactedBy(g, from))) continue
      this.updateMessage(id, (shown) => ({
        ...shown,
        reactions: shown.reactions.map((g) =>
          reactedBy(g, from)
            ? { emoji: g.emoji, names: g.names.map((n) => (nameKey(n) === nameKey(from) ? to : n)) }
            : g
        )
      }))
    }
  }

  /** Loaded messages after `id` of others, not deleted: at least that many are unread when the marker is at `id`. */
  unreadAfter(id: number): number {
    let count = 0
    for (const [messageId, item] of this.messageIds) {
      if (messageId > id && item.body.kind === "message" && !item.body.mine && !item.body.deleted) count++
    }
    return count
  }

  /** Who is typing, in the order they started (the hints' timers take them off). */
  typingNames(): Array<string> {
    return [...this.typing.values()].map((t) => t.name)
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

  pendingItem(ref: string, text: string, sender: string, online: boolean, replyTo?: number): PendingItem {
    return {
      epoch: Number.POSITIVE_INFINITY,
      major: 0,
      minor: ++this.sequence,
      body: {
        kind: "pending",
        ref,
        text,
        replyTo,
        quote: replyTo === undefined ? undefined : this.quoteOf(replyTo),
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

/**
 * A message with the server's current text, edit time, deletion and reactions; the same object when they are what it
 * shows already. A deletion is final: nothing brings the text back.
 */
export const merge = (
  shown: MessageBody,
  now: Pick<MessageBody, "text" | "edited" | "deleted" | "reactions">
): MessageBody => {
  if (shown.deleted) return shown
  if (now.deleted) return { ...shown, text: "", deleted: true, reactions: [] }
  const same = shown.text === now.text && shown.edited === now.edited && sameReactions(shown.reactions, now.reactions)
  return same ? shown : { ...shown, text: now.text, edited: now.edited, reactions: now.reactions }
}
