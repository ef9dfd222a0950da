/**
 * A real chat server on 127.0.0.1, port 0, for end-to-end tests, and WebSocket clients that speak to it.
 */
import { Duration, Effect, Layer, Scope } from "effect"
import WebSocket from "ws"
import * as ChatHttpServer from "../../src/http/ChatHttpServer.js"
import { ChatServer } from "../../src/http/ChatServer.js"
import { SUBPROTOCOL } from "../../src/protocol/Protocol.js"
import { ChatHooks, type Hooks } from "../../src/server/ChatHooks.js"
import { ServerConfig, type ServerOverrides } from "../../src/server/ServerConfig.js"

/** The server under test: in-memory backends, an HTTP listener on a free port, and its `ChatServer` service. */
export const layer = (overrides: ServerOverrides = {}, hooks: ReadonlyArray<Hooks> = []) =>
  ChatHttpServer.layer.pipe(
    Layer.provideMerge(ChatServer.layerMemory),
    Layer.provide(ChatHooks.layer(...hooks)),
    Layer.provide(ServerConfig.layer({ port: 0, host: "127.0.0.1", ...overrides }))
  )

/** Runs a test against its own server; clients opened in it are closed before the server shuts down. */
export const serve =
  (overrides: ServerOverrides = {}, hooks: ReadonlyArray<Hooks> = []) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(Effect.scoped, Effect.provide(layer(overrides, hooks)))

/** A rate limit no test reaches, for tests that send bursts. */
export const noRateLimit = { rateLimit: { perSecond: 100_000, burst: 100_000, strikesBeforeClose: 10 } }

/** Waits for `condition`, polling; dies after `timeoutMs`. */
export const waitUntil = (condition: () => boolean, timeoutMs = 5000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not reached"))
      yield* Effect.sleep(Duration.millis(10))
    }
  })

export const chatUrl = Effect.map(ChatHttpServer.ServerAddress, (address) => `ws://127.0.0.1:${address.port}/chat`)

export interface Closed {
  readonly code: number
  readonly reason: string
}

/** A frame as received: JSON for the JSON dialect, the raw line for the plain one. */
export type Received = any

/**
 * A WebSocket client that records everything it receives. `next` consumes the first unread frame matching a
 * predicate, waiting for it up to a timeout, so tests assert on order without sleeping.
 */
export class TestClient {
  readonly received: Array<Received> = []
  private readonly unread: Array<Received> = []
  private waiters: Array<() => void> = []
  readonly closed: Promise<Closed>
  readonly opened: Promise<void>

  constructor(
    readonly ws: WebSocket,
    readonly json: boolean
  ) {
    ws.on("message", (data, isBinary) => {
      const text = data.toString()
      const frame = json && !isBinary ? JSON.parse(text) : text
      this.received.push(frame)
      this.unread.push(frame)
      const waiters = this.waiters
      this.waiters = []
      for (const wake of waiters) wake()
    })
    this.closed = new Promise((resolve) =>
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }))
    )
    this.opened = new Promise((resolve, reject) => {
      ws.once("open", () => resolve())
      ws.once("error", reject)
    })
    ws.on("error", () => {})
  }

  send(frame: object | string): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame))
  }

  /** The first unread frame satisfying `match` (any frame when omitted), removed from the unread list. */
  next(match: (frame: Received) => boolean = () => true, timeoutMs = 5000): Effect.Effect<Received> {
    return Effect.async<Received>((resume) => {
      const attempt = () => {
        const index = this.unread.findIndex(match)
        if (index === -1) return false
        const [frame] = this.unread.splice(index, 1)
        resume(Effect.succeed(frame))
        return true
      }
      if (attempt()) return
      const wake = () => {
        if (!attempt()) this.waiters.push(wake)
      }
      this.waiters.push(wake)
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake)
        resume(
          Effect.die(new Error(`timed out waiting for a frame; unread: ${JSON.stringify(this.unread).slice(0, 500)}`))
        )
      }, timeoutMs)
      return Effect.sync(() => clearTimeout(timer))
    })
  }

  /** The next unread frame of `type` (JSON dialect). */
  nextOf(type: string, extra: (frame: Received) => boolean = () => true, timeoutMs?: number) {
    return this.next((f) => typeof f === "object" && f.type === type && extra(f), timeoutMs)
  }

  /** Frames of `type` received so far (read or not). */
  all(type: string): Array<Received> {
    return this.received.filter((f) => typeof f === "object" && f.type === type)
  }

  waitClosed(timeoutMs = 5000): Effect.Effect<Closed> {
    return Effect.promise(() => this.closed).pipe(
      Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new Error("socket did not close") }),
      Effect.orDie
    )
  }

  close(code = 1000): Effect.Effect<void> {
    return Effect.sync(() => this.ws.readyState <= 1 && this.ws.close(code))
  }
}

const open = (url: string, protocols: Array<string>, json: boolean, options: WebSocket.ClientOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new TestClient(new WebSocket(url, protocols, options), json)
      await client.opened
      return client
    }),
    (client) => Effect.sync(() => client.ws.terminate())
  )

/** A JSON-dialect client that has sent `hello` and received its `welcome`. */
export const jsonClient = (
  hello: Record<string, unknown> = {},
  options: WebSocket.ClientOptions = {}
): Effect.Effect<TestClient & { welcome: Received }, never, Scope.Scope | ChatHttpServer.ServerAddress> =>
  Effect.gen(function* () {
    const client = yield* rawJsonClient(options)
    client.send({ type: "hello", ...hello })
    const welcome = yield* client.nextOf("welcome")
    return Object.assign(client, { welcome })
  })

/** `jsonClient` against a server other than the one in context (another node, a restarted binary). */
export const jsonClientAt = (
  address: typeof ChatHttpServer.ServerAddress.Service,
  hello: Record<string, unknown> = {}
): Effect.Effect<TestClient & { welcome: Received }, never, Scope.Scope> =>
  jsonClient(hello).pipe(Effect.provideService(ChatHttpServer.ServerAddress, address))

/** A JSON-dialect socket that has not said `hello` yet. */
export const rawJsonClient = (options: WebSocket.ClientOptions = {}) =>
  Effect.flatMap(chatUrl, (url) => open(url, [SUBPROTOCOL], true, options))

/** A plain-dialect client (no subprotocol), as a raw WebSocket tool would connect. */
export const plainClient = (query = "", options: WebSocket.ClientOptions = {}) =>
  Effect.flatMap(chatUrl, (url) => open(`${url}${query}`, [], false, options))
