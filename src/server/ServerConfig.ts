/**
 * Every knob of the chat core, with the defaults a public chat server should run with. The binary fills it from
 * flags and environment; tests and embedding applications build it with `make`.
 */
import { Context, Duration, Layer, type Redacted } from "effect"

export interface ServerSettings {
  readonly port: number
  readonly host: string
  /** Path of the WebSocket endpoint. */
  readonly path: string
  /** Largest accepted message, reassembled from its fragments (close 1009 above it). */
  readonly maxFrameBytes: number
  /** Messages each room keeps for history and resume. */
  readonly historyRetain: number
  /** Messages sent after a join. */
  readonly joinHistory: number
  /**
   * Rooms with more members than this do not announce each join and leave (`joined`/`left`): in a big room they
   * would cost every member a frame per arrival. `members` and `who` stay exact.
   */
  readonly presenceLimit: number
  /** How long an empty room's history is kept before the room is forgotten. */
  readonly roomTtl: Duration.Duration
  readonly maxRoomsPerConnection: number
  /** A session dropped without a clean close can be resumed within this window. */
  readonly resumeWindow: Duration.Duration
  readonly helloTimeout: Duration.Duration
  /** Outbound bound per connection: bytes waiting in the socket, and messages written since it last drained. */
  readonly maxBufferedBytes: number
  readonly maxQueuedMessages: number
  /** Time between a 4008/1001 close frame and destroying the TCP socket of a peer that does not answer. */
  readonly closeGrace: Duration.Duration
  /** On shutdown, how long `/readyz` answers 503 before the clients get 1001 (a load balancer's time to notice). */
  readonly drainDelay: Duration.Duration
  readonly pingInterval: Duration.Duration
  /** Token bucket per connection: sustained rate and burst of chat requests. */
  readonly rateLimit: { readonly perSecond: number; readonly burst: number; readonly strikesBeforeClose: number }
  readonly maxConnections: number
  readonly maxConnectionsPerIp: number
  /** Allowed `Origin` header values; empty allows every origin (and requests without one). */
  readonly allowedOrigins: ReadonlyArray<string>
  /** Time to receive a complete upgrade request's headers (slowloris). */
  readonly headersTimeout: Duration.Duration
  readonly auth: AuthSettings
  /** The key of the server API (`/api/v1/`, `Authorization: Bearer`); undefined: the API is off (404). */
  readonly apiKey: Redacted.Redacted | undefined
  /** The name messages published through the API carry when the call names none. */
  readonly apiName: string
}

/**
 * `off`: every connection is a guest (v1; no connect hook is asked). `optional`: a connection the connect hooks
 * identify is that user, any other a guest. `required`: a connection the hooks do not identify is refused (4001).
 */
export type AuthMode = "off" | "optional" | "required"

export interface AuthSettings {
  readonly mode: AuthMode
  /** After `token_expired`, how long a connection may take to send `refresh` before it is closed with 4001. */
  readonly grace: Duration.Duration
}

export const defaults: ServerSettings = {
  port: 8080,
  host: "0.0.0.0",
  path: "/chat",
  maxFrameBytes: 64 * 1024,
  historyRetain: 100,
  joinHistory: 50,
  presenceLimit: 100,
  roomTtl: Duration.minutes(10),
  maxRoomsPerConnection: 100,
  resumeWindow: Duration.minutes(2),
  helloTimeout: Duration.seconds(10),
  maxBufferedBytes: 1024 * 1024,
  maxQueuedMessages: 2000,
  closeGrace: Duration.millis(500),
  drainDelay: Duration.zero,
  pingInterval: Duration.seconds(30),
  rateLimit: { perSecond: 20, burst: 40, strikesBeforeClose: 10 },
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  allowedOrigins: [],
  headersTimeout: Duration.seconds(10),
  auth: { mode: "off", grace: Duration.seconds(30) },
  apiKey: undefined,
  apiName: "server"
}

/** Settings to change from the defaults; `auth` may name only the part it changes. */
export type ServerOverrides = Partial<Omit<ServerSettings, "auth">> & { readonly auth?: Partial<AuthSettings> }

export class ServerConfig extends Context.Tag("effect-chat/ServerConfig")<ServerConfig, ServerSettings>() {
  /** Defaults overridden by `overrides`. */
  static make = (overrides: ServerOverrides = {}): ServerSettings => ({
    ...defaults,
    ...overrides,
    rateLimit: { ...defaults.rateLimit, ...overrides.rateLimit },
    auth: { ...defaults.auth, ...overrides.auth }
  })
  static layer = (overrides: ServerOverrides = {}) => Layer.succeed(ServerConfig, ServerConfig.make(overrides))
}
