/**
 * What the browser client knows, and how it changes. Every server frame and every local action of the user is an
 * `Event`; `update` applies it to the `ChatState` and returns the `Command`s it calls for: frames for the connection,
 * timers, storage, and hints the page cannot read off the state (scroll to the bottom, announce a message).
 *
 * `update` is the one way the model changes: frames.ts handles what the server says, actions.ts what the user does,
 * features.ts both for the chat features (replies, typing, edits, reactions, read markers), step.ts holds what they
 * all need. No DOM, no timers, no clock and no randomness in any of them (the time comes with each update, the ref
 * prefix with the state), so the whole client logic runs and is tested in Node.
 */
import type { ClientFrame, Hello, ServerFrame } from "../src/protocol/Protocol.js"
import { type Feature, FEATURES, isValidName, nameKey } from "../src/protocol/Rules.js"
import * as Actions from "./actions.js"
import * as Features from "./features.js"
import * as Frames from "./frames.js"
import type { Conversation } from "./model.js"
import * as SignIn from "./signin.js"
import type { Step } from "./step.js"
import type { StoredSession } from "./storage.js"

// ---------------------------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------------------------

/** A problem shown next to a form field; `code` is an error code or `offline`. */
export interface FieldError {
  readonly text: string
  readonly code: string
}

/** A send or direct message in the outbox, until the server answers it or its copy arrives. */
export interface PendingSend {
  readonly conversation: Conversation
  /** Written to some socket at least once, so the server may have it (mirrors the connection's outbox). */
  written: boolean
}

/** A request whose answer is only an `ack` or `error`, remembered by ref until it comes. */
export type Request =
  /** `fromComposer`: typed as /nick, so errors show by the composer too (the name field may be in a closed drawer). */
  | { readonly kind: "nick"; readonly name: string; readonly fromComposer: boolean }
  | { readonly kind: "join"; readonly room: string }
  | { readonly kind: "leave"; readonly room: string }
  | { readonly kind: "history"; readonly room: string }
  /** A new token for the live connection; kept once the server acknowledges it. */
  | { readonly kind: "refresh"; readonly token: string }
  | { readonly kind: "edit"; readonly room: string; readonly id: number; readonly text: string }
  | { readonly kind: "delete"; readonly room: string; readonly id: number }
  | { readonly kind: "react"; readonly room: string; readonly id: number; readonly emoji: string; readonly on: boolean }
  /** A read marker moved: its answer changes nothing (the `unread` frame does), and a refusal is not the user's. */
  | { readonly kind: "read" }

/** What a message's own controls show instead of its action buttons: its edit form, the reaction picker, or a question. */
export type MessageMode = "edit" | "react" | "confirmDelete"

/** A message of a conversation that a part of the page is about (a reply being written, an open edit form). */
export interface MessageRef {
  readonly conversation: Conversation
  readonly id: number
}

/**
 * Why the sign-in form is shown: the server needs a token and this tab had none, refused the one it had, or the
 * token expired (the connection may still be open, within the server's grace).
 */
export type SignInReason = "required" | "rejected" | "expired"

export interface SignInForm {
  readonly reason: SignInReason
  readonly error: string | undefined
  /** A pasted token is on its way to the server. */
  readonly checking: boolean
}

export class ChatState {
  /** By `conversationId`. */
  readonly conversations = new Map<string, Conversation>()
  active: Conversation | undefined = undefined
  /** Our name on the server ("" until the first `welcome`). */
  me = ""
  resumeToken: string | undefined
  /** The rooms of the session stored by an earlier page, asked for by this page's first `hello`. */
  readonly storedRooms: ReadonlyArray<string> | undefined
  /** How many `welcome`s this page had; a release timer belongs to one of them. */
  welcomes = 0
  online = false
  /** After a `welcome` the outbox waits for the catch-up history of these rooms (see frames.ts). */
  outboxHeld = false
  readonly awaitingHistory = new Set<string>()
  readonly pendingSends = new Map<string, PendingSend>()
  readonly requests = new Map<string, Request>()
  /** Rooms the user asked to join here, to switch to once the server confirms. */
  readonly joinsToOpen = new Set<string>()
  refCounter = 0
  nameError: FieldError | undefined = undefined
  joinError: FieldError | undefined = undefined
  composerError: string | undefined = undefined
  /** A message above the timeline until dismissed (a lost session, an unexpected error). */
  notice: string | undefined = undefined
  /** The bearer token this tab presents in every `hello`, resumes included (see signin.ts). */
  authToken: string | undefined
  /** Who the server took us for at the last `welcome`; undefined before one and after a 4001 or 4003 close. */
  identity: "guest" | "signed-in" | undefined = undefined
  /** The token the last `hello` carried: a refusal forgets that one, not one pasted since. */
  helloToken: string | undefined = undefined
  signIn: SignInForm | undefined = undefined
  /** A `hello` without a token was refused: the server requires sign-in, so continuing as a guest is no way out. */
  guestsRefused = false
  /** The server's words in the `unauthorized` that comes before its 4001 close, for the form to show. */
  authDetail: string | undefined = undefined
  /** The chat features the server enabled at the last `welcome` (none before one, or from an older server). */
  features: ReadonlySet<Feature> = new Set()
  /** The server knows `hello.features` at all, and with it replies (which need no feature of their own). */
  featuresKnown = false
  /** The message the next send from the composer answers. */
  replyTo: MessageRef | undefined = undefined
  /** One message at a time has its edit form, reaction picker or delete question open. */
  messageMode: (MessageRef & { readonly mode: MessageMode }) | undefined = undefined
  /** The tab is shown, and the active conversation is scrolled to its end: what arrives there is seen. */
  visible = true
  atBottom = true
  /** When this page last said it was typing, by room. */
  readonly typingSent = new Map<string, number>()

  /**
   * `refPrefix` tells this page's request refs from another tab's; `session` is what an earlier page stored;
   * `authToken` the token to sign in with, if any.
   */
  constructor(
    readonly refPrefix: string,
    session: StoredSession = {},
    authToken?: string
  ) {
    this.resumeToken = session.token
    this.storedRooms = session.rooms
    this.authToken = authToken
  }

  joinedRooms(): Array<Conversation> {
    return [...this.conversations.values()].filter((c) => c.kind === "room")
  }

  directConversations(): Array<Conversation> {
    return [...this.conversations.values()].filter((c) => c.kind === "dm")
  }

  isMe(name: string): boolean {
    return nameKey(name) === nameKey(this.me)
  }

  /** What a reload of this tab needs to resume the session. */
  session(): StoredSession {
    return { token: this.resumeToken, rooms: this.joinedRooms().map((room) => room.title) }
  }

  /** The `hello` for a new socket: the latest name, rooms and resume token, and per room the last id seen. */
  hello(preferredName: string | undefined): Hello {
    this.helloToken = this.authToken
    const name = isValidName(this.me) ? this.me : preferredName
    const rooms = this.welcomes > 0 ? this.joinedRooms().map((room) => room.title) : this.storedRooms
    const since: Record<string, number> = {}
    for (const room of this.joinedRooms()) if (room.maxId >= 0) since[room.title] = room.maxId
    return {
      type: "hello",
      ...(name !== undefined ? { name } : {}),
      ...(rooms !== undefined ? { rooms } : {}),
      ...(this.resumeToken !== undefined ? { resume: { token: this.resumeToken, since } } : {}),
      ...(this.authToken !== undefined ? { token: this.authToken } : {}),
      features: [...FEATURES]
    }
  }

  has(feature: Feature): boolean {
    return this.features.has(feature)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Events and commands
// ---------------------------------------------------------------------------------------------------------------------

export type Event =
  | { readonly kind: "frame"; readonly frame: ServerFrame }
  | { readonly kind: "connection"; readonly online: boolean }
  /** The server ended the session for good with this close code: the resume token is worthless. */
  | { readonly kind: "sessionEnded"; readonly code: number }
  /** The composer was submitted with this text. */
  | { readonly kind: "compose"; readonly text: string }
  /** The name field was submitted. */
  | { readonly kind: "rename"; readonly name: string }
  /** The join field was submitted. */
  | { readonly kind: "join"; readonly input: string }
  /** Leave the active room, or close the active direct conversation. */
  | { readonly kind: "leave" }
  | { readonly kind: "open"; readonly id: string }
  | { readonly kind: "loadOlder" }
  /** The buttons of a send the server refused. */
  | { readonly kind: "retry"; readonly ref: string }
  | { readonly kind: "discard"; readonly ref: string }
  /** The sign-in form was submitted with what was pasted into it. */
  | { readonly kind: "signIn"; readonly token: string }
  | { readonly kind: "continueAsGuest" }
  /** The user typed in a field, which hides the error shown for it. */
  | { readonly kind: "edited"; readonly field: "name" | "join" | "composer" | "signIn" }
  | { readonly kind: "dismissNotice" }
  /** The composer's text changed to this (the user is typing). */
  | { readonly kind: "composing"; readonly text: string }
  /** The controls of message `id` of the active conversation. */
  | { readonly kind: "reply"; readonly id: number }
  | { readonly kind: "cancelReply" }
  /** Open (or with `mode` undefined, close) the edit form, reaction picker or delete question of a message. */
  | { readonly kind: "messageMode"; readonly id: number; readonly mode: MessageMode | undefined }
  | { readonly kind: "saveEdit"; readonly id: number; readonly text: string }
  | { readonly kind: "delete"; readonly id: number }
  /** Toggle our reaction `emoji` on a message. */
  | { readonly kind: "react"; readonly id: number; readonly emoji: string }
  /** Whether the tab is visible and the timeline scrolled to its end changed. */
  | { readonly kind: "viewing"; readonly visible: boolean; readonly atBottom: boolean }
  /** Timers started by a `later` command. */
  | { readonly kind: "releaseDue"; readonly welcome: number }
  | { readonly kind: "echoDue"; readonly ref: string }
  | { readonly kind: "typingDue"; readonly room: string }
  | { readonly kind: "readDue"; readonly room: string }

export type Command =
  /** A request that only makes sense on the current connection (dropped when offline). */
  | { readonly kind: "send"; readonly frame: ClientFrame }
  /** A request that must be delivered: into the connection's outbox until answered or settled. */
  | { readonly kind: "enqueue"; readonly ref: string; readonly frame: ClientFrame }
  | { readonly kind: "settle"; readonly ref: string }
  | { readonly kind: "holdOutbox" }
  | { readonly kind: "releaseOutbox" }
  | { readonly kind: "later"; readonly ms: number; readonly event: Event }
  | { readonly kind: "persist"; readonly session: StoredSession }
  | { readonly kind: "rememberName"; readonly name: string }
  /** Keep this bearer token for the tab's later connections, or (undefined) forget the kept one. */
  | { readonly kind: "saveAuth"; readonly token: string | undefined }
  /** Connect now (a final close ended the last connection): the next `hello` carries a new token, or none. */
  | { readonly kind: "reconnect" }
  /** The sign-in form appeared and nothing else on the page works: move the focus into it. */
  | { readonly kind: "focusSignIn" }
  /** The active conversation was opened (again): show it whole, scrolled to the end, with the drawers closed. */
  | { readonly kind: "opened" }
  /** An item of ours was added to the active conversation: scroll to it. */
  | { readonly kind: "stick" }
  /** Read out to screen readers. */
  | { readonly kind: "announce"; readonly text: string }
  /** Put this name in the name field; unless `force`, not while the user is typing there. */
  | { readonly kind: "showName"; readonly name: string; readonly force: boolean }
  | { readonly kind: "clearComposer" }
  | { readonly kind: "clearJoinInput" }

/** Applies one event to `state` (in place) at time `now`, and returns what must happen outside it, in order. */
export const update = (state: ChatState, event: Event, now: number): ReadonlyArray<Command> => {
  const step: Step = { state, now, commands: [] }
  handle(step, event)
  // Whatever the event, what is on screen now may be news the user just saw.
  Features.markSeen(step)
  return step.commands
}

const handle = (s: Step, event: Event): void => {
  switch (event.kind) {
    case "frame":
      return Frames.onFrame(s, event.frame)
    case "connection":
      return Frames.onConnection(s, event.online)
    case "sessionEnded":
      Frames.onSessionEnded(s)
      return SignIn.onFinalClose(s, event.code)
    case "releaseDue":
      return Frames.onReleaseDue(s, event.welcome)
    case "echoDue":
      return Frames.onEchoDue(s, event.ref)
    case "compose":
      return Actions.compose(s, event.text)
    case "rename":
      return Actions.changeName(s, event.name, false)
    case "join":
      Actions.joinRoom(s, event.input)
      return
    case "leave":
      return Actions.leaveActive(s)
    case "open":
      return Actions.open(s, event.id)
    case "loadOlder":
      return Actions.loadOlder(s)
    case "retry":
    case "discard":
      return Actions.dropFailed(s, event.ref, event.kind === "retry")
    case "signIn":
      return SignIn.submitToken(s, event.token)
    case "continueAsGuest":
      return SignIn.continueAsGuest(s)
    case "edited":
      return Actions.clearError(s, event.field)
    case "dismissNotice":
      s.state.notice = undefined
      return
    case "composing":
      return Features.composing(s, event.text)
    case "reply":
      return Features.startReply(s, event.id)
    case "cancelReply":
      s.state.replyTo = undefined
      return
    case "messageMode":
      return Features.setMessageMode(s, event.id, event.mode)
    case "saveEdit":
      return Features.saveEdit(s, event.id, event.text)
    case "delete":
      return Features.deleteMessage(s, event.id)
    case "react":
      return Features.toggleOwnReaction(s, event.id, event.emoji)
    case "viewing":
      s.state.visible = event.visible
      s.state.atBottom = event.atBottom
      return
    case "typingDue":
      return Features.onTypingDue(s, event.room)
    case "readDue":
      return Features.onReadDue(s, event.room)
  }
}
