/**
 * One connection of a `ChatClient`: open the socket, say `hello`, wait for `welcome`, then hand every frame over
 * until the socket closes. It drives `ws` directly, in a scope, so that every close code and socket error is
 * visible, and watches the server with a heartbeat. It never fails: how it ended is its result, and what the
 * session means is the caller's business.
 */
import { Cause, Duration, Effect, Either, Runtime } from "effect"
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

export const run = (options: ConnectionOptions): Effect.Effect<End> =>
  Effect.gen(function* () {
    // The socket's callbacks do the work themselves: a frame is decoded and handed over inside `ws`'s own
    // callback, with no queue, no fiber woken and no `Deferred` made per frame (a load generator holds thousands of
    // clients). Only the end of the connection resumes the fiber.
    const fork = Runtime.runFork(yield* Effect.runtime<never>())
    const scope = yield* Effect.scope
    const log = (effect: Effect.Effect<void>) => void fork(effect)
    let ended: End | undefined
    let onEnd: ((end: End) => void) | undefined
    let welcomed = false
    let error: string | undefined
    let ws: WebSocket
    try {
      ws = new WebSocket(options.url, Protocol.SUBPROTOCOL)
    } catch (cause) {
      return { welcomed: false, code: 1006, reason: "", error: describeError(cause) }
    }
    const write: Write = (frame) => ws.send(Protocol.encode(frame))
    /** Before the welcome, a socket error or the deadline ends the attempt with why; after it, the close says. */
    const fail = (cause: unknown) => {
      if (welcomed) return
      error ??= describeError(cause)
      ws.terminate()
    }
    const deadline = setTimeout(() => fail(new Error("timed out")), Duration.toMillis(options.connectTimeout))
    const heartbeat = Heartbeat.make({
      interval: options.heartbeat,
      ping: Effect.sync(() => ws.readyState === 1 && ws.ping()),
      // no close frame would get through to a dead server: drop the socket, which ends this connection
      onDead: Effect.sync(() => ws.terminate())
    })
    ws.on("open", () => {
      ws.send(Protocol.encode(options.hello()))
      // Only a socket that opened has a server to watch: a refused attempt of a reconnecting client forks nothing.
      fork(heartbeat.run, { scope })
    })
    ws.on("pong", heartbeat.alive)
    ws.on("message", (data, isBinary) => {
      heartbeat.alive()
      if (isBinary || ended !== undefined) return
      const decoded = Protocol.decodeServerFrame(data.toString())
      if (Either.isLeft(decoded)) return log(Effect.logWarning(`ignored a frame from the server: ${decoded.left}`))
      try {
        if (welcomed) {
          options.onFrame(decoded.right)
        } else if (decoded.right.type === "welcome") {
          welcomed = true
          clearTimeout(deadline)
          options.onWelcome(decoded.right, write)
        } else if (decoded.right.type === "error") {
          error ??= `the server refused the session: ${decoded.right.message}`
        }
      } catch (defect) {
        // A bug in a handler must not escape into `ws`'s emitter, where it would end the process.
        log(Effect.logError("a frame from the server could not be handled", Cause.die(defect)))
      }
    })
    ws.on("error", fail)
    ws.on("close", (code, reason) => {
      if (ended !== undefined) return
      const text = reason.toString()
      ended = {
        welcomed,
        code,
        reason: text,
        error: error ?? `the server closed the connection (${closeText(code, text)})`
      }
      onEnd?.(ended)
    })
    options.onSocket({
      closeIfOpen: (code) => {
        if (ws.readyState !== WebSocket.OPEN) return false
        ws.close(code)
        return true
      }
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        clearTimeout(deadline)
        ws.terminate()
      })
    )
    return yield* Effect.async<End>((resume) => {
      if (ended !== undefined) return resume(Effect.succeed(ended))
      onEnd = (end) => resume(Effect.succeed(end))
    })
  }).pipe(Effect.scoped)

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
