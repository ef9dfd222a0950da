/**
 * What the server says, applied to the state: the frames, the connection coming and going, and the outbox that
 * waits after a `welcome` until the catch-up history has shown which sends already arrived.
 */
import type * as Protocol from "../src/protocol/Protocol.js"
import type { ServerFrame } from "../src/protocol/Protocol.js"
import { isFeature, nameKey } from "../src/protocol/Rules.js"
import * as Features from "./features.js"
import { type Conversation, conversationId, merge, messageFromWire, type PendingItem } from "./model.js"
import * as SignIn from "./signin.js"
import type { PendingSend } from "./state.js"
import {
  activate,
  addEvent,
  emit,
  ensureDirect,
  ensureRoom,
  ERROR_TEXT,
  insert,
  isWritten,
  newRef,
  persist,
  removeConversation,
  roomOf,
  setPendingState,
  settlePending,
  showNameError,
  type Step
} from "./step.js"

type Welcome = typeof Protocol.Welcome.Type
type ErrorFrame = typeof Protocol.ErrorFrame.Type

export const onFrame = (s: Step, frame: ServerFrame): void => {
  switch (frame.type) {
    case "welcome":
      return onWelcome(s, frame)
    case "message":
      return onMessage(s, frame, "live")
    case "history":
      return onHistory(s, frame)
    case "direct":
      return onDirect(s, frame)
    case "members":
      ensureRoom(s, frame.room).setMembers(frame.names)
      return openIfRequested(s, frame.room)
    case "joined": {
      const room = roomOf(s, frame.room)
      if (room?.addMember(frame.name) && !s.state.isMe(frame.name)) addEvent(s, room, `${frame.name} joined`)
      return
    }
    case "left": {
      const room = roomOf(s, frame.room)
      if (room !== undefined) Features.stopTyping(room, frame.name)
      if (room?.removeMember(frame.name)) addEvent(s, room, `${frame.name} left`)
      return
    }
    case "renamed":
      return onRenamed(s, frame.from, frame.to)
    case "ack":
      return onAck(s, frame.ref, frame.id)
    case "error":
      return onError(s, frame)
    case "pong":
      return
    case "typing":
      return Features.onTyping(s, frame)
    case "edited":
      return Features.onEdited(s, frame)
    case "deleted":
      return Features.onDeleted(s, frame)
    case "reaction":
      return Features.onReaction(s, frame)
    case "unread":
      return Features.onUnread(s, frame)
  }
}

const NEW_SESSION_WARNING = "Reconnected with a new session: messages sent while you were away may be missing."

const onWelcome = (s: Step, welcome: Welcome) => {
  const { state } = s
  const resumedAfterLoss = state.welcomes > 0
  state.welcomes++
  state.me = welcome.name
  // The server says who it signed in (`welcome.user`): a token, or the embedding app's own session cookie. A token
  // sent to a server that ignores tokens (`--auth off`) is a guest.
  state.identity = welcome.user !== undefined ? "signed-in" : "guest"
  state.signIn = undefined
  state.authDetail = undefined
  emit(s, { kind: "showName", name: welcome.name, force: false })
  state.resumeToken = welcome.resume
  state.featuresKnown = welcome.features !== undefined
  state.features = new Set((welcome.features ?? []).filter(isFeature))
  if (!state.featuresKnown) state.replyTo = undefined
  // Requests other than sends were tied to the old socket; their answers will not come.
  state.requests.clear()
  for (const conversation of state.conversations.values()) conversation.loadingOlder = undefined

  const rooms = new Set(welcome.rooms)
  for (const room of welcome.rooms) ensureRoom(s, room)
  for (const room of state.joinedRooms()) if (!rooms.has(room.title)) removeConversation(s, room)
  if (!welcome.resumed && resumedAfterLoss) {
    for (const room of state.joinedRooms()) {
      room.startEpoch()
      addEvent(s, room, NEW_SESSION_WARNING, true)
    }
    state.notice = NEW_SESSION_WARNING
    // Their ids are of the old numbering, which may name other messages now.
    state.replyTo = undefined
    state.messageMode = undefined
  } else if (welcome.resumed) {
    state.notice = undefined
  }

  holdOutbox(s, rooms)
  if (state.active === undefined || !state.conversations.has(state.active.id)) {
    activate(s, state.joinedRooms()[0] ?? state.directConversations()[0])
  }
  persist(s)
}

/**
 * Holds the outbox until the rooms' catch-up history has arrived (or 3 s passed), so that sends which reached the
 * server before the drop are recognised in it and not sent again.
 */
const holdOutbox = (s: Step, rooms: ReadonlySet<string>) => {
  s.state.outboxHeld = true
  s.state.awaitingHistory.clear()
  for (const room of rooms) s.state.awaitingHistory.add(room)
  emit(s, { kind: "holdOutbox" })
  if (rooms.size === 0) return releaseOutbox(s)
  emit(s, { kind: "later", ms: 3_000, event: { kind: "releaseDue", welcome: s.state.welcomes } })
}

export const onReleaseDue = (s: Step, welcome: number) => {
  if (welcome === s.state.welcomes && s.state.outboxHeld) releaseOutbox(s)
}

/** Sends what waited for the connection, once the catch-up history has settled what already arrived. */
const releaseOutbox = (s: Step) => {
  s.state.awaitingHistory.clear()
  if (!s.state.online) return
  s.state.outboxHeld = false
  for (const [ref, pending] of s.state.pendingSends) {
    pending.written = true
    const item = pending.conversation.pending(ref)
    if (item?.body.state === "queued") setPendingState(pending.conversation, item, "sending")
  }
  emit(s, { kind: "releaseOutbox" })
}

export const onConnection = (s: Step, online: boolean) => {
  s.state.online = online
  if (online) return
  for (const [ref, { conversation }] of s.state.pendingSends) {
    const item = conversation.pending(ref)
    if (item?.body.state === "sending") setPendingState(conversation, item, "queued")
  }
}

/** The server ended the session for good: the resume token is worthless. */
export const onSessionEnded = (s: Step) => {
  s.state.resumeToken = undefined
  persist(s)
}

/**
 * The pending send a room message is the server's copy of, when it arrives before the `ack` (or instead of it,
 * after a drop): written to the server at least once, same sender and text, newer than the room was at sending.
 */
const matchPending = (s: Step, room: Conversation, message: Protocol.Message): PendingItem | undefined =>
  room
    .pendings()
    .find(
      ({ body }) =>
        isWritten(s, body.ref) &&
        nameKey(body.sender) === nameKey(message.from) &&
        body.text === message.text &&
        message.id > body.afterId
    )

/** `arrival` tells news (live, or caught up after a drop: counted as unread) from history the user asked for. */
const onMessage = (s: Step, message: Protocol.Message, arrival: "live" | "catch-up" | "history") => {
  const room = roomOf(s, message.room)
  if (room === undefined) return
  if (room.hasMessage(message.id) !== undefined) {
    // A history copy is the message as it is now; a live one repeats what arrived first and carries no reactions.
    const now = arrival === "live" ? undefined : messageFromWire(message, false)
    room.updateMessage(message.id, (shown) => {
      const timed = shown.provisional ? { ...shown, at: message.at, provisional: false } : shown
      return now === undefined ? timed : merge(timed, now)
    })
    return
  }
  if (arrival === "live" && room.initialized && room.maxId >= 0 && message.id > room.maxId + 1) {
    requestGap(s, room, message.id)
  }
  const pending = matchPending(s, room, message)
  if (pending !== undefined) settlePending(s, room, pending)
  const mine = pending !== undefined || s.state.isMe(message.from)
  if (arrival === "live") Features.stopTyping(room, message.from)
  const item = room.messageItem(messageFromWire(message, mine))
  const { from, text } = message
  if (!insert(s, room, item, mine) || mine || arrival === "history" || message.deleted === true) return
  const onScreen = room === s.state.active
  // The open room of a hidden tab is not being read either: it counts (the tab's title shows it) until seen.
  if (!onScreen || !s.state.visible) room.unread++
  if (onScreen && arrival === "live") emit(s, { kind: "announce", text: `${from} in ${message.room}: ${text}` })
}

/** Asks for the messages between the newest one known and a live one that came after a gap. */
const requestGap = (s: Step, room: Conversation, upTo: number) => {
  const ref = newRef(s)
  s.state.requests.set(ref, { kind: "history", room: room.title })
  const limit = Math.min(100, upTo - room.maxId - 1)
  emit(s, { kind: "send", frame: { type: "history", room: room.title, before: upTo, limit, ref } })
}

const onHistory = (s: Step, history: Protocol.History) => {
  const room = ensureRoom(s, history.room)
  const isPage = history.ref !== undefined && room.loadingOlder === history.ref
  if (history.ref !== undefined) s.state.requests.delete(history.ref)
  const arrival = room.initialized && !isPage ? "catch-up" : "history"
  const newestBefore = room.maxId
  for (const message of history.messages) {
    onMessage(s, message, arrival === "catch-up" && message.id > newestBefore ? "catch-up" : "history")
  }
  if (!room.initialized) Features.onFirstHistory(s, room)
  const oldest = history.messages[0]
  if (isPage) {
    room.loadingOlder = undefined
    room.more = oldest !== undefined && history.more
  } else if (oldest === undefined ? !room.initialized : oldest.id <= room.minId) {
    room.more = history.more
  }
  room.initialized = true
  openIfRequested(s, history.room)
  if (history.ref === undefined && s.state.awaitingHistory.delete(history.room) && s.state.awaitingHistory.size === 0) {
    releaseOutbox(s)
  }
}

const onDirect = (s: Step, direct: Protocol.Direct) => {
  const mine = s.state.isMe(direct.from)
  const conversation = ensureDirect(s, mine ? direct.to : direct.from)
  if (mine) {
    const pending = conversation
      .pendings()
      .find(({ body }) => (body.state === "sent" || isWritten(s, body.ref)) && body.text === direct.text)
    if (pending !== undefined) settlePending(s, conversation, pending)
  }
  const { at, from, text, to } = direct
  const item = conversation.directItem({ kind: "direct", from, to, text, at, mine })
  if (!insert(s, conversation, item, mine) || mine) return
  if (conversation !== s.state.active || !s.state.visible) conversation.unread++
  emit(s, { kind: "announce", text: `Direct message from ${from}: ${text}` })
}

const onRenamed = (s: Step, from: string, to: string) => {
  const { state } = s
  const me = state.isMe(from)
  for (const conversation of state.joinedRooms()) {
    Features.stopTyping(conversation, from)
    conversation.renameReactor(from, to)
  }
  if (me) {
    state.me = to
    emit(s, { kind: "showName", name: to, force: false })
    state.nameError = undefined
  }
  for (const conversation of state.conversations.values()) {
    if (conversation.kind === "room" && conversation.renameMember(from, to)) {
      addEvent(s, conversation, me ? `You are now known as ${to}` : `${from} is now known as ${to}`)
    }
  }
  const direct = state.conversations.get(conversationId("dm", from))
  if (direct !== undefined && !state.conversations.has(conversationId("dm", to))) {
    state.conversations.delete(direct.id)
    direct.title = to
    direct.id = conversationId("dm", to)
    state.conversations.set(direct.id, direct)
    addEvent(s, direct, `${from} is now known as ${to}`)
  }
}

/** How long an acknowledged direct message waits for its echo before it is shown as sent anyway. */
const ECHO_WAIT_MS = 3_000

const onAck = (s: Step, ref: string, id: number | undefined) => {
  const pending = s.state.pendingSends.get(ref)
  if (pending !== undefined) return onSendAck(s, pending, ref, id)
  const request = s.state.requests.get(ref)
  if (request === undefined) return
  s.state.requests.delete(ref)
  if (Features.isFeatureRequest(request)) return Features.onRequestAck(s, request)
  switch (request.kind) {
    case "nick":
      emit(s, { kind: "rememberName", name: request.name })
      if (!s.state.isMe(request.name)) onRenamed(s, s.state.me, request.name)
      s.state.nameError = undefined
      return
    case "join":
      ensureRoom(s, request.room)
      openIfRequested(s, request.room)
      return persist(s)
    case "leave": {
      const room = roomOf(s, request.room)
      if (room !== undefined) removeConversation(s, room)
      return
    }
    case "history":
      return
    case "refresh":
      return SignIn.onRefreshed(s, request.token)
  }
}

const onSendAck = (s: Step, pending: PendingSend, ref: string, id: number | undefined) => {
  const { conversation } = pending
  const item = conversation.pending(ref)
  if (item === undefined) return
  if (conversation.kind === "room" && id !== undefined) {
    settlePending(s, conversation, item)
    if (conversation.hasMessage(id) === undefined) {
      // Our own copy may trail the ack: show the message now, with the server's time once the copy arrives.
      const { replyTo, text } = item.body
      const message = { type: "message", room: conversation.title, id, from: s.state.me, text, at: s.now } as const
      const body = messageFromWire({ ...message, ...(replyTo === undefined ? {} : { reply_to: replyTo }) }, true)
      insert(s, conversation, conversation.messageItem({ ...body, provisional: true }))
    }
    return
  }
  setPendingState(conversation, item, "sent")
  emit(s, { kind: "later", ms: ECHO_WAIT_MS, event: { kind: "echoDue", ref } })
}

/** No echo came for an acknowledged direct message (it should): keep the message on screen as sent. */
export const onEchoDue = (s: Step, ref: string) => {
  const conversation = s.state.pendingSends.get(ref)?.conversation
  const item = conversation?.pending(ref)
  if (conversation === undefined || item === undefined) return
  settlePending(s, conversation, item)
  const body = { kind: "direct", from: s.state.me, to: conversation.title, text: item.body.text, at: s.now } as const
  insert(s, conversation, conversation.directItem({ ...body, mine: true }))
}

const describeError = (error: ErrorFrame) => ERROR_TEXT[error.code] ?? error.message

const onError = (s: Step, error: ErrorFrame) => {
  const { state } = s
  const text = describeError(error)
  const pending = error.ref === undefined ? undefined : state.pendingSends.get(error.ref)
  if (error.ref !== undefined && pending !== undefined) {
    state.pendingSends.delete(error.ref)
    const item = pending.conversation.pending(error.ref)
    if (item !== undefined) setPendingState(pending.conversation, item, "failed", text)
    return
  }
  const request = error.ref === undefined ? undefined : state.requests.get(error.ref)
  if (error.ref !== undefined) state.requests.delete(error.ref)
  if (request !== undefined && Features.isFeatureRequest(request)) return Features.onRequestError(s, request, error)
  switch (request?.kind) {
    case "nick": {
      const shown = error.code === "forbidden" ? signedInName(state.me) : text
      return showNameError(s, { text: shown, code: error.code }, request.fromComposer)
    }
    case "refresh":
      return SignIn.onRefreshRefused(s, error)
    case "join":
      state.joinsToOpen.delete(request.room)
      state.joinError = { text, code: error.code }
      return
    case "leave":
      state.composerError = text
      return
    case "history": {
      const room = roomOf(s, request.room)
      if (room !== undefined) room.loadingOlder = undefined
      state.composerError = text
      return
    }
    case undefined:
      // Errors without a ref follow a `welcome` whose requested name or rooms could not be granted.
      if (error.code === "name_taken" || error.code === "invalid_name") {
        emit(s, { kind: "showName", name: state.me, force: true })
        state.nameError = { text: `${text} You are ${state.me}.`, code: error.code }
      } else if (error.code === "invalid_room" || error.code === "too_many_rooms" || error.code === "forbidden") {
        state.joinError = { text, code: error.code }
      } else if (error.code === "unauthorized" || error.code === "token_expired") {
        SignIn.onAuthError(s, error)
      } else {
        state.notice = text
      }
      return
  }
}

const signedInName = (me: string) => `You are signed in as ${me}: your name comes from your sign-in.`

const openIfRequested = (s: Step, room: string) => {
  if (!s.state.joinsToOpen.delete(room)) return
  emit(s, { kind: "clearJoinInput" })
  s.state.joinError = undefined
  activate(s, ensureRoom(s, room))
}
