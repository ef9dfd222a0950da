/**
 * One connection of a `ChatClient`: open the socket, say `hello`, wait for `welcome`, then hand every frame over
 * until the socket closes. It drives `ws` directly, in a scope, so that every close code and socket error is
 * visible, and watches the server with a heartbeat. It never fails: how it ended is its result, and what the
 * session means is the caller's business.
 */
import { Duration, Effect, Either, Queue } from "effect"
import WebSocket from "ws"
import * as Protocol from "../protocol/Protocol.js"
import * as Heartbeat from "./Heartbeat.js"
import type { Write } from "./Requests.js"

export interface ConnectionOptions {
  readonly url: string
  /** How long opening the socket and getting the `welcome` may take. */
  readonly connectTimeout: Duration.Duration
  /** Ping interval; a server that has not answered a ping by the next one is dropped. */
  readonly heartbeat: Duration.Duration
  /** The `hello` to send, built when the socket has opened. */
  readonly hello: () => Protocol.Hello
  /** The socket exists, not necessarily open yet: `link` lets the caller close it. */
  readonly onSocket: (link: Link) => void
  readonly onWelcome: (welcome: typeof Protocol.Welcome.Type, write: Write) => void
  /** Every frame after the `welcome`. */
  readonly onFrame: (frame: Protocol.ServerFrame) => void
}

export interface Link {
  /** Starts the close handshake with `code`; false (and nothing done) when the socket is not open. */
  readonly closeIfOpen: (code: number) => boolean
}

/** How a connection ended; `error` says why for a person (used when the first connection fails). */
export interface End {
  readonly welcomed: boolean
  readonly code: number
  readonly reason: string
  readonly error?: string | undefined
}

type SocketEvent =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Error"; readonly error: Error }
  | { readonly _tag: "Close"; readonly code: number; readonly reason: string }

export const run = (options: ConnectionOptions): Effect.Effect<End> =>
  Effect.gen(function* () {
    const inbox = yield* Queue.unbounded<SocketEvent>()
    const opened = Either.try(() => openSocket(options.url, inbox))
    if (Either.isLeft(opened)) return { welcomed: false, code: 1006, reason: "", error: describeError(opened.left) }
    const ws = opened.right
    options.onSocket({
      closeIfOpen: (code) => {
        if (ws.readyState !== WebSocket.OPEN) return false
        ws.close(code)
        return true
      }
    })
    const heartbeat = Heartbeat.make({
      interval: options.heartbeat,
      ping: Effect.sync(() => ws.readyState === 1 && ws.ping()),
      // no close frame would get through to a dead server: drop the socket, which ends this connection
      onDead: Effect.sync(() => ws.terminate())
    })
    ws.on("pong", heartbeat.alive)
    ws.on("message", heartbeat.alive)
    yield* Effect.forkScoped(heartbeat.run)
    const timedOut = () => inbox.unsafeOffer({ _tag: "Error", error: new Error("timed out") })
    const deadline = setTimeout(timedOut, Duration.toMillis(options.connectTimeout))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        clearTimeout(deadline)
        ws.terminate()
      })
    )
    const write: Write = (frame) => ws.send(Protocol.encode(frame))

    let welcomed = false
    let error: string | undefined
    while (true) {
      const event = yield* Queue.take(inbox)
      switch (event._tag) {
        case "Open":
          ws.send(Protocol.encode(options.hello()))
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
            options.onFrame(decoded.right)
          } else if (decoded.right.type === "welcome") {
            welcomed = true
            clearTimeout(deadline)
            options.onWelcome(decoded.right, write)
          } else if (decoded.right.type === "error") {
            error ??= `the server refused the session: ${decoded.right.message}`
          }
          break
        }
      }
    }
  }).pipe(Effect.scoped)

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
