/**
 * The browser client: wires the connection (connection.ts), the conversations (model.ts) and the page (index.html).
 * Server frames update the model first; the page then mirrors the active conversation item by item, so new
 * messages are inserted in place instead of redrawing the list.
 */
import { HELP, parseComposer } from "./commands.js"
import { ChatConnection, type ConnectionState } from "./connection.js"
import { append, byId, h, replaceChildren, setText } from "./dom.js"
import { makeDrawers } from "./drawers.js"
import { Conversation, conversationId, type Item, type PendingItem } from "./model.js"
import {
  type ClientFrame,
  type Direct,
  type History,
  isValidName,
  isValidRoom,
  type Message,
  nameKey,
  type ServerFrame
} from "../src/protocol/Protocol.js"
import type * as Protocol from "../src/protocol/Protocol.js"
import { readPreferredName, readSession, savePreferredName, saveSession } from "./storage.js"
import { renderItem, renderStatus } from "./view.js"

type Welcome = typeof Protocol.Welcome.Type
type ErrorFrame = typeof Protocol.ErrorFrame.Type

// ---------------------------------------------------------------------------------------------------------------------
// Page elements
// ---------------------------------------------------------------------------------------------------------------------

const ui = {
  status: byId("status"),
  reconnectNow: byId<HTMLButtonElement>("reconnect-now"),
  roomsToggle: byId<HTMLButtonElement>("rooms-toggle"),
  membersToggle: byId<HTMLButtonElement>("members-toggle"),
  sidebar: byId("sidebar"),
  membersPanel: byId("members-panel"),
  scrim: byId("scrim"),
  nameForm: byId<HTMLFormElement>("name-form"),
  nameInput: byId<HTMLInputElement>("name-input"),
  nameError: byId("name-error"),
  roomList: byId<HTMLUListElement>("room-list"),
  joinForm: byId<HTMLFormElement>("join-form"),
  joinInput: byId<HTMLInputElement>("join-input"),
  joinError: byId("join-error"),
  dmList: byId<HTMLUListElement>("dm-list"),
  dmEmpty: byId("dm-empty"),
  title: byId("conversation-title"),
  subtitle: byId("conversation-subtitle"),
  leaveButton: byId<HTMLButtonElement>("leave-button"),
  notice: byId("notice"),
  noticeText: byId("notice-text"),
  noticeDismiss: byId<HTMLButtonElement>("notice-dismiss"),
  scroller: byId("scroller"),
  loadOlder: byId<HTMLButtonElement>("load-older"),
  historyStart: byId("history-start"),
  messages: byId<HTMLOListElement>("messages"),
  emptyState: byId("empty-state"),
  composer: byId<HTMLFormElement>("composer"),
  composerInput: byId<HTMLTextAreaElement>("composer-input"),
  composerError: byId("composer-error"),
  membersHeading: byId("members-heading"),
  memberList: byId<HTMLUListElement>("member-list"),
  announcer: byId("announcer")
}

const drawers = makeDrawers(ui.scrim, [
  { toggle: ui.roomsToggle, panel: ui.sidebar, openClass: "rooms-open" },
  { toggle: ui.membersToggle, panel: ui.membersPanel, openClass: "members-open" }
])
const closeDrawers = () => drawers.closeAll()

// ---------------------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------------------

const conversations = new Map<string, Conversation>()
let active: Conversation | undefined
let myName = ""
let resumeToken: string | undefined
let everWelcomed = false
/** Rooms still owed their post-`welcome` history; the outbox waits for them (see `releaseOutbox`). */
let awaitingHistory = new Set<string>()
let releaseTimer: ReturnType<typeof setTimeout> | undefined

type PendingSend = { readonly conversation: Conversation; readonly item: PendingItem }
const pendingSends = new Map<string, PendingSend>()

type Request =
  /** `fromComposer`: typed as /nick, so errors show by the composer too (the name field may be in a closed drawer). */
  | { readonly kind: "nick"; readonly name: string; readonly fromComposer: boolean }
  | { readonly kind: "join"; readonly room: string }
  | { readonly kind: "leave"; readonly room: string }
  | { readonly kind: "history"; readonly room: string }
const requests = new Map<string, Request>()
/** Rooms the user asked to join here, to switch to once the server confirms. */
const joinsToOpen = new Set<string>()

const refPrefix = Math.random().toString(36).slice(2, 8)
let refCounter = 0
const newRef = () => `${refPrefix}-${(++refCounter).toString(36)}`

const elements = new WeakMap<Item, HTMLLIElement>()

const persist = () => saveSession({ token: resumeToken, rooms: joinedRooms().map((room) => room.title) })

// ---------------------------------------------------------------------------------------------------------------------
// Conversations
// ---------------------------------------------------------------------------------------------------------------------

const joinedRooms = () => [...conversations.values()].filter((c) => c.kind === "room")
const directConversations = () => [...conversations.values()].filter((c) => c.kind === "dm")

const ensureRoom = (room: string): Conversation => {
  const id = conversationId("room", room)
  let conversation = conversations.get(id)
  if (conversation === undefined) {
    conversation = new Conversation("room", room)
    conversations.set(id, conversation)
    renderSidebar()
  }
  return conversation
}

const ensureDirect = (peer: string): Conversation => {
  const id = conversationId("dm", peer)
  let conversation = conversations.get(id)
  if (conversation === undefined) {
    conversation = new Conversation("dm", peer)
    conversation.initialized = true
    conversations.set(id, conversation)
    renderSidebar()
  }
  return conversation
}

const removeConversation = (conversation: Conversation) => {
  conversations.delete(conversation.id)
  for (const [ref, pending] of pendingSends) {
    if (pending.conversation === conversation) {
      pendingSends.delete(ref)
      connection.settle(ref)
    }
  }
  if (active === conversation) activate(joinedRooms()[0] ?? directConversations()[0])
  renderSidebar()
  persist()
}

const activate = (conversation: Conversation | undefined) => {
  active = conversation
  if (conversation !== undefined) conversation.unread = 0
  closeDrawers()
  renderConversation()
  renderSidebar()
  scrollToBottom()
}

const isMe = (name: string) => nameKey(name) === nameKey(myName)

// ---------------------------------------------------------------------------------------------------------------------
// Timeline updates (model first, then the page if the conversation is on screen)
// ---------------------------------------------------------------------------------------------------------------------

const nearBottom = () => ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 48

const scrollToBottom = () => {
  ui.scroller.scrollTop = ui.scroller.scrollHeight
}

const insertItem = (conversation: Conversation, item: Item, options: { readonly stick?: boolean } = {}): boolean => {
  const index = conversation.insert(item)
  if (index < 0) return false
  if (conversation !== active) return true
  const wasAtBottom = nearBottom()
  const anchor = ui.scroller.scrollHeight - ui.scroller.scrollTop
  const element = renderItem(item, myName)
  elements.set(item, element)
  ui.messages.insertBefore(element, ui.messages.children[index] ?? null)
  const prepended = index === 0 && conversation.items.length > 1
  if (prepended && !wasAtBottom) ui.scroller.scrollTop = ui.scroller.scrollHeight - anchor
  else if (wasAtBottom || options.stick === true) scrollToBottom()
  renderHistoryControls()
  return true
}

const removeItem = (conversation: Conversation, item: Item) => {
  conversation.remove(item)
  elements.get(item)?.remove()
  if (conversation === active) renderHistoryControls()
}

const redrawItem = (conversation: Conversation, item: Item) => {
  if (conversation !== active) return
  const old = elements.get(item)
  if (old === undefined) return
  const element = renderItem(item, myName)
  elements.set(item, element)
  old.replaceWith(element)
}

const addEvent = (conversation: Conversation, text: string, warning = false) =>
  insertItem(conversation, conversation.eventItem(text, Date.now(), warning))

const announce = (text: string) => {
  const short = text.length > 200 ? `${text.slice(0, 200)}…` : text
  append(ui.announcer, h("p", {}, short))
  while (ui.announcer.childElementCount > 3) ui.announcer.firstElementChild?.remove()
}

// ---------------------------------------------------------------------------------------------------------------------
// Server frames
// ---------------------------------------------------------------------------------------------------------------------

const onFrame = (frame: ServerFrame) => {
  switch (frame.type) {
    case "welcome":
      return onWelcome(frame)
    case "message":
      return onMessage(frame, "live")
    case "history":
      return onHistory(frame)
    case "direct":
      return onDirect(frame)
    case "members": {
      const room = ensureRoom(frame.room)
      room.setMembers(frame.names)
      openIfRequested(frame.room)
      if (room === active) renderMembers()
      return
    }
    case "joined": {
      const room = conversations.get(conversationId("room", frame.room))
      if (room === undefined) return
      if (room.addMember(frame.name) && !isMe(frame.name)) addEvent(room, `${frame.name} joined`)
      if (room === active) renderMembers()
      return
    }
    case "left": {
      const room = conversations.get(conversationId("room", frame.room))
      if (room === undefined) return
      if (room.removeMember(frame.name)) addEvent(room, `${frame.name} left`)
      if (room === active) renderMembers()
      return
    }
    case "renamed":
      return onRenamed(frame.from, frame.to)
    case "ack":
      return onAck(frame.ref, frame.id)
    case "error":
      return onError(frame)
    case "pong":
      return
  }
}

const onWelcome = (welcome: Welcome) => {
  const resumedAfterLoss = everWelcomed
  everWelcomed = true
  myName = welcome.name
  if (document.activeElement !== ui.nameInput) ui.nameInput.value = myName
  resumeToken = welcome.resume
  // Requests other than sends were tied to the old socket; their answers will not come.
  requests.clear()
  for (const conversation of conversations.values()) conversation.loadingOlder = undefined

  const rooms = new Set(welcome.rooms)
  for (const room of welcome.rooms) ensureRoom(room)
  for (const room of joinedRooms()) if (!rooms.has(room.title)) removeConversation(room)
  if (!welcome.resumed && resumedAfterLoss) {
    const warning = "Reconnected with a new session: messages sent while you were away may be missing."
    for (const room of joinedRooms()) {
      room.startEpoch()
      addEvent(room, warning, true)
    }
    showNotice(warning)
  } else if (welcome.resumed) {
    hideNotice()
  }

  connection.holdOutbox()
  awaitingHistory = rooms
  if (releaseTimer !== undefined) clearTimeout(releaseTimer)
  releaseTimer = setTimeout(releaseOutbox, 3_000)
  if (awaitingHistory.size === 0) releaseOutbox()

  if (active === undefined || !conversations.has(active.id)) activate(joinedRooms()[0] ?? directConversations()[0])
  persist()
  renderSidebar()
  renderConversation()
}

/** Sends what waited for the connection, once the catch-up history has settled what already arrived. */
const releaseOutbox = () => {
  if (releaseTimer !== undefined) clearTimeout(releaseTimer)
  releaseTimer = undefined
  awaitingHistory.clear()
  if (!connection.isOnline) return
  for (const { conversation, item } of pendingSends.values()) {
    if (item.body.state === "queued") {
      item.body.state = "sending"
      redrawItem(conversation, item)
    }
  }
  connection.releaseOutbox()
}

/**
 * The pending send a room message is the server's copy of, when it arrives before the `ack` (or instead of it,
 * after a drop): written to the server at least once, same sender and text, newer than the room was at sending.
 */
const matchPending = (conversation: Conversation, message: Message): PendingSend | undefined => {
  const item = conversation
    .pendings()
    .find(
      ({ body }) =>
        connection.wasSent(body.ref) &&
        nameKey(body.sender) === nameKey(message.from) &&
        body.text === message.text &&
        message.id > body.afterId
    )
  return item === undefined ? undefined : { conversation, item }
}

const settlePending = (pending: PendingSend) => {
  pendingSends.delete(pending.item.body.ref)
  connection.settle(pending.item.body.ref)
  removeItem(pending.conversation, pending.item)
}

/** `arrival` tells news (live, or caught up after a drop: counted as unread) from history the user asked for. */
const onMessage = (message: Message, arrival: "live" | "catch-up" | "history") => {
  const room = conversations.get(conversationId("room", message.room))
  if (room === undefined) return
  const existing = room.hasMessage(message.id)
  if (existing !== undefined) {
    if (existing.body.kind === "message" && existing.body.provisional) {
      existing.body.at = message.at
      existing.body.provisional = false
      redrawItem(room, existing)
    }
    return
  }
  if (arrival === "live" && room.initialized && room.maxId >= 0 && message.id > room.maxId + 1) {
    requestGap(room, message.id)
  }
  const pending = matchPending(room, message)
  if (pending !== undefined) settlePending(pending)
  const mine = pending !== undefined || isMe(message.from)
  const item = room.messageItem({ kind: "message", ...message, mine, provisional: false })
  if (!insertItem(room, item, { stick: mine }) || mine || arrival === "history") return
  if (room !== active) {
    room.unread++
    renderSidebar()
  } else if (arrival === "live") {
    announce(`${message.from} in ${message.room}: ${message.text}`)
  }
}

const onHistory = (history: History) => {
  const room = conversations.get(conversationId("room", history.room)) ?? ensureRoom(history.room)
  const isPage = history.ref !== undefined && room.loadingOlder === history.ref
  if (history.ref !== undefined) requests.delete(history.ref)
  const arrival = room.initialized && !isPage ? "catch-up" : "history"
  const newestBefore = room.maxId
  for (const message of history.messages) {
    onMessage(message, arrival === "catch-up" && message.id > newestBefore ? "catch-up" : "history")
  }
  const oldest = history.messages[0]
  if (isPage) {
    room.loadingOlder = undefined
    room.more = oldest !== undefined && history.more
  } else if (oldest === undefined ? !room.initialized : oldest.id <= room.minId) {
    room.more = history.more
  }
  room.initialized = true
  openIfRequested(history.room)
  if (room === active) renderHistoryControls()
  if (history.ref === undefined && awaitingHistory.delete(history.room) && awaitingHistory.size === 0) {
    releaseOutbox()
  }
}

const onDirect = (direct: Direct) => {
  const mine = isMe(direct.from)
  const conversation = ensureDirect(mine ? direct.to : direct.from)
  if (mine) {
    const pending = conversation
      .pendings()
      .find(({ body }) => (body.state === "sent" || connection.wasSent(body.ref)) && body.text === direct.text)
    if (pending !== undefined) settlePending({ conversation, item: pending })
  }
  const item = conversation.directItem({ kind: "direct", ...direct, mine })
  if (!insertItem(conversation, item, { stick: mine }) || mine) return
  if (conversation !== active) {
    conversation.unread++
    renderSidebar()
  }
  announce(`Direct message from ${direct.from}: ${direct.text}`)
}

const onRenamed = (from: string, to: string) => {
  const me = isMe(from)
  if (me) {
    myName = to
    if (document.activeElement !== ui.nameInput) ui.nameInput.value = to
    clearFieldError(ui.nameError, ui.nameInput)
  }
  for (const conversation of conversations.values()) {
    if (conversation.kind === "room" && conversation.renameMember(from, to)) {
      addEvent(conversation, me ? `You are now known as ${to}` : `${from} is now known as ${to}`)
    }
  }
  const direct = conversations.get(conversationId("dm", from))
  if (direct !== undefined && !conversations.has(conversationId("dm", to))) {
    conversations.delete(direct.id)
    direct.title = to
    direct.id = conversationId("dm", to)
    conversations.set(direct.id, direct)
    addEvent(direct, `${from} is now known as ${to}`)
  }
  renderSidebar()
  renderConversationHeader()
  renderMembers()
}

const onAck = (ref: string, id: number | undefined) => {
  const pending = pendingSends.get(ref)
  if (pending !== undefined) {
    const { conversation, item } = pending
    if (conversation.kind === "room" && id !== undefined) {
      settlePending(pending)
      if (conversation.hasMessage(id) === undefined) {
        // Our own copy may trail the ack: show the message now, with the server's time once the copy arrives.
        const message = { kind: "message" as const, id, from: myName, text: item.body.text, at: Date.now() }
        insertItem(conversation, conversation.messageItem({ ...message, mine: true, provisional: true }))
      }
    } else {
      item.body.state = "sent"
      redrawItem(conversation, item)
      setTimeout(() => {
        // No echo came (it should): keep the message on screen as sent.
        if (!conversation.items.includes(item)) return
        settlePending(pending)
        const at = Date.now()
        insertItem(
          conversation,
          conversation.directItem({
            kind: "direct",
            from: myName,
            to: conversation.title,
            text: item.body.text,
            at,
            mine: true
          })
        )
      }, 3_000)
    }
    return
  }
  const request = requests.get(ref)
  if (request === undefined) return
  requests.delete(ref)
  switch (request.kind) {
    case "nick":
      savePreferredName(request.name)
      if (!isMe(request.name)) onRenamed(myName, request.name)
      clearFieldError(ui.nameError, ui.nameInput)
      return
    case "join":
      ensureRoom(request.room)
      openIfRequested(request.room)
      persist()
      return
    case "leave": {
      const room = conversations.get(conversationId("room", request.room))
      if (room !== undefined) removeConversation(room)
      return
    }
    case "history":
      return
  }
}

const ERROR_TEXT: Partial<Record<ErrorFrame["code"], string>> = {
  name_taken: "That name is taken.",
  invalid_name: "Names are 1–32 letters, digits, _ - or . (user + digits is reserved).",
  invalid_room: "Room names are 1–64 letters, digits, _ - or .",
  too_many_rooms: "You are in too many rooms; leave one first.",
  no_such_user: "Nobody with that name is online.",
  message_too_long: "That message is too long (at most 4,000 characters).",
  rate_limited: "Slow down: too many messages at once.",
  not_in_room: "You are not in that room."
}
const describeError = (error: ErrorFrame) => ERROR_TEXT[error.code] ?? error.message

const onError = (error: ErrorFrame) => {
  const text = describeError(error)
  const pending = error.ref === undefined ? undefined : pendingSends.get(error.ref)
  if (pending !== undefined) {
    pendingSends.delete(pending.item.body.ref)
    pending.item.body.state = "failed"
    pending.item.body.error = text
    redrawItem(pending.conversation, pending.item)
    return
  }
  const request = error.ref === undefined ? undefined : requests.get(error.ref)
  if (error.ref !== undefined) requests.delete(error.ref)
  switch (request?.kind) {
    case "nick":
      return nameError(text, error.code, request.fromComposer)
    case "join":
      joinsToOpen.delete(request.room)
      return showFieldError(ui.joinError, ui.joinInput, text, error.code)
    case "leave":
      return showComposerError(text)
    case "history": {
      const room = conversations.get(conversationId("room", request.room))
      if (room !== undefined) room.loadingOlder = undefined
      renderHistoryControls()
      return showComposerError(text)
    }
    case undefined:
      // Errors without a ref follow a `welcome` whose requested name or rooms could not be granted.
      if (error.code === "name_taken" || error.code === "invalid_name") {
        ui.nameInput.value = myName
        return showFieldError(ui.nameError, ui.nameInput, `${text} You are ${myName}.`, error.code)
      }
      if (error.code === "invalid_room" || error.code === "too_many_rooms") {
        return showFieldError(ui.joinError, ui.joinInput, text, error.code)
      }
      return showNotice(text)
  }
}

const openIfRequested = (room: string) => {
  if (!joinsToOpen.delete(room)) return
  ui.joinInput.value = ""
  clearFieldError(ui.joinError, ui.joinInput)
  activate(ensureRoom(room))
}

const requestGap = (room: Conversation, upTo: number) => {
  const ref = newRef()
  requests.set(ref, { kind: "history", room: room.title })
  const limit = Math.min(100, upTo - room.maxId - 1)
  connection.send({ type: "history", room: room.title, before: upTo, limit, ref })
}

// ---------------------------------------------------------------------------------------------------------------------
// User actions
// ---------------------------------------------------------------------------------------------------------------------

const NOT_CONNECTED = "Not connected right now; try again when the status says Online."

const sendText = (conversation: Conversation, text: string) => {
  const ref = newRef()
  const item = conversation.pendingItem(ref, text, myName, connection.isOnline)
  pendingSends.set(ref, { conversation, item })
  insertItem(conversation, item, { stick: true })
  const frame: ClientFrame =
    conversation.kind === "room"
      ? { type: "send", room: conversation.title, text, ref }
      : { type: "direct", to: conversation.title, text, ref }
  connection.enqueue(ref, frame)
}

const changeName = (name: string, fromComposer = false) => {
  if (name === myName) return clearFieldError(ui.nameError, ui.nameInput)
  const problem = !isValidName(name) ? "invalid_name" : !connection.isOnline ? "offline" : undefined
  if (problem !== undefined) {
    return nameError(problem === "offline" ? NOT_CONNECTED : ERROR_TEXT.invalid_name!, problem, fromComposer)
  }
  const ref = newRef()
  requests.set(ref, { kind: "nick", name, fromComposer })
  connection.send({ type: "nick", name, ref })
}

const joinRoom = (input: string): boolean => {
  const room = input.trim().replace(/^#/, "")
  if (!isValidRoom(room)) {
    showFieldError(ui.joinError, ui.joinInput, ERROR_TEXT.invalid_room!, "invalid_room")
    return false
  }
  const existing = conversations.get(conversationId("room", room))
  if (existing !== undefined) {
    ui.joinInput.value = ""
    clearFieldError(ui.joinError, ui.joinInput)
    activate(existing)
    return true
  }
  if (!connection.isOnline) {
    showFieldError(ui.joinError, ui.joinInput, NOT_CONNECTED, "offline")
    return false
  }
  const ref = newRef()
  requests.set(ref, { kind: "join", room })
  joinsToOpen.add(room)
  connection.send({ type: "join", room, ref })
  return true
}

const leaveActive = () => {
  const conversation = active
  if (conversation === undefined) return
  if (conversation.kind === "dm") return removeConversation(conversation)
  if (!connection.isOnline) return showComposerError(NOT_CONNECTED)
  const ref = newRef()
  requests.set(ref, { kind: "leave", room: conversation.title })
  connection.send({ type: "leave", room: conversation.title, ref })
}

const loadOlder = () => {
  const room = active
  if (room === undefined || room.kind !== "room" || !room.more || room.loadingOlder !== undefined) return
  if (!connection.isOnline) return showComposerError(NOT_CONNECTED)
  const ref = newRef()
  room.loadingOlder = ref
  requests.set(ref, { kind: "history", room: room.title })
  const before = Number.isFinite(room.minId) ? { before: room.minId } : {}
  connection.send({ type: "history", room: room.title, ...before, limit: 50, ref })
  renderHistoryControls()
}

/** Runs the composer's text; returns whether the input should be cleared. */
const submitComposer = (raw: string): boolean => {
  const action = parseComposer(raw)
  switch (action.kind) {
    case "ignore":
      return false
    case "invalid":
      showComposerError(action.message)
      return false
    case "say":
      if (active === undefined) {
        showComposerError("Join a room first.")
        return false
      }
      sendText(active, action.text)
      return true
    case "direct": {
      const conversation = ensureDirect(action.to)
      activate(conversation)
      sendText(conversation, action.text)
      return true
    }
    case "join":
      return joinRoom(action.room)
    case "leave":
      leaveActive()
      return true
    case "nick":
      ui.nameInput.value = action.name
      changeName(action.name, true)
      return true
    case "help":
      if (active !== undefined) addEvent(active, HELP)
      else showComposerError(HELP)
      return true
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------------------

const showFieldError = (element: HTMLElement, input: HTMLInputElement, text: string, code: string) => {
  setText(element, text)
  element.dataset.code = code
  element.hidden = false
  input.setAttribute("aria-invalid", "true")
}

const nameError = (text: string, code: string, fromComposer: boolean) => {
  showFieldError(ui.nameError, ui.nameInput, text, code)
  if (fromComposer) showComposerError(text)
}

const clearFieldError = (element: HTMLElement, input: HTMLInputElement) => {
  element.hidden = true
  setText(element, "")
  delete element.dataset.code
  input.removeAttribute("aria-invalid")
}

const showComposerError = (text: string) => {
  setText(ui.composerError, text)
  ui.composerError.hidden = false
}

const showNotice = (text: string) => {
  setText(ui.noticeText, text)
  ui.notice.hidden = false
}

const hideNotice = () => {
  ui.notice.hidden = true
}

const conversationButton = (conversation: Conversation, label: string) =>
  h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: "conversation-button",
        "data-conversation": conversation.id,
        "aria-current": conversation === active ? "true" : undefined
      },
      h("span", { class: "conversation-name" }, label),
      conversation.unread > 0 &&
        h("span", { class: "badge" }, String(conversation.unread), h("span", { class: "visually-hidden" }, " unread"))
    )
  )

const renderSidebar = () => {
  const focused =
    document.activeElement instanceof HTMLElement ? document.activeElement.dataset.conversation : undefined
  replaceChildren(ui.roomList, ...joinedRooms().map((room) => conversationButton(room, `# ${room.title}`)))
  const directs = directConversations()
  replaceChildren(ui.dmList, ...directs.map((dm) => conversationButton(dm, `@ ${dm.title}`)))
  ui.dmEmpty.hidden = directs.length > 0
  if (focused !== undefined) {
    for (const button of document.querySelectorAll<HTMLButtonElement>("button[data-conversation]")) {
      if (button.dataset.conversation === focused) button.focus()
    }
  }
  const unread = [...conversations.values()].reduce((sum, c) => sum + c.unread, 0)
  document.title = unread > 0 ? `(${unread}) effect-chat` : "effect-chat"
  ui.roomsToggle.classList.toggle("has-unread", unread > 0)
}

const renderConversationHeader = () => {
  const conversation = active
  if (conversation === undefined) {
    setText(ui.title, "No room")
    setText(ui.subtitle, "")
    ui.leaveButton.hidden = true
    ui.membersToggle.hidden = true
    ui.composerInput.placeholder = "Join a room to chat"
    return
  }
  const room = conversation.kind === "room"
  setText(ui.title, room ? `# ${conversation.title}` : `@ ${conversation.title}`)
  setText(ui.subtitle, room ? `${conversation.members.length} here` : "Direct messages")
  ui.leaveButton.hidden = false
  setText(ui.leaveButton, room ? "Leave room" : "Close")
  const title = conversation.title
  ui.leaveButton.setAttribute("aria-label", room ? `Leave room ${title}` : `Close conversation with ${title}`)
  ui.membersToggle.hidden = !room
  ui.composerInput.placeholder = room ? `Message #${title}` : `Direct message to ${title}`
  ui.scroller.setAttribute("aria-label", room ? `Messages in ${title}` : `Direct messages with ${title}`)
}

const renderConversation = () => {
  renderConversationHeader()
  const conversation = active
  const items = conversation?.items ?? []
  const rendered = items.map((item) => {
    const element = renderItem(item, myName)
    elements.set(item, element)
    return element
  })
  replaceChildren(ui.messages, ...rendered)
  renderHistoryControls()
  renderMembers()
}

const renderHistoryControls = () => {
  const conversation = active
  const room = conversation?.kind === "room" ? conversation : undefined
  ui.loadOlder.hidden = room === undefined || !room.more
  ui.loadOlder.disabled = room?.loadingOlder !== undefined
  setText(ui.loadOlder, room?.loadingOlder !== undefined ? "Loading older messages…" : "Load older messages")
  ui.historyStart.hidden = room === undefined || !room.initialized || room.more || room.maxId < 0
  const empty = conversation === undefined || conversation.items.length === 0
  ui.emptyState.hidden = !empty
  if (empty) {
    setText(
      ui.emptyState,
      conversation === undefined
        ? "You are not in any room. Join one from the list of rooms."
        : !conversation.initialized
          ? "Loading messages…"
          : conversation.kind === "room"
            ? "No messages yet. Say hello!"
            : `Your direct messages with ${conversation.title} appear here.`
    )
  }
}

const renderMembers = () => {
  const room = active?.kind === "room" ? active : undefined
  const members = room?.members ?? (active === undefined ? [] : isMe(active.title) ? [myName] : [myName, active.title])
  setText(ui.membersHeading, room === undefined ? "In this conversation" : "In this room")
  replaceChildren(
    ui.memberList,
    ...members.map((name) =>
      h(
        "li",
        {},
        isMe(name)
          ? h("span", { class: "member me" }, name, h("span", { class: "you-tag" }, "you"))
          : room === undefined
            ? h("span", { class: "member" }, name)
            : h(
                "button",
                {
                  type: "button",
                  class: "member",
                  "data-member": name,
                  "aria-label": `Send a direct message to ${name}`
                },
                name
              )
      )
    )
  )
  setText(ui.membersToggle, `Members (${members.length})`)
  if (room !== undefined) setText(ui.subtitle, `${members.length} here`)
}

const onStateChange = (state: ConnectionState) => {
  renderStatus(ui.status, ui.reconnectNow, state)
  document.body.dataset.connection = state.kind
  if (state.kind === "online") return
  for (const { conversation, item } of pendingSends.values()) {
    if (item.body.state === "sending") {
      item.body.state = "queued"
      redrawItem(conversation, item)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------------------------------

const stored = readSession()
resumeToken = stored.token

const connection = new ChatConnection(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/chat`, {
  hello: () => {
    const name = isValidName(myName) ? myName : readPreferredName()
    const known = joinedRooms().map((room) => room.title)
    const rooms = everWelcomed ? known : stored.rooms
    const since: Record<string, number> = {}
    for (const room of joinedRooms()) if (room.maxId >= 0) since[room.title] = room.maxId
    return {
      type: "hello",
      ...(name !== undefined ? { name } : {}),
      ...(rooms !== undefined ? { rooms } : {}),
      ...(resumeToken !== undefined ? { resume: { token: resumeToken, since } } : {})
    }
  },
  onFrame,
  onState: onStateChange,
  onSessionEnded: () => {
    resumeToken = undefined
    persist()
  }
})

ui.reconnectNow.addEventListener("click", () => connection.connectNow())
ui.noticeDismiss.addEventListener("click", hideNotice)

ui.nameForm.addEventListener("submit", (event) => {
  event.preventDefault()
  changeName(ui.nameInput.value.trim())
})
ui.nameInput.addEventListener("input", () => clearFieldError(ui.nameError, ui.nameInput))

ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault()
  joinRoom(ui.joinInput.value)
})
ui.joinInput.addEventListener("input", () => clearFieldError(ui.joinError, ui.joinInput))

const onConversationClick = (event: MouseEvent) => {
  const id = (event.target as Element).closest<HTMLButtonElement>("button[data-conversation]")?.dataset.conversation
  const conversation = id === undefined ? undefined : conversations.get(id)
  if (conversation !== undefined) activate(conversation)
}
ui.roomList.addEventListener("click", onConversationClick)
ui.dmList.addEventListener("click", onConversationClick)

ui.memberList.addEventListener("click", (event) => {
  const name = (event.target as Element).closest<HTMLButtonElement>("button[data-member]")?.dataset.member
  if (name === undefined) return
  closeDrawers()
  ui.composerInput.value = `/msg ${name} `
  ui.composerInput.focus()
  ui.composerInput.setSelectionRange(ui.composerInput.value.length, ui.composerInput.value.length)
})

ui.leaveButton.addEventListener("click", leaveActive)
ui.loadOlder.addEventListener("click", loadOlder)
// Only a scroll the reader makes towards the top asks for more; redraws and new messages move it down or jump it.
let lastScrollTop = 0
ui.scroller.addEventListener(
  "scroll",
  () => {
    const top = ui.scroller.scrollTop
    const movedUp = top < lastScrollTop
    lastScrollTop = top
    if (movedUp && top < 64) loadOlder()
  },
  { passive: true }
)

ui.messages.addEventListener("click", (event) => {
  const button = (event.target as Element).closest<HTMLButtonElement>("button[data-action]")
  const ref = button?.dataset.ref
  if (button === null || button === undefined || ref === undefined || active === undefined) return
  const failed = active.pendings().find((item) => item.body.ref === ref)
  if (failed === undefined) return
  removeItem(active, failed)
  if (button.dataset.action === "retry") sendText(active, failed.body.text)
  ui.composerInput.focus()
})

const autosize = () => {
  ui.composerInput.rows = Math.min(6, Math.max(1, ui.composerInput.value.split("\n").length))
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault()
  ui.composerError.hidden = true
  if (submitComposer(ui.composerInput.value)) {
    ui.composerInput.value = ""
    autosize()
  }
  ui.composerInput.focus()
})
ui.composerInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    ui.composer.requestSubmit()
  }
})
ui.composerInput.addEventListener("input", () => {
  ui.composerError.hidden = true
  autosize()
})

renderSidebar()
renderConversation()
connection.start()
