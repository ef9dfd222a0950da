/**
 * A chat client as a service for other Effect programs: the terminal client, bots, tests.
 *
 * It speaks the JSON dialect (`effect-chat.v1`) over `ws`, driven directly in a scope per connection so that every
 * close code and socket error is visible. A lost connection is retried on a `Schedule` (exponential backoff with
 * jitter) and the session resumed with the token of the last `welcome`; messages already delivered are never
 * delivered twice, and the request still waiting for its answer is sent again, with the same `ref`, on the new
 * connection. Only the first connection failing is an error of the layer: after one successful session the client
 * keeps reconnecting until it is closed.
 */
import {
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberId,
  Layer,
  Option,
  PubSub,
  Queue,
  Schedule,
  Stream
} from "effect"
import WebSocket from "ws"
import * as Heartbeat from "./Heartbeat.js"
import * as Protocol from "../protocol/Protocol.js"

/**
 * - `Connect`: the first connection could not be opened or did not get a `welcome`.
 * - `Rejected`: the server answered a request with an `error` frame (`code` is its error code).
 * - `Closed`: the client was closed, or the server ended the session, before the request was answered.
 */
export class ChatClientError extends Data.TaggedError("ChatClientError")<{
  readonly reason: "Connect" | "Rejected" | "Closed"
  readonly message: string
  readonly code?: string | undefined
}> {}

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
  /** Closes with 1000, which ends the session on the server. Requests still unanswered fail with `Closed`. */
  readonly close: Effect.Effect<void>
}

/** Default reconnection delays: 250 ms doubling up to 10 s, each randomised by ±20 % so clients spread out. */
export const reconnectSchedule = (options?: {
  readonly initialDelay?: Duration.DurationInput
  readonly maxDelay?: Duration.DurationInput
}): Schedule.Schedule<unknown, unknown> => {
  const max = Duration.decode(options?.maxDelay ?? "10 seconds")
  return Schedule.exponential(options?.initialDelay ?? "250 millis").pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, max)),
    Schedule.jittered
  )
}

export class ChatClient extends Context.Tag("effect-chat/ChatClient")<ChatClient, ChatClientService>() {
  /** Connects when built (failing with `Connect` if the first connection fails) and closes with its scope. */
  static layer = (options: ChatClientOptions): Layer.Layer<ChatClient, ChatClientError> =>
    Layer.scoped(ChatClient, make(options))
}

// ---------------------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------------------

/** Close codes after which reconnecting is pointless: a normal close, a policy violation, a takeover. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  Protocol.CloseCode.normal,
  Protocol.CloseCode.unsupportedData,
  Protocol.CloseCode.policy,
  Protocol.CloseCode.tooLarge,
  Protocol.CloseCode.takenOver
])

const SEEN_PER_ROOM = 1000
const THROTTLE_MIN_MS = 100
const THROTTLE_MAX_MS = 2000

/**
 * Messages already delivered. A message is known by (room, id, at): ids let a resume say where to continue, and
 * the timestamp tells a restarted server, which numbers its rooms from 1 again, from a repeat of a known message.
 */
class Seen {
  private readonly rooms = new Map<string, Map<number, number>>()
  private readonly latest = new Map<string, number>()

  /** True the first time a message is seen. */
  admit(message: Protocol.Message): boolean {
    let ids = this.rooms.get(message.room)
    if (ids === undefined) this.rooms.set(message.room, (ids = new Map()))
    if (ids.get(message.id) === message.at) return false
    ids.delete(message.id)
    ids.set(message.id, message.at)
    if (ids.size > SEEN_PER_ROOM) ids.delete(ids.keys().next().value!)
    this.latest.set(message.room, message.id)
    return true
  }

  /** The `since` of a resume: per room, the id of the last message delivered (0: none yet). */
  since(rooms: ReadonlyArray<string>): Record<string, number> {
    return Object.fromEntries(rooms.map((room) => [room, this.latest.get(room) ?? 0]))
  }
}

type SocketEvent =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Error"; readonly error: Error }
  | { readonly _tag: "Close"; readonly code: number; readonly reason: string }

/** How one connection ended; `error` says why for a person (used when the first connection fails). */
interface SessionEnd {
  readonly welcomed: boolean
  readonly code: number
  readonly reason: string
  readonly error?: string | undefined
}

interface Pending {
  readonly ref: string
  readonly frame: Protocol.ClientFrame
  readonly answer: Deferred.Deferred<Protocol.ServerFrame, ChatClientError>
}

/**
 * Requests in the order they were made. Only the first is on the wire, once per connection, until answered
 * (stop-and-wait): the order holds when the server refuses one with `rate_limited`, which is sent again after a
 * pause, and a request whose answer was lost goes out again on the next connection with the same ref, which the
 * server answers without doing it twice.
 */
class Requests {
  private readonly queue: Array<Pending> = []
  private socket: WebSocket | undefined
  private written: Pending | undefined
  private throttle: ReturnType<typeof setTimeout> | undefined
  private throttleDelay = THROTTLE_MIN_MS
  private counter = 0
  private readonly prefix = Math.random().toString(36).slice(2, 8)

  /** The welcomed socket to write to, or none while disconnected. */
  attach(socket: WebSocket | undefined): void {
    this.socket = socket
    this.written = undefined
    this.pump()
  }

  detach(socket: WebSocket): void {
    if (this.socket === socket) this.socket = undefined
  }

  add(frame: Request): Deferred.Deferred<Protocol.ServerFrame, ChatClientError> {
    const ref = `${this.prefix}-${(this.counter++).toString(36)}`
    const answer = Deferred.unsafeMake<Protocol.ServerFrame, ChatClientError>(FiberId.none)
    this.queue.push({ ref, frame: { ...frame, ref } as Protocol.ClientFrame, answer })
    this.pump()
    return answer
  }

  /** Completes the request `ref` names with `frame`; false when it is not the answer to one of ours. */
  settle(ref: string | undefined, frame: Protocol.ServerFrame): boolean {
    const index = ref === undefined ? -1 : this.queue.findIndex((request) => request.ref === ref)
    if (index === -1) return false
    const request = this.queue[index]!
    if (this.written === request) this.written = undefined
    if (frame.type === "error" && frame.code === "rate_limited") {
      clearTimeout(this.throttle)
      this.throttle = setTimeout(() => {
        this.throttle = undefined
        this.pump()
      }, this.throttleDelay)
      this.throttleDelay = Math.min(this.throttleDelay * 2, THROTTLE_MAX_MS)
      return true
    }
    this.throttleDelay = THROTTLE_MIN_MS
    this.queue.splice(index, 1)
    this.pump()
    Deferred.unsafeDone(
      request.answer,
      frame.type === "error"
        ? Exit.fail(new ChatClientError({ reason: "Rejected", code: frame.code, message: frame.message }))
        : Exit.succeed(frame)
    )
    return true
  }

  failAll(error: ChatClientError): void {
    clearTimeout(this.throttle)
    for (const { answer } of this.queue.splice(0)) Deferred.unsafeDone(answer, Exit.fail(error))
  }

  private pump(): void {
    const head = this.queue[0]
    if (this.socket === undefined || head === undefined || this.written === head || this.throttle !== undefined) return
    this.written = head
    this.socket.send(Protocol.encode(head.frame))
  }
}

/** A client request without its ref, which `Requests` adds. */
type Request = Protocol.ClientFrame extends infer F
  ? F extends { readonly ref?: unknown }
    ? Omit<F, "ref">
    : never
  : never

const closedError = (message: string) => new ChatClientError({ reason: "Closed", message })

const make = (options: ChatClientOptions) =>
  Effect.gen(function* () {
    const url = options.url
    const connectTimeout = Duration.toMillis(options.connectTimeout ?? "10 seconds")
    const hub = yield* PubSub.unbounded<ChatEvent>()
    const firstSubscription = yield* PubSub.subscribe(hub)
    const firstWelcome = yield* Deferred.make<Welcome, ChatClientError>()
    const seen = new Seen()
    const requests = new Requests()

    let name = options.name
    let rooms: ReadonlyArray<string> | undefined = options.rooms
    let token: string | undefined
    let everWelcomed = false
    /** The socket being opened or in use, so that `close` can close it. */
    let current: WebSocket | undefined
    let closing = false
    let final: ConnectionEvent | undefined

    const publish = (event: ChatEvent) => void hub.unsafeOffer(event)

    /** Ends the client once: fails what is still unanswered and publishes `closed`. */
    const finish = (code: number, reason: string) => {
      if (final !== undefined) return
      final = { type: "closed", code, reason }
      requests.failAll(closedError(`connection closed (${code}${reason ? `: ${reason}` : ""})`))
      publish(final)
    }

    const hello = (): Protocol.Hello => ({
      type: "hello",
      // A name assigned by the server (`user<digits>`) cannot be asked for again.
      ...(name !== undefined && (token === undefined || Protocol.isValidName(name)) ? { name } : {}),
      ...(rooms !== undefined ? { rooms } : {}),
      ...(token !== undefined ? { resume: { token, since: seen.since(rooms ?? []) } } : {})
    })

    const onWelcome = (welcome: Welcome, ws: WebSocket) => {
      publish({ type: "connected", welcome, resumed: welcome.resumed, reconnected: everWelcomed })
      everWelcomed = true
      token = welcome.resume
      name = welcome.name
      rooms = welcome.rooms
      Deferred.unsafeDone(firstWelcome, Exit.succeed(welcome))
      requests.attach(ws)
    }

    const isMe = (other: string) => name !== undefined && Protocol.nameKey(other) === Protocol.nameKey(name)

    const onFrame = (frame: Protocol.ServerFrame) => {
      switch (frame.type) {
        case "welcome":
          return
        case "ack":
        case "pong":
          return void requests.settle(frame.ref, frame)
        case "error":
          return requests.settle(frame.ref, frame) ? undefined : publish(frame)
        case "members":
          if (requests.settle(frame.ref, frame)) return
          // Unasked for: it follows a join.
          if (!rooms?.includes(frame.room)) rooms = [...(rooms ?? []), frame.room]
          return publish(frame)
        case "history": {
          if (requests.settle(frame.ref, frame)) return
          const messages = frame.messages.filter((message) => seen.admit(message))
          return messages.length > 0 ? publish({ ...frame, messages }) : undefined
        }
        case "message":
          return seen.admit(frame) ? publish(frame) : undefined
        case "renamed":
          if (isMe(frame.from)) name = frame.to
          return publish(frame)
        case "left":
          if (isMe(frame.name)) rooms = rooms?.filter((room) => room !== frame.room)
          return publish(frame)
        default:
          return publish(frame)
      }
    }

    /** One connection: open, `hello`, `welcome`, then frames until it closes. Never fails. */
    const runSession: Effect.Effect<SessionEnd> = Effect.gen(function* () {
      publish({ type: "connecting", url })
      const inbox = yield* Queue.unbounded<SocketEvent>()
      const opened = Either.try(() => openSocket(url, inbox))
      if (Either.isLeft(opened)) return { welcomed: false, code: 1006, reason: "", error: describeError(opened.left) }
      const ws = opened.right
      current = ws
      const heartbeat = Heartbeat.make({
        interval: Duration.decode(options.heartbeat ?? "30 seconds"),
        ping: Effect.sync(() => ws.readyState === 1 && ws.ping()),
        // no close frame would get through to a dead server: drop the socket, which ends this session
        onDead: Effect.sync(() => ws.terminate())
      })
      ws.on("pong", heartbeat.alive)
      ws.on("message", heartbeat.alive)
      yield* Effect.forkScoped(heartbeat.run)
      const timedOut = () => inbox.unsafeOffer({ _tag: "Error", error: new Error("timed out") })
      const deadline = setTimeout(timedOut, connectTimeout)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          clearTimeout(deadline)
          requests.detach(ws)
          if (current === ws) current = undefined
          ws.terminate()
        })
      )

      let welcomed = false
      let error: string | undefined
      while (true) {
        const event = yield* Queue.take(inbox)
        switch (event._tag) {
          case "Open":
            ws.send(Protocol.encode(hello()))
            break
          case "Error":
            if (!welcomed) {
              error ??= describeError(event.error)
              ws.terminate()
            }
            break
          case "Close":
            return {
              welcomed,
              code: event.code,
              reason: event.reason,
              error: error ?? `the server closed the connection (${closeText(event.code, event.reason)})`
            }
          case "Text": {
            const decoded = Protocol.decodeServerFrame(event.text)
            if (Either.isLeft(decoded)) {
              yield* Effect.logWarning(`ignored a frame from the server: ${decoded.left}`)
            } else if (welcomed) {
              onFrame(decoded.right)
            } else if (decoded.right.type === "welcome") {
              welcomed = true
              clearTimeout(deadline)
              onWelcome(decoded.right, ws)
            } else if (decoded.right.type === "error") {
              error ??= `the server refused the session: ${decoded.right.message}`
            }
            break
          }
        }
      }
    }).pipe(Effect.scoped)

    let attempt = 0
    const schedule = (options.reconnect ?? reconnectSchedule()).pipe(
      Schedule.delays,
      // Runs before the delay is slept, so the event tells the user how long the wait is.
      Schedule.tapOutput((delay) => Effect.sync(() => publish({ type: "reconnecting", attempt: ++attempt, delay })))
    )

    const connectionLoop = Effect.gen(function* () {
      const driver = yield* Schedule.driver(schedule)
      while (true) {
        const end = yield* runSession
        if (closing) return
        if (!everWelcomed) {
          const message = `Cannot connect to ${url}: ${end.error}`
          Deferred.unsafeDone(firstWelcome, Exit.fail(new ChatClientError({ reason: "Connect", message })))
          return finish(end.code, end.error ?? "")
        }
        if (end.welcomed) {
          publish({ type: "disconnected", code: end.code, reason: end.reason })
          if (FINAL_CLOSE_CODES.has(end.code)) return finish(end.code, end.reason)
          attempt = 0
          yield* driver.reset
        }
        const next = yield* Effect.option(driver.next(undefined))
        if (Option.isNone(next)) return finish(end.code, "gave up reconnecting")
      }
    })

    const request = (frame: Request) =>
      Effect.suspend(() =>
        final !== undefined || closing
          ? Effect.fail(closedError("the client is closed"))
          : Effect.succeed(Deferred.await(requests.add(frame)))
      )
    const ask = (frame: Request) => Effect.flatten(request(frame))

    const close = Effect.gen(function* () {
      if (closing) return
      closing = true
      if (current?.readyState === WebSocket.OPEN) {
        current.close(Protocol.CloseCode.normal)
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
      session: Effect.sync(() => ({ name: name ?? "", rooms: rooms ?? [] })),
      submit,
      send: (room, text) => Effect.flatten(submit(room, text)),
      direct: (to, text) => Effect.asVoid(ask({ type: "direct", to, text })),
      join: (room) =>
        Effect.map(ask({ type: "join", room }), () => {
          if (!rooms?.includes(room)) rooms = [...(rooms ?? []), room]
        }),
      leave: (room) =>
        Effect.map(ask({ type: "leave", room }), () => {
          rooms = rooms?.filter((r) => r !== room)
        }),
      nick: (newName) =>
        Effect.map(ask({ type: "nick", name: newName }), () => {
          name = newName
        }),
      who: (room) =>
        Effect.flatMap(ask({ type: "who", room }), (frame) => expect(frame, "members")).pipe(
          Effect.map((members) => members.names)
        ),
      history: (room, options) =>
        Effect.flatMap(ask({ type: "history", room, ...options }), (frame) => expect(frame, "history")),
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

/** Creates the socket and turns its callbacks into events on `inbox`; throws on a malformed URL. */
const openSocket = (url: string, inbox: Queue.Queue<SocketEvent>): WebSocket => {
  const ws = new WebSocket(url, Protocol.SUBPROTOCOL)
  ws.on("open", () => inbox.unsafeOffer({ _tag: "Open" }))
  ws.on("message", (data, isBinary) => {
    if (!isBinary) inbox.unsafeOffer({ _tag: "Text", text: data.toString() })
  })
  ws.on("error", (error) => inbox.unsafeOffer({ _tag: "Error", error }))
  ws.on("close", (code, reason) => inbox.unsafeOffer({ _tag: "Close", code, reason: reason.toString() }))
  return ws
}

const closeText = (code: number, reason: string) => (reason === "" ? String(code) : `${code}: ${reason}`)

/** A socket error as a short phrase for a person: `connection refused`, not a stack. */
const describeError = (error: unknown): string => {
  const err = error as { code?: string; message?: string; errors?: ReadonlyArray<{ code?: string }> }
  const code = err.code ?? err.errors?.[0]?.code
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found"
    case "ETIMEDOUT":
      return "timed out"
    case "ECONNRESET":
      return "connection reset"
  }
  if (err.message === "Server sent no subprotocol") return `the server does not speak ${Protocol.SUBPROTOCOL}`
  const status = /^Unexpected server response: (\d+)$/.exec(err.message ?? "")?.[1]
  if (status !== undefined) return `the server answered HTTP ${status} instead of accepting a WebSocket`
  return err.message ?? String(error)
}
