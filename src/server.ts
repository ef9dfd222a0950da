#!/usr/bin/env node
/**
 * `node dist/server.js`: the chat server on one port (HTTP + WebSocket). Flags override the environment (`PORT`,
 * `HOST`, `REDIS_URL`, `CHAT_ALLOWED_ORIGINS`), which overrides the defaults. SIGINT/SIGTERM close every client with
 * 1001 and exit 0.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Duration, Effect, Layer, Logger, Option } from "effect"
import * as ChatHttpServer from "./ChatHttpServer.js"
import { ChatServer } from "./ChatServer.js"
import { ServerConfig, type ServerSettings } from "./ServerConfig.js"

const int = (name: string, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.optional)
const seconds = (name: string, description: string) =>
  Options.float(name).pipe(Options.withDescription(`${description} (seconds)`), Options.optional)

const options = {
  port: int("port", "port to listen on (env PORT, default 8080; 0 picks a free port)"),
  host: Options.text("host").pipe(
    Options.withDescription("address to bind (env HOST, default 0.0.0.0)"),
    Options.optional
  ),
  maxFrameBytes: int("max-frame-bytes", "largest accepted message in bytes; larger closes with 1009 (default 65536)"),
  historyRetain: int("history-size", "messages each room keeps for history and resume (default 100)"),
  joinHistory: int("join-history", "messages sent after a join (default 50)"),
  maxRoomsPerConnection: int("max-rooms", "rooms one connection may be in (default 100)"),
  resumeWindow: seconds("resume-window", "how long a dropped session can be resumed (default 120)"),
  helloTimeout: seconds("hello-timeout", "time a JSON client has to send hello (default 10)"),
  pingInterval: seconds("ping-interval", "heartbeat interval; a peer silent for two is dropped (default 30)"),
  maxBufferedBytes: int(
    "max-buffered-bytes",
    "outbound bytes a client may fall behind before close 4008 (default 1 MiB)"
  ),
  maxQueuedMessages: int(
    "max-queued-messages",
    "outbound messages a client may fall behind before close 4008 (default 2000)"
  ),
  ratePerSecond: Options.float("rate").pipe(
    Options.withDescription("messages per second per connection (default 20)"),
    Options.optional
  ),
  rateBurst: int("burst", "message burst per connection (default 40)"),
  maxConnections: int("max-connections", "connections in all; more are closed with 1013 (default 10000)"),
  maxConnectionsPerIp: int("max-connections-per-ip", "connections per client address (default 1000)"),
  allowedOrigins: Options.text("allowed-origin").pipe(
    Options.withDescription(
      "allowed Origin for WebSocket upgrades, repeatable (env CHAT_ALLOWED_ORIGINS, comma-separated); unset allows all"
    ),
    Options.repeated
  ),
  redis: Options.text("redis").pipe(
    Options.withDescription("Redis URL (env REDIS_URL): share rooms with other nodes, e.g. redis://127.0.0.1:6379"),
    Options.optional
  )
}

type Parsed = Command.Command.ParseConfig<typeof options>

/** Only the flags that were given, as settings. */
const overrides = (o: Parsed): Partial<ServerSettings> => {
  const out: Record<string, unknown> = {}
  const set = <A>(key: keyof ServerSettings, value: Option.Option<A>, f: (a: A) => unknown = (a) => a) => {
    if (Option.isSome(value)) out[key] = f(value.value)
  }
  const secs = (s: number) => Duration.millis(Math.round(s * 1000))
  set("port", o.port)
  set("host", o.host)
  set("maxFrameBytes", o.maxFrameBytes)
  set("historyRetain", o.historyRetain)
  set("joinHistory", o.joinHistory)
  set("maxRoomsPerConnection", o.maxRoomsPerConnection)
  set("resumeWindow", o.resumeWindow, secs)
  set("helloTimeout", o.helloTimeout, secs)
  set("pingInterval", o.pingInterval, secs)
  set("maxBufferedBytes", o.maxBufferedBytes)
  set("maxQueuedMessages", o.maxQueuedMessages)
  set("maxConnections", o.maxConnections)
  set("maxConnectionsPerIp", o.maxConnectionsPerIp)
  set("redisUrl", o.redis, Option.some)
  if (o.allowedOrigins.length > 0) out.allowedOrigins = o.allowedOrigins
  if (Option.isSome(o.ratePerSecond) || Option.isSome(o.rateBurst)) {
    out.rateLimit = {
      ...Option.match(o.ratePerSecond, { onNone: () => ({}), onSome: (perSecond) => ({ perSecond }) }),
      ...Option.match(o.rateBurst, { onNone: () => ({}), onSome: (burst) => ({ burst }) })
    }
  }
  return out as Partial<ServerSettings>
}

const validate = (settings: ServerSettings) =>
  settings.port < 0 || settings.port > 65535
    ? Effect.fail(`--port must be between 0 and 65535, got ${settings.port}`)
    : settings.maxFrameBytes < 1024
      ? Effect.fail("--max-frame-bytes must be at least 1024")
      : Effect.void

const serve = (parsed: Parsed) =>
  Effect.gen(function* () {
    const settings = yield* ServerConfig
    yield* validate(settings)
    const backend = Option.isSome(settings.redisUrl)
      ? yield* redisLayer(settings.redisUrl.value)
      : ChatServer.layerMemory
    yield* Effect.gen(function* () {
      const address = yield* ChatHttpServer.ServerAddress
      yield* Console.log(`effect-chat listening on http://${settings.host}:${address.port}`)
      return yield* Effect.never
    }).pipe(Effect.provide(ChatHttpServer.layer.pipe(Layer.provide(backend))))
  }).pipe(Effect.provide(ServerConfig.layerConfig(overrides(parsed))))

/** Loaded only when asked for, so the default mode never touches the Redis client. */
const redisLayer = (url: string) =>
  url.startsWith("redis://") || url.startsWith("rediss://")
    ? Effect.promise(() => import("./redis/RedisBackend.js")).pipe(Effect.map((redis) => redis.layer(url)))
    : Effect.fail(`--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)

const command = Command.make("effect-chat-server", options, serve).pipe(
  Command.withDescription("effect-chat server: HTTP and WebSocket (/chat) on one port")
)

const cli = Command.run(command, { name: "effect-chat-server", version: "0.1.0" })

/** Bad usage exits 2 and a server that cannot start exits 1, each with one line on stderr. */
const exitWith = (code: number, line?: string) =>
  (line === undefined ? Effect.void : Console.error(`effect-chat-server: ${line}`)).pipe(
    Effect.zipRight(
      Effect.sync(() => {
        process.exitCode = code
      })
    )
  )

cli(process.argv).pipe(
  Effect.catchAll((error) =>
    typeof error === "string"
      ? exitWith(2, error)
      : ValidationError.isValidationError(error)
        ? exitWith(2) // @effect/cli has printed the problem and the usage
        : error instanceof ChatHttpServer.ListenError
          ? exitWith(1, error.message)
          : Effect.fail(error)
  ),
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withLeveledConsole(Logger.logfmtLogger))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: false })
)
