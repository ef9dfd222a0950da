/**
 * The command connection to Redis shared by the Redis backends. While Redis is unreachable a command fails at once
 * with `BackendError` ("Unavailable") instead of waiting in node-redis's offline queue, and one that gets no answer
 * in time fails with "Timeout": a user's request gets an answer during an outage, never a hang. The client
 * reconnects by itself; `readyAgain` tells the backends when to put their state back.
 */
import { Context, Duration, Effect, Layer, PubSub, Queue, Runtime, Scope } from "effect"
import { createClient, ErrorReply } from "redis"
import { BackendError } from "../backend/BackendError.js"
import { DEFAULT_PREFIX, type Keys, makeKeys, type Script } from "./RedisKeys.js"

export type Client = ReturnType<typeof newClient>

export interface RedisClientOptions {
  readonly keyPrefix: string
  /** Longest wait for an answer before a command fails with "Timeout". */
  readonly commandTimeout: Duration.Duration
  /** Longest wait for the PING that decides readiness. */
  readonly readinessTimeout: Duration.Duration
}

const defaults: RedisClientOptions = {
  keyPrefix: DEFAULT_PREFIX,
  commandTimeout: Duration.seconds(2),
  readinessTimeout: Duration.millis(500)
}

export interface RedisClientService {
  readonly keys: Keys
  /** Runs one command; its reply is decoded by the caller. */
  readonly command: (operation: string, args: ReadonlyArray<string | number>) => Effect.Effect<unknown, BackendError>
  /** Runs a script of `RedisKeys` (EVALSHA, sending the source only when Redis does not have it yet). */
  readonly eval: (
    operation: string,
    script: Script,
    args: ReadonlyArray<string | number>
  ) => Effect.Effect<unknown, BackendError>
  /** Redis answers a PING within the readiness timeout. */
  readonly ping: Effect.Effect<boolean>
  /** A signal each time the connection becomes ready: after an outage, or at start if Redis was down. */
  readonly readyAgain: Effect.Effect<Queue.Dequeue<void>, never, Scope.Scope>
  /** A second connection with the same settings, for pub/sub; see `connect`. */
  readonly duplicate: () => Client
}

export class RedisClient extends Context.Tag("effect-chat/RedisClient")<RedisClient, RedisClientService>() {
  static layer = (url: string, options: Partial<RedisClientOptions> = {}) =>
    Layer.scoped(RedisClient, make(url, { ...defaults, ...options }))
}

/** Retries forever, backing off to one attempt a second, so a node is back within a second of Redis. */
const reconnectStrategy = (retries: number) => Math.min(100 * 2 ** retries, 1000)

const newClient = (url: string) =>
  createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 2000, reconnectStrategy } })

/**
 * Starts `client` connecting in the background (a node starts while Redis is down, and is simply not ready) and
 * closes it with the scope. Errors are logged once per outage and never reach the process: node-redis emits one
 * for every failed reconnect attempt, and an `error` event without a listener would crash the node.
 */
export const connect = (client: Client, label: string) =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
    const ready = yield* PubSub.sliding<void>(1)
    let down = false
    client.on("error", (error: unknown) => {
      if (down) return
      down = true
      log(Effect.logWarning(`redis ${label} connection: ${describe(error)}; reconnecting`))
    })
    client.on("ready", () => {
      if (down) log(Effect.logInfo(`redis ${label} connection ready`))
      down = false
      ready.unsafeOffer(undefined)
    })
    const first = yield* PubSub.subscribe(ready)
    yield* Effect.acquireRelease(
      Effect.sync(() => void client.connect().catch(() => {})),
      () => Effect.sync(() => client.isOpen && client.destroy())
    )
    // A node whose Redis answers starts ready; one whose Redis does not starts anyway, a moment later.
    yield* Queue.take(first).pipe(Effect.timeout(FIRST_CONNECT_WAIT), Effect.ignore)
    return { readyAgain: PubSub.subscribe(ready) }
  })

const FIRST_CONNECT_WAIT = Duration.seconds(1)

const describe = (error: unknown) => (error instanceof Error ? error.message || error.name : String(error))

const make = (url: string, options: RedisClientOptions) =>
  Effect.gen(function* () {
    const client = newClient(url)
    const { readyAgain } = yield* connect(client, "command")
    const keys = makeKeys(options.keyPrefix)

    const send = (operation: string, args: ReadonlyArray<string>, timeout: Duration.Duration) =>
      Effect.suspend(() =>
        client.isReady
          ? Effect.tryPromise({
              try: () => client.sendCommand(args),
              catch: (cause) => new BackendError({ reason: "Unavailable", operation, cause })
            }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => timedOut(operation) }))
          : Effect.fail(new BackendError({ reason: "Unavailable", operation }))
      )

    const command: RedisClientService["command"] = (operation, args) =>
      send(operation, args.map(String), options.commandTimeout).pipe(Effect.tapError(logScriptBug))

    const evalScript: RedisClientService["eval"] = (operation, script, args) => {
      const rest = [keys.prefix, ...args.map(String)]
      const run = (how: "EVALSHA" | "EVAL", body: string) =>
        send(operation, [how, body, "0", ...rest], options.commandTimeout)
      return run("EVALSHA", script.sha).pipe(
        // A fresh Redis (a restart) has no scripts yet: send the source once, Redis keeps it under its sha.
        Effect.catchIf(isNoScript, () => run("EVAL", script.source)),
        Effect.tapError(logScriptBug)
      )
    }

    const ping = send("ping", ["PING"], options.readinessTimeout).pipe(
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )

    return RedisClient.of({ keys, command, eval: evalScript, ping, readyAgain, duplicate: () => client.duplicate() })
  })

const timedOut = (operation: string) => new BackendError({ reason: "Timeout", operation })

const isNoScript = (error: BackendError) =>
  error.cause instanceof ErrorReply && error.cause.message.startsWith("NOSCRIPT")

/** Redis answered with an error: not an outage but a mistake (or Redis out of memory), worth a log line. */
const logScriptBug = (error: BackendError) =>
  error.cause instanceof ErrorReply ? Effect.logError(`redis ${error.operation}: ${error.cause.message}`) : Effect.void
