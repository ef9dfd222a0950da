/** How one timeline item looks. Pure construction: the app decides where it goes. */
import { CloseCode } from "../src/protocol/Rules.js"
import type { ConnectionState } from "./connection.js"
import { h } from "./dom.js"
import type { Item } from "./model.js"

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

/** `you` is the current name, shown for our own pending messages. */
export const renderItem = (item: Item, you: string): HTMLLIElement => {
  const body = item.body
  switch (body.kind) {
    case "message":
      return h(
        "li",
        { class: body.mine ? "message mine" : "message", "data-id": String(body.id) },
        h(
          "div",
          { class: "meta" },
          h("span", { class: "from" }, body.from),
          body.mine && h("span", { class: "you-tag" }, "you"),
          timeElement(body.at)
        ),
        h("p", { class: "text" }, body.text)
      )
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
    case "pending": {
      const failed = body.state === "failed"
      return h(
        "li",
        { class: `message mine pending ${body.state}`, "data-ref": body.ref },
        h(
          "div",
          { class: "meta" },
          h("span", { class: "from" }, you),
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
