/**
 * One `update` in progress, and what the handlers of frames.ts and actions.ts share: finding and opening
 * conversations, adding to timelines, settling pending sends.
 */
import type { ErrorCode } from "../src/protocol/Rules.js"
import { Conversation, conversationId, type Item, type PendingItem, type PendingState } from "./model.js"
import type { ChatState, Command, FieldError } from "./state.js"

export interface Step {
  readonly state: ChatState
  readonly now: number
  readonly commands: Array<Command>
}

export const emit = (s: Step, command: Command): void => {
  s.commands.push(command)
}

export const newRef = (s: Step): string => `${s.state.refPrefix}-${(++s.state.refCounter).toString(36)}`

export const persist = (s: Step) => emit(s, { kind: "persist", session: s.state.session() })

export const ensureRoom = (s: Step, room: string): Conversation => {
  const id = conversationId("room", room)
  let conversation = s.state.conversations.get(id)
  if (conversation === undefined) {
    conversation = new Conversation("room", room)
    s.state.conversations.set(id, conversation)
  }
  return conversation
}

export const ensureDirect = (s: Step, peer: string): Conversation => {
  const id = conversationId("dm", peer)
  let conversation = s.state.conversations.get(id)
  if (conversation === undefined) {
    conversation = new Conversation("dm", peer)
    conversation.initialized = true
    s.state.conversations.set(id, conversation)
  }
  return conversation
}

export const roomOf = (s: Step, room: string) => s.state.conversations.get(conversationId("room", room))

export const removeConversation = (s: Step, conversation: Conversation) => {
  s.state.conversations.delete(conversation.id)
  for (const [ref, pending] of s.state.pendingSends) {
    if (pending.conversation === conversation) {
      s.state.pendingSends.delete(ref)
      emit(s, { kind: "settle", ref })
    }
  }
  if (s.state.active === conversation) activate(s, s.state.joinedRooms()[0] ?? s.state.directConversations()[0])
  persist(s)
}

export const activate = (s: Step, conversation: Conversation | undefined) => {
  const { state } = s
  state.active = conversation
  // A reply or an open edit form belongs to the conversation it was started in.
  if (state.replyTo?.conversation !== conversation) state.replyTo = undefined
  if (state.messageMode?.conversation !== conversation) state.messageMode = undefined
  if (conversation !== undefined) {
    placeDivider(s, conversation)
    conversation.unread = 0
  }
  emit(s, { kind: "opened" })
}

/**
 * The "New messages" line goes after the last message read, when there are unread ones. With read markers on, a
 * room just joined learns where that is from its `unread` frame, which is still to come.
 */
const placeDivider = (s: Step, conversation: Conversation) => {
  if (conversation.kind !== "room") return
  const unread = conversation.unread > 0
  conversation.dividerSettled = unread || !s.state.has("receipts") || conversation.unreadKnown
  conversation.setDivider(unread ? conversation.readUpTo : undefined)
}

/** Adds an item to the timeline; false when it was already there. `stick`: the user should see it now. */
export const insert = (s: Step, conversation: Conversation, item: Item, stick = false): boolean => {
  if (conversation.insert(item) < 0) return false
  if (stick && conversation === s.state.active) emit(s, { kind: "stick" })
  return true
}

export const addEvent = (s: Step, conversation: Conversation, text: string, warning = false) =>
  insert(s, conversation, conversation.eventItem(text, s.now, warning))

export const setPendingState = (conversation: Conversation, item: PendingItem, state: PendingState, error?: string) =>
  conversation.replace(item, { ...item, body: { ...item.body, state, error } })

export const isWritten = (s: Step, ref: string) => s.state.pendingSends.get(ref)?.written === true

export const settlePending = (s: Step, conversation: Conversation, item: PendingItem) => {
  s.state.pendingSends.delete(item.body.ref)
  emit(s, { kind: "settle", ref: item.body.ref })
  conversation.remove(item)
}

export const showNameError = (s: Step, error: FieldError, fromComposer: boolean) => {
  s.state.nameError = error
  if (fromComposer) s.state.composerError = error.text
}

export const NOT_CONNECTED = "Not connected right now; try again when the status says Online."

/** What an error code means, in words for the page; other codes show the server's message. */
export const ERROR_TEXT: Partial<Record<ErrorCode, string>> = {
  name_taken: "That name is taken.",
  invalid_name: "Names are 1–32 letters, digits, _ - or . (user + digits is reserved).",
  invalid_room: "Room names are 1–64 letters, digits, _ - or .",
  too_many_rooms: "You are in too many rooms; leave one first.",
  no_such_user: "Nobody with that name is online.",
  message_too_long: "That message is too long (at most 4,000 characters).",
  rate_limited: "Slow down: too many messages at once.",
  not_in_room: "You are not in that room."
}
