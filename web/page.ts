/**
 * The page: its elements (index.html) and how the state shows in them. `render` runs after every update. A section
 * is only rebuilt when what it shows changed (a list rebuilt under the pointer would swallow a click), and the
 * timeline is reconciled item by item, so a new message is inserted in place and the reader's scroll position holds.
 */
import { byId, h, replaceChildren, setText } from "./dom.js"
import { badgeText, type Conversation, type Item, type Quote, typingLine } from "./model.js"
import { signInPrompt } from "./signin.js"
import type { ChatState, FieldError } from "./state.js"
import { type ItemContext, renderItem } from "./view.js"

export const pageElements = () => ({
  status: byId("status"),
  reconnectNow: byId<HTMLButtonElement>("reconnect-now"),
  identity: byId("identity"),
  roomsToggle: byId<HTMLButtonElement>("rooms-toggle"),
  membersToggle: byId<HTMLButtonElement>("members-toggle"),
  sidebar: byId("sidebar"),
  membersPanel: byId("members-panel"),
  scrim: byId("scrim"),
  nameForm: byId<HTMLFormElement>("name-form"),
  nameInput: byId<HTMLInputElement>("name-input"),
  nameSubmit: byId<HTMLButtonElement>("name-submit"),
  nameHint: byId("name-hint"),
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
  signIn: byId("sign-in"),
  signInPrompt: byId("sign-in-prompt"),
  signInForm: byId<HTMLFormElement>("sign-in-form"),
  signInToken: byId<HTMLInputElement>("sign-in-token"),
  signInState: byId("sign-in-state"),
  signInError: byId("sign-in-error"),
  signInGuest: byId<HTMLButtonElement>("sign-in-guest"),
  scroller: byId("scroller"),
  loadOlder: byId<HTMLButtonElement>("load-older"),
  historyStart: byId("history-start"),
  messages: byId<HTMLOListElement>("messages"),
  emptyState: byId("empty-state"),
  typing: byId("typing"),
  replyBar: byId("reply-bar"),
  replyText: byId("reply-text"),
  replyCancel: byId<HTMLButtonElement>("reply-cancel"),
  composer: byId<HTMLFormElement>("composer"),
  composerInput: byId<HTMLTextAreaElement>("composer-input"),
  composerError: byId("composer-error"),
  membersHeading: byId("members-heading"),
  memberList: byId<HTMLUListElement>("member-list"),
  announcer: byId("announcer")
})

export type PageElements = ReturnType<typeof pageElements>

/** What the last update asked of the timeline beyond showing the state: see `opened` and `stick` in state.ts. */
export interface TimelineHints {
  readonly opened: boolean
  readonly stick: boolean
}

export interface Page {
  readonly render: (state: ChatState, hints: TimelineHints) => void
  /** The timeline is scrolled to its end (or too short to scroll): its newest message is on screen. */
  readonly atBottom: () => boolean
  /** Moves the focus between messages from `from` (the scroller, or in a message); false when it could not. */
  readonly moveFocus: (from: Element, key: "ArrowUp" | "ArrowDown" | "Home" | "End") => boolean
}

export const makePage = (ui: PageElements): Page => {
  const timeline = makeTimeline(ui)
  const sidebar = memo(sidebarKey, (state: ChatState) => renderSidebar(ui, state))
  const header = memo(headerKey, (state: ChatState) => renderHeader(ui, state.active))
  const members = memo(membersKey, (state: ChatState) => renderMembers(ui, state))
  const identity = memo(identityKey, (state: ChatState) => renderIdentity(ui, state))
  const signIn = memo(signInKey, (state: ChatState) => renderSignIn(ui, state))
  const typing = memo(typingKey, (state: ChatState) => renderTyping(ui, state))
  const reply = memo(replyKey, (state: ChatState) => renderReply(ui, state))
  return {
    atBottom: timeline.atBottom,
    moveFocus: timeline.moveFocus,
    render: (state, hints) => {
      timeline.render(state, hints)
      typing(state)
      reply(state)
      sidebar(state)
      header(state)
      members(state)
      identity(state)
      signIn(state)
      renderHistoryControls(ui, state.active)
      renderFieldError(ui.nameError, ui.nameInput, state.nameError)
      renderFieldError(ui.joinError, ui.joinInput, state.joinError)
      renderComposerError(ui, state.composerError)
      renderNotice(ui, state.notice)
    }
  }
}

/** Runs `render` only when `key` of its input changed since the last run. */
const memo = <A>(key: (a: A) => string, render: (a: A) => void) => {
  let last: string | undefined
  return (a: A) => {
    const next = key(a)
    if (next === last) return
    last = next
    render(a)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Timeline
// ---------------------------------------------------------------------------------------------------------------------

/** What the timeline shows besides the items, the same for all of them: a change redraws the whole timeline. */
const timelineKey = (state: ChatState) =>
  JSON.stringify([state.me, state.featuresKnown, state.has("edits"), state.has("reactions")])

/** What an item looks like beyond the item itself: its open edit form, picker or question. */
const itemMode = (state: ChatState, item: Item) => {
  const open = state.messageMode
  return open !== undefined &&
    open.conversation === state.active &&
    item.body.kind === "message" &&
    item.body.id === open.id
    ? open.mode
    : undefined
}

/** The focused control of a message, to put the focus back on its replacement when the message is redrawn. */
interface FocusedControl {
  readonly id: string
  readonly action: string | undefined
  readonly emoji: string | undefined
  readonly returnTo: string | undefined
}

/**
 * The controls of a message (quote, chips, actions, edit form) are out of the Tab order except for the current
 * message's, so that a long timeline is not dozens of tab stops on the way to the composer: the arrow keys move
 * between messages (see `moveFocus`), and Tab goes into the one reached.
 */
const CONTROLS = "button, textarea, input"

const setTabbable = (li: Element, on: boolean) => {
  for (const control of li.querySelectorAll<HTMLElement>(CONTROLS)) control.tabIndex = on ? 0 : -1
}

const makeTimeline = (ui: PageElements) => {
  let shown: Conversation | undefined
  let shownKey = ""
  const elements = new Map<Item, { readonly li: HTMLLIElement; readonly mode: string | undefined }>()
  /** The `data-id` of the message whose controls are in the Tab order. */
  let current: string | undefined

  const messageElement = (id: string | undefined) =>
    id === undefined ? null : ui.messages.querySelector<HTMLLIElement>(`li[data-id="${id}"]`)
  const makeCurrent = (li: HTMLLIElement) => {
    if (li.dataset.id === current) return
    const previous = messageElement(current)
    if (previous !== null) setTabbable(previous, false)
    current = li.dataset.id
    setTabbable(li, true)
  }
  ui.messages.addEventListener("focusin", (event) => {
    const li = (event.target as Element).closest<HTMLLIElement>("li[data-id]")
    if (li !== null) makeCurrent(li)
  })

  const nearBottom = () => ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 48
  const scrollToBottom = () => {
    ui.scroller.scrollTop = ui.scroller.scrollHeight
  }
  const element = (item: Item, state: ChatState) => {
    const mode = itemMode(state, item)
    const context: ItemContext = {
      you: state.me,
      reply: state.featuresKnown,
      edits: state.has("edits"),
      reactions: state.has("reactions"),
      mode
    }
    const li = renderItem(item, context)
    if (li.dataset.id !== undefined) setTabbable(li, li.dataset.id === current)
    elements.set(item, { li, mode })
    return li
  }

  /** Arrow keys: from the scroller to the newest message, then to the previous or next one, or the first or last. */
  const moveFocus = (from: Element, key: "ArrowUp" | "ArrowDown" | "Home" | "End"): boolean => {
    const messages = [...ui.messages.querySelectorAll<HTMLLIElement>("li[data-id]")]
    const at = from === ui.scroller ? -1 : messages.indexOf(from.closest<HTMLLIElement>("li[data-id]")!)
    if (messages.length === 0 || (from !== ui.scroller && at < 0)) return false
    const target =
      at < 0
        ? messages.length - 1
        : key === "Home"
          ? 0
          : key === "End"
            ? messages.length - 1
            : Math.min(messages.length - 1, Math.max(0, at + (key === "ArrowUp" ? -1 : 1)))
    const li = messages[target]!
    li.focus({ preventScroll: true })
    li.scrollIntoView({ block: "nearest" })
    return true
  }

  const showAll = (state: ChatState) => {
    if (state.active !== shown) current = undefined
    shown = state.active
    shownKey = timelineKey(state)
    elements.clear()
    replaceChildren(ui.messages, ...(shown?.items ?? []).map((item) => element(item, state)))
    scrollToBottom()
  }

  /** Every item again in the same conversation (we were renamed: our chips change): the reader stays where they were. */
  const redraw = (state: ChatState) => {
    const wasAtBottom = nearBottom()
    const top = ui.scroller.scrollTop
    const focus = focusedControl()
    showAll(state)
    if (!wasAtBottom) ui.scroller.scrollTop = top
    if (focus !== undefined) restoreFocus(focus)
  }

  const focusedControl = (): FocusedControl | undefined => {
    const active = document.activeElement
    if (!(active instanceof HTMLElement) || !ui.messages.contains(active)) return undefined
    const id = active.closest<HTMLElement>("li[data-id]")?.dataset.id
    if (id === undefined) return undefined
    return { id, action: active.dataset.action, emoji: active.dataset.emoji, returnTo: active.dataset.return }
  }

  /** The same control in the message's new element, else the one that opened the closed mode, else the message. */
  const restoreFocus = (control: FocusedControl) => {
    if (document.activeElement instanceof HTMLElement && ui.messages.contains(document.activeElement)) return
    const li = ui.messages.querySelector<HTMLElement>(`li[data-id="${control.id}"]`)
    if (li === null) return
    const buttons = [...li.querySelectorAll<HTMLElement>("[data-action]")]
    const same = buttons.find((b) => b.dataset.action === control.action && b.dataset.emoji === control.emoji)
    const opener = buttons.find((b) => control.returnTo !== undefined && b.dataset.action === control.returnTo)
    const editing = control.returnTo === "edit" ? li.querySelector<HTMLElement>(".edit-input") : null
    ;(same ?? editing ?? opener ?? li).focus({ preventScroll: true })
  }

  /** An edit form redrawn (a reaction arrived meanwhile) keeps what was typed in it. */
  const takeDrafts = (li: HTMLLIElement, drafts: Map<string, string>) => {
    const input = li.querySelector<HTMLTextAreaElement>(".edit-input")
    if (input !== null && li.dataset.id !== undefined) drafts.set(li.dataset.id, input.value)
  }

  /** Removes the elements of items that left or look different now, inserts the new ones in place. */
  const reconcile = (state: ChatState, stick: boolean) => {
    const items = state.active?.items ?? []
    const focus = focusedControl()
    const drafts = new Map<string, string>()
    const present = new Set(items)
    for (const [item, { li, mode }] of elements) {
      if (present.has(item) && mode === itemMode(state, item)) continue
      takeDrafts(li, drafts)
      li.remove()
      elements.delete(item)
    }
    if (elements.size === items.length) return
    const wasAtBottom = nearBottom()
    const anchor = topmostVisible()
    const anchorTop = anchor?.getBoundingClientRect().top ?? 0
    let next: HTMLLIElement | null = null
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!
      const existing = elements.get(item)?.li
      next = existing ?? ui.messages.insertBefore(element(item, state), next)
    }
    for (const [id, draft] of drafts) {
      const input = ui.messages.querySelector<HTMLTextAreaElement>(`li[data-id="${id}"] .edit-input`)
      if (input !== null) input.value = draft
    }
    if (focus !== undefined) restoreFocus(focus)
    if (wasAtBottom || stick) scrollToBottom()
    // What the reader was looking at stays put, whatever was inserted or redrawn above it (an older page, a gap).
    else if (anchor !== undefined) ui.scroller.scrollTop += anchor.getBoundingClientRect().top - anchorTop
  }

  /**
   * The first element of the timeline (in page order) whose bottom is below the top of the view; not the New
   * messages line, which stays above older pages when everything is unread.
   */
  const topmostVisible = (): Element | undefined => {
    const top = ui.scroller.getBoundingClientRect().top
    for (const li of ui.messages.children) {
      if (!li.classList.contains("divider") && li.getBoundingClientRect().bottom > top) return li
    }
    return undefined
  }

  return {
    atBottom: nearBottom,
    moveFocus,
    render: (state: ChatState, hints: TimelineHints) => {
      if (hints.opened || state.active !== shown) showAll(state)
      else if (timelineKey(state) !== shownKey) redraw(state)
      else reconcile(state, hints.stick)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------------------------------

const sidebarKey = (state: ChatState): string =>
  JSON.stringify([state.active?.id, [...state.conversations.values()].map((c) => [c.id, c.title, c.unread])])

const conversationButton = (conversation: Conversation, label: string, active: boolean) =>
  h(
    "li",
    {},
    h(
      "button",
      {
        type: "button",
        class: "conversation-button",
        "data-conversation": conversation.id,
        "aria-current": active ? "true" : undefined
      },
      h("span", { class: "conversation-name" }, label),
      conversation.unread > 0 &&
        h(
          "span",
          { class: "badge" },
          badgeText(conversation.unread),
          h("span", { class: "visually-hidden" }, " unread")
        )
    )
  )

const renderSidebar = (ui: PageElements, state: ChatState) => {
  const focused =
    document.activeElement instanceof HTMLElement ? document.activeElement.dataset.conversation : undefined
  const button = (c: Conversation, label: string) => conversationButton(c, label, c === state.active)
  replaceChildren(ui.roomList, ...state.joinedRooms().map((room) => button(room, `# ${room.title}`)))
  const directs = state.directConversations()
  replaceChildren(ui.dmList, ...directs.map((dm) => button(dm, `@ ${dm.title}`)))
  ui.dmEmpty.hidden = directs.length > 0
  if (focused !== undefined) {
    for (const button of document.querySelectorAll<HTMLButtonElement>("button[data-conversation]")) {
      if (button.dataset.conversation === focused) button.focus()
    }
  }
  const unread = [...state.conversations.values()].reduce((sum, c) => sum + c.unread, 0)
  document.title = unread > 0 ? `(${badgeText(unread)}) effect-chat` : "effect-chat"
  ui.roomsToggle.classList.toggle("has-unread", unread > 0)
}

const headerKey = (state: ChatState) => JSON.stringify([state.active?.kind, state.active?.title])

const renderHeader = (ui: PageElements, conversation: Conversation | undefined) => {
  if (conversation === undefined) {
    setText(ui.title, "No room")
    setText(ui.subtitle, "")
    ui.leaveButton.hidden = true
    ui.membersToggle.hidden = true
    ui.composerInput.placeholder = "Join a room to chat"
    return
  }
  const room = conversation.kind === "room"
  const title = conversation.title
  setText(ui.title, room ? `# ${title}` : `@ ${title}`)
  if (!room) setText(ui.subtitle, "Direct messages")
  ui.leaveButton.hidden = false
  setText(ui.leaveButton, room ? "Leave room" : "Close")
  ui.leaveButton.setAttribute("aria-label", room ? `Leave room ${title}` : `Close conversation with ${title}`)
  ui.membersToggle.hidden = !room
  ui.composerInput.placeholder = room ? `Message #${title}` : `Direct message to ${title}`
  ui.scroller.setAttribute("aria-label", room ? `Messages in ${title}` : `Direct messages with ${title}`)
}

/** The room's members, or for a direct conversation its two people. */
const shownMembers = (state: ChatState): ReadonlyArray<string> => {
  const active = state.active
  if (active === undefined) return []
  if (active.kind === "room") return active.members
  return state.isMe(active.title) ? [state.me] : [state.me, active.title]
}

const membersKey = (state: ChatState) => JSON.stringify([state.active?.kind, state.me, shownMembers(state)])

const renderMembers = (ui: PageElements, state: ChatState) => {
  const room = state.active?.kind === "room"
  const members = shownMembers(state)
  setText(ui.membersHeading, room ? "In this room" : "In this conversation")
  const member = (name: string) =>
    state.isMe(name)
      ? h("span", { class: "member me" }, name, h("span", { class: "you-tag" }, "you"))
      : !room
        ? h("span", { class: "member" }, name)
        : h(
            "button",
            { type: "button", class: "member", "data-member": name, "aria-label": `Send a direct message to ${name}` },
            name
          )
  replaceChildren(ui.memberList, ...members.map((name) => h("li", {}, member(name))))
  setText(ui.membersToggle, `Members (${members.length})`)
  if (room) setText(ui.subtitle, `${members.length} here`)
}

const identityKey = (state: ChatState) => JSON.stringify([state.me, state.identity])

/**
 * Who the page is, in the top bar where it shows on every screen size. Signed in, the name is the token's: the
 * name field turns read-only instead of offering a change the server refuses (a typed /nick still asks the server,
 * whose refusal is shown, so the page never claims a rename it cannot make).
 */
const renderIdentity = (ui: PageElements, state: ChatState) => {
  const signedIn = state.identity === "signed-in"
  ui.identity.hidden = state.identity === undefined || state.me === ""
  ui.identity.dataset.identity = state.identity ?? ""
  replaceChildren(
    ui.identity,
    h("span", { class: "identity-name" }, state.me),
    " ",
    h("span", { class: "identity-tag" }, signedIn ? "(signed in)" : "(guest)")
  )
  ui.nameInput.readOnly = signedIn
  ui.nameSubmit.hidden = signedIn
  ui.nameHint.hidden = !signedIn
}

const signInKey = (state: ChatState) => JSON.stringify([state.signIn, state.online, state.guestsRefused])

const renderSignIn = (ui: PageElements, state: ChatState) => {
  const form = state.signIn
  ui.signIn.hidden = form === undefined
  document.body.classList.toggle("signing-in", form !== undefined)
  if (form === undefined) {
    // No secret left in the page once it has done its work.
    ui.signInToken.value = ""
    return
  }
  setText(ui.signInPrompt, signInPrompt(form.reason, state.online))
  ui.signInState.hidden = !form.checking
  ui.signInError.hidden = form.error === undefined
  setText(ui.signInError, form.error ?? "")
  if (form.error === undefined) ui.signInToken.removeAttribute("aria-invalid")
  else ui.signInToken.setAttribute("aria-invalid", "true")
  // Offered while a guest might still be let in: not once a tokenless hello was refused, nor on a live connection.
  ui.signInGuest.hidden = state.guestsRefused || state.online
}

const renderHistoryControls = (ui: PageElements, conversation: Conversation | undefined) => {
  const room = conversation?.kind === "room" ? conversation : undefined
  ui.loadOlder.hidden = room === undefined || !room.more
  ui.loadOlder.disabled = room?.loadingOlder !== undefined
  setText(ui.loadOlder, room?.loadingOlder !== undefined ? "Loading older messages…" : "Load older messages")
  ui.historyStart.hidden = room === undefined || !room.initialized || room.more || room.maxId < 0
  const empty = conversation === undefined || conversation.items.length === 0
  ui.emptyState.hidden = !empty
  if (!empty) return
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

const renderFieldError = (element: HTMLElement, input: HTMLInputElement, error: FieldError | undefined) => {
  element.hidden = error === undefined
  setText(element, error?.text ?? "")
  if (error === undefined) {
    delete element.dataset.code
    input.removeAttribute("aria-invalid")
  } else {
    element.dataset.code = error.code
    input.setAttribute("aria-invalid", "true")
  }
}

const renderComposerError = (ui: PageElements, error: string | undefined) => {
  ui.composerError.hidden = error === undefined
  if (error !== undefined) setText(ui.composerError, error)
}

const renderNotice = (ui: PageElements, notice: string | undefined) => {
  ui.notice.hidden = notice === undefined
  if (notice !== undefined) setText(ui.noticeText, notice)
}

const typingKey = (state: ChatState) => JSON.stringify(state.active?.typingNames() ?? [])

const renderTyping = (ui: PageElements, state: ChatState) => {
  setText(ui.typing, typingLine(state.active?.typingNames() ?? []) ?? "")
}

const quoteWords = (quote: Quote) =>
  quote.kind === "missing"
    ? "a message not loaded"
    : `${quote.from}: ${quote.kind === "deleted" ? "[deleted]" : quote.excerpt}`

const replyKey = (state: ChatState) => {
  const reply = state.replyTo
  return JSON.stringify(reply === undefined ? null : [reply.conversation.id, reply.conversation.quoteOf(reply.id)])
}

const renderReply = (ui: PageElements, state: ChatState) => {
  const reply = state.replyTo
  ui.replyBar.hidden = reply === undefined
  if (reply === undefined) return
  replaceChildren(
    ui.replyText,
    "Replying to ",
    h("span", { class: "quote-text" }, quoteWords(reply.conversation.quoteOf(reply.id)))
  )
}
