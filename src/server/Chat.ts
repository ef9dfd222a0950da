/**
 * The chat core as one service for the dialects: a session's lifecycle (`SessionLifecycle`: open, hand over, end)
 * and its requests (`SessionRequests`: send, join, leave, nick, direct, history, who).
 */
import { Context, Effect, Layer } from "effect"
import * as SessionLifecycle from "./SessionLifecycle.js"
import * as SessionRequests from "./SessionRequests.js"

export interface ChatService extends SessionLifecycle.SessionLifecycle, SessionRequests.SessionRequests {}

export class Chat extends Context.Tag("effect-chat/Chat")<Chat, ChatService>() {
  static layer = Layer.scoped(
    Chat,
    Effect.gen(function* () {
      const lifecycle = yield* SessionLifecycle.make
      const requests = yield* SessionRequests.make
      return Chat.of({ ...lifecycle, ...requests })
    })
  )
}
