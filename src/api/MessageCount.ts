/**
 * Messages published through this node since it started, for the admin page's messages-per-second chart (it polls
 * `GET /api/v1/stats` and draws the differences). Counted where every message passes whatever published it — the
 * hub — by wrapping the node's `Hub`, so the session path is untouched: one increment per message.
 */
import { Context, Effect, Layer } from "effect"
import { Hub } from "../backend/Hub.js"

export class MessageCount extends Context.Tag("effect-chat/MessageCount")<
  MessageCount,
  { readonly total: () => number }
>() {
  /** The hub in context, counting its publishes; provides both. */
  static layer: Layer.Layer<Hub | MessageCount, never, Hub> = Layer.effectContext(
    Effect.map(Hub, (hub) => {
      let total = 0
      const counted = Hub.of({
        ...hub,
        publish: (room, post) =>
          Effect.map(hub.publish(room, post), (message) => {
            total++
            return message
          })
      })
      return Context.make(Hub, counted).pipe(Context.add(MessageCount, { total: () => total }))
    })
  )
}
