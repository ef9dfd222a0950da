/**
 * A chat client as a service for other Effect programs: the terminal client, bots, tests.
 *
 * It speaks the JSON dialect (`effect-chat.v1`), one `Connection` at a time. A lost connection is retried on a
 * `Schedule` (by default the shared `ReconnectPolicy`) and the session resumed with the token of the last `welcome`
 * (`SessionState`); messages already delivered are never delivered twice (`Seen`), and the request still waiting for
 * its answer is sent again, with the same `ref`, on the new connection (`Requests`). Only the first connection
 * failing is an error of the layer: after one successful session the client keeps reconnecting until it is closed
 * or the server ends the session.
 */
import {
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  FiberSet,
  Layer,
  Option,
  PubSub,
  Random,
  Schedule,
  Stream
} from "effect"
import * as Protocol from "../protocol/Protocol.js"
import { ChatClientError, closedError } from "./ChatClientError.js"
import * as Connection from "./Connection.js"
import { backoffDelay, type BackoffOptions, isFinalClose } from "./ReconnectPolicy.js"
import * as Requests from "./Requests.js"
import * as Seen from "./Seen.js"
import * as SessionState from "./SessionState.js"

export { ChatClientError } from "./ChatClientError.js"

export type Welcome = typeof Protocol.Welcome.Type

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
 * `message`/`history` frames only hold messages not delivered before.
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
  /** Says `text` in `room`; completes with the message's id once the server acknowledged it. */
  readonly send: (room: string, text: string) => Effect.Effect<number, ChatClientError>
  /**
   * Queues `text` for `room` and returns the wait for its id. Requests go out one at a time in the order they were
   * made, also while disconnected (they wait for the next connection); one whose answer was lost is sent again,
   * with the same ref, until the server answers it. Refused with `rate_limited`, it is retried after a pause.
   */
  readonly submit: (
    room: string,
    text: string
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
    const hub = yield* PubSub.unbounded<ChatEvent>()
    const runFork = yield* FiberSet.makeRuntime<never>()
    const firstSubscription = yield* PubSub.subscribe(hub)
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
    /** A token fetch under way after `token_expired`, so a second notice does not start another. */
    let refreshing = false

    const publish = (event: ChatEvent) => void hub.unsafeOffer(event)

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
          const messages = frame.messages.filter((message) => seen.admit(message))
          return messages.length > 0 ? publish({ ...frame, messages }) : undefined
        }
        case "message":
          return seen.admit(frame) ? publish(frame) : undefined
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
          return token === undefined ? hello : { ...hello, token }
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

    let firstTaken = false
    const events: Stream.Stream<ChatEvent> = Stream.unwrapScoped(
      Effect.gen(function* () {
        if (final !== undefined) return Stream.make(final)
        const dequeue = firstTaken ? yield* PubSub.subscribe(hub) : firstSubscription
        firstTaken = true
        return Stream.fromQueue(dequeue)
      })
    ).pipe(Stream.takeUntil((event) => event.type === "closed"))

    const submit = (room: string, text: string) =>
      Effect.map(request({ type: "send", room, text }), Effect.flatMap(messageId))

    return ChatClient.of({
      events,
      session: Effect.sync(() => ({ name: state.name() ?? "", rooms: state.rooms() ?? [] })),
      submit,
      send: (room, text) => Effect.flatten(submit(room, text)),
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
