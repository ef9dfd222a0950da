/**
 * Reconnect storm: N connected clients, then the server restarts (SIGTERM, and a new process on the same port, as
 * in a deploy). How long until every client is back in its rooms — resumed, or told `resumed: false` and joined
 * afresh — with no error frame and no client giving up? effect-chat with N `ChatClient`s against the raw `ws`
 * rooms server with N plain `ws` clients that reconnect on the same backoff policy (`ReconnectPolicy`), same run.
 *
 *   node dist/scripts/bench-storm.js --clients 5000 --room-size 100
 */
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import { ChatClient, type ChatEvent, ReconnectPolicy } from "effect-chat"
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import {
  cpuTimeMs,
  fmt,
  fmtInt,
  freePort,
  installCleanup,
  nowMs,
  numberFlag,
  pinning,
  rawServerEntry,
  Samples,
  ScriptError,
  serverEntry,
  type ServerProcess,
  sleep,
  startNodeServer,
  SUBPROTOCOL,
  table,
  parseStore,
  type Store,
  storeArgs
} from "./BenchSupport.js"

type Target = "effect" | "raw"

const HELP = `bench-storm: every client reconnecting at once after a server restart, effect-chat against raw ws

  --clients N          connected clients (default 5000)
  --room-size N        members per room (default 100)
  --target T           effect | raw | both (default both)
  --deadline S         give up waiting after S seconds (default 60)
  --store S            the Effect server's store: memory or sqlite (a fresh data directory, kept across the restart; default memory)
  --server-arg ARG     extra argument for the Effect server (repeatable)
  --no-pin             do not pin the server and the load generator to separate cores
  --json               print one JSON object instead of tables
`

interface Config {
  readonly clients: number
  readonly roomSize: number
  readonly targets: ReadonlyArray<Target>
  readonly deadlineMs: number
  readonly serverArgs: ReadonlyArray<string>
  readonly store: Store
  readonly pin: boolean
  readonly json: boolean
}

const parseConfig = (): Config | undefined => {
  const { values } = parseArgs({
    options: {
      clients: { type: "string" },
      "room-size": { type: "string" },
      target: { type: "string" },
      deadline: { type: "string" },
      "server-arg": { type: "string", multiple: true },
      store: { type: "string" },
      "no-pin": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true
  })
  if (values.help) {
    process.stdout.write(HELP)
    return undefined
  }
  const target = values.target ?? "both"
  if (target !== "effect" && target !== "raw" && target !== "both") throw new ScriptError(`--target: "${target}"?`)
  return {
    clients: numberFlag("clients", values.clients, 5000, { min: 1, max: 19000, integer: true }),
    roomSize: numberFlag("room-size", values["room-size"], 100, { min: 1, integer: true }),
    targets: target === "both" ? ["effect", "raw"] : [target],
    deadlineMs: numberFlag("deadline", values.deadline, 60, { min: 1 }) * 1000,
    serverArgs: values["server-arg"] ?? [],
    store: parseStore(values.store),
    pin: !values["no-pin"],
    json: values.json
  }
}

/** What the harness follows of each client, whatever its kind. */
interface Tracked {
  /** Back in its room after the restart: welcomed again and its room's state (history) received. */
  backAt: number | undefined
  resumed: boolean
  errors: number
  gaveUp: boolean
}

const fresh = (): Tracked => ({ backAt: undefined, resumed: false, errors: 0, gaveUp: false })

interface StormResult {
  readonly target: Target
  readonly connectMs: number
  readonly backMs: number | undefined
  readonly back: number
  readonly resumed: number
  readonly errors: number
  readonly gaveUp: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU of the new server process, and of the load generator, from the restart until all were back. */
  readonly serverCpuMs: number | undefined
  readonly loadGenCpuMs: number
}

// ---------------------------------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------------------------------

/** A raw `ws` client that reconnects with the shared policy and joins its room afresh each time. */
class RawClient {
  readonly tracked = fresh()
  private attempt = 0
  private restarted = false
  private ws: WebSocket | undefined
  private stopped = false
  private onReady: (() => void) | undefined

  constructor(
    readonly url: string,
    readonly room: string
  ) {}

  connect(): Promise<void> {
    return new Promise((resolve) => {
      this.onReady = resolve
      this.open()
    })
  }

  expectRestart(): void {
    this.restarted = true
  }

  stop(): void {
    this.stopped = true
    this.ws?.terminate()
  }

  private open(): void {
    if (this.stopped) return
    const ws = new WebSocket(this.url, SUBPROTOCOL, { perMessageDeflate: false })
    this.ws = ws
    ws.on("open", () => ws.send(JSON.stringify({ type: "hello", rooms: [this.room] })))
    ws.on("error", () => {})
    ws.on("message", (data) => {
      const text = data.toString()
      if (text.startsWith('{"type":"error"')) this.tracked.errors++
      if (!text.startsWith('{"type":"history"')) return
      this.attempt = 0
      if (this.restarted && this.tracked.backAt === undefined) this.tracked.backAt = nowMs()
      this.onReady?.()
      this.onReady = undefined
    })
    ws.on("close", () => {
      if (this.stopped) return
      setTimeout(() => this.open(), ReconnectPolicy.backoffDelay(this.attempt++))
    })
  }
}

/** N `ChatClient`s in one scope; each one's events update its `Tracked`. */
const startChatClients = (urls: ReadonlyArray<{ url: string; room: string }>, scope: Scope.Scope) =>
  Effect.forEach(
    urls,
    ({ room, url }) =>
      Effect.gen(function* () {
        const tracked = fresh()
        let restarted = false
        let awaitingHistory = false
        const context = yield* Layer.buildWithScope(ChatClient.layer({ url, rooms: [room] }), scope)
        const client = Context.get(context, ChatClient)
        const onEvent = (event: ChatEvent) => {
          switch (event.type) {
            case "disconnected":
              restarted = true
              return
            case "connected":
              if (!restarted || !event.reconnected) return
              tracked.resumed = event.resumed
              // A resume with nothing missed sends an empty catch-up history, which the client does not surface.
              if (event.resumed) tracked.backAt ??= nowMs()
              else awaitingHistory = true
              return
            case "members":
              if (awaitingHistory && event.room === room) {
                awaitingHistory = false
                tracked.backAt ??= nowMs()
              }
              return
            case "error":
              tracked.errors++
              return
            case "closed":
              tracked.gaveUp = true
              return
          }
        }
        yield* Stream.runForEach(client.events, (event) => Effect.sync(() => onEvent(event))).pipe(Effect.forkIn(scope))
        return tracked
      }),
    { concurrency: 200 }
  )

// ---------------------------------------------------------------------------------------------------------------------
// One target
// ---------------------------------------------------------------------------------------------------------------------

/** The Effect server's store flags, the same for its restart: the embedded store comes back with its data. */
let effectStore: Array<string> | undefined

const startServer = (target: Target, port: number, config: Config, cpu: number | undefined) =>
  startNodeServer(
    target,
    target === "effect" ? serverEntry : rawServerEntry,
    target === "effect"
      ? [
          "--port",
          String(port),
          "--host",
          "127.0.0.1",
          "--max-connections",
          String(config.clients + 100),
          "--max-connections-per-ip",
          String(config.clients + 100),
          ...(effectStore ??= storeArgs(config.store)),
          ...config.serverArgs
        ]
      : ["--port", String(port), "--host", "127.0.0.1"],
    { cpu }
  )

const waitAll = async (done: () => boolean, deadlineMs: number) => {
  const deadline = Date.now() + deadlineMs
  while (!done() && Date.now() < deadline) await sleep(20)
}

const runTarget = async (target: Target, config: Config, cpu: number | undefined): Promise<StormResult> => {
  const port = await freePort()
  const url = `ws://127.0.0.1:${port}/chat`
  const rooms = Array.from({ length: config.clients }, (_, i) => ({
    url,
    room: `room_${Math.floor(i / config.roomSize)}`
  }))
  let server: ServerProcess = await startServer(target, port, config, cpu)
  const scope = Effect.runSync(Scope.make())
  const raw: Array<RawClient> = []
  try {
    const connectStart = nowMs()
    let tracked: ReadonlyArray<Tracked>
    if (target === "raw") {
      for (const { room } of rooms) raw.push(new RawClient(url, room))
      for (let i = 0; i < raw.length; i += 200) await Promise.all(raw.slice(i, i + 200).map((c) => c.connect()))
      tracked = raw.map((client) => client.tracked)
    } else {
      tracked = await Effect.runPromise(startChatClients(rooms, scope))
    }
    const connectMs = nowMs() - connectStart
    if (!config.json)
      process.stderr.write(
        `${target}: ${fmtInt(config.clients)} clients connected in ${fmt(connectMs / 1000, 2)} s; restarting the server\n`
      )
    for (const client of raw) client.expectRestart()

    const restart = nowMs()
    const loadStart = process.cpuUsage()
    await server.stop()
    server = await startServer(target, port, config, cpu)
    await waitAll(() => tracked.every((t) => t.backAt !== undefined || t.gaveUp), config.deadlineMs)
    const load = process.cpuUsage(loadStart)
    const serverCpuMs = cpuTimeMs(server.pid)
    const times = new Samples()
    for (const t of tracked) if (t.backAt !== undefined) times.push(t.backAt - restart)
    const [p50, p99, max] = times.percentiles([50, 99, 100])
    const back = tracked.filter((t) => t.backAt !== undefined).length
    return {
      target,
      connectMs,
      backMs: back === tracked.length ? max : undefined,
      back,
      resumed: tracked.filter((t) => t.resumed).length,
      errors: tracked.reduce((sum, t) => sum + t.errors, 0),
      gaveUp: tracked.filter((t) => t.gaveUp).length,
      p50Ms: p50!,
      p99Ms: p99!,
      serverCpuMs,
      loadGenCpuMs: (load.user + load.system) / 1000
    }
  } finally {
    for (const client of raw) client.stop()
    await Effect.runPromise(Scope.close(scope, Exit.void).pipe(Effect.timeout("20 seconds"), Effect.ignore))
    await server.stop()
  }
}

const report = (results: ReadonlyArray<StormResult>): string => {
  const effect = results.find((r) => r.target === "effect")
  const raw = results.find((r) => r.target === "raw")
  const rows: Array<Array<string>> = [["", "effect", "raw", "effect/raw"]]
  const add = (label: string, f: (r: StormResult) => number | undefined, show: (n: number) => string, ratio = true) => {
    const a = effect === undefined ? undefined : f(effect)
    const b = raw === undefined ? undefined : f(raw)
    const r = ratio && a !== undefined && b !== undefined && b !== 0 ? fmt(a / b, 2) : ""
    rows.push([label, a === undefined ? "—" : show(a), b === undefined ? "—" : show(b), r])
  }
  const seconds = (ms: number) => fmt(ms / 1000, 2)
  add("first connect, s", (r) => r.connectMs, seconds)
  add("all back after the restart, s", (r) => r.backMs, seconds)
  add("  p50 back, s", (r) => r.p50Ms, seconds)
  add("  p99 back, s", (r) => r.p99Ms, seconds)
  add("server CPU until all back, s", (r) => r.serverCpuMs, seconds)
  add("load-generator CPU until all back, s", (r) => r.loadGenCpuMs, seconds)
  add("clients back", (r) => r.back, fmtInt, false)
  add("  of them resumed", (r) => r.resumed, fmtInt, false)
  add("error frames", (r) => r.errors, fmtInt, false)
  add("clients that gave up", (r) => r.gaveUp, fmtInt, false)
  return table(rows)
}

const main = async () => {
  const config = parseConfig()
  if (config === undefined) return
  installCleanup()
  const cpus = config.pin ? pinning() : undefined
  const results: Array<StormResult> = []
  for (const target of config.targets) results.push(await runTarget(target, config, cpus?.server))
  if (config.json) {
    process.stdout.write(`${JSON.stringify({ config, results }, null, 2)}\n`)
  } else {
    process.stdout.write(
      `bench-storm: ${fmtInt(config.clients)} clients in rooms of ${config.roomSize}, server restarted (SIGTERM, new ` +
        `process on the same port), node ${process.version}` +
        (cpus === undefined ? "" : `, server on CPU ${cpus.server}, load generator on CPU ${cpus.loadGen}`) +
        `\n${report(results)}\n`
    )
  }
  if (results.some((r) => r.backMs === undefined || r.errors > 0 || r.gaveUp > 0)) process.exitCode = 1
  process.exit()
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-storm: ${error instanceof ScriptError ? error.message : String(error)}\n`)
  process.exit(1)
})
