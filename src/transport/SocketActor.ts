/**
 * Every socket is an actor: it owns its connection from upgrade to close, with a scope of its own whose finalizers
 * end the session (leave the rooms, hold or end it) and unregister, whatever way the socket ended — the Ktor
 * `try/finally`, in Effect form.
 *
 * An actor holds no fiber while idle. Inbound frames wait in a bounded mailbox (the TCP socket is paused while it
 * is full, so a flood pushes back on its sender instead of growing memory) and are handed to the dialect one at a
 * time, in order: each job runs on a fiber of its own that starts at once and is usually done before the `ws`
 * callback returns; only a job that waits (a backend call) keeps its fiber until it completes, and the next job
 * starts after it. An idle connection is therefore a few objects, not suspended fibers and a queue (issue 11).
 */
import type * as MetricLabel from "effect/MetricLabel"
import * as ChatMetrics from "../metrics/ChatMetrics.js"
import { Cause, Duration, Effect, Exit, Fiber, Scope } from "effect"
import type { WebSocket } from "ws"
import type { Dialect, Served, UpgradeRequest } from "../dialect/Dialect.js"
import { CloseCode } from "../protocol/Protocol.js"
import { Chat } from "../server/Chat.js"
import { Connection } from "../server/Connection.js"
import { ConnectionRegistry } from "../server/ConnectionRegistry.js"
import { securityLog } from "../server/SecurityLog.js"
import { ServerConfig } from "../server/ServerConfig.js"
import type * as Heartbeat from "./Heartbeat.js"
import { WsOutlet, type WsOutletOptions } from "./WsOutlet.js"

/** Inbound text frames waiting for the dialect; past this the socket is paused. */
const MAILBOX_HIGH = 64
const MAILBOX_LOW = 16

type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>

/** A failed job (a defect, never a refusal: those are answered by the dialect) closes the socket with 1011. */
const guarded = (connection: Connection, job: Effect.Effect<void>) =>
  Effect.catchAllCause(job, (cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.logError("session failed", cause).pipe(
          Effect.zipRight(Effect.sync(() => connection.close(CloseCode.internalError, "internal error")))
        )
  )

class Actor {
  private readonly inbox: Array<string> = []
  private started = false
  private ended = false
  /** The job still running after it started; undefined while idle. */
  private current: Fiber.RuntimeFiber<void> | undefined

  constructor(
    private readonly ws: WebSocket,
    readonly connection: Connection,
    private readonly served: Served,
    private readonly runFork: RunFork
  ) {}

  deliver(text: string): void {
    if (this.ended) return
    this.inbox.push(text)
    if (this.inbox.length >= MAILBOX_HIGH) this.ws.pause()
    this.pump()
  }

  /** Runs jobs one at a time until the mailbox is empty or a job has to wait. */
  pump(): void {
    while (this.current === undefined && !this.ended) {
      const job = this.next()
      if (job === undefined) return
      // What the job writes before it completes or first waits goes out in one system call.
      const outlet = this.connection.outlet
      outlet.hold()
      const fiber = this.runFork(guarded(this.connection, job))
      outlet.release()
      if (fiber.unsafePoll() !== null) continue
      this.current = fiber
      fiber.addObserver(() => {
        this.current = undefined
        this.pump()
      })
    }
  }

  private next(): Effect.Effect<void> | undefined {
    if (!this.started) {
      this.started = true
      return this.served.start
    }
    // Once the server is closing this socket (policy, slow consumer, taken over), nothing it still sent is acted
    // on: frames in flight from a taken-over socket would otherwise act for the session's new connection.
    if (!this.connection.acceptsFrames) {
      this.inbox.length = 0
      return undefined
    }
    const text = this.inbox.shift()
    if (text === undefined) return undefined
    if (this.ws.isPaused && this.inbox.length <= MAILBOX_LOW) this.ws.resume()
    return this.served.receive(text)
  }

  /** The socket closed: no more jobs; the one under way is interrupted before the scope's finalizers run. */
  end(scope: Scope.CloseableScope): Effect.Effect<void> {
    this.ended = true
    this.inbox.length = 0
    this.served.stop()
    const current = this.current
    return Effect.zipRight(
      current === undefined ? Effect.void : Fiber.interrupt(current),
      Scope.close(scope, Exit.void)
    ).pipe(Effect.uninterruptible)
  }
}

/** Accepts sockets as actors over the chat core in context; `peers` is the transport's set for the heartbeat. */
export const make = (runFork: RunFork, peers: Set<Heartbeat.Peer>) =>
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const registry = yield* ConnectionRegistry
    const chat = yield* Chat
    const outletOptions: WsOutletOptions = {
      maxBufferedBytes: config.maxBufferedBytes,
      maxQueuedMessages: config.maxQueuedMessages,
      closeGraceMs: Duration.toMillis(config.closeGrace)
    }
    const log = (line: Effect.Effect<void>) => void runFork(line)

    /**
     * Runs one accepted socket to its end. Only the request's URL, address and headers are kept, not the request,
     * and the dialect lets go of the headers once the session is open.
     */
    const accept = (ws: WebSocket, request: UpgradeRequest, dialect: Dialect) => {
      const dialectLabel = dialect.renderer.showsRoomState ? ChatMetrics.JSON_DIALECT : ChatMetrics.PLAIN_DIALECT
      // `request` is read here only, so no closure of the connection's life keeps it (and its headers) alive.
      const outlet: WsOutlet = new WsOutlet(ws, outletOptions, () => {
        connection.closing(CloseCode.slowConsumer)
        ChatMetrics.add(ChatMetrics.slowConsumerCuts, 1)
        runFork(chat.cut(connection))
      })
      const connection = new Connection(outlet, dialect.renderer, request.ip)
      return run(ws, outlet, connection, dialect.serve(connection, request), dialectLabel)
    }

    const run = (
      ws: WebSocket,
      outlet: WsOutlet,
      connection: Connection,
      served: Served,
      dialectLabel: ReadonlyArray<MetricLabel.MetricLabel>
    ) =>
      Effect.gen(function* () {
        const actor = new Actor(ws, connection, served, runFork)
        const scope = yield* Scope.make()
        let peerCloseCode: number = CloseCode.goingAway

        yield* registry.add(connection)
        peers.add(outlet)
        ChatMetrics.move(ChatMetrics.connections, 1, dialectLabel)
        // Finalizers run last-in first-out: the session ends (rooms left, session held or ended) before
        // unregistering.
        yield* Scope.addFinalizer(
          scope,
          Effect.zipRight(
            registry.remove(connection),
            Effect.sync(() => {
              peers.delete(outlet)
              ChatMetrics.move(ChatMetrics.connections, -1, dialectLabel)
            })
          )
        )
        yield* Scope.addFinalizer(
          scope,
          Effect.suspend(() => chat.end(connection, peerCloseCode))
        )

        ws.on("message", (data, isBinary) => {
          outlet.answered = true
          if (isBinary) {
            log(securityLog("binary frame", connection))
            return connection.close(CloseCode.unsupportedData, "binary frames are not supported")
          }
          actor.deliver(data.toString())
        })
        ws.on("pong", (payload) => outlet.pong(payload))
        ws.on("error", (error: Error & { code?: string }) => {
          // `ws` closes the socket itself after a protocol violation (oversized frame 1009, invalid UTF-8 1007,
          // ...); such a close ends the session like the server's own policy closes.
          connection.closing(error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" ? CloseCode.tooLarge : CloseCode.policy)
          log(securityLog(`protocol error ${error.code ?? "unknown"}`, connection))
        })
        ws.once("close", (code) => {
          peerCloseCode = code
          ChatMetrics.add(ChatMetrics.closes, 1, ChatMetrics.codeLabel(connection.closedBy ?? code))
          runFork(actor.end(scope))
        })
        actor.pump()
      }).pipe(
        Effect.catchAllDefect((defect) =>
          Effect.logError("connection failed", defect).pipe(
            Effect.zipRight(
              Effect.sync(() => ws.readyState === 1 && ws.close(CloseCode.internalError, "internal error"))
            )
          )
        )
      )

    return { accept }
  })
