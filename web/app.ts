/**
 * The browser client's wiring: page events and server frames become `Event`s for the reducer (state.ts), whose
 * commands go to the connection (connection.ts), timers and storage; then the page (page.ts) shows the new state.
 */
import { ChatConnection, type ConnectionState } from "./connection.js"
import { append, h } from "./dom.js"
import { makeDrawers } from "./drawers.js"
import { makePage, pageElements } from "./page.js"
import { ChatState, type Command, type Event, update } from "./state.js"
import {
  readAuthToken,
  readPreferredName,
  readSession,
  type StoredSession,
  saveAuthToken,
  savePreferredName,
  saveSession
} from "./storage.js"
import { subjectOf, takeFragmentToken } from "./token.js"
import { renderStatus } from "./view.js"

const ui = pageElements()
const page = makePage(ui)
const drawers = makeDrawers(ui.scrim, [
  { toggle: ui.roomsToggle, panel: ui.sidebar, openClass: "rooms-open" },
  { toggle: ui.membersToggle, panel: ui.membersPanel, openClass: "members-open" }
])

/**
 * The token a sign-in link brought (`/#token=...`), taken out of the address bar at once so that it is not
 * bookmarked, shared or left in the history; kept for the tab in sessionStorage (see storage.ts). Without one, the
 * token an earlier page of this tab kept, if any.
 */
const startingToken = (): string | undefined => {
  const { rest, token } = takeFragmentToken(location.hash)
  if (token === undefined) return readAuthToken()
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest}`)
  return token
}

const stored = readAuthToken()
const authToken = startingToken()
if (authToken !== stored) saveAuthToken(authToken)

/** A link for another user must not try to resume this tab's session: the server refuses that with 4001. */
const startingSession = (): StoredSession => {
  const session = readSession()
  // A guest's session (no token kept) is not resumed by a sign-in link either.
  const switched =
    authToken !== undefined &&
    authToken !== stored &&
    (stored === undefined || subjectOf(stored) !== subjectOf(authToken))
  return switched ? { ...(session.rooms !== undefined ? { rooms: session.rooms } : {}) } : session
}

// A sign-in link pasted into this tab changes only the fragment (no reload): start the page again, which takes the
// token out of the address bar (replacing the history entry that holds it) and switches users as a link does.
window.addEventListener("hashchange", () => {
  if (takeFragmentToken(location.hash).token !== undefined) location.reload()
})

const state = new ChatState(Math.random().toString(36).slice(2, 8), startingSession(), authToken)

// ---------------------------------------------------------------------------------------------------------------------
// The update loop
// ---------------------------------------------------------------------------------------------------------------------

const dispatch = (event: Event): void => {
  const hints = { opened: false, stick: false }
  let focusSignIn = false
  for (const command of update(state, event, Date.now())) {
    if (command.kind === "opened") hints.opened = true
    else if (command.kind === "stick") hints.stick = true
    else if (command.kind === "focusSignIn") focusSignIn = true
    else run(command)
  }
  if (hints.opened) drawers.closeAll()
  page.render(state, hints)
  // After the render: a hidden form cannot take the focus.
  if (focusSignIn) ui.signInToken.focus()
  // A render can bring the end of the timeline into view (a room opened) or push it out (a long message above).
  reportViewing()
}

/** Tells the state whether what arrives in the open conversation is seen, when that changed. */
const reportViewing = () => {
  const visible = document.visibilityState === "visible"
  const atBottom = page.atBottom()
  if (visible !== state.visible || atBottom !== state.atBottom) dispatch({ kind: "viewing", visible, atBottom })
}

const run = (command: Exclude<Command, { kind: "opened" | "stick" | "focusSignIn" }>): void => {
  switch (command.kind) {
    case "send":
      connection.send(command.frame)
      return
    case "enqueue":
      return connection.enqueue(command.ref, command.frame)
    case "settle":
      return connection.settle(command.ref)
    case "holdOutbox":
      return connection.holdOutbox()
    case "releaseOutbox":
      return connection.releaseOutbox()
    case "later":
      setTimeout(() => dispatch(command.event), command.ms)
      return
    case "persist":
      return saveSession(command.session)
    case "rememberName":
      return savePreferredName(command.name)
    case "saveAuth":
      return saveAuthToken(command.token)
    case "reconnect":
      // Not from inside this dispatch: connecting reports its state, which is a dispatch of its own.
      queueMicrotask(() => connection.connectNow())
      return
    case "announce":
      return announce(command.text)
    case "showName":
      if (command.force || document.activeElement !== ui.nameInput) ui.nameInput.value = command.name
      return
    case "clearComposer":
      ui.composerInput.value = ""
      return autosize()
    case "clearJoinInput":
      ui.joinInput.value = ""
      return
  }
}

const announce = (text: string) => {
  const short = text.length > 200 ? `${text.slice(0, 200)}…` : text
  append(ui.announcer, h("p", {}, short))
  while (ui.announcer.childElementCount > 3) ui.announcer.firstElementChild?.remove()
}

const autosize = () => {
  ui.composerInput.rows = Math.min(6, Math.max(1, ui.composerInput.value.split("\n").length))
}

// ---------------------------------------------------------------------------------------------------------------------
// The connection
// ---------------------------------------------------------------------------------------------------------------------

const onConnectionState = (connectionState: ConnectionState) => {
  renderStatus(ui.status, ui.reconnectNow, connectionState)
  document.body.dataset.connection = connectionState.kind
  dispatch({ kind: "connection", online: connectionState.kind === "online" })
}

const connection = new ChatConnection(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/chat`, {
  hello: () => state.hello(readPreferredName()),
  onFrame: (frame) => dispatch({ kind: "frame", frame }),
  onState: onConnectionState,
  onSessionEnded: (code) => dispatch({ kind: "sessionEnded", code })
})

// ---------------------------------------------------------------------------------------------------------------------
// Page events
// ---------------------------------------------------------------------------------------------------------------------

/** The button carrying `attribute` that a click landed in, if any. */
const clicked = (event: MouseEvent, attribute: string): HTMLButtonElement | undefined =>
  (event.target as Element).closest<HTMLButtonElement>(`button[${attribute}]`) ?? undefined

const listenToForms = () => {
  ui.nameForm.addEventListener("submit", (event) => {
    event.preventDefault()
    dispatch({ kind: "rename", name: ui.nameInput.value.trim() })
  })
  ui.nameInput.addEventListener("input", () => dispatch({ kind: "edited", field: "name" }))
  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault()
    dispatch({ kind: "join", input: ui.joinInput.value })
  })
  ui.joinInput.addEventListener("input", () => dispatch({ kind: "edited", field: "join" }))
  ui.signInForm.addEventListener("submit", (event) => {
    event.preventDefault()
    dispatch({ kind: "signIn", token: ui.signInToken.value })
  })
  ui.signInToken.addEventListener("input", () => dispatch({ kind: "edited", field: "signIn" }))
  ui.signInGuest.addEventListener("click", () => dispatch({ kind: "continueAsGuest" }))
}

const listenToComposer = () => {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault()
    dispatch({ kind: "compose", text: ui.composerInput.value })
    ui.composerInput.focus()
  })
  ui.composerInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault()
      ui.composer.requestSubmit()
    } else if (event.key === "Escape" && state.replyTo !== undefined) {
      event.preventDefault()
      dispatch({ kind: "cancelReply" })
    }
  })
  ui.composerInput.addEventListener("input", () => {
    dispatch({ kind: "composing", text: ui.composerInput.value })
    autosize()
  })
  ui.replyCancel.addEventListener("click", () => {
    dispatch({ kind: "cancelReply" })
    ui.composerInput.focus()
  })
}

const listenToConversations = () => {
  const open = (event: MouseEvent) => {
    const id = clicked(event, "data-conversation")?.dataset.conversation
    if (id !== undefined) dispatch({ kind: "open", id })
  }
  ui.roomList.addEventListener("click", open)
  ui.dmList.addEventListener("click", open)
  ui.leaveButton.addEventListener("click", () => dispatch({ kind: "leave" }))
  ui.memberList.addEventListener("click", (event) => {
    const name = clicked(event, "data-member")?.dataset.member
    if (name === undefined) return
    drawers.closeAll()
    ui.composerInput.value = `/msg ${name} `
    ui.composerInput.focus()
    ui.composerInput.setSelectionRange(ui.composerInput.value.length, ui.composerInput.value.length)
  })
}

const listenToTimeline = () => {
  ui.loadOlder.addEventListener("click", () => dispatch({ kind: "loadOlder" }))
  // Only a scroll the reader makes towards the top asks for more; redraws and new messages move it down or jump it.
  let lastScrollTop = 0
  ui.scroller.addEventListener(
    "scroll",
    () => {
      const top = ui.scroller.scrollTop
      const movedUp = top < lastScrollTop
      lastScrollTop = top
      if (movedUp && top < 64) dispatch({ kind: "loadOlder" })
      else if (page.atBottom() !== state.atBottom) reportViewing()
    },
    { passive: true }
  )
  document.addEventListener("visibilitychange", reportViewing)
  ui.scroller.addEventListener("keydown", (event) => {
    const target = event.target as HTMLElement
    const key = event.key
    if (key !== "ArrowUp" && key !== "ArrowDown" && key !== "Home" && key !== "End") return
    // The scroller keeps Home and End for scrolling; a field keeps all four for its caret.
    const onScroller = target === ui.scroller
    if ((onScroller && (key === "Home" || key === "End")) || target.matches("textarea, input")) return
    if (page.moveFocus(target, key)) event.preventDefault()
  })
  ui.messages.addEventListener("click", (event) => {
    const button = clicked(event, "data-action")
    if (button === undefined) return
    const ref = button.dataset.ref
    if (ref !== undefined) {
      dispatch({ kind: button.dataset.action === "retry" ? "retry" : "discard", ref })
      ui.composerInput.focus()
      return
    }
    const id = Number(button.closest<HTMLElement>("li[data-id]")?.dataset.id)
    if (Number.isInteger(id)) onMessageAction(button, id)
  })
  ui.messages.addEventListener("submit", (event) => {
    const form = (event.target as Element).closest<HTMLFormElement>("form.edit-form")
    if (form === null) return
    event.preventDefault()
    const input = form.querySelector<HTMLTextAreaElement>(".edit-input")
    if (input !== null) dispatch({ kind: "saveEdit", id: Number(form.dataset.id), text: input.value })
  })
  ui.messages.addEventListener("keydown", (event) => {
    const target = event.target as HTMLElement
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && target.classList.contains("edit-input")) {
      event.preventDefault()
      target.closest("form")?.requestSubmit()
    } else if (event.key === "Escape" && state.messageMode !== undefined) {
      event.preventDefault()
      dispatch({ kind: "messageMode", id: state.messageMode.id, mode: undefined })
    }
  })
}

/** The controls of message `id`; opening a mode moves the focus into it (closing one gives it back: page.ts). */
const onMessageAction = (button: HTMLButtonElement, id: number) => {
  const inMessage = (selector: string) =>
    ui.messages.querySelector<HTMLElement>(`li[data-id="${id}"] ${selector}`) ?? undefined
  switch (button.dataset.action) {
    case "reply":
      dispatch({ kind: "reply", id })
      return ui.composerInput.focus()
    case "react-open":
      dispatch({ kind: "messageMode", id, mode: "react" })
      return inMessage(".picker button")?.focus()
    case "react":
      if (button.dataset.emoji !== undefined) dispatch({ kind: "react", id, emoji: button.dataset.emoji })
      return
    case "edit": {
      dispatch({ kind: "messageMode", id, mode: "edit" })
      const input = inMessage(".edit-input") as HTMLTextAreaElement | undefined
      input?.focus()
      input?.setSelectionRange(input.value.length, input.value.length)
      return
    }
    case "delete-ask":
      dispatch({ kind: "messageMode", id, mode: "confirmDelete" })
      return inMessage(".confirm [data-action='close-mode']")?.focus()
    case "delete":
      return dispatch({ kind: "delete", id })
    case "close-mode":
      return dispatch({ kind: "messageMode", id, mode: undefined })
    case "jump":
      return jumpTo(Number(button.dataset.target))
  }
}

/** Shows the original of a reply: scrolled to the middle, highlighted for a moment, and focused. */
const jumpTo = (id: number) => {
  const li = ui.messages.querySelector<HTMLElement>(`li[data-id="${id}"]`)
  if (li === null) return
  li.scrollIntoView({ block: "center" })
  li.classList.remove("highlight")
  // Restarts the highlight's animation when the same original is jumped to twice in a row.
  void li.offsetWidth
  li.classList.add("highlight")
  setTimeout(() => li.classList.remove("highlight"), 2_000)
  li.focus({ preventScroll: true })
}

ui.reconnectNow.addEventListener("click", () => connection.connectNow())
ui.noticeDismiss.addEventListener("click", () => dispatch({ kind: "dismissNotice" }))
listenToForms()
listenToComposer()
listenToConversations()
listenToTimeline()
page.render(state, { opened: false, stick: false })
connection.start()
