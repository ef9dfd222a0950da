#!/usr/bin/env node
/**
 * `node dist/server.js`: the chat server on one port (HTTP + WebSocket). Each flag falls back to its environment
 * variable where it has one, then to the default. SIGINT/SIGTERM close every client with 1001 and exit 0.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Console, Data, Duration, Effect, Layer, Logger, LogLevel, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as JwtHooks from "./auth/JwtHooks.js"
import * as JwtVerifier from "./auth/JwtVerifier.js"
import * as PrometheusMetrics from "./metrics/PrometheusMetrics.js"
import * as ChatHttpServer from "./http/ChatHttpServer.js"
import { ChatServer } from "./http/ChatServer.js"
import { ChatHooks } from "./server/ChatHooks.js"
import { isValidName } from "./protocol/Rules.js"
import * as SqliteBackend from "./sqlite/SqliteBackend.js"
import { defaults, ServerConfig, type ServerSettings } from "./server/ServerConfig.js"

/** The command line asks for something the server cannot be: exit 2 with one line. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const int = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withDescription(`${description} (default ${fallback})`),
    Options.withDefault(fallback)
  )
const seconds = (name: string, fallback: Duration.Duration, description: string) =>
  Options.float(name).pipe(
    Options.withDescription(`${description}, in seconds (default ${Duration.toSeconds(fallback)})`),
    Options.withDefault(Duration.toSeconds(fallback)),
    Options.map((s) => Duration.millis(Math.round(s * 1000)))
  )

const options = {
  port: Options.integer("port").pipe(
    Options.withDescription("port to listen on; 0 picks a free port (env PORT, default 8080)"),
    Options.withFallbackConfig(Config.integer("PORT").pipe(Config.withDefault(defaults.port)))
  ),
  host: Options.text("host").pipe(
    Options.withDescription("address to bind (env HOST, default 0.0.0.0)"),
    Options.withFallbackConfig(Config.string("HOST").pipe(Config.withDefault(defaults.host)))
  ),
  redis: Options.text("redis").pipe(
    Options.withDescription("Redis URL (env REDIS_URL): share rooms with other nodes, e.g. redis://127.0.0.1:6379"),
    Options.withFallbackConfig(Config.option(Config.nonEmptyString("REDIS_URL"))),
    Options.map((url) => (typeof url === "string" ? Option.some(url) : url))
  ),
  maxFrameBytes: int(
    "max-frame-bytes",
    defaults.maxFrameBytes,
    "largest accepted message in bytes; larger closes with 1009"
  ),
  store: Options.choice("store", ["sqlite", "memory"]).pipe(
    Options.withDescription(
      "sqlite: history and sessions in a file under --data-dir, kept across restarts; memory: lost on restart " +
        "(env CHAT_STORE, default sqlite; with --redis, Redis keeps everything)"
    ),
    Options.withFallbackConfig(Config.option(Config.literal("sqlite", "memory")("CHAT_STORE"))),
    Options.map((store) => (typeof store === "string" ? Option.some(store) : store))
  ),
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("directory of the embedded store, created if missing (env DATA_DIR, default ./data)"),
    Options.withFallbackConfig(Config.string("DATA_DIR").pipe(Config.withDefault("./data")))
  ),
  storeSync: Options.choice("store-sync", ["full", "normal"]).pipe(
    Options.withDescription(
      "full: an acked message survives a power loss; normal: it survives the server being killed (default full)"
    ),
    Options.withDefault("full" as const)
  ),
  commitWindow: Options.float("store-commit-window").pipe(
    Options.withDescription(
      "embedded store: at most one group commit starts per this many milliseconds; a write to an idle store " +
        "commits at once, under load writes wait up to this long and share a commit (less CPU), 0 to 1000 (default 20)"
    ),
    Options.withDefault(20),
    // Beyond a second it is no longer a group commit but a stall (and Node's timers overflow at 2^31 ms).
    Options.map((ms) => Duration.millis(Math.min(1000, Math.max(0, ms))))
  ),
  historyRetain: Options.integer("history-retain").pipe(
    Options.withAlias("history-size"),
    Options.withDescription(
      `messages each room keeps for history and resume (default ${SqliteBackend.defaults.historyRetain} with ` +
        `the embedded store, ${defaults.historyRetain} in memory and Redis)`
    ),
    Options.optional
  ),
  historyMaxAge: Options.text("history-max-age").pipe(
    Options.withDescription("embedded store: messages older than this go, e.g. 30d, 12h, 90m, 45s (default 30d)"),
    Options.withDefault("30d")
  ),
  joinHistory: int("join-history", defaults.joinHistory, "messages sent after a join"),
  presenceLimit: int(
    "presence-limit",
    defaults.presenceLimit,
    "rooms with more members do not announce each join and leave (members/who stay exact)"
  ),
  maxRoomsPerConnection: int("max-rooms", defaults.maxRoomsPerConnection, "rooms one connection may be in"),
  resumeWindow: seconds("resume-window", defaults.resumeWindow, "how long a dropped session can be resumed"),
  helloTimeout: seconds("hello-timeout", defaults.helloTimeout, "time a JSON client has to send hello"),
  pingInterval: seconds("ping-interval", defaults.pingInterval, "heartbeat interval; a peer silent for two is dropped"),
  logFormat: Options.choice("log-format", ["logfmt", "json"]).pipe(
    Options.withDescription("how log lines are written (env LOG_FORMAT, default logfmt)"),
    Options.withFallbackConfig(
      Config.literal("logfmt", "json")("LOG_FORMAT").pipe(Config.withDefault("logfmt" as const))
    )
  ),
  logLevel: Options.choice("log-level", ["debug", "info", "warning", "error", "none"]).pipe(
    Options.withDescription("the least severe log lines written (env LOG_LEVEL, default info)"),
    Options.withFallbackConfig(
      Config.literal("debug", "info", "warning", "error", "none")("LOG_LEVEL").pipe(Config.withDefault("info" as const))
    )
  ),
  drainDelay: seconds(
    "drain-delay",
    defaults.drainDelay,
    "on SIGTERM, how long /readyz answers 503 before every client gets 1001 (a load balancer's time to notice)"
  ),
  maxBufferedBytes: int(
    "max-buffered-bytes",
    defaults.maxBufferedBytes,
    "outbound bytes a client may fall behind before close 4008"
  ),
  maxQueuedMessages: int(
    "max-queued-messages",
    defaults.maxQueuedMessages,
    "outbound messages a client may fall behind before close 4008"
  ),
  ratePerSecond: Options.float("rate").pipe(
    Options.withDescription(`messages per second per connection (default ${defaults.rateLimit.perSecond})`),
    Options.withDefault(defaults.rateLimit.perSecond)
  ),
  rateBurst: int("burst", defaults.rateLimit.burst, "message burst per connection"),
  maxConnections: int("max-connections", defaults.maxConnections, "connections in all; more are closed with 1013"),
  maxConnectionsPerIp: int("max-connections-per-ip", defaults.maxConnectionsPerIp, "connections per client address"),
  allowedOrigins: Options.text("allowed-origin").pipe(
    Options.withDescription(
      "allowed Origin for WebSocket upgrades, repeatable (env CHAT_ALLOWED_ORIGINS, comma-separated); unset allows all"
    ),
    Options.repeated
  ),
  auth: Options.choice("auth", ["off", "optional", "required"]).pipe(
    Options.withDescription(
      "off: everyone is a guest (v1); optional: a valid token signs the user in, no token is a guest; " +
        "required: no valid token, no connection (env CHAT_AUTH, default off)"
    ),
    Options.withFallbackConfig(
      Config.literal("off", "optional", "required")("CHAT_AUTH").pipe(Config.withDefault("off" as const))
    )
  ),
  jwtSecret: Options.redacted("jwt-secret").pipe(
    Options.withDescription("HS256 secret of the tokens (env JWT_SECRET; prefer the environment: flags show in ps)"),
    Options.withFallbackConfig(Config.redacted("JWT_SECRET")),
    Options.optional
  ),
  jwtPublicKey: Options.file("jwt-public-key", { exists: "yes" }).pipe(
    Options.withDescription("RS256/ES256 public key of the tokens: a PEM file or a JWKS (JSON) file"),
    Options.optional
  ),
  jwtIssuer: Options.text("jwt-issuer").pipe(Options.withDescription("required iss of every token"), Options.optional),
  jwtAudience: Options.text("jwt-audience").pipe(
    Options.withDescription("required aud of every token"),
    Options.optional
  ),
  authGrace: seconds("auth-grace", defaults.auth.grace, "time to send refresh after token_expired before close 4001"),
  apiKey: Options.redacted("api-key").pipe(
    Options.withDescription(
      "enables the server API (/api/v1/, /admin): calls carry Authorization: Bearer KEY (env CHAT_API_KEY; " +
        "prefer the environment: flags show in ps)"
    ),
    Options.withFallbackConfig(Config.redacted("CHAT_API_KEY")),
    Options.optional
  ),
  apiName: Options.text("api-name").pipe(
    Options.withDescription(`name of messages published through the API without a from (default ${defaults.apiName})`),
    Options.withDefault(defaults.apiName)
  )
}

type Parsed = Command.Command.ParseConfig<typeof options>

/** The flags as settings, checked; `CHAT_ALLOWED_ORIGINS` applies when no `--allowed-origin` is given. */
const settingsOf = (o: Parsed) =>
  Effect.gen(function* () {
    if (o.port < 0 || o.port > 65535)
      return yield* new UsageError({ message: `--port must be between 0 and 65535, got ${o.port}` })
    if (o.maxFrameBytes < 1024) return yield* new UsageError({ message: "--max-frame-bytes must be at least 1024" })
    if (Option.isSome(o.redis) && !/^rediss?:\/\//.test(o.redis.value)) {
      return yield* new UsageError({
        message: `--redis must be a redis:// or rediss:// URL, got ${JSON.stringify(o.redis.value)}`
      })
    }
    if (Option.isSome(o.redis) && Option.isSome(o.store)) {
      return yield* new UsageError({ message: "--store and --redis: with Redis, Redis keeps everything; give one" })
    }
    const store = Option.isSome(o.redis) ? ("redis" as const) : Option.getOrElse(o.store, () => "sqlite" as const)
    const maxAge = parseAge(o.historyMaxAge)
    if (maxAge === undefined) {
      return yield* new UsageError({
        message: `--history-max-age must be a number with a unit (ms, s, m, h, d), got ${JSON.stringify(o.historyMaxAge)}`
      })
    }
    const historyRetain = Option.getOrElse(o.historyRetain, () =>
      store === "sqlite" ? SqliteBackend.defaults.historyRetain : defaults.historyRetain
    )
    if (historyRetain < 1) return yield* new UsageError({ message: "--history-retain must be at least 1" })
    if (!isValidName(o.apiName)) {
      return yield* new UsageError({ message: `--api-name must be a valid name, got ${JSON.stringify(o.apiName)}` })
    }
    const apiKey = Option.getOrUndefined(o.apiKey)
    if (apiKey !== undefined && Redacted.value(apiKey).length < 16) {
      return yield* new UsageError({ message: "--api-key must be at least 16 characters" })
    }
    const envOrigins = yield* Config.array(Config.string(), "CHAT_ALLOWED_ORIGINS").pipe(
      Config.withDefault([]),
      Effect.orElseSucceed(() => [])
    )
    const settings = ServerConfig.make({
      port: o.port,
      host: o.host,
      maxFrameBytes: o.maxFrameBytes,
      historyRetain,
      joinHistory: o.joinHistory,
      presenceLimit: o.presenceLimit,
      maxRoomsPerConnection: o.maxRoomsPerConnection,
      resumeWindow: o.resumeWindow,
      helloTimeout: o.helloTimeout,
      pingInterval: o.pingInterval,
      drainDelay: Duration.max(Duration.zero, o.drainDelay),
      maxBufferedBytes: o.maxBufferedBytes,
      maxQueuedMessages: o.maxQueuedMessages,
      rateLimit: { ...defaults.rateLimit, perSecond: o.ratePerSecond, burst: o.rateBurst },
      maxConnections: o.maxConnections,
      maxConnectionsPerIp: o.maxConnectionsPerIp,
      allowedOrigins: o.allowedOrigins.length > 0 ? o.allowedOrigins : envOrigins.filter((origin) => origin !== ""),
      auth: { mode: o.auth, grace: o.authGrace },
      apiKey,
      apiName: o.apiName
    })
    const backend: Backend =
      store === "redis"
        ? { _tag: "redis", url: Option.getOrThrow(o.redis) }
        : store === "memory"
          ? { _tag: "memory" }
          : { _tag: "sqlite", dataDir: o.dataDir, maxAge, synchronous: o.storeSync, commitWindow: o.commitWindow }
    return { settings, backend, hooks: yield* hooksOf(o) }
  })

/** The built-in JWT check, when authentication is on; a key that cannot be used is a usage error. */
const hooksOf = (o: Parsed) =>
  Effect.gen(function* () {
    const secret = Option.map(o.jwtSecret, Redacted.value)
    if (o.auth === "off") {
      if (Option.isSome(secret) || Option.isSome(o.jwtPublicKey)) {
        yield* Effect.logWarning("a JWT key is set but --auth is off: tokens are ignored")
      }
      return Layer.empty
    }
    if (Option.isNone(secret) && Option.isNone(o.jwtPublicKey)) {
      return yield* new UsageError({
        message: `--auth ${o.auth} needs --jwt-secret (or JWT_SECRET) or --jwt-public-key FILE`
      })
    }
    if (Option.isSome(secret) && Buffer.byteLength(secret.value) < 32) {
      yield* Effect.logWarning("the JWT secret is shorter than 32 bytes (RFC 7518 asks for at least 256 bits)")
    }
    const publicKey = Option.isSome(o.jwtPublicKey)
      ? yield* Effect.try({
          try: () => Fs.readFileSync(o.jwtPublicKey.pipe(Option.getOrThrow), "utf8"),
          catch: (error) => new UsageError({ message: `--jwt-public-key: ${(error as Error).message}` })
        })
      : undefined
    const verify = yield* JwtVerifier.make({
      secret: Option.getOrUndefined(secret),
      publicKey,
      issuer: Option.getOrUndefined(o.jwtIssuer),
      audience: Option.getOrUndefined(o.jwtAudience)
    }).pipe(Effect.mapError((error) => new UsageError({ message: error.message })))
    return ChatHooks.layer(JwtHooks.hooks(verify))
  })

/** Where history and sessions live. */
type Backend =
  | { readonly _tag: "memory" }
  | {
      readonly _tag: "sqlite"
      readonly dataDir: string
      readonly maxAge: Duration.Duration
      readonly synchronous: "full" | "normal"
      readonly commitWindow: Duration.Duration
    }
  | { readonly _tag: "redis"; readonly url: string }

/** `30d`, `12h`, `90m`, `45s`, `500ms`; a bare number is seconds. */
const parseAge = (text: string): Duration.Duration | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (match === null) return undefined
  const value = Number(match[1])
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? "s"] ?? 1000
  return value > 0 ? Duration.millis(value * unit) : undefined
}

/** The backends: the embedded store by default; Redis loaded only when a URL is given. */
const chatLayer = (settings: ServerSettings, backend: Backend) => {
  switch (backend._tag) {
    case "memory":
      return ChatServer.layerMemory
    case "sqlite":
      return ChatServer.layer.pipe(
        Layer.provide(
          SqliteBackend.layer({
            dataDir: backend.dataDir,
            historyRetain: settings.historyRetain,
            historyMaxAge: backend.maxAge,
            roomTtl: settings.roomTtl,
            resumeWindow: settings.resumeWindow,
            synchronous: backend.synchronous,
            commitWindow: backend.commitWindow
          })
        )
      )
    case "redis":
      return Layer.unwrapEffect(
        Effect.promise(() => import("./redis/RedisBackend.js")).pipe(
          Effect.map((Redis) =>
            ChatServer.layer.pipe(
              Layer.provide(
                Redis.layer({
                  url: backend.url,
                  historyRetain: settings.historyRetain,
                  roomTtl: settings.roomTtl,
                  resumeWindow: settings.resumeWindow
                })
              )
            )
          )
        )
      )
  }
}

const announce = Layer.effectDiscard(
  Effect.flatMap(Effect.all([ServerConfig, ChatHttpServer.ServerAddress]), ([settings, address]) =>
    Console.log(`effect-chat listening on http://${settings.host}:${address.port}`)
  )
)

/** Until the options are read (and for what fails before): logfmt, as `--log-format` defaults to. */
const startLogger = Logger.withLeveledConsole(Logger.logfmtLogger)

const LOG_LEVELS = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/** The logger of `--log-format`, writing what `--log-level` lets through, to stderr for warnings and errors. */
const loggerOf = (parsed: Parsed) =>
  Layer.merge(
    // The one logger: the one installed until the options were read is replaced, not added to.
    Logger.replace(
      startLogger,
      Logger.withLeveledConsole(parsed.logFormat === "json" ? Logger.jsonLogger : Logger.logfmtLogger)
    ),
    Logger.minimumLogLevel(LOG_LEVELS[parsed.logLevel])
  )

/** The whole server, composed once: config → chat core over its backends → HTTP listener → the address line. */
const serve = (parsed: Parsed) =>
  Effect.flatMap(settingsOf(parsed), ({ backend, hooks, settings }) =>
    announce.pipe(
      Layer.provideMerge(ChatHttpServer.layer),
      Layer.provide(chatLayer(settings, backend).pipe(Layer.provide(PrometheusMetrics.layer()))),
      Layer.provide(hooks),
      Layer.provide(ServerConfig.layer(settings)),
      Layer.launch
    )
  ).pipe(Effect.provide(loggerOf(parsed)))

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
  Effect.catchTags({
    UsageError: (error) => exitWith(2, error.message),
    ListenError: (error) => exitWith(1, error.message),
    StoreError: (error) => exitWith(1, error.message)
  }),
  // @effect/cli has printed the problem and the usage
  Effect.catchIf(ValidationError.isValidationError, () => exitWith(2)),
  Effect.provide(Logger.replace(Logger.defaultLogger, startLogger)),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: false, disablePrettyLogger: true })
)
