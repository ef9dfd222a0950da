/**
 * The admin page's calls to the server API: same origin, `Authorization: Bearer` with the key entered once. A
 * failure is an `ApiFailure` carrying the API's own `error` code and message, or `network` when nothing answered.
 */

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

export interface RoomCount {
  readonly room: string
  readonly members: number
}

export interface Message {
  readonly id: number
  readonly from: string
  readonly text: string
  readonly at: number
  readonly deleted?: boolean
}

export interface Stats {
  readonly connections: number
  readonly users: number
  readonly rooms: number
  readonly messages: number
  readonly at: number
}

export interface Api {
  readonly stats: () => Promise<Stats>
  readonly rooms: () => Promise<ReadonlyArray<RoomCount>>
  readonly members: (room: string) => Promise<ReadonlyArray<string>>
  readonly history: (room: string, limit: number) => Promise<ReadonlyArray<Message>>
  readonly publish: (room: string, text: string, from: string | undefined) => Promise<number>
  readonly disconnect: (name: string, code: number) => Promise<number>
  readonly deleteMessage: (room: string, id: number) => Promise<void>
}

export const make = (key: string): Api => {
  const call = async <A>(method: string, path: string, body?: unknown): Promise<A> => {
    let response: Response
    try {
      response = await fetch(`/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" })
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        cache: "no-store"
      })
    } catch {
      throw new ApiFailure(0, "network", "the server does not answer")
    }
    const answer: unknown = await response.json().catch(() => undefined)
    if (response.ok) return answer as A
    const error = answer as { error?: unknown; message?: unknown } | undefined
    throw new ApiFailure(
      response.status,
      typeof error?.error === "string" ? error.error : `http_${response.status}`,
      typeof error?.message === "string" ? error.message : response.statusText
    )
  }
  const room = (name: string) => `/rooms/${encodeURIComponent(name)}`
  return {
    stats: () => call("GET", "/stats"),
    rooms: () => call("GET", "/rooms"),
    members: (name) => call<{ names: ReadonlyArray<string> }>("GET", `${room(name)}/members`).then((a) => a.names),
    history: (name, limit) =>
      call<{ messages: ReadonlyArray<Message> }>("GET", `${room(name)}/history?limit=${limit}`).then((a) => a.messages),
    publish: (name, text, from) =>
      call<{ id: number }>(
        "POST",
        "/publish",
        from === undefined ? { room: name, text } : { room: name, text, from }
      ).then((a) => a.id),
    disconnect: (name, code) =>
      call<{ disconnected: number }>("POST", "/disconnect", { name, code }).then((a) => a.disconnected),
    deleteMessage: (name, id) => call<unknown>("DELETE", `${room(name)}/messages/${id}`).then(() => undefined)
  }
}
