/**
 * Signing in, applied to the state: the token the tab presents, the sign-in form the server's refusals call for,
 * and a new token after `token_expired`. The page cannot get a token by itself (no identity provider talks to it),
 * so every way out of a refusal goes through a person pasting one; nothing here reconnects on its own, which is
 * what keeps a refused tab from knocking on the server in a loop.
 */
import type * as Protocol from "../src/protocol/Protocol.js"
import { FINAL_CLOSES } from "../src/client/ReconnectPolicy.js"
import { CloseCode } from "../src/protocol/Rules.js"
import type { SignInReason } from "./state.js"
import { emit, newRef, type Step } from "./step.js"
import { cleanToken, looksLikeToken } from "./token.js"

type ErrorFrame = typeof Protocol.ErrorFrame.Type

export const REMOVED_NOTICE = "You were removed from the chat. This page will not reconnect; reload it to start again."

const showForm = (s: Step, reason: SignInReason, error?: string) => {
  s.state.signIn = { reason, error, checking: false }
}

/** Keeps `token` for every later `hello` of this tab, or forgets the one kept. */
const adopt = (s: Step, token: string | undefined) => {
  s.state.authToken = token
  emit(s, { kind: "saveAuth", token })
}

/** The sign-in form was submitted with what the person pasted. */
export const submitToken = (s: Step, pasted: string) => {
  const { state } = s
  const form = state.signIn
  if (form === undefined) return
  const token = cleanToken(pasted)
  if (token === "") return showForm(s, form.reason, "Paste your sign-in token first.")
  if (!looksLikeToken(token)) {
    return showForm(s, form.reason, "That is not a sign-in token: a token is three parts joined by dots.")
  }
  state.signIn = { ...form, error: undefined, checking: true }
  if (state.online && state.identity === "signed-in") {
    // The connection is alive (an expiry's grace): carry on with the new token instead of starting over.
    const ref = newRef(s)
    state.requests.set(ref, { kind: "refresh", token })
    emit(s, { kind: "send", frame: { type: "refresh", token, ref } })
    return
  }
  adopt(s, token)
  emit(s, { kind: "reconnect" })
}

/** Only offered while the server has not shown that it refuses guests. */
export const continueAsGuest = (s: Step) => {
  if (s.state.signIn === undefined || s.state.guestsRefused) return
  s.state.signIn = undefined
  adopt(s, undefined)
  emit(s, { kind: "reconnect" })
}

export const onRefreshed = (s: Step, token: string) => {
  adopt(s, token)
  s.state.signIn = undefined
}

export const onRefreshRefused = (s: Step, error: ErrorFrame) => {
  // The grace keeps running on the server: the form stays for another try.
  showForm(s, s.state.signIn?.reason ?? "expired", `That token was not accepted: ${error.message}`)
}

/** An `error` without a ref about the token: kept for the close that follows, or the form asked for now. */
export const onAuthError = (s: Step, error: ErrorFrame) => {
  if (error.code === "token_expired") {
    // Not focused: the person may be typing a message; the form's alert is read out instead.
    if (s.state.signIn?.reason !== "expired") showForm(s, "expired")
    return
  }
  s.state.authDetail = error.message
}

/** The server closed for good with `code` (see FINAL_CLOSES). */
export const onFinalClose = (s: Step, code: number) => {
  const { state } = s
  if (code === CloseCode.unauthorized) {
    const reason: SignInReason =
      state.signIn?.reason === "expired" ? "expired" : state.authToken !== undefined ? "rejected" : "required"
    if (state.authToken === undefined) state.guestsRefused = true
    state.identity = undefined
    if (state.authToken !== undefined && state.authToken !== state.helloToken && state.signIn?.checking) {
      // Refused for the token of an earlier hello; the one pasted since is tried now.
      emit(s, { kind: "reconnect" })
      return
    }
    // The token was refused or has expired: a reload must not present it again.
    adopt(s, undefined)
    showForm(s, reason, state.authDetail ?? state.signIn?.error)
    state.authDetail = undefined
    emit(s, { kind: "focusSignIn" })
  } else if (code === CloseCode.removed) {
    // PROTOCOL.md: after 4003, do not reconnect with the same token. No form either: asking again is the loop.
    adopt(s, undefined)
    state.identity = undefined
    state.signIn = undefined
    state.authDetail = undefined
    state.notice = REMOVED_NOTICE
  } else if (state.signIn !== undefined) {
    // Another final close while a token was tried (1008: its name is another user's): the form says why, instead
    // of "Checking the token…" for good.
    showForm(
      s,
      state.signIn.reason,
      state.authDetail ?? FINAL_CLOSES[code] ?? `The server closed the connection (${code}).`
    )
    state.authDetail = undefined
  }
}

/** What the form says, by why it is shown. */
export const signInPrompt = (reason: SignInReason, online: boolean): string => {
  switch (reason) {
    case "required":
      return "This chat needs you to sign in. Paste your sign-in token to connect."
    case "rejected":
      return "The server did not accept your sign-in token. Paste a new one to connect."
    case "expired":
      return online
        ? "Your sign-in expired — paste a new token to stay connected."
        : "Your sign-in expired and the server closed the connection — paste a new token to connect again."
  }
}
