/** How one timeline item looks. Pure construction: the app decides where it goes. */
import { CloseCode, DELETED_TEXT } from "../src/protocol/Rules.js"
import type { ConnectionState } from "./connection.js"
import { h } from "./dom.js"
import { PICKER } from "./features.js"
import { type Item, type MessageBody, type Quote, reactedBy } from "./model.js"
import type { MessageMode } from "./state.js"

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" })
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit"
})
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" })

const sameDay = (a: Date, b: Date) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate()

export const timeElement = (at: number): HTMLTimeElement => {
  const date = new Date(at)
  const label = sameDay(date, new Date()) ? timeFormat.format(date) : dayTimeFormat.format(date)
  return h("time", { datetime: date.toISOString(), title: fullFormat.format(date) }, label)
}

const PENDING_LABEL = {
  queued: "Queued: sends when reconnected",
  sending: "Sending…",
  sent: "Sent"
} as const

/** What the page shows of a message beyond the message itself. */
export interface ItemContext {
  /** Our current name: it is ours that chips highlight, and it shows on our pending messages. */
  readonly you: string
  /** What the server enabled (see state.ts): actions of a disabled feature are not offered. */
  readonly reply: boolean
  readonly edits: boolean
  readonly reactions: boolean
  /** The edit form, picker or question this message has open. */
  readonly mode: MessageMode | undefined
}

export const renderItem = (item: Item, context: ItemContext): HTMLLIElement => {
  const body = item.body
  switch (body.kind) {
    case "message":
      return renderMessage(body, context)
    case "direct":
      return h(
        "li",
        { class: body.mine ? "message direct mine" : "message direct" },
        h(
          "div",
          { class: "meta" },
          h("span", { class: "dm-tag" }, "Direct"),
          h("span", { class: "from" }, body.from),
          h("span", { class: "arrow", "aria-label": "to" }, "→"),
          h("span", { class: "to" }, body.to),
          timeElement(body.at)
        ),
        h("p", { class: "text" }, body.text)
      )
    case "event":
      return h(
        "li",
        { class: body.warning ? "event warning" : "event" },
        h("span", { class: "event-text" }, body.text),
        timeElement(body.at)
      )
    case "divider":
      return h("li", { class: "divider" }, h("span", { class: "divider-text" }, "New messages"))
    case "pending": {
      const failed = body.state === "failed"
      return h(
        "li",
        { class: `message mine pending ${body.state}`, "data-ref": body.ref },
        body.quote !== undefined && renderQuote(body.quote, undefined),
        h(
          "div",
          { class: "meta" },
          h("span", { class: "from" }, context.you),
          h(
            "span",
            { class: "pending-state" },
            body.state === "failed" ? `Not sent: ${body.error ?? "error"}` : PENDING_LABEL[body.state]
          )
        ),
        h("p", { class: "text" }, body.text),
        failed &&
          h(
            "div",
            { class: "pending-actions" },
            h("button", { type: "button", "data-action": "retry", "data-ref": body.ref }, "Retry"),
            h("button", { type: "button", "data-action": "discard", "data-ref": body.ref }, "Discard")
          )
      )
    }
  }
}

const renderMessage = (body: MessageBody, context: ItemContext): HTMLLIElement => {
  const { deleted, mine } = body
  const classes = ["message", mine && "mine", deleted && "deleted"].filter(Boolean).join(" ")
  return h(
    "li",
    // Not a tab stop: the arrow keys, and a jump to the original of a reply, move the focus here (page.ts).
    { class: classes, "data-id": String(body.id), tabindex: "-1" },
    !deleted && body.replyTo !== undefined && body.quote !== undefined && renderQuote(body.quote, body.replyTo),
    h(
      "div",
      { class: "meta" },
      h("span", { class: "from" }, body.from),
      mine && h("span", { class: "you-tag" }, "you"),
      timeElement(body.at),
      !deleted &&
        body.edited !== undefined &&
        h("span", { class: "edited", title: `Edited ${fullFormat.format(new Date(body.edited))}` }, "(edited)")
    ),
    context.mode === "edit" && !deleted
      ? editForm(body)
      : h("p", { class: deleted ? "text deleted-text" : "text" }, deleted ? DELETED_TEXT : body.text),
    !deleted && body.reactions.length > 0 && renderReactions(body, context),
    !deleted && context.mode === "react" && picker(body, context.you),
    !deleted && context.mode === "confirmDelete" && confirmDelete(),
    !deleted && context.mode === undefined && messageActions(body, context)
  )
}

/** What a reply shows of the message it answers; a button that jumps there when that message is loaded. */
const renderQuote = (quote: Quote, target: number | undefined) => {
  if (quote.kind === "missing") {
    return h(
      "div",
      { class: "quote missing" },
      h("span", { class: "quote-text" }, "Reply to a message: original not loaded")
    )
  }
  const shown = quote.kind === "deleted" ? DELETED_TEXT : quote.excerpt
  const parts = [
    h("span", { class: "quote-from" }, quote.from),
    h("span", { class: quote.kind === "deleted" ? "quote-text deleted-text" : "quote-text" }, shown)
  ]
  if (target === undefined) return h("div", { class: "quote" }, ...parts)
  const label = `Reply to ${quote.from}: ${shown}. Show the original message`
  return h(
    "button",
    { type: "button", class: "quote", "data-action": "jump", "data-target": String(target), "aria-label": label },
    ...parts
  )
}

const names = (list: ReadonlyArray<string>) =>
  list.length <= 1 ? list.join("") : `${list.slice(0, -1).join(", ")} and ${list.at(-1)}`

const renderReactions = (body: MessageBody, context: ItemContext) =>
  h(
    "div",
    { class: "reactions", role: "group", "aria-label": "Reactions" },
    ...body.reactions.map((group) => {
      const mine = reactedBy(group, context.you)
      const who = names(group.names)
      const does = context.reactions
        ? mine
          ? " Activate to take yours back."
          : ` Activate to react with ${group.emoji}.`
        : ""
      return h(
        "button",
        {
          type: "button",
          class: mine ? "chip mine" : "chip",
          "data-action": "react",
          "data-emoji": group.emoji,
          "aria-pressed": mine ? "true" : "false",
          // The title shows on hover; data-who is the same list shown on keyboard focus (style.css).
          title: who,
          "data-who": who,
          "aria-label": `${group.emoji} ${group.names.length}: ${who}.${does}`,
          disabled: !context.reactions
        },
        h("span", { class: "chip-emoji", "aria-hidden": "true" }, group.emoji),
        h("span", { class: "chip-count", "aria-hidden": "true" }, String(group.names.length))
      )
    })
  )

const actionButton = (action: string, text: string, label: string, extra: Record<string, string> = {}) =>
  h("button", { type: "button", class: "action", "data-action": action, "aria-label": label, ...extra }, text)

const messageActions = (body: MessageBody, context: ItemContext) => {
  const own = body.mine && context.edits
  if (!context.reply && !context.reactions && !own) return false
  return h(
    "div",
    { class: "message-actions" },
    context.reply && actionButton("reply", "Reply", `Reply to ${body.from}`),
    context.reactions &&
      actionButton("react-open", "React", `React to ${body.from}’s message`, { "aria-expanded": "false" }),
    own && actionButton("edit", "Edit", "Edit your message"),
    own && actionButton("delete-ask", "Delete", "Delete your message")
  )
}

/** Each control of an open mode names the button to give the focus back to when the mode closes. */
const picker = (body: MessageBody, you: string) =>
  h(
    "div",
    { class: "picker", role: "group", "aria-label": "Pick a reaction" },
    ...PICKER.map((emoji) => {
      const group = body.reactions.find((g) => g.emoji === emoji)
      const mine = group !== undefined && reactedBy(group, you)
      return h(
        "button",
        {
          type: "button",
          class: "pick",
          "data-action": "react",
          "data-emoji": emoji,
          "data-return": "react-open",
          "aria-pressed": mine ? "true" : "false",
          "aria-label": `React with ${emoji}`
        },
        emoji
      )
    }),
    h("button", { type: "button", class: "action", "data-action": "close-mode", "data-return": "react-open" }, "Close")
  )

const confirmDelete = () =>
  h(
    "div",
    { class: "confirm", role: "group", "aria-label": "Delete this message?" },
    h("span", { class: "confirm-text" }, "Delete this message?"),
    h("button", { type: "button", class: "danger", "data-action": "delete", "data-return": "delete-ask" }, "Delete"),
    h("button", { type: "button", "data-action": "close-mode", "data-return": "delete-ask" }, "Cancel")
  )

const editForm = (body: MessageBody) => {
  const id = `edit-${body.id}`
  const lines = body.text.split("\n").length
  return h(
    "form",
    { class: "edit-form", "data-id": String(body.id) },
    h("label", { class: "visually-hidden", for: id }, "Edit your message"),
    h(
      "textarea",
      {
        id,
        class: "edit-input",
        rows: String(Math.min(6, lines)),
        "data-return": "edit",
        "aria-describedby": `${id}-help`
      },
      body.text
    ),
    h(
      "div",
      { class: "edit-actions" },
      h("button", { type: "submit", "data-return": "edit" }, "Save"),
      h("button", { type: "button", "data-action": "close-mode", "data-return": "edit" }, "Cancel"),
      h("span", { class: "hint", id: `${id}-help` }, "Enter saves, Shift+Enter starts a new line, Escape cancels.")
    )
  )
}

let countdown: ReturnType<typeof setInterval> | undefined

/**
 * Closes the Reconnect button must not follow: after 4001 the same token would be refused again (the sign-in form
 * is the way back), and after 4003 the user was removed on purpose.
 */
const NO_RECONNECT: ReadonlySet<number> = new Set([CloseCode.unauthorized, CloseCode.removed])

/** The connection state in words, with a live countdown while a reconnect is scheduled. */
export const renderStatus = (status: HTMLElement, action: HTMLButtonElement, state: ConnectionState): void => {
  if (countdown !== undefined) clearInterval(countdown)
  countdown = undefined
  status.dataset.state = state.kind
  action.hidden =
    (state.kind !== "reconnecting" && state.kind !== "offline") ||
    (state.kind === "offline" && state.code !== undefined && NO_RECONNECT.has(state.code))
  action.textContent = state.kind === "offline" ? "Reconnect" : "Reconnect now"
  switch (state.kind) {
    case "connecting":
      status.textContent = "Connecting…"
      return
    case "online":
      status.textContent = "Online"
      return
    case "offline":
      status.textContent = `Offline: ${state.reason}`
      return
    case "reconnecting": {
      const tick = () => {
        status.textContent = `Reconnecting in ${Math.max(0, Math.ceil((state.at - Date.now()) / 1000))}s`
      }
      tick()
      countdown = setInterval(tick, 250)
      return
    }
  }
}
