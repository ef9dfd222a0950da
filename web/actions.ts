/** What the user does, applied to the state: the composer, the name and join fields, opening and leaving. */
import type { ClientFrame } from "../src/protocol/Protocol.js"
import { isValidName, isValidRoom } from "../src/protocol/Rules.js"
import { HELP, parseComposer } from "./commands.js"
import { takeReply } from "./features.js"
import type { Conversation } from "./model.js"
import type { FieldError } from "./state.js"
import {
  activate,
  addEvent,
  emit,
  ensureDirect,
  ERROR_TEXT,
  insert,
  newRef,
  NOT_CONNECTED,
  removeConversation,
  roomOf,
  showNameError,
  type Step
} from "./step.js"

const sendText = (s: Step, conversation: Conversation, text: string) => {
  const { state } = s
  const ref = newRef(s)
  const replyTo = takeReply(s, conversation)
  const item = conversation.pendingItem(ref, text, state.me, state.online, replyTo)
  // The connection writes it at once when online and not holding the outbox for a catch-up.
  state.pendingSends.set(ref, { conversation, written: state.online && !state.outboxHeld })
  insert(s, conversation, item, true)
  const frame: ClientFrame =
    conversation.kind === "room"
      ? { type: "send", room: conversation.title, text, ...(replyTo === undefined ? {} : { reply_to: replyTo }), ref }
      : { type: "direct", to: conversation.title, text, ref }
  emit(s, { kind: "enqueue", ref, frame })
}

export const changeName = (s: Step, name: string, fromComposer: boolean) => {
  if (name === s.state.me) {
    s.state.nameError = undefined
    return
  }
  const problem: FieldError | undefined = !isValidName(name)
    ? { text: ERROR_TEXT.invalid_name!, code: "invalid_name" }
    : !s.state.online
      ? { text: NOT_CONNECTED, code: "offline" }
      : undefined
  if (problem !== undefined) return showNameError(s, problem, fromComposer)
  const ref = newRef(s)
  s.state.requests.set(ref, { kind: "nick", name, fromComposer })
  emit(s, { kind: "send", frame: { type: "nick", name, ref } })
}

/** Returns whether the input was taken (so the field that held it can be cleared). */
export const joinRoom = (s: Step, input: string): boolean => {
  const { state } = s
  const room = input.trim().replace(/^#/, "")
  if (!isValidRoom(room)) {
    state.joinError = { text: ERROR_TEXT.invalid_room!, code: "invalid_room" }
    return false
  }
  const existing = roomOf(s, room)
  if (existing !== undefined) {
    emit(s, { kind: "clearJoinInput" })
    state.joinError = undefined
    activate(s, existing)
    return true
  }
  if (!state.online) {
    state.joinError = { text: NOT_CONNECTED, code: "offline" }
    return false
  }
  const ref = newRef(s)
  state.requests.set(ref, { kind: "join", room })
  state.joinsToOpen.add(room)
  emit(s, { kind: "send", frame: { type: "join", room, ref } })
  return true
}

export const leaveActive = (s: Step) => {
  const conversation = s.state.active
  if (conversation === undefined) return
  if (conversation.kind === "dm") return removeConversation(s, conversation)
  if (!s.state.online) {
    s.state.composerError = NOT_CONNECTED
    return
  }
  const ref = newRef(s)
  s.state.requests.set(ref, { kind: "leave", room: conversation.title })
  emit(s, { kind: "send", frame: { type: "leave", room: conversation.title, ref } })
}

export const loadOlder = (s: Step) => {
  const room = s.state.active
  if (room === undefined || room.kind !== "room" || !room.more || room.loadingOlder !== undefined) return
  if (!s.state.online) {
    s.state.composerError = NOT_CONNECTED
    return
  }
  const ref = newRef(s)
  room.loadingOlder = ref
  s.state.requests.set(ref, { kind: "history", room: room.title })
  const before = Number.isFinite(room.minId) ? { before: room.minId } : {}
  emit(s, { kind: "send", frame: { type: "history", room: room.title, ...before, limit: 50, ref } })
}

export const open = (s: Step, id: string) => {
  const conversation = s.state.conversations.get(id)
  if (conversation !== undefined) activate(s, conversation)
}

/** Runs the composer's text; the composer is cleared when it was taken. */
export const compose = (s: Step, raw: string) => {
  s.state.composerError = undefined
  if (runComposer(s, raw)) emit(s, { kind: "clearComposer" })
}

const runComposer = (s: Step, raw: string): boolean => {
  const action = parseComposer(raw)
  const active = s.state.active
  switch (action.kind) {
    case "ignore":
      return false
    case "invalid":
      s.state.composerError = action.message
      return false
    case "say":
      if (active === undefined) {
        s.state.composerError = "Join a room first."
        return false
      }
      sendText(s, active, action.text)
      return true
    case "direct": {
      const conversation = ensureDirect(s, action.to)
      activate(s, conversation)
      sendText(s, conversation, action.text)
      return true
    }
    case "join":
      return joinRoom(s, action.room)
    case "leave":
      leaveActive(s)
      return true
    case "nick":
      emit(s, { kind: "showName", name: action.name, force: true })
      changeName(s, action.name, true)
      return true
    case "help":
      if (active !== undefined) addEvent(s, active, HELP)
      else s.state.composerError = HELP
      return true
  }
}

/** Retry or discard a send the server refused. */
export const dropFailed = (s: Step, ref: string, retry: boolean) => {
  const active = s.state.active
  const failed = active?.pending(ref)
  if (active === undefined || failed === undefined || failed.body.state !== "failed") return
  active.remove(failed)
  if (retry && failed.body.replyTo !== undefined) s.state.replyTo = { conversation: active, id: failed.body.replyTo }
  if (retry) sendText(s, active, failed.body.text)
}

export const clearError = (s: Step, field: "name" | "join" | "composer" | "signIn") => {
  if (field === "name") s.state.nameError = undefined
  else if (field === "join") s.state.joinError = undefined
  else if (field === "composer") s.state.composerError = undefined
  else if (s.state.signIn !== undefined) s.state.signIn = { ...s.state.signIn, error: undefined }
}
