/**
 * The pipeline an embedding application plugs into, like Ktor's plugins or Socket.IO's middleware: the chat core
 * calls these hooks at fixed points, and each may pass, change or refuse.
 *
 * - `connect`: from the upgrade request (headers, cookies, query, address, the token the client presented) to an
 *   identity, none (a guest), or a refusal. The built-in JWT check (`auth/JwtHooks`) is one implementation; an app
 *   can read its own session cookie instead.
 * - `authorize`: join, read (history, who), send and direct, per user and room.
 * - `beforeSend`: moderate a message before it gets an id: pass, rewrite the text, or refuse with a code.
 * - `afterPublish` and `presence`: observe numbered messages and users coming and going. They run on one fiber of
 *   their own, fed by a bounded queue, so a slow or failing observer never delays or loses a message for anyone.
 *
 * Hooks compose in order (`ChatHooks.layer(first, second, ...)`): the first `connect` that names an identity wins
 * and a refusal stops the chain, every `authorize` must pass, `beforeSend`s rewrite in turn, observers all see every
 * event. Without a `ChatHooks` in context everything is allowed, as in v1.
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import type * as Protocol from "../protocol/Protocol.js"
import type { Identity } from "./Identity.js"

/** What a `connect` hook sees of the connection: the upgrade request, and the token however it was presented. */
export interface ConnectRequest {
  readonly url: URL
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly ip: string
  /** `hello.token`, else `?token=`, else `Authorization: Bearer`; undefined when the client presented none. */
  readonly token: string | undefined
}

/** A hook's refusal: the code and message the client sees (`error` frame, or a close for `unauthorized`). */
export class HookRefusal extends Data.TaggedError("HookRefusal")<{
  readonly code: Protocol.ErrorCode
  readonly message: string
}> {}

/** What a user asks to do: `read` is history and `who`. */
export type Action = "join" | "read" | "send" | "direct"

export interface SendContext {
  /** The sender, or undefined for a guest. */
  readonly user: Identity | undefined
  readonly name: string
  readonly room: string
  readonly text: string
}

export interface Published {
  readonly message: Protocol.Message
  readonly user: Identity | undefined
}

export type PresenceEvent =
  /** A user's first connection is established (for guests: their session). */
  | { readonly _tag: "Online"; readonly name: string; readonly user: Identity | undefined }
  /** A user's last connection is gone. */
  | { readonly _tag: "Offline"; readonly name: string; readonly user: Identity | undefined }
  | { readonly _tag: "Joined"; readonly room: string; readonly name: string; readonly user: Identity | undefined }
  | { readonly _tag: "Left"; readonly room: string; readonly name: string; readonly user: Identity | undefined }

/** One layer of hooks; every point is optional. */
export interface Hooks {
  readonly connect?: (request: ConnectRequest) => Effect.Effect<Option.Option<Identity>, HookRefusal>
  /** `target` is the room, or for `direct` the recipient's name. */
  readonly authorize?: (user: Identity | undefined, action: Action, target: string) => Effect.Effect<void, HookRefusal>
  /** The text to publish (the same, or rewritten), or a refusal. */
  readonly beforeSend?: (message: SendContext) => Effect.Effect<string, HookRefusal>
  readonly afterPublish?: (published: Published) => Effect.Effect<void, unknown>
  readonly presence?: (event: PresenceEvent) => Effect.Effect<void, unknown>
}

/**
 * The composed pipeline the core calls. A point no layer fills is undefined, so the hot path pays nothing for it.
 */
export interface ChatHooksService {
  readonly connect: ((request: ConnectRequest) => Effect.Effect<Option.Option<Identity>, HookRefusal>) | undefined
  readonly authorize:
    ((user: Identity | undefined, action: Action, target: string) => Effect.Effect<void, HookRefusal>) | undefined
  readonly beforeSend: ((message: SendContext) => Effect.Effect<string, HookRefusal>) | undefined
  /** Observers of published messages and presence, in layer order; run off the delivery path. */
  readonly afterPublish: ReadonlyArray<NonNullable<Hooks["afterPublish"]>>
  readonly presence: ReadonlyArray<NonNullable<Hooks["presence"]>>
}

const defined = <A>(values: ReadonlyArray<A | undefined>): Array<A> => values.filter((v): v is A => v !== undefined)

/** Several layers of hooks as one pipeline, in order. */
export const compose = (layers: ReadonlyArray<Hooks>): ChatHooksService => {
  const connects = defined(layers.map((h) => h.connect))
  const authorizers = defined(layers.map((h) => h.authorize))
  const moderators = defined(layers.map((h) => h.beforeSend))
  return {
    connect:
      connects.length === 0
        ? undefined
        : (request) =>
            Effect.suspend(() => {
              const next = (i: number): Effect.Effect<Option.Option<Identity>, HookRefusal> =>
                i >= connects.length
                  ? Effect.succeedNone
                  : Effect.flatMap(connects[i]!(request), (found) =>
                      Option.isSome(found) ? Effect.succeed(found) : next(i + 1)
                    )
              return next(0)
            }),
    authorize:
      authorizers.length === 0
        ? undefined
        : authorizers.length === 1
          ? authorizers[0]
          : (user, action, target) =>
              Effect.forEach(authorizers, (check) => check(user, action, target), { discard: true }),
    beforeSend:
      moderators.length === 0
        ? undefined
        : moderators.length === 1
          ? moderators[0]
          : (message) => Effect.reduce(moderators, message.text, (text, moderate) => moderate({ ...message, text })),
    afterPublish: defined(layers.map((h) => h.afterPublish)),
    presence: defined(layers.map((h) => h.presence))
  }
}

export class ChatHooks extends Context.Tag("effect-chat/ChatHooks")<ChatHooks, ChatHooksService>() {
  /** Everything allowed, nothing observed: v1. */
  static permissive: ChatHooksService = compose([])
  /** These layers of hooks, in order. */
  static layer = (...layers: ReadonlyArray<Hooks>): Layer.Layer<ChatHooks> => Layer.succeed(ChatHooks, compose(layers))
  /** Hooks built by an effect, e.g. from the application's own services (its database, its session store). */
  static layerEffect = <E, R>(make: Effect.Effect<ReadonlyArray<Hooks>, E, R>): Layer.Layer<ChatHooks, E, R> =>
    Layer.effect(ChatHooks, Effect.map(make, compose))
}

/** The hooks in context, or the permissive ones. */
export const current: Effect.Effect<ChatHooksService> = Effect.map(
  Effect.serviceOption(ChatHooks),
  Option.getOrElse(() => ChatHooks.permissive)
)
