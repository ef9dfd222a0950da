/**
 * Whether a user may do something in a room: the identity's `rooms` patterns first (the built-in rule a JWT's
 * `rooms` claim sets), then every `authorize` hook. Nothing to check (a guest, no hook) costs nothing: `permit`
 * returns undefined, so the send path adds no effect.
 */
import { Effect } from "effect"
import type { Action, ChatHooksService } from "./ChatHooks.js"
import { type ChatError, fail, fromRefusal, truncate } from "./ChatError.js"
import type { Connection } from "./Connection.js"
import { roomAllowed } from "./Identity.js"

const verbs: Record<Action, string> = { join: "join", read: "read", send: "post in", direct: "message" }

/** The refusal of `action` on `target` (a room, or for `direct` a name), undefined when there is nothing to ask. */
export const permit = (
  hooks: ChatHooksService,
  connection: Connection,
  action: Action,
  target: string
): Effect.Effect<void, ChatError> | undefined => {
  const identity = connection.identity
  if (action !== "direct" && identity?.rooms !== undefined && !roomAllowed(identity.rooms, target)) {
    return fail("forbidden", `you may not ${verbs[action]} ${truncate(target)}`)
  }
  if (hooks.authorize === undefined) return undefined
  return Effect.mapError(hooks.authorize(identity, action, target), fromRefusal)
}
