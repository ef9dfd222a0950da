/**
 * A chat client as a service for other Effect programs: the terminal client, bots, tests.
 *
 * It speaks the JSON dialect (`effect-chat.v1`), one `Connection` at a time. A lost connection is retried on a
 * `Schedule` (by default the shared `ReconnectPolicy`) and the session resumed with the token of the last `welcome`
 * (`SessionState`); messages already delivered are never delivered twice (`Seen`), a repeated one that changed
 * meanwhile comes as its changes (`edited`, `deleted`, `reaction`), and the request still waiting for
 * its answer is sent again, with the same `ref`, on the new connection (`Requests`). Only the first connection
 * failing is an error of the layer: after one successful session the client keeps reconnecting until it is closed
 * or the server ends the session.
 *
 * The chat features (replies, typing, edits, reactions, read markers) are asked for in every `hello` (all by default)
 * and arrive as events of their own; their requests queue with the others, so an edit, a delete, a reaction or a
 * read marker is retried like a send, never dropped. Typing is the exception: a hint that is stale a second later,
 * it is written on the open connection or not at all, and never again.
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Random,
  Runtime,
  Schedule,
  Stream
} from "effect"
import * as Protocol from "../protocol/Protocol.js"
import { type Feature, FEATURES, isFeature, TYPING_INTERVAL_MS } from "../protocol/Rules.js"
import { ChatClientError, closedError } from "./ChatClientError.js"
import * as Connection from "./Connection.js"
import * as EventFeed from "./EventFeed.js"
import { backoffDelay, type BackoffOptions, isFinalClose } from "./ReconnectPolicy.js"
import * as Requests from "./Requests.js"
import * as Seen from "./Seen.js"
import * as SessionState from "./SessionState.js"

export { ChatClientError } from "./ChatClientError.js"

export type Welcome = typeof Protocol.Welcome.Type
export type { Feature } from "../protocol/Rules.js"

/** What happens to the connection, interleaved with the server's frames in `ChatClient.events`. */
export type ConnectionEvent =
  | { readonly type: "connecting"; readonly url: string }
  /** `reconnected` is false for the first connection of this client. */
  | { readonly type: "connected"; readonly welcome: Welcome; readonly resumed: boolean; readonly reconnected: boolean }
  | { readonly type: "disconnected"; readonly code: number; readonly reason: string }
  | { readonly type: "reconnecting"; readonly attempt: number; readonly delay: Duration.Duration }
  /** The last event: the client was closed, or the server ended the session (for example 4009, taken over). */
  | { readonly type: "closed"; readonly code: number; readonly reason: string }

/**
 * Server frames as they reach the user: `welcome` becomes `connected`, answers to this client's own requests
 * (`ack`, `pong`, and `error`/`members`/`history` carrying one of its refs) go to the request instead, and
 * `message`/`history` frames only hold messages not delivered before (one delivered before that a later history shows
 * changed, after a reconnect that could not resume, comes as `edited`/`deleted`/`reaction` events instead, for the
 * features the connection has). With the features on, the events also hold
 * `typing`, `edited`, `deleted`, `reaction` and `unread` frames, and messages carry `reply_to`, `edited`, `deleted`
 * and `reactions`.
 */
export type ChatEvent = Exclude<Protocol.ServerFrame, { readonly type: "welcome" | "ack" | "pong" }> | ConnectionEvent

export interface ChatClientOptions {
  /** e.g. `ws://localhost:8080/chat` */
  readonly url: string
  /** The name to ask for; the server assigns one when absent, invalid or taken. */
  readonly name?: string | undefined
  /** Rooms to join; the server's default is `["lobby"]`. */
  readonly rooms?: ReadonlyArray<string> | undefined
  /** Delays between reconnection attempts; it restarts after every successful connection. */
  readonly reconnect?: Schedule.Schedule<unknown, unknown> | undefined
  /** How long opening the socket and getting the `welcome` may take. Default 10 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Ping interval: a server that has not answered a ping by the next one is taken for dead and the client
   * reconnects. Default 30 s, as on the server.
   */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** A JWT for servers with `--auth`: sent in every `hello` (a resume needs it too). */
  readonly token?: string | undefined
  /**
   * Fetches a new token when the server says the current one expired (`token_expired`); the client then sends
   * `refresh` with it. Without it the server closes the connection with 4001 after its grace.
   */
  readonly onTokenExpired?: Effect.Effect<string, unknown> | undefined
  /**
   * The event types to ask for in `hello` (default: all of `Rules.FEATURES`); `features` says what the server
   * enabled. Requests of a feature work without it: only its events stay away.
   */
  readonly features?: ReadonlyArray<Feature> | undefined
}

export interface SendOptions {
  /** The id of the message of the same room this one answers (`no_such_message` if the room never had it). */
  readonly replyTo?: number | undefined
}

export interface ChatClientService {
  /**
   * Everything that happens, in order, ending with `closed`. The first stream run from `events` starts at the
   * client's first `connecting` (the client buffers events for it until then, so a program should run it); later
   * ones start when they are run.
   */
  readonly events: Stream.Stream<ChatEvent>
  /** The session's current name and rooms. */
  readonly session: Effect.Effect<{ readonly name: string; readonly rooms: ReadonlyArray<string> }>
  /** The features the server enabled for the current (or last) connection: its `welcome.features`. */
  readonly features: Effect.Effect<ReadonlyArray<Feature>>
  /** Says `text` in `room`; completes with the message's id once the server acknowledged it. */
  readonly send: (room: string, text: string, options?: SendOptions) => Effect.Effect<number, ChatClientError>
  /** `send` answering message `replyTo` of the same room. */
  readonly reply: (room: string, replyTo: number, text: string) => Effect.Effect<number, ChatClientError>
  /**
   * Queues `text` for `room` and returns the wait for its id. Requests go out one at a time in the order they were
   * made, also while disconnected (they wait for the next connection); one whose answer was lost is sent again,
   * with the same ref, until the server answers it. Refused with `rate_limited`, it is retried after a pause.
   */
  readonly submit: (
    room: string,
    text: string,
    options?: SendOptions
  ) => Effect.Effect<Effect.Effect<number, ChatClientError>, ChatClientError>
  readonly direct: (to: string, text: string) => Effect.Effect<void, ChatClientError>
  readonly join: (room: string) => Effect.Effect<void, ChatClientError>
  readonly leave: (room: string) => Effect.Effect<void, ChatClientError>
  readonly nick: (name: string) => Effect.Effect<void, ChatClientError>
  readonly who: (room: string) => Effect.Effect<ReadonlyArray<string>, ChatClientError>
  readonly history: (
    room: string,
    options?: { readonly before?: number | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<typeof Protocol.History.Type, ChatClientError>
  /**
   * Gives the server a new token of the same user (`refresh`), and uses it for later connections. Refused with
   * `unauthorized` when the server does not take it.
   */
  readonly refresh: (token: string) => Effect.Effect<void, ChatClientError>
  /**
   * Tells the room's other members that this user is typing. Written at once on the open connection, ahead of
   * queued requests, at most once a second per room (`Rules.TYPING_INTERVAL_MS`, what the server passes); never
   * queued or retried. True once the server acknowledged it; false when it was not written (too soon after the last
   * one, no connection) or the connection was lost before the answer. Refused (`not_in_room`, `forbidden`,
   * `rate_limited`): `Rejected` with the code.
   */
  readonly typing: (room: string) => Effect.Effect<boolean, ChatClientError>
  /** Replaces the text of one's own message `id` (`forbidden` for another's, `no_such_message` when unknown). */
  readonly edit: (room: string, id: number, text: string) => Effect.Effect<void, ChatClientError>
  /** Takes back one's own message `id` for good (`forbidden`, `no_such_message` as for `edit`). */
  readonly delete: (room: string, id: number) => Effect.Effect<void, ChatClientError>
  /** Adds (`on`) or removes this user's `emoji` on message `id` (`too_many_reactions` past 20 distinct emoji). */
  readonly react: (room: string, id: number, emoji: string, on: boolean) => Effect.Effect<void, ChatClientError>
  /** Moves this user's read marker in `room` forward to `id` (never back); `unread` events follow. */
  readonly markRead: (room: string, id: number) => Effect.Effect<void, ChatClientError>
  /** Closes with 1000, which ends the session on the server. Requests still unanswered fail with `Closed`. */
  readonly close: Effect.Effect<void>
}

/**
 * Default reconnection delays, `ReconnectPolicy.backoffDelay` as a `Schedule`: 250 ms doubling up to 10 s, each
 * randomised by ±20 % (with Effect's `Random`) so clients spread out.
 */
export const reconnectSchedule = (options?: {
  readonly initialDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
}): Schedule.Schedule<unknown, unknown> => {
  const backoff: BackoffOptions = {
    ...(options?.initialDelay !== undefined ? { initialMs: Duration.toMillis(options.initialDelay) } : {}),
    ...(options?.maxDelay !== undefined ? { maxMs: Duration.toMillis(options.maxDelay) } : {})
  }
  return Schedule.addDelayEffect(Schedule.forever, (attempt) =>
    Effect.map(Random.next, (random) => Duration.millis(backoffDelay(attempt, backoff, () => random)))
  )
}

export class ChatClient extends Context.Tag("effect-chat/ChatClient")<ChatClient, ChatClientService>() {
  /** Connects when built (failing with `Connect` if the first connection fails) and closes with its scope. */
  static layer = (options: ChatClientOptions): Layer.Layer<ChatClient, ChatClientError> =>
    Layer.scoped(ChatClient, make(options))
}

const make = (options: ChatClientOptions) =>
  Effect.gen(function* () {
    const url = options.url
    const feed = EventFeed.make<ChatEvent>((event) => event.type === "closed")
    // The token refresh's fibers end with the client: forked into its scope (a FiberSet per client costs a load
    // generator of thousands of clients 3 KB each, for a fiber that most clients never start).
    const clientScope = yield* Effect.scope
    const runtime = yield* Effect.runtime<never>()
    const runFork = <A, E>(effect: Effect.Effect<A, E>) => Runtime.runFork(runtime)(effect, { scope: clientScope })
    const firstWelcome = yield* Deferred.make<Welcome, ChatClientError>()
    const seen = Seen.make()
    const requests = Requests.make()
    const state = SessionState.make(options)

    let everWelcomed = false
    /** The socket being opened or in use, so that `close` can close it. */
    let current: Connection.Link | undefined
    let closing = false
    let final: ConnectionEvent | undefined
    let token = options.token
    const asked = options.features ?? FEATURES
    let enabled: ReadonlyArray<Feature> = []
    /** When the last typing hint of each room was written. */
    const typedAt = new Map<string, number>()
    /** A token fetch under way after `token_expired`, so a second notice does not start another. */
    let refreshing = false

    const publish = feed.publish

    /** Ends the client once: fails what is still unanswered and publishes `closed`. */
    const finish = (code: number, reason: string) => {
      if (final !== undefined) return
      final = { type: "closed", code, reason }
      requests.failAll(closedError(`connection closed (${code}${reason ? `: ${reason}` : ""})`))
      publish(final)
    }

    const onWelcome = (welcome: Welcome, write: Requests.Write) => {
      publish({ type: "connected", welcome, resumed: welcome.resumed, reconnected: everWelcomed })
      everWelcomed = true
      state.welcomed(welcome)
      enabled = (welcome.features ?? []).filter(isFeature)
      Deferred.unsafeDone(firstWelcome, Exit.succeed(welcome))
      requests.attach(write)
    }

    const onFrame = (frame: Protocol.ServerFrame) => {
      if (frame.type === "error" && frame.code === "token_expired" && frame.ref === undefined) renewToken()
      switch (frame.type) {
        case "welcome":
          return
        case "ack":
        case "pong":
          return void requests.settle(frame.ref, frame)
        case "error":
        case "members":
        case "history":
          if (requests.settle(frame.ref, frame)) return
      }
      state.observe(frame)
      switch (frame.type) {
        case "history": {
          const messages: Array<Protocol.Message> = []
          const changes: Array<Protocol.Change> = []
          for (const message of frame.messages) {
            if (seen.admit(message)) messages.push(message)
            else changes.push(...seen.changes(message, { now: Date.now(), reactions: enabled.includes("reactions") }))
          }
          if (messages.length > 0) publish({ ...frame, messages })
          // Only the kinds of change this connection asked to be told about.
          return changes
            .filter((change) => enabled.includes(change.type === "reaction" ? "reactions" : "edits"))
            .forEach(publish)
        }
        case "message":
          return seen.admit(frame) ? publish(frame) : undefined
        case "edited":
        case "deleted":
        case "reaction":
          seen.track(frame)
          return publish(frame)
        default:
          return publish(frame)
      }
    }

    const connection = Effect.suspend(() => {
      publish({ type: "connecting", url })
      return Connection.run({
        url,
        connectTimeout: Duration.decode(options.connectTimeout ?? "10 seconds"),
        heartbeat: Duration.decode(options.heartbeat ?? "30 seconds"),
        hello: () => {
          const hello = state.hello(seen.since)
          return {
            ...hello,
            ...(asked.length > 0 ? { features: [...asked] } : {}),
            ...(token !== undefined ? { token } : {})
          }
        },
        onSocket: (link) => {
          current = link
        },
        onWelcome,
        onFrame
      })
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          requests.detach()
          current = undefined
        })
      )
    )

    let attempt = 0
    const schedule = (options.reconnect ?? reconnectSchedule()).pipe(
      Schedule.delays,
      // Runs before the delay is slept, so the event tells the user how long the wait is.
      Schedule.tapOutput((delay) => Effect.sync(() => publish({ type: "reconnecting", attempt: ++attempt, delay })))
    )

    const connectionLoop = Effect.gen(function* () {
      const driver = yield* Schedule.driver(schedule)
      while (true) {
        const end = yield* connection
        if (closing) return
        if (!everWelcomed) {
          const message = `Cannot connect to ${url}: ${end.error}`
          Deferred.unsafeDone(
            firstWelcome,
            Exit.fail(new ChatClientError({ reason: "Connect", message, closeCode: end.code }))
          )
          return finish(end.code, end.error ?? "")
        }
        if (end.welcomed) {
          publish({ type: "disconnected", code: end.code, reason: end.reason })
          if (isFinalClose(end.code)) return finish(end.code, end.reason)
          attempt = 0
          yield* driver.reset
        }
        const next = yield* Effect.option(driver.next(undefined))
        if (Option.isNone(next)) return finish(end.code, "gave up reconnecting")
      }
    })

    const request = (frame: Requests.Request) =>
      Effect.suspend(() =>
        final !== undefined || closing
          ? Effect.fail(closedError("the client is closed"))
          : Effect.succeed(Deferred.await(requests.add(frame)))
      )
    const ask = (frame: Requests.Request) => Effect.flatten(request(frame))

    const refresh = (next: string) =>
      Effect.asVoid(ask({ type: "refresh", token: next })).pipe(Effect.tap(() => Effect.sync(() => (token = next))))

    /** After `token_expired`: fetch a new token with the user's effect and refresh; a failure is left to the close. */
    const renewToken = () => {
      const fetch = options.onTokenExpired
      if (fetch === undefined || refreshing) return
      refreshing = true
      runFork(
        Effect.flatMap(fetch, refresh).pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("could not refresh the token", cause)),
          Effect.ensuring(Effect.sync(() => (refreshing = false)))
        )
      )
    }

    const close = Effect.gen(function* () {
      if (closing) return
      closing = true
      if (current?.closeIfOpen(Protocol.CloseCode.normal)) {
        yield* Fiber.await(loop).pipe(Effect.timeout("2 seconds"), Effect.ignore)
      }
      yield* Fiber.interrupt(loop)
      finish(Protocol.CloseCode.normal, "closed by the client")
    })

    const loop = yield* Effect.forkScoped(connectionLoop)
    // Added after the fork, so it runs first: the close handshake happens while the loop still reads the socket.
    yield* Effect.addFinalizer(() => close)
    yield* Deferred.await(firstWelcome)

    const submit = (room: string, text: string, options?: SendOptions) =>
      Effect.map(
        request(
          options?.replyTo === undefined
            ? { type: "send", room, text }
            : { type: "send", room, text, reply_to: options.replyTo }
        ),
        Effect.flatMap(messageId)
      )
    const send = (room: string, text: string, options?: SendOptions) => Effect.flatten(submit(room, text, options))

    const typing = (room: string) =>
      Effect.gen(function* () {
        if (final !== undefined || closing) return yield* Effect.fail(closedError("the client is closed"))
        const now = yield* Clock.currentTimeMillis
        const last = typedAt.get(room)
        if (last !== undefined && now - last < TYPING_INTERVAL_MS) return false
        // Beside the queue, on this connection only: a hint held back or sent again would be stale.
        const answer = requests.now({ type: "typing", room })
        if (answer === undefined) return false
        typedAt.set(room, now)
        return yield* Deferred.await(answer).pipe(
          Effect.as(true),
          // The connection went before the answer: the hint may be lost, and that is all.
          Effect.catchIf(
            (error) => error.reason === "Closed" && final === undefined,
            () => Effect.succeed(false)
          )
        )
      })

    return ChatClient.of({
      events: feed.stream,
      session: Effect.sync(() => ({ name: state.name() ?? "", rooms: state.rooms() ?? [] })),
      features: Effect.sync(() => enabled),
      submit,
      send,
      reply: (room, replyTo, text) => send(room, text, { replyTo }),
      typing,
      edit: (room, id, text) => Effect.asVoid(ask({ type: "edit", room, id, text })),
      delete: (room, id) => Effect.asVoid(ask({ type: "delete", room, id })),
      react: (room, id, emoji, on) => Effect.asVoid(ask({ type: "react", room, id, emoji, on })),
      markRead: (room, id) => Effect.asVoid(ask({ type: "read", room, id })),
      direct: (to, text) => Effect.asVoid(ask({ type: "direct", to, text })),
      join: (room) => Effect.map(ask({ type: "join", room }), () => state.joined(room)),
      leave: (room) => Effect.map(ask({ type: "leave", room }), () => state.left(room)),
      nick: (name) => Effect.map(ask({ type: "nick", name }), () => state.renamed(name)),
      who: (room) =>
        Effect.flatMap(ask({ type: "who", room }), (frame) => expect(frame, "members")).pipe(
          Effect.map((members) => members.names)
        ),
      history: (room, options) =>
        Effect.flatMap(ask({ type: "history", room, ...options }), (frame) => expect(frame, "history")),
      refresh,
      close
    })
  })

/** The answer of a request that has its own frame type; anything else breaks the protocol. */
const expect = <T extends Protocol.ServerFrame["type"]>(
  frame: Protocol.ServerFrame,
  type: T
): Effect.Effect<Extract<Protocol.ServerFrame, { readonly type: T }>> =>
  frame.type === type
    ? Effect.succeed(frame as Extract<Protocol.ServerFrame, { readonly type: T }>)
    : Effect.die(new Error(`expected a ${type} frame, got ${frame.type}`))

const messageId = (frame: Protocol.ServerFrame): Effect.Effect<number> =>
  frame.type === "ack" && frame.id !== undefined
    ? Effect.succeed(frame.id)
    : Effect.die(new Error("the server acknowledged a send without a message id"))
