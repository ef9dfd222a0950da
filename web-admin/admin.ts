/**
 * The admin page (`/admin`): the API key entered once and kept in `sessionStorage` (this tab only, gone with it);
 * live numbers polled from `/api/v1/stats` every 2 s and drawn as a chart of the last 5 minutes; the rooms with
 * member counts; a room's members and recent messages; and the actions — publish, disconnect, delete. Everything
 * the server sends reaches the page as text nodes, never as markup.
 */
import { type Api, ApiFailure, make, type Message } from "./api.js"
import { draw, type Sample } from "./chart.js"

const KEY_STORAGE = "effect-chat-admin-key"
const POLL_MS = 2000
const WINDOW_MS = 5 * 60_000
const RECENT = 50

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`admin.html has no #${id}`)
  return element as T
}

const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: ReadonlyArray<Node | string>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  for (const child of children) element.append(typeof child === "string" ? document.createTextNode(child) : child)
  return element
}

const status = byId("status")
const say = (text: string, kind: "ok" | "error" | "info" = "info") => {
  status.textContent = text
  status.dataset.kind = kind
}

const failureText = (error: unknown) =>
  error instanceof ApiFailure
    ? `${error.message} (${error.code})`
    : error instanceof Error
      ? error.message
      : String(error)

let api: Api | undefined
let timer: ReturnType<typeof setTimeout> | undefined
let selected: string | undefined
const samples: Array<Sample> = []
let previous: { readonly messages: number; readonly at: number } | undefined
let ticks = 0

const showDashboard = (on: boolean) => {
  byId("key-section").hidden = on
  byId("dashboard").hidden = !on
  byId("forget-key").hidden = !on
}

const poll = async () => {
  if (api === undefined) return
  try {
    // The listing reads every room of the cluster: every third poll is often enough for it.
    const [stats, rooms] = await Promise.all([api.stats(), ticks++ % 3 === 0 ? api.rooms() : undefined])
    const rate =
      previous === undefined || stats.at <= previous.at
        ? 0
        : Math.max(0, ((stats.messages - previous.messages) * 1000) / (stats.at - previous.at))
    previous = { messages: stats.messages, at: stats.at }
    samples.push({ at: stats.at, connections: stats.connections, users: stats.users, rate })
    while (samples.length > 0 && samples[0]!.at < stats.at - WINDOW_MS) samples.shift()
    byId("connections").textContent = String(stats.connections)
    byId("users").textContent = String(stats.users)
    byId("rate").textContent = rate.toFixed(1)
    draw(byId<HTMLElement>("chart") as unknown as SVGSVGElement, samples, WINDOW_MS, stats.at)
    if (rooms !== undefined) renderRooms(rooms)
    if (selected !== undefined) await loadRoom(selected)
  } catch (error) {
    if (error instanceof ApiFailure && (error.status === 401 || error.status === 403)) return forget(failureText(error))
    say(`Polling failed: ${failureText(error)}`, "error")
  } finally {
    if (api !== undefined) timer = setTimeout(poll, POLL_MS)
  }
}

const renderRooms = (rooms: ReadonlyArray<{ readonly room: string; readonly members: number }>) => {
  const body = byId("rooms")
  // Keep the focused "Open" button across redraws, so a keyboard user is not thrown back to the top.
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.room : undefined
  body.replaceChildren(
    ...rooms.map(({ room, members }) => {
      const open = el("button", { type: "button", class: "secondary", "data-room": room }, "Open")
      open.setAttribute("aria-label", `Open ${room}`)
      open.addEventListener("click", () => void select(room))
      return el("tr", {}, el("td", {}, room), el("td", { class: "count" }, String(members)), el("td", {}, open))
    })
  )
  byId("no-rooms").hidden = rooms.length > 0
  if (focused !== undefined) {
    for (const button of body.querySelectorAll("button")) if (button.dataset.room === focused) button.focus()
  }
}

const select = async (room: string) => {
  selected = room
  byId("room-section").hidden = false
  byId("room-title").textContent = `Room ${room}`
  await loadRoom(room)
  byId("publish-text").focus()
}

const memberItem = (name: string) => {
  const kick = el("button", { type: "button", class: "danger" }, "Disconnect")
  kick.setAttribute("aria-label", `Disconnect ${name}`)
  kick.addEventListener("click", () => void disconnect(name, 4003))
  return el("li", {}, el("span", { class: "text" }, name), kick)
}

const messageItem = (room: string, message: Message) => {
  const time = new Date(message.at).toLocaleTimeString()
  const item = el(
    "li",
    {},
    el("span", { class: "id" }, `#${message.id} ${time}`),
    el("span", { class: "who" }, message.from),
    message.deleted === true
      ? el("span", { class: "text deleted" }, "deleted")
      : el("span", { class: "text" }, message.text)
  )
  if (message.deleted !== true) {
    const remove = el("button", { type: "button", class: "danger" }, "Delete")
    remove.setAttribute("aria-label", `Delete message ${message.id} from ${message.from}`)
    remove.addEventListener("click", () => void deleteMessage(room, message.id))
    item.append(remove)
  }
  return item
}

const loadRoom = async (room: string) => {
  if (api === undefined) return
  try {
    const [members, messages] = await Promise.all([api.members(room), api.history(room, RECENT)])
    if (selected !== room) return
    byId("members").replaceChildren(...members.map(memberItem))
    // Newest first: what an operator looks for is what just happened.
    byId("messages").replaceChildren(...[...messages].reverse().map((message) => messageItem(room, message)))
  } catch (error) {
    say(`${room}: ${failureText(error)}`, "error")
  }
}

const disconnect = async (name: string, code: number) => {
  if (api === undefined) return
  try {
    const closed = await api.disconnect(name, code)
    say(`Disconnected ${name}: ${closed} connection${closed === 1 ? "" : "s"} closed with ${code}.`, "ok")
    if (selected !== undefined) await loadRoom(selected)
  } catch (error) {
    say(`Disconnect ${name}: ${failureText(error)}`, "error")
  }
}

const deleteMessage = async (room: string, id: number) => {
  if (api === undefined) return
  try {
    await api.deleteMessage(room, id)
    say(`Deleted message ${id} in ${room}.`, "ok")
    await loadRoom(room)
  } catch (error) {
    say(`Delete ${id}: ${failureText(error)}`, "error")
  }
}

const start = async (key: string, fromForm: boolean) => {
  const candidate = make(key)
  try {
    await candidate.stats()
  } catch (error) {
    if (!fromForm) sessionStorage.removeItem(KEY_STORAGE)
    say(`That key does not work: ${failureText(error)}`, "error")
    showDashboard(false)
    return
  }
  sessionStorage.setItem(KEY_STORAGE, key)
  api = candidate
  showDashboard(true)
  say("Connected.", "ok")
  void poll()
}

const forget = (why?: string) => {
  api = undefined
  if (timer !== undefined) clearTimeout(timer)
  sessionStorage.removeItem(KEY_STORAGE)
  samples.length = 0
  previous = undefined
  ticks = 0
  selected = undefined
  byId("room-section").hidden = true
  showDashboard(false)
  say(why ?? "Key forgotten.", why === undefined ? "info" : "error")
  byId("key-input").focus()
}

byId<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
  event.preventDefault()
  const input = byId<HTMLInputElement>("key-input")
  const key = input.value.trim()
  input.value = ""
  if (key === "") return say("Enter the server's API key.", "error")
  void start(key, true)
})

byId("forget-key").addEventListener("click", () => forget())

byId<HTMLFormElement>("publish-form").addEventListener("submit", (event) => {
  event.preventDefault()
  const room = selected
  if (api === undefined || room === undefined) return
  const textInput = byId<HTMLInputElement>("publish-text")
  const fromInput = byId<HTMLInputElement>("publish-from")
  const text = textInput.value
  const from = fromInput.value.trim() === "" ? undefined : fromInput.value.trim()
  api.publish(room, text, from).then(
    (id) => {
      textInput.value = ""
      say(`Published message ${id} in ${room}.`, "ok")
      void loadRoom(room)
    },
    (error) => say(`Publish: ${failureText(error)}`, "error")
  )
})

byId<HTMLFormElement>("disconnect-form").addEventListener("submit", (event) => {
  event.preventDefault()
  const name = byId<HTMLInputElement>("disconnect-name").value.trim()
  const code = Number(byId<HTMLInputElement>("disconnect-code").value || 4003)
  if (name === "") return say("Enter a name.", "error")
  void disconnect(name, code)
})

const stored = sessionStorage.getItem(KEY_STORAGE)
if (stored !== null) void start(stored, false)
else showDashboard(false)
