/**
 * The chat features (PROTOCOL.md, "Chat features") applied to the state: replies, typing hints, edits and
 * deletions, reactions and read markers, from the server's frames and from what the user does alike.
 *
 * Every change frame is applied so that applying it again changes nothing: after a resume the server sends the
 * changes made while the page was away, some of which it may already have seen.
 */
import type * as Protocol from "../src/protocol/Protocol.js"
import {
  checkEmoji,
  checkText,
  type ErrorCode,
  MAX_TEXT_CODE_POINTS,
  nameKey,
  TYPING_INTERVAL_MS,
  TYPING_SHOWN_MS,
  UNREAD_CAP
} from "../src/protocol/Rules.js"
import { type Conversation, type MessageBody, merge, reactedBy, toggleReaction } from "./model.js"
import type { MessageMode, Request } from "./state.js"
import { emit, ERROR_TEXT, newRef, NOT_CONNECTED, roomOf, type Step } from "./step.js"

/** The emoji the picker offers; any other emoji someone else used can be added with its chip. */
export const PICKER = ["👍", "❤️", "😂", "🎉", "😮", "😢"] as const

/** Words for the refusals of edit, delete and react. */
const CHANGE_ERROR_TEXT: Partial<Record<ErrorCode, string>> = {
  forbidden: "Only its author can change a message.",
  no_such_message: "That message is no longer there.",
  too_many_reactions: "That message cannot take more kinds of reactions.",
  message_too_long: ERROR_TEXT.message_too_long!,
  invalid_frame: "The server did not accept that."
}

/** A room's message, when it is loaded and not deleted: what the actions may change. */
const liveMessage = (conversation: Conversation | undefined, id: number): MessageBody | undefined => {
  const body = conversation?.kind === "room" ? conversation.hasMessage(id)?.body : undefined
  return body?.kind === "message" && !body.deleted ? body : undefined
}

const activeRoom = (s: Step): Conversation | undefined => (s.state.active?.kind === "room" ? s.state.active : undefined)

const sendRequest = (s: Step, request: Request, frame: (ref: string) => Protocol.ClientFrame): boolean => {
  if (!s.state.online) {
    s.state.composerError = NOT_CONNECTED
    return false
  }
  const ref = newRef(s)
  s.state.requests.set(ref, request)
  emit(s, { kind: "send", frame: frame(ref) })
  return true
}

const closeMode = (s: Step, room: Conversation, id: number, mode?: MessageMode) => {
  const open = s.state.messageMode
  if (open?.conversation === room && open.id === id && (mode === undefined || open.mode === mode)) {
    s.state.messageMode = undefined
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Server frames
// ---------------------------------------------------------------------------------------------------------------------

export const onTyping = (s: Step, frame: Protocol.Typing) => {
  const room = roomOf(s, frame.room)
  // Our own hint comes back from the server when another tab of ours types.
  if (room === undefined || s.state.isMe(frame.name)) return
  room.typing.set(nameKey(frame.name), { name: frame.name, until: s.now + TYPING_SHOWN_MS })
  emit(s, { kind: "later", ms: TYPING_SHOWN_MS, event: { kind: "typingDue", room: frame.room } })
}

export const onTypingDue = (s: Step, roomName: string) => {
  const room = roomOf(s, roomName)
  if (room === undefined) return
  let next = Number.POSITIVE_INFINITY
  for (const [key, typing] of room.typing) {
    if (typing.until <= s.now) room.typing.delete(key)
    else next = Math.min(next, typing.until)
  }
  // A timer that fired a little early must not leave a hint on screen for good.
  if (Number.isFinite(next)) emit(s, { kind: "later", ms: next - s.now, event: { kind: "typingDue", room: roomName } })
}

/** `name` said something, left or changed name: whatever they were typing is done. */
export const stopTyping = (room: Conversation, name: string) => {
  room.typing.delete(nameKey(name))
}

export const onEdited = (s: Step, frame: Protocol.Edited) => {
  roomOf(s, frame.room)?.updateMessage(frame.id, (shown) =>
    merge(shown, { text: frame.text, edited: frame.at, deleted: false, reactions: shown.reactions })
  )
}

export const onDeleted = (s: Step, frame: Protocol.Deleted) => {
  const room = roomOf(s, frame.room)
  if (room === undefined) return
  const shown = liveMessage(room, frame.id)
  const changed = room.updateMessage(frame.id, (body) => merge(body, { ...body, deleted: true }))
  if (!changed || shown === undefined) return
  // The server counts messages that are not deleted; a count at the cap says "at least", so it stays.
  const counted = !shown.mine && (room !== s.state.active || !s.state.visible) && frame.id > room.readUpTo
  if (counted && room.unread > 0 && room.unread < UNREAD_CAP) room.unread--
  closeMode(s, room, frame.id)
}

export const onReaction = (s: Step, frame: Protocol.Reaction) => {
  applyReaction(roomOf(s, frame.room), frame.id, frame.emoji, frame.name, frame.on)
}

const applyReaction = (room: Conversation | undefined, id: number, emoji: string, name: string, on: boolean) =>
  room?.updateMessage(id, (shown) => {
    if (shown.deleted) return shown
    const reactions = toggleReaction(shown.reactions, emoji, name, on)
    return reactions === shown.reactions ? shown : { ...shown, reactions }
  })

export const onUnread = (s: Step, frame: Protocol.Unread) => {
  const room = roomOf(s, frame.room)
  if (room === undefined) return
  room.unreadKnown = true
  room.readUpTo = Math.max(room.readUpTo, frame.last_read)
  // The server has this marker: no need to tell it again (a marker never moves back).
  room.readSent = Math.max(room.readSent, frame.last_read)
  if (room === s.state.active) {
    // This is where the open room's news starts; its count matters only while the tab is hidden.
    if (!room.dividerSettled) {
      room.setDivider(frame.count > 0 ? frame.last_read : undefined)
      room.dividerSettled = true
    }
    if (s.state.visible) return
  }
  // The server counts when the marker moves but may send it after messages that came meanwhile (the frame then says
  // fewer than are already here): what is loaded after the marker counts at least.
  room.unread = frame.count >= UNREAD_CAP ? frame.count : Math.max(frame.count, room.unreadAfter(frame.last_read))
}

/** The join history of a room without read markers on the server: it is what was there, not news. */
export const onFirstHistory = (s: Step, room: Conversation) => {
  if (!s.state.has("receipts")) room.readUpTo = Math.max(room.readUpTo, room.maxId)
}

/**
 * After every update: when the open room's newest message is on screen (tab visible, scrolled to the end), it is
 * read; the server hears of it once per new newest id. What came while the tab was hidden gets the New messages
 * line before it.
 */
export const markSeen = (s: Step) => {
  const { state } = s
  const active = state.active
  if (active === undefined || !state.visible) return
  if (active.kind === "dm") {
    active.unread = 0
    return
  }
  const room = active
  if (!state.atBottom || room.maxId < 0) return
  if (room.unread > 0) {
    room.setDivider(room.readUpTo)
    room.unread = 0
  }
  room.readUpTo = Math.max(room.readUpTo, room.maxId)
  sendRead(s, room)
}

/** Every frame costs the connection a rate-limit token: in a busy room the marker moves once a second, not per message. */
const READ_INTERVAL_MS = 1_000

/** Tells the server what was read in `room`, now or (at most once a second) when the second is up. */
const sendRead = (s: Step, room: Conversation) => {
  const { state } = s
  if (!state.has("receipts") || !state.online || room.readUpTo <= room.readSent) return
  const wait = room.readSentAt + READ_INTERVAL_MS - s.now
  if (wait > 0) {
    if (!room.readDue) emit(s, { kind: "later", ms: wait, event: { kind: "readDue", room: room.title } })
    room.readDue = true
    return
  }
  room.readSent = room.readUpTo
  room.readSentAt = s.now
  const ref = newRef(s)
  state.requests.set(ref, { kind: "read" })
  emit(s, { kind: "send", frame: { type: "read", room: room.title, id: room.readUpTo, ref } })
}

/** The second is up: what was read meanwhile goes out, even if the user has opened another room since. */
export const onReadDue = (s: Step, roomName: string) => {
  const room = roomOf(s, roomName)
  if (room === undefined) return
  room.readDue = false
  sendRead(s, room)
}

// ---------------------------------------------------------------------------------------------------------------------
// What the user does
// ---------------------------------------------------------------------------------------------------------------------

/** The composer's text changed: tell the room, at most once a second, unless it is a command or empty. */
export const composing = (s: Step, text: string) => {
  const { state } = s
  state.composerError = undefined
  const room = activeRoom(s)
  if (room === undefined || !state.has("typing") || !state.online) return
  if (text.trim() === "" || (text.startsWith("/") && !text.startsWith("//"))) return
  const last = state.typingSent.get(room.title)
  if (last !== undefined && s.now - last < TYPING_INTERVAL_MS) return
  state.typingSent.set(room.title, s.now)
  emit(s, { kind: "send", frame: { type: "typing", room: room.title } })
}

export const startReply = (s: Step, id: number) => {
  const room = activeRoom(s)
  if (room === undefined || !s.state.featuresKnown || liveMessage(room, id) === undefined) return
  s.state.replyTo = { conversation: room, id }
  s.state.messageMode = undefined
}

/** Opens the edit form, picker or delete question of a message (the same one again closes it), or closes it. */
export const setMessageMode = (s: Step, id: number, mode: MessageMode | undefined) => {
  const room = activeRoom(s)
  const open = s.state.messageMode
  if (
    room === undefined ||
    mode === undefined ||
    (open?.conversation === room && open.id === id && open.mode === mode)
  ) {
    if (room !== undefined) closeMode(s, room, id)
    return
  }
  const body = liveMessage(room, id)
  if (body === undefined) return
  const allowed = mode === "react" ? s.state.has("reactions") : s.state.has("edits") && body.mine
  if (allowed) s.state.messageMode = { conversation: room, id, mode }
}

const TOO_LONG = `Messages are at most ${MAX_TEXT_CODE_POINTS.toLocaleString("en")} characters.`

export const saveEdit = (s: Step, id: number, raw: string) => {
  const room = activeRoom(s)
  const body = liveMessage(room, id)
  if (room === undefined || body === undefined || !body.mine) return
  const text = raw.replace(/\s+$/, "")
  const problem = checkText(text)
  if (problem !== undefined) {
    s.state.composerError = problem === "blank" ? "A message cannot be empty: delete it instead." : TOO_LONG
    return
  }
  if (text === body.text) return closeMode(s, room, id)
  s.state.composerError = undefined
  sendRequest(s, { kind: "edit", room: room.title, id, text }, (ref) => ({
    type: "edit",
    room: room.title,
    id,
    text,
    ref
  }))
}

export const deleteMessage = (s: Step, id: number) => {
  const room = activeRoom(s)
  const body = liveMessage(room, id)
  if (room === undefined || body === undefined || !body.mine) return
  sendRequest(s, { kind: "delete", room: room.title, id }, (ref) => ({ type: "delete", room: room.title, id, ref }))
}

export const toggleOwnReaction = (s: Step, id: number, emoji: string) => {
  const room = activeRoom(s)
  const body = liveMessage(room, id)
  if (room === undefined || body === undefined || !s.state.has("reactions") || !checkEmoji(emoji)) return
  const group = body.reactions.find((g) => g.emoji === emoji)
  const on = group === undefined || !reactedBy(group, s.state.me)
  const request = { kind: "react", room: room.title, id, emoji, on } as const
  if (sendRequest(s, request, (ref) => ({ type: "react", room: room.title, id, emoji, on, ref }))) {
    closeMode(s, room, id, "react")
  }
}

/** The message a send in `conversation` answers, if the composer is replying there; taken, so only once. */
export const takeReply = (s: Step, conversation: Conversation): number | undefined => {
  const reply = s.state.replyTo
  if (reply === undefined || reply.conversation !== conversation) return undefined
  s.state.replyTo = undefined
  return reply.id
}

// ---------------------------------------------------------------------------------------------------------------------
// Answers to the requests above
// ---------------------------------------------------------------------------------------------------------------------

type FeatureRequest = Extract<Request, { kind: "edit" | "delete" | "react" | "read" }>

export const isFeatureRequest = (request: Request): request is FeatureRequest =>
  request.kind === "edit" || request.kind === "delete" || request.kind === "react" || request.kind === "read"

/**
 * The server did it. It has sent the change itself (an `edited`, `deleted` or `reaction` frame) before this `ack`,
 * or nothing when nothing changed (a reaction we already had), so the frames alone change what is shown: the
 * server's text may differ from ours (an app's moderation hook), and it keeps one reaction per user, whatever the
 * name they reacted under.
 */
export const onRequestAck = (s: Step, request: FeatureRequest) => {
  if (request.kind === "read" || request.kind === "react") return
  const room = roomOf(s, request.room)
  if (room !== undefined) closeMode(s, room, request.id, request.kind === "edit" ? "edit" : undefined)
}

/** Refused: said by the composer, where the page shows errors of what the user just did. A form stays open. */
export const onRequestError = (s: Step, request: FeatureRequest, error: typeof Protocol.ErrorFrame.Type) => {
  // A read marker the server would not move (the room was left meanwhile) is nothing the user did or can fix.
  if (request.kind === "read") return
  s.state.composerError = CHANGE_ERROR_TEXT[error.code] ?? error.message
}
