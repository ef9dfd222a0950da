/**
 * Idle memory: how much a connection that does nothing costs the server, effect-chat against the raw `ws` rooms
 * server in the same run. N JSON clients join rooms of `--room-size`, then sit idle; at each checkpoint both servers
 * get a full garbage collection (through the inspector, the same for both) and their RSS and heap are read. The
 * figure that matters is the marginal one: bytes per extra connection between two checkpoints. At the end one
 * message per room must reach every member, so the connections are alive, not just counted.
 *
 *   node dist/scripts/bench-idle.js --connections 10000,19000 --room-size 100
 */
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import {
  collectGarbage,
  fetchHealth,
  fmt,
  fmtInt,
  nowMs,
  numberFlag,
  pinning,
  rawServerEntry,
  rssBytes,
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

const HELP = `bench-idle: idle memory per connection of effect-chat against a raw ws rooms server

  --connections LIST   checkpoints, ascending (default 10000,19000; at most 19500 on this machine)
  --room-size N        members per room (default 100)
  --target T           effect | raw | both (default both)
  --settle S           seconds idle before each measurement (default 3)
  --store S            the Effect server's store: memory or sqlite (a fresh data directory; default memory)
  --server-arg ARG     extra argument for the Effect server (repeatable)
  --no-pin             do not pin the server and the load generator to separate cores
  --json               print one JSON object instead of tables
`

interface Config {
  readonly checkpoints: ReadonlyArray<number>
  readonly roomSize: number
  readonly targets: ReadonlyArray<Target>
  readonly settleMs: number
  readonly serverArgs: ReadonlyArray<string>
  readonly store: Store
  readonly pin: boolean
  readonly json: boolean
}

const parseConfig = (): Config | undefined => {
  const { values } = parseArgs({
    options: {
      connections: { type: "string" },
      "room-size": { type: "string" },
      target: { type: "string" },
      settle: { type: "string" },
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
  const checkpoints = (values.connections ?? "10000,19000").split(",").map((n) => numberFlag("connections", n, 0))
  if (checkpoints.some((n, i) => !Number.isInteger(n) || n < 1 || n > 19500 || (i > 0 && n <= checkpoints[i - 1]!))) {
    throw new ScriptError("--connections: ascending integers from 1 to 19500, comma-separated")
  }
  const target = values.target ?? "both"
  if (target !== "effect" && target !== "raw" && target !== "both") throw new ScriptError(`--target: "${target}"?`)
  return {
    checkpoints,
    roomSize: numberFlag("room-size", values["room-size"], 100, { min: 1, integer: true }),
    targets: target === "both" ? ["effect", "raw"] : [target],
    settleMs: numberFlag("settle", values.settle, 3, { min: 0 }) * 1000,
    serverArgs: values["server-arg"] ?? [],
    store: parseStore(values.store),
    pin: !values["no-pin"],
    json: values.json
  }
}

interface Sample {
  readonly connections: number
  readonly rss: number
  readonly heap: number
  readonly connectMs: number
}

interface TargetResult {
  readonly target: Target
  readonly base: Sample
  readonly samples: ReadonlyArray<Sample>
  readonly broadcast: { readonly expected: number; readonly delivered: number; readonly ms: number }
}

/** One idle client: it joins its room, then only counts the messages it gets. */
class IdleClient {
  received = 0
  ws!: WebSocket

  constructor(
    readonly url: string,
    readonly room: string
  ) {}

  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, SUBPROTOCOL, { perMessageDeflate: false, skipUTF8Validation: true })
      this.ws = ws
      let ready = false
      const timer = setTimeout(() => fail(new ScriptError(`not ready within ${timeoutMs} ms`)), timeoutMs)
      const fail = (error: Error) => {
        if (ready) return
        ready = true
        clearTimeout(timer)
        ws.terminate()
        reject(error)
      }
      ws.on("open", () => ws.send(JSON.stringify({ type: "hello", rooms: [this.room] })))
      ws.on("error", (error) => fail(error))
      ws.on("close", (code) => fail(new ScriptError(`closed with ${code} before it was ready`)))
      ws.on("message", (data) => {
        const text = data.toString()
        if (!ready && text.startsWith('{"type":"history"')) {
          ready = true
          clearTimeout(timer)
          resolve()
        } else if (text.startsWith('{"type":"message"')) {
          this.received++
        }
      })
    })
  }
}

const connectMany = async (clients: ReadonlyArray<IdleClient>, concurrency = 200): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < clients.length) await clients[next++]!.connect(60_000)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

const measure = async (server: ServerProcess, connections: number, connectMs: number): Promise<Sample> => {
  await collectGarbage(server)
  await sleep(200)
  const health = await fetchHealth(`http://127.0.0.1:${server.port}`)
  const rss = rssBytes(server.pid)
  if (rss === undefined) throw new ScriptError(`${server.label}: cannot read its RSS`)
  return { connections, rss, heap: health.heapUsed, connectMs }
}

const runTarget = async (target: Target, config: Config, cpu: number | undefined): Promise<TargetResult> => {
  const max = config.checkpoints.at(-1)!
  const args =
    target === "effect"
      ? [
          "--port",
          "0",
          "--host",
          "127.0.0.1",
          "--max-connections",
          String(max + 100),
          "--max-connections-per-ip",
          String(max + 100),
          ...storeArgs(config.store),
          ...config.serverArgs
        ]
      : ["--port", "0", "--host", "127.0.0.1"]
  const server = await startNodeServer(target, target === "effect" ? serverEntry : rawServerEntry, args, {
    nodeArgs: ["--inspect=127.0.0.1:0"],
    cpu
  })
  const url = `ws://127.0.0.1:${server.port}/chat`
  const clients: Array<IdleClient> = []
  try {
    await sleep(config.settleMs)
    const base = await measure(server, 0, 0)
    const samples: Array<Sample> = []
    for (const checkpoint of config.checkpoints) {
      const fresh: Array<IdleClient> = []
      while (clients.length < checkpoint) {
        const client = new IdleClient(url, `room_${Math.floor(clients.length / config.roomSize)}`)
        clients.push(client)
        fresh.push(client)
      }
      const start = nowMs()
      await connectMany(fresh)
      const connectMs = nowMs() - start
      await sleep(config.settleMs)
      const sample = await measure(server, checkpoint, connectMs)
      samples.push(sample)
      if (!config.json) {
        process.stderr.write(
          `${target}: ${fmtInt(checkpoint)} idle connections, RSS ${fmt(sample.rss / 2 ** 20)} MiB, heap ${fmt(sample.heap / 2 ** 20)} MiB\n`
        )
      }
    }
    // One message per room, from its first member: every member must get it.
    const senders = new Map<string, IdleClient>()
    for (const client of clients) if (!senders.has(client.room)) senders.set(client.room, client)
    const start = nowMs()
    for (const [room, sender] of senders) {
      sender.ws.send(JSON.stringify({ type: "send", room, text: "are you all there?" }))
    }
    const deadline = Date.now() + 30_000
    const delivered = () => clients.reduce((sum, client) => sum + client.received, 0)
    while (delivered() < clients.length && Date.now() < deadline) await sleep(20)
    const broadcast = { expected: clients.length, delivered: delivered(), ms: nowMs() - start }
    return { target, base, samples, broadcast }
  } finally {
    for (const client of clients) client.ws?.terminate()
    await server.stop()
  }
}

const kb = (bytes: number) => fmt(bytes / 1024, 1)

const report = (results: ReadonlyArray<TargetResult>, config: Config): string => {
  const byTarget = new Map(results.map((result) => [result.target, result]))
  const effect = byTarget.get("effect")
  const raw = byTarget.get("raw")
  const rows: Array<Array<string>> = [["", "effect", "raw", "effect/raw"]]
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || b === 0 ? "" : fmt(a / b, 2)
  const add = (label: string, f: (result: TargetResult) => number | undefined, show: (n: number) => string) => {
    const a = effect === undefined ? undefined : f(effect)
    const b = raw === undefined ? undefined : f(raw)
    rows.push([label, a === undefined ? "—" : show(a), b === undefined ? "—" : show(b), ratio(a, b)])
  }
  add(
    "RSS at start, MiB",
    (r) => r.base.rss / 2 ** 20,
    (n) => fmt(n)
  )
  config.checkpoints.forEach((n, i) => {
    const at = (r: TargetResult) => r.samples[i]!
    add(
      `RSS at ${fmtInt(n)}, MiB`,
      (r) => at(r).rss / 2 ** 20,
      (v) => fmt(v)
    )
    add(`  RSS per connection, KB`, (r) => (at(r).rss - r.base.rss) / n, kb)
    add(`  heap per connection, KB`, (r) => (at(r).heap - r.base.heap) / n, kb)
    add(
      `  connect s`,
      (r) => at(r).connectMs / 1000,
      (v) => fmt(v, 2)
    )
    if (i > 0) {
      const prev = config.checkpoints[i - 1]!
      const between = (r: TargetResult, field: "rss" | "heap") => (at(r)[field] - r.samples[i - 1]![field]) / (n - prev)
      add(`marginal RSS ${fmtInt(prev)}→${fmtInt(n)}, KB`, (r) => between(r, "rss"), kb)
      add(`marginal heap ${fmtInt(prev)}→${fmtInt(n)}, KB`, (r) => between(r, "heap"), kb)
    }
  })
  add("broadcast delivered", (r) => r.broadcast.delivered, fmtInt)
  add("broadcast expected", (r) => r.broadcast.expected, fmtInt)
  add(
    "broadcast ms",
    (r) => r.broadcast.ms,
    (v) => fmt(v, 0)
  )
  return table(rows)
}

const main = async () => {
  const config = parseConfig()
  if (config === undefined) return
  const cpus = config.pin ? pinning() : undefined
  const results: Array<TargetResult> = []
  for (const target of config.targets) results.push(await runTarget(target, config, cpus?.server))
  if (config.json) {
    process.stdout.write(`${JSON.stringify({ config, results }, null, 2)}\n`)
    return
  }
  process.stdout.write(
    `bench-idle: ${config.checkpoints.map(fmtInt).join(", ")} idle JSON connections in rooms of ${config.roomSize}, ` +
      `node ${process.version}${cpus === undefined ? "" : `, server on CPU ${cpus.server}, load generator on CPU ${cpus.loadGen}`}\n`
  )
  process.stdout.write(`${report(results, config)}\n`)
  const short = results.filter((r) => r.broadcast.delivered < r.broadcast.expected)
  if (short.length > 0) {
    process.stderr.write(`broadcast incomplete: ${short.map((r) => r.target).join(", ")}\n`)
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench-idle: ${error instanceof ScriptError ? error.message : String(error)}\n`)
  process.exitCode = 1
})
