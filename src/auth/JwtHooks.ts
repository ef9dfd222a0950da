/**
 * The JWT check as a `connect` hook: a presented token must verify, and becomes the connection's identity. A
 * connection that presents none is passed on as a guest; whether guests are welcome is the auth mode's decision
 * (`off`, `optional`, `required`), not this hook's, so the same hook serves every mode.
 */
import { Effect, Layer, Option } from "effect"
import { ChatHooks, HookRefusal, type Hooks } from "../server/ChatHooks.js"
import * as JwtVerifier from "./JwtVerifier.js"

/** Hooks with only `connect`: no token → a guest; a good token → its identity; a bad one → `unauthorized`. */
export const hooks = (verify: JwtVerifier.Verify): Hooks => ({
  connect: (request) =>
    request.token === undefined
      ? Effect.succeedNone
      : verify(request.token).pipe(
          Effect.map(Option.some),
          Effect.mapError((rejected) => new HookRefusal({ code: "unauthorized", message: rejected.reason }))
        )
})

/** The simple case, JWT hooks and nothing else; fails to build when the settings cannot verify anything. */
export const layer = (settings: JwtVerifier.JwtSettings): Layer.Layer<ChatHooks, JwtVerifier.AuthConfigError> =>
  ChatHooks.layerEffect(Effect.map(JwtVerifier.make(settings), (verify) => [hooks(verify)]))
