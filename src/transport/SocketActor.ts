/**
 * Every socket is an actor: a scope that owns the connection from upgrade to close. It registers the connection,
 * feeds inbound frames through a bounded mailbox to its dialect (pausing the TCP socket while the mailbox is full,
 * so a flood pushes back on its sender instead of growing memory), and on any end — clean close, abrupt drop,
 * error — leaves the rooms, holds or ends the session, and unregisters, in finalizers.
 */
import { Cause, Deferred, Duration, Effect, Exit, Option, Queue } from "effect"
import type { WebSocket } from "ws"
import type { Dialect, Mailbox } from "../dialect/Dialect.js"
import { CloseCode } from "../protocol/Protocol.js"
import { Chat } from "../server/Chat.js"
import { Connection } from "../server/Connection.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { securityLog } from "../server/SecurityLog.js"
import { ServerConfig } from "../server/ServerConfig.js"
import type * as Heartbeat from "./Heartbeat.js"
import { WsOutlet } from "./WsOutlet.js"

/** Inbound text frames waiting for the dialect; past this the socket is paused. */
const MAILBOX_HIGH = 64
const MAILBOX_LOW = 16

/**
 * Runs one accepted socket to its end. `log` runs security log lines from `ws` callbacks on the server's runtime;
 * only the request's path and address are kept, not the request.
 */
export const run = (
  ws: WebSocket,
  request: { readonly url: URL; readonly ip: string },
  dialect: Dialect,
  peers: Set<Heartbeat.Peer>,
  log: (line: Effect.Effect<void>) => void
) =>
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const registry = yield* ConnectionRegistry
    const chat = yield* Chat
    const outlet = new WsOutlet(
      ws,
      {
        maxBufferedBytes: config.maxBufferedBytes,
        maxQueuedMessages: config.maxQueuedMessages,
        closeGraceMs: Duration.toMillis(config.closeGrace)
      },
      () => connection.closing(CloseCode.slowConsumer)
    )
    const connection = new Connection(outlet, dialect.renderer, request.ip)
    const closed = yield* Deferred.make<number>()
    const inbox = yield* Queue.unbounded<string>()

    ws.on("message", (data, isBinary) => {
      outlet.answered = true
      if (isBinary) {
        log(securityLog("binary frame", connection))
        return connection.close(CloseCode.unsupportedData, "binary frames are not supported")
      }
      inbox.unsafeOffer(data.toString())
      if (Option.getOrElse(inbox.unsafeSize(), () => 0) >= MAILBOX_HIGH) ws.pause()
    })
    ws.on("pong", () => {
      outlet.answered = true
    })
    ws.on("error", (error: Error & { code?: string }) => {
      // `ws` closes the socket itself after a protocol violation (oversized frame 1009, invalid UTF-8 1007, ...);
      // such a close ends the session like the server's own policy closes.
      connection.closing(error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? CloseCode.tooLarge : CloseCode.policy)
      log(securityLog(`protocol error ${error.code ?? "unknown"}`, connection))
    })
    ws.on("close", (code) => Deferred.unsafeDone(closed, Exit.succeed(code)))

    const mailbox: Mailbox = {
      take: Queue.take(inbox).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            if (ws.isPaused && Option.getOrElse(inbox.unsafeSize(), () => 0) <= MAILBOX_LOW) ws.resume()
          })
        ),
        // Once the server is closing this socket (policy, slow consumer, taken over), nothing it still sent is acted
        // on: frames in flight from a taken-over socket would otherwise act for the session's new connection.
        Effect.flatMap((text) => (connection.acceptsFrames ? Effect.succeed(text) : Effect.never))
      )
    }

    yield* registry.add(connection)
    peers.add(outlet)
    yield* Effect.addFinalizer(() => Effect.sync(() => peers.delete(outlet)))
    // Finalizers run last-in first-out: the session ends (rooms left, session held or ended) before unregistering.
    // Interrupted by a server shutdown, the peer's code is unknown: the session is held, as for a 1001 close.
    yield* Effect.addFinalizer(() => registry.remove(connection))
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Deferred.poll(closed), (code) =>
        Option.match(code, {
          onNone: () => chat.end(connection, CloseCode.goingAway),
          onSome: (exit) => Effect.flatMap(exit, (peerCode) => chat.end(connection, peerCode))
        })
      )
    )

    yield* Effect.forkScoped(
      dialect
        .run(connection, mailbox, request)
        .pipe(
          Effect.catchAllCause((cause) =>
            Cause.isInterruptedOnly(cause)
              ? Effect.void
              : Effect.logError("session failed", cause).pipe(
                  Effect.zipRight(Effect.sync(() => connection.close(CloseCode.internalError, "internal error")))
                )
          )
        )
    )
    yield* Deferred.await(closed)
  }).pipe(
    Effect.scoped,
    Effect.catchAllDefect((defect) =>
      Effect.logError("connection failed", defect).pipe(
        Effect.zipRight(Effect.sync(() => ws.readyState === 1 && ws.close(CloseCode.internalError, "internal error")))
      )
    )
  )
