/**
 * What outlives the page. The resume token and the room list live in sessionStorage, so a reload of this tab
 * resumes the same session (the server holds a dropped session for its resume window, name included). The chosen
 * name lives in localStorage, so the next visit asks for it again. Storage can be disabled; then nothing persists.
 *
 * The sign-in token lives in sessionStorage too, and never in localStorage: it is a bearer credential, and
 * sessionStorage keeps it to this tab and ends it with the tab, where localStorage would write it to disk for every
 * later visit and every other tab of the origin, long after the person left. A reload still stays signed in.
 */
import { isValidName, isValidRoom } from "../src/protocol/Rules.js"

const SESSION_KEY = "effect-chat.session"
const NAME_KEY = "effect-chat.name"
const AUTH_KEY = "effect-chat.auth"

export interface StoredSession {
  readonly token?: string | undefined
  readonly rooms?: ReadonlyArray<string>
}

export const readSession = (): StoredSession => {
  try {
    const value: unknown = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "{}")
    if (typeof value !== "object" || value === null) return {}
    const { rooms, token } = value as Record<string, unknown>
    const valid = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === "string" && isValidRoom(r)) : []
    return {
      ...(typeof token === "string" ? { token } : {}),
      ...(Array.isArray(rooms) ? { rooms: valid } : {})
    }
  } catch {
    return {}
  }
}

export const saveSession = (session: StoredSession): void => {
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session))
  } catch {
    // disabled or full: the session still works until the tab closes
  }
}

export const readPreferredName = (): string | undefined => {
  try {
    const name = localStorage.getItem(NAME_KEY)
    return name !== null && isValidName(name) ? name : undefined
  } catch {
    return undefined
  }
}

export const savePreferredName = (name: string): void => {
  try {
    localStorage.setItem(NAME_KEY, name)
  } catch {
    // see saveSession
  }
}

export const readAuthToken = (): string | undefined => {
  try {
    return sessionStorage.getItem(AUTH_KEY) ?? undefined
  } catch {
    return undefined
  }
}

/** Keeps the sign-in token for this tab, or forgets it (undefined). */
export const saveAuthToken = (token: string | undefined): void => {
  try {
    if (token === undefined) sessionStorage.removeItem(AUTH_KEY)
    else sessionStorage.setItem(AUTH_KEY, token)
  } catch {
    // see saveSession
  }
}
