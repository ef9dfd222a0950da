/**
 * Fan-out benchmark: the Effect server against a minimal raw `ws` broadcast server, same harness, same run.
 *
 *   npm run bench -- --clients 1000 --senders 10 --rate 50 --duration 10 --rooms 1 --target both
 *   node dist/scripts/bench-fanout.js --rooms 50 --json
 *   node dist/scripts/bench-fanout.js --nodes 2            (two Effect nodes over Redis; spawns a redis-server
 *                                                           unless --redis URL is given)
 *   node dist/scripts/bench-fanout.js --max                (ramp the rate until p99 > 100 ms or loss > 0)
 *   node dist/scripts/bench-fanout.js --clients 2000 --rooms 200 --senders 200 \
 *     --sweep 250,500,1000,2000 --svg docs/bench/small-rooms.svg   (CPU/delivery and p99 against the rate)
 *
 * Each server runs as a child process so its CPU time is read the same way (/proc/<pid>/stat). N clients speak the
 * JSON dialect, each joins room_(i mod rooms); S of them send at a fixed total rate, every text stamped with the
 * monotonic send time, and every receiver records now − stamp and checks that ids per room rise by exactly 1.
 */
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import {
  allProcessCpu,
  cpuTimeMs,
  fmt,
  fmtInt,
  installCleanup,
  machineBusyMs,
  nowMs,
  numberFlag,
  parseStore,
  pinning,
  rawServerEntry,
  redisPid,
  Samples,
  ScriptError,
  serverEntry,
  type ServerProcess,
  sleep,
  startNodeServer,
  startRedis,
  type Store,
  storeArgs,
  SUBPROTOCOL,
  table,
  topOtherProcesses
} from "./BenchSupport.js"
import { sweepChart } from "./SweepChart.js"

// ---------------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------------

/** effect: the Effect server over --store; store: the same server over the embedded store; raw: the `ws` loop. */
type Target = "effect" | "raw" | "store"

/** Ratios printed when both targets of a pair ran, numerator first. */
const RATIO_PAIRS: ReadonlyArray<readonly [Target, Target]> = [
  ["effect", "raw"],
  ["store", "effect"],
  ["store", "raw"]
]

const pairsOf = (targets: ReadonlyArray<Target>) =>
  RATIO_PAIRS.filter(([a, b]) => targets.includes(a) && targets.includes(b))

interface Config {
  readonly clients: number
  readonly senders: number
  readonly rate: number
  readonly duration: number
  readonly rooms: number
  readonly nodes: number
  readonly redis: string | undefined
  readonly targets: ReadonlyArray<Target>
  readonly json: boolean
  readonly graceMs: number
  readonly connectConcurrency: number
  readonly connectTimeoutMs: number
  readonly max: boolean
  readonly maxP99Ms: number
  readonly stepDuration: number
  readonly stepFactor: number
  readonly maxRate: number
  readonly serverArgs: ReadonlyArray<string>
  readonly store: Store
  readonly warmup: number
  readonly maxRetries: number
  readonly defaultServerArgs: boolean
  readonly repeat: number
  readonly waitQuietMs: number
  readonly pin: boolean
  /** Rates of a sweep: the whole measurement once per rate (empty: the single --rate). */
  readonly sweep: ReadonlyArray<number>
  readonly svg: string | undefined
}

const HELP = `bench-fanout: fan-out throughput, latency and CPU of effect-chat against a raw ws broadcast server

  --clients N          WebSocket clients (default 1000; keep <= ~5000 on this machine)
  --senders S          clients that send (default 10)
  --rate R             total messages per second over all senders (default 50)
  --duration D         seconds of sending (default 10)
  --rooms K            rooms; client i joins room_(i mod K) (default 1)
  --nodes M            Effect server processes sharing a Redis (default 1); clients alternate between them
  --redis URL          Redis for --nodes > 1 (default: start a throw-away redis-server)
  --target T           effect | raw | store | both, or a comma list such as effect,store (default both = effect,raw);
                       store is the Effect server over the embedded store (a fresh data directory per run) in
                       the same run as the others, so store/effect is a same-run ratio
  --grace MS           wait for stragglers after the last send (default 2000)
  --warmup S           unmeasured seconds of sending at --rate before measuring (default 1; 0 for none)
  --max                ramp the rate (x --step-factor every --step-duration s) until p99 > --max-p99 or loss > 0
  --max-p99 MS         latency bound of --max (default 100)
  --step-duration S    seconds per --max step (default 4)
  --step-factor F      rate multiplier per --max step (default 1.5)
  --max-rate R         stop --max at this rate (default 20000)
  --no-max-retry       end --max at the first failing step (default: a failing rate is tried once more)
  --store S            the Effect server's store: memory or sqlite (the embedded store, a fresh data directory
                       per run; default memory). Ignored with --nodes > 1 (Redis)
  --server-arg ARG     extra argument for the Effect server (repeatable), e.g. --server-arg=--join-history=0
  --no-default-server-args
                       do not lift the Effect server's rate and per-address connection limits
  --repeat N           run every target N times, alternating their order, and report medians (default 1)
  --wait-quiet S       before each run, wait up to S s for the machine to be idle (default 5; 0 to skip)
  --no-pin             do not pin a single server and the load generator to separate cores (default: pinned)
  --sweep R1,R2,...    measure at each of these total rates in turn and print CPU/delivery and p99 per rate
  --svg FILE           with --sweep: also write a chart of both figures against the rate for every target
  --json               print one JSON object instead of tables
`

const parseConfig = (): Config | undefined => {
  const { values } = parseArgs({
    options: {
      clients: { type: "string" },
      senders: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      rooms: { type: "string" },
      nodes: { type: "string" },
      redis: { type: "string" },
      target: { type: "string" },
      grace: { type: "string" },
      "connect-concurrency": { type: "string" },
      "connect-timeout": { type: "string" },
      max: { type: "boolean", default: false },
      "max-p99": { type: "string" },
      "step-duration": { type: "string" },
      "step-factor": { type: "string" },
      "max-rate": { type: "string" },
      "server-arg": { type: "string", multiple: true },
      store: { type: "string" },
      warmup: { type: "string" },
      "no-max-retry": { type: "boolean", default: false },
      "no-default-server-args": { type: "boolean", default: false },
      repeat: { type: "string" },
      "wait-quiet": { type: "string" },
      "no-pin": { type: "boolean", default: false },
      sweep: { type: "string" },
      svg: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true
  })
  if (values.help) {
    process.stdout.write(HELP)
    return undefined
  }
  const num = (name: keyof typeof values, fallback: number, check: Parameters<typeof numberFlag>[3] = {}) =>
    numberFlag(name, values[name] as string | undefined, fallback, check)
  const clients = num("clients", 1000, { min: 1, max: 20000, integer: true })
  const senders = num("senders", 10, { min: 1, integer: true })
  if (senders > clients) throw new ScriptError("--senders: cannot exceed --clients")
  const rooms = num("rooms", 1, { min: 1, integer: true })
  if (rooms > clients) throw new ScriptError("--rooms: cannot exceed --clients (every room needs a member)")
  const target = values.target ?? "both"
  const targets: Array<Target> = []
  for (const part of (target === "both" ? "effect,raw" : target).split(",")) {
    const name = part.trim()
    if (name !== "effect" && name !== "raw" && name !== "store") {
      throw new ScriptError(`--target: "${name}" is not effect, raw, store or both`)
    }
    if (!targets.includes(name)) targets.push(name)
  }
  const sweep = (values.sweep ?? "")
    .split(",")
    .filter((part) => part.trim() !== "")
    .map((part) => numberFlag("sweep", part.trim(), 0, { min: 0.1 }))
  if (values.sweep !== undefined && sweep.length === 0)
    throw new ScriptError("--sweep: give rates such as 250,500,1000")
  if (targets.includes("store") && values.nodes !== undefined && Number(values.nodes) > 1) {
    throw new ScriptError("--target store: the embedded store is one process; --nodes > 1 is the Redis mode")
  }
  if (sweep.length > 0 && values.max) throw new ScriptError("--sweep and --max measure different things; pick one")
  if (values.svg !== undefined && sweep.length === 0) throw new ScriptError("--svg: needs --sweep")
  return {
    clients,
    senders,
    rate: num("rate", 50, { min: 0.1 }),
    duration: num("duration", 10, { min: 0.5 }),
    rooms,
    nodes: num("nodes", 1, { min: 1, max: 8, integer: true }),
    redis: values.redis,
    targets,
    json: values.json,
    graceMs: num("grace", 2000, { min: 0 }),
    connectConcurrency: num("connect-concurrency", 200, { min: 1, integer: true }),
    connectTimeoutMs: num("connect-timeout", 60, { min: 1 }) * 1000,
    max: values.max,
    maxP99Ms: num("max-p99", 100, { min: 1 }),
    stepDuration: num("step-duration", 4, { min: 0.5 }),
    stepFactor: num("step-factor", 1.5, { min: 1.01 }),
    maxRate: num("max-rate", 20000, { min: 1 }),
    serverArgs: values["server-arg"] ?? [],
    store: parseStore(values.store),
    warmup: num("warmup", 1, { min: 0 }),
    maxRetries: values["no-max-retry"] ? 0 : 1,
    defaultServerArgs: !values["no-default-server-args"],
    repeat: num("repeat", 1, { min: 1, max: 20, integer: true }),
    waitQuietMs: num("wait-quiet", 5, { min: 0 }) * 1000,
    pin: !values["no-pin"],
    sweep,
    svg: values.svg
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Measurement state shared by all clients of one run (one process, so plain counters are enough)
// ---------------------------------------------------------------------------------------------------------------------

class Meter {
  /** Which sending step the counters belong to; deliveries stamped with another step count as late. */
  step = -1
  delivered = 0
  late = 0
  lastDeliveryAt = 0
  readonly latencies = new Samples()
  gaps = 0
  missing = 0
  dups = 0
  misrouted = 0
  frames = 0
  lastFrameAt = 0
  unparsable = 0
  readonly errors = new Map<string, number>()
  readonly closes = new Map<string, number>()
  /** Set once the harness closes the clients itself, so those closes are not reported as failures. */
  closing = false

  startStep(step: number): void {
    this.step = step
    this.delivered = 0
    this.late = 0
    this.lastDeliveryAt = 0
    this.latencies.reset()
  }
}

const bump = (map: Map<string, number>, key: string): void => {
  map.set(key, (map.get(key) ?? 0) + 1)
}

/** The fields of server frames the harness reads; everything else is ignored. */
interface IncomingFrame {
  readonly type?: string
  readonly room?: string
  readonly id?: number
  readonly text?: string
  readonly code?: string
  readonly messages?: ReadonlyArray<{ readonly id: number }>
}

interface RoomSeen {
  last: number
  /** Set when the join history was empty: the first live id, checked against the room's first id at the end. */
  first: number | undefined
}

const PASSIVE = ['{"type":"joined"', '{"type":"left"', '{"type":"members"', '{"type":"renamed"', '{"type":"welcome"']

class BenchClient {
  readonly seen = new Map<string, RoomSeen>()
  private pendingHistory: Set<string>
  ws!: WebSocket

  constructor(
    readonly index: number,
    readonly url: string,
    readonly rooms: ReadonlyArray<string>,
    private readonly meter: Meter
  ) {
    this.pendingHistory = new Set(rooms)
  }

  /** Resolves when the welcome and the join history of every room have arrived. */
  connect(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      // UTF-8 validation of every received frame is load-generator time the servers' figures do not need.
      const ws = new WebSocket(this.url, SUBPROTOCOL, {
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
        skipUTF8Validation: true
      })
      this.ws = ws
      let ready = false
      const timer = setTimeout(
        () => fail(new ScriptError(`client ${this.index}: not ready within ${timeoutMs} ms`)),
        timeoutMs
      )
      const fail = (error: Error) => {
        if (ready) return
        ready = true
        clearTimeout(timer)
        ws.terminate()
        reject(error)
      }
      ws.on("open", () => ws.send(JSON.stringify({ type: "hello", rooms: this.rooms })))
      ws.on("error", (error) => fail(new ScriptError(`client ${this.index}: ${error.message}`)))
      ws.on("close", (code) => {
        if (!ready) fail(new ScriptError(`client ${this.index}: closed with ${code} before it was ready`))
        else if (!this.meter.closing) bump(this.meter.closes, String(code))
      })
      ws.on("message", (data, isBinary) => {
        const meter = this.meter
        meter.frames++
        meter.lastFrameAt = nowMs()
        if (isBinary) {
          meter.unparsable++
          return
        }
        const text = data.toString()
        // Presence and room state are only counted: parsing them would make the load generator, not the server,
        // the bottleneck of a join storm (both servers write `type` first).
        if (PASSIVE.some((prefix) => text.startsWith(prefix))) return
        let frame: IncomingFrame
        try {
          frame = JSON.parse(text)
        } catch {
          meter.unparsable++
          return
        }
        switch (frame.type) {
          case "message":
            this.onMessage(frame.room!, frame.id!, frame.text!)
            return
          case "history": {
            const messages = frame.messages ?? []
            const last = messages.length > 0 ? messages[messages.length - 1]!.id : undefined
            if (!this.seen.has(frame.room!)) this.seen.set(frame.room!, { last: last ?? -1, first: undefined })
            if (!ready && this.pendingHistory.delete(frame.room!) && this.pendingHistory.size === 0) {
              ready = true
              clearTimeout(timer)
              resolve()
            }
            return
          }
          case "error":
            bump(meter.errors, String(frame.code))
            if (!ready) fail(new ScriptError(`client ${this.index}: error before ready: ${data.toString()}`))
            return
        }
      })
    })
  }

  private onMessage(room: string, id: number, text: string): void {
    const meter = this.meter
    const now = nowMs()
    const seen = this.seen.get(room)
    if (seen === undefined) {
      // Not a room of this client (or a message before its join history): it must not be here at all.
      meter.misrouted++
      return
    } else if (seen.last === -1 && seen.first === undefined) {
      seen.last = id
      seen.first = id
    } else if (id === seen.last + 1) {
      seen.last = id
    } else if (id > seen.last + 1) {
      meter.gaps++
      meter.missing += id - seen.last - 1
      seen.last = id
    } else {
      meter.dups++
    }
    // text = "t=<ms> s=<sender> n=<seq> k=<step>"
    const space = text.indexOf(" ")
    const stamp = Number(text.slice(2, space))
    const step = Number(text.slice(text.lastIndexOf("k=") + 2))
    if (step === meter.step && Number.isFinite(stamp)) {
      meter.delivered++
      meter.lastDeliveryAt = now
      meter.latencies.push(now - stamp)
    } else {
      meter.late++
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// One target: start server(s), connect, send in one or more steps, stop
// ---------------------------------------------------------------------------------------------------------------------

interface StepResult {
  readonly rate: number
  readonly seconds: number
  /** Length of the CPU measurement: first send until every delivery arrived (or the grace ran out). */
  readonly measuredMs: number
  readonly sent: number
  readonly expected: number
  readonly delivered: number
  readonly lossPct: number
  readonly late: number
  readonly deliveriesPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly serverCpuMs: number | undefined
  readonly redisCpuMs: number | undefined
  readonly cpuUsPerDelivery: number | undefined
  readonly loadGenCpuMs: number
  /** Busy CPU of everything else on the machine during the step: other work sharing the cores skews the figures. */
  readonly otherCpuMs: number | undefined
  /** The biggest of those other consumers, to tell a neighbour's test run from the kernel's network work. */
  readonly otherTop: ReadonlyArray<{ readonly pid: number; readonly name: string; readonly ms: number }>
  readonly errors: Record<string, number>
  readonly closes: Record<string, number>
}

interface RunResult {
  readonly target: Target
  readonly nodes: number
  readonly connectMs: number
  readonly setupFrames: number
  /** Server CPU while connected clients are idle, in % of one core. */
  readonly idleCpuPct: number | undefined
  readonly steps: ReadonlyArray<StepResult>
  readonly ordering: {
    readonly gaps: number
    readonly missing: number
    readonly dups: number
    readonly firstIdGaps: number
    /** Messages of a room the receiver is not in. */
    readonly misrouted: number
  }
  readonly maxSustainedRate: number | undefined
  readonly maxSustainedDeliveriesPerSec: number | undefined
  readonly serverExit: ReadonlyArray<string>
}

/**
 * The Effect server's abuse limits are lifted so the benchmark measures fan-out, not policy: the baseline has none,
 * every client comes from 127.0.0.1 (per-address limit), and --max pushes each sender far past a human's rate.
 * --no-default-server-args drops them; --server-arg adds to (or, given later, overrides) them.
 */
const effectServerArgs = (config: Config, store: Store = config.store, shown = false): Array<string> => [
  ...(config.defaultServerArgs
    ? [
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-connections",
        String(Math.max(10000, config.clients + 100)),
        "--max-connections-per-ip",
        String(Math.max(1000, config.clients + 100))
      ]
    : []),
  // Shown, not run: no data directory is made for the printout (each run gets its own).
  ...(config.nodes > 1
    ? []
    : shown && store === "sqlite"
      ? ["--store", "sqlite", "--data-dir", "(a fresh directory per run)"]
      : storeArgs(store)),
  ...config.serverArgs
]

const roomName = (k: number): string => `room_${k}`
const IDLE_SAMPLE_MS = 1000

const sumCpu = (servers: ReadonlyArray<ServerProcess>): number | undefined => {
  let sum = 0
  for (const server of servers) {
    const ms = cpuTimeMs(server.pid)
    if (ms === undefined) return undefined
    sum += ms
  }
  return sum
}
const WARMUP_STEP = 9999

/** Rooms each sender posts to, round-robin, so every room gets traffic when there are more rooms than senders. */
const senderRooms = (config: Config, sender: number): Array<string> => {
  const own = roomName(sender % config.rooms)
  if (config.rooms <= config.senders) return [own]
  const rooms = [own]
  for (let k = sender; k < config.rooms; k += config.senders) if (roomName(k) !== own) rooms.push(roomName(k))
  return rooms
}

const runTarget = async (
  config: Config,
  target: Target,
  redis: { url: string; pid: number | undefined } | undefined,
  log: (line: string) => void
): Promise<RunResult> => {
  const nodes = target === "effect" ? config.nodes : 1
  const servers: Array<ServerProcess> = []
  const meter = new Meter()
  const clients: Array<BenchClient> = []
  try {
    for (let n = 0; n < nodes; n++) {
      const args = ["--port", "0", "--host", "127.0.0.1"]
      if (target === "effect" && nodes > 1 && redis !== undefined) args.push("--redis", redis.url)
      if (target === "effect") args.push(...effectServerArgs(config))
      if (target === "store") args.push(...effectServerArgs(config, "sqlite"))
      servers.push(
        await startNodeServer(
          nodes > 1 ? `${target}#${n}` : target,
          target === "raw" ? rawServerEntry : serverEntry,
          args,
          // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the servers under load
          {
            nodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== ""),
            cpu: serverCpu
          }
        )
      )
    }
    const where = servers.map((s) => `pid ${s.pid} port ${s.port}`).join(", ")
    log(`${target}: ${where}; connecting ${config.clients} clients`)

    // Membership decides the expected deliveries of every send.
    const members = new Map<string, number>()
    for (let i = 0; i < config.clients; i++) {
      const rooms = i < config.senders ? senderRooms(config, i) : [roomName(i % config.rooms)]
      for (const room of rooms) members.set(room, (members.get(room) ?? 0) + 1)
      const server = servers[i % servers.length]!
      clients.push(new BenchClient(i, `ws://127.0.0.1:${server.port}/chat`, rooms, meter))
    }

    const redisInUse = target === "effect" && nodes > 1 ? redis?.pid : undefined
    const connectStart = nowMs()
    let next = 0
    const worker = async () => {
      while (next < clients.length) {
        const client = clients[next++]!
        await client.connect(config.connectTimeoutMs)
      }
    }
    await Promise.all(Array.from({ length: Math.min(config.connectConcurrency, clients.length) }, worker))
    const connectMs = nowMs() - connectStart
    await quiesce(meter, 300, 20000)
    const setupFrames = meter.frames
    log(
      `${target}: ${config.clients} clients ready in ${fmt(connectMs / 1000, 2)} s ` +
        `(${fmtInt(setupFrames)} setup frames)`
    )

    if (config.warmup > 0) {
      // Unmeasured: lets both processes' JITs settle so the first measured second is not a compile storm.
      await runStep(config, meter, clients, members, servers, redisInUse, WARMUP_STEP, config.rate, config.warmup)
      await quiesce(meter, 300, 10000)
    }
    // What the server burns doing nothing (timers, heartbeats) for this many clients, apart from fan-out work.
    const idleStart = sumCpu(servers)
    await sleep(IDLE_SAMPLE_MS)
    const idleEnd = sumCpu(servers)
    const idleCpuPct =
      idleStart !== undefined && idleEnd !== undefined ? ((idleEnd - idleStart) / IDLE_SAMPLE_MS) * 100 : undefined
    const steps: Array<StepResult> = []
    let maxSustainedRate: number | undefined
    let maxSustainedDeliveriesPerSec: number | undefined
    let rate = config.rate
    let retried = false
    for (let step = 0; ; step++) {
      const seconds = config.max ? config.stepDuration : config.duration
      const result = await runStep(config, meter, clients, members, servers, redisInUse, step, rate, seconds)
      steps.push(result)
      const pass = result.lossPct === 0 && result.p99Ms <= config.maxP99Ms
      log(
        `${target}: ${fmt(rate, 1)} msg/s → ${fmtInt(result.deliveriesPerSec)} deliveries/s, ` +
          `loss ${fmt(result.lossPct, 2)}%, p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms` +
          (config.max ? (pass ? " (pass)" : " (fail)") : "")
      )
      if (!config.max) break
      if (!pass) {
        // Other work on a shared machine can fail one step; a rate fails only when it fails twice in a row.
        if (retried || config.maxRetries === 0) break
        retried = true
        await quiesce(meter, 300, 10000)
        continue
      }
      retried = false
      maxSustainedRate = rate
      maxSustainedDeliveriesPerSec = result.deliveriesPerSec
      if (rate >= config.maxRate) break
      rate = Math.min(config.maxRate, rate * config.stepFactor)
      await quiesce(meter, 300, 10000)
    }

    const firstIdGaps = countFirstIdGaps(clients)
    meter.closing = true
    const serverExit = await Promise.all(servers.map((s) => s.stop(3000)))
    return {
      target,
      nodes,
      connectMs,
      setupFrames,
      idleCpuPct,
      steps,
      ordering: { gaps: meter.gaps, missing: meter.missing, dups: meter.dups, firstIdGaps, misrouted: meter.misrouted },
      maxSustainedRate,
      maxSustainedDeliveriesPerSec,
      serverExit
    }
  } catch (error) {
    const tails = servers.map((s) => `--- ${s.label} output ---\n${s.tail()}`).join("\n")
    if (error instanceof Error) error.message += tails.length > 0 ? `\n${tails}` : ""
    throw error
  } finally {
    meter.closing = true
    await Promise.all(servers.map((s) => s.stop(1000)))
    for (const client of clients) client.ws?.terminate()
  }
}

/** Waits until no frame has arrived for `quietMs` (join storms, stragglers), at most `maxMs`. */
const quiesce = async (meter: Meter, quietMs: number, maxMs: number): Promise<void> => {
  const deadline = nowMs() + maxMs
  while (nowMs() < deadline && nowMs() - meter.lastFrameAt < quietMs) await sleep(50)
}

/**
 * When a room's join history was empty, a receiver's first live id must be the smallest first id any receiver saw
 * in that room; a larger one means it missed the room's first messages.
 */
const countFirstIdGaps = (clients: ReadonlyArray<BenchClient>): number => {
  const lowest = new Map<string, number>()
  for (const client of clients) {
    for (const [room, seen] of client.seen) {
      if (seen.first !== undefined) lowest.set(room, Math.min(lowest.get(room) ?? Infinity, seen.first))
    }
  }
  let gaps = 0
  for (const client of clients) {
    for (const [room, seen] of client.seen) {
      if (seen.first !== undefined && seen.first > lowest.get(room)!) gaps++
    }
  }
  return gaps
}

const runStep = async (
  config: Config,
  meter: Meter,
  clients: ReadonlyArray<BenchClient>,
  members: ReadonlyMap<string, number>,
  servers: ReadonlyArray<ServerProcess>,
  redisPidValue: number | undefined,
  step: number,
  rate: number,
  seconds: number
): Promise<StepResult> => {
  const errorsBefore = new Map(meter.errors)
  const closesBefore = new Map(meter.closes)
  const senders = clients.slice(0, config.senders)
  const rooms = senders.map((_, s) => senderRooms(config, s))
  const seq = new Array<number>(senders.length).fill(0)
  const total = Math.max(1, Math.round(rate * seconds))
  let sent = 0
  let expected = 0

  const serverCpu = () => sumCpu(servers)
  meter.startStep(step)
  const cpuStart = serverCpu()
  const redisStart = redisPidValue === undefined ? undefined : cpuTimeMs(redisPidValue)
  const loadStart = process.cpuUsage()
  const busyStart = machineBusyMs()
  const processesStart = allProcessCpu()
  const start = nowMs()

  await new Promise<void>((done) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((nowMs() - start) / 1000) * rate) + 1)
      while (sent < due) {
        const s = sent % senders.length
        const sender = senders[s]!
        const senderRoomList = rooms[s]!
        const room = senderRoomList[seq[s]! % senderRoomList.length]!
        const n = seq[s]!++
        if (sender.ws.readyState === WebSocket.OPEN) {
          sender.ws.send(`{"type":"send","room":"${room}","text":"t=${nowMs().toFixed(3)} s=${s} n=${n} k=${step}"}`)
          expected += members.get(room) ?? 0
        }
        sent++
      }
      if (sent < total) setTimeout(tick, 1)
      else done()
    }
    tick()
  })
  const sendEnd = nowMs()
  const graceEnd = sendEnd + config.graceMs
  while (meter.delivered < expected && nowMs() < graceEnd) await sleep(10)

  const measuredMs = nowMs() - start
  const cpuEnd = serverCpu()
  const redisEnd = redisPidValue === undefined ? undefined : cpuTimeMs(redisPidValue)
  const load = process.cpuUsage(loadStart)
  const busyEnd = machineBusyMs()
  const processesEnd = allProcessCpu()
  const [p50, p99, max] = meter.latencies.percentiles([50, 99, 100])
  const window = Math.max(sendEnd, meter.lastDeliveryAt) - start
  const serverCpuMs = cpuStart !== undefined && cpuEnd !== undefined ? cpuEnd - cpuStart : undefined
  const redisCpuMs = redisStart !== undefined && redisEnd !== undefined ? redisEnd - redisStart : undefined
  const loadGenCpuMs = (load.user + load.system) / 1000
  const diff = (now: Map<string, number>, before: Map<string, number>) => {
    const out: Record<string, number> = {}
    for (const [key, count] of now) if (count - (before.get(key) ?? 0) > 0) out[key] = count - (before.get(key) ?? 0)
    return out
  }
  return {
    rate,
    seconds,
    measuredMs,
    sent,
    expected,
    delivered: meter.delivered,
    lossPct: expected === 0 ? 0 : (Math.max(0, expected - meter.delivered) / expected) * 100,
    late: meter.late,
    deliveriesPerSec: meter.delivered / (window / 1000),
    p50Ms: p50!,
    p99Ms: p99!,
    maxMs: max!,
    serverCpuMs,
    redisCpuMs,
    cpuUsPerDelivery:
      serverCpuMs !== undefined && meter.delivered > 0 ? (serverCpuMs * 1000) / meter.delivered : undefined,
    loadGenCpuMs,
    otherCpuMs:
      busyStart !== undefined && busyEnd !== undefined && serverCpuMs !== undefined
        ? Math.max(0, busyEnd - busyStart - serverCpuMs - loadGenCpuMs - (redisCpuMs ?? 0))
        : undefined,
    otherTop: topOtherProcesses(
      processesStart,
      processesEnd,
      new Set([process.pid, ...servers.map((s) => s.pid), ...(redisPidValue === undefined ? [] : [redisPidValue])])
    ),
    errors: diff(meter.errors, errorsBefore),
    closes: diff(meter.closes, closesBefore)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------------

const describeMap = (map: Record<string, number>): string =>
  Object.keys(map).length === 0
    ? "none"
    : Object.entries(map)
        .map(([k, v]) => `${k}×${v}`)
        .join(" ")

const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 || Number.isNaN(a) || Number.isNaN(b) ? undefined : a / b

const printTables = (config: Config, runs: ReadonlyArray<RunResult>, notes: ReadonlyArray<string>): void => {
  const out: Array<string> = []
  out.push(
    `bench-fanout: ${config.clients} clients, ${config.rooms} room(s), ${config.senders} senders, ` +
      (config.max
        ? `--max from ${config.rate} msg/s ×${config.stepFactor} per ${config.stepDuration} s step ` +
          `(bound: p99 ≤ ${config.maxP99Ms} ms, no loss)`
        : `${config.rate} msg/s for ${config.duration} s`) +
      `, grace ${config.graceMs} ms, node ${process.version}` +
      (serverCpu === undefined ? ", not pinned" : `, server on CPU ${serverCpu}, load generator on the other`)
  )
  if (config.targets.includes("effect")) {
    out.push(`effect server args: ${effectServerArgs(config, config.store, true).join(" ") || "(none)"}`)
  }
  if (config.targets.includes("store")) {
    out.push(`store server args: ${effectServerArgs(config, "sqlite", true).join(" ")}`)
  }
  for (const note of notes) out.push(`note: ${note}`)
  const last = (run: RunResult) => run.steps[run.steps.length - 1]!
  const byTarget = (target: Target) => runs.find((r) => r.target === target)
  const pairs = pairsOf(runs.map((r) => r.target))
  const header = ["", ...runs.map((r) => (r.nodes > 1 ? `${r.target} (${r.nodes} nodes)` : r.target))]
  for (const [a, b] of pairs) header.push(`${a}/${b}`)
  const row = (
    label: string,
    pick: (r: RunResult) => number | undefined,
    format: (n: number | undefined) => string,
    withRatio = true
  ) => {
    const cells = [label, ...runs.map((r) => format(pick(r)))]
    for (const [a, b] of pairs) cells.push(withRatio ? fmt(ratio(pick(byTarget(a)!), pick(byTarget(b)!)), 2) : "")
    return cells
  }
  const text = (label: string, pick: (r: RunResult) => string) => {
    const cells = [label, ...runs.map(pick)]
    for (const _ of pairs) cells.push("")
    return cells
  }
  if (!config.max) {
    out.push(
      table([
        header,
        row("expected deliveries", (r) => last(r).expected, fmtInt, false),
        row("delivered", (r) => last(r).delivered, fmtInt, false),
        row(
          "loss %",
          (r) => last(r).lossPct,
          (n) => fmt(n, 2),
          false
        ),
        row("deliveries/s", (r) => last(r).deliveriesPerSec, fmtInt),
        row(
          "p50 latency ms",
          (r) => last(r).p50Ms,
          (n) => fmt(n, 2)
        ),
        row(
          "p99 latency ms",
          (r) => last(r).p99Ms,
          (n) => fmt(n, 2)
        ),
        row(
          "max latency ms",
          (r) => last(r).maxMs,
          (n) => fmt(n, 2)
        ),
        row("server CPU ms", (r) => last(r).serverCpuMs, fmtInt),
        row(
          "CPU µs/delivery",
          (r) => last(r).cpuUsPerDelivery,
          (n) => fmt(n, 2)
        ),
        ...(runs.some((r) => last(r).redisCpuMs !== undefined)
          ? [row("redis CPU ms", (r) => last(r).redisCpuMs, fmtInt, false)]
          : []),
        row("load-gen CPU ms", (r) => last(r).loadGenCpuMs, fmtInt, false),
        row("other CPU ms (noise)", (r) => last(r).otherCpuMs, fmtInt, false),
        row("order gaps / dups", (r) => r.ordering.gaps + r.ordering.firstIdGaps, fmtInt, false).map((c, i) =>
          i > 0 && i <= runs.length ? `${c} / ${fmtInt(runs[i - 1]!.ordering.dups)}` : c
        ),
        row("wrong room", (r) => r.ordering.misrouted, fmtInt, false),
        row("late (after grace)", (r) => last(r).late, fmtInt, false),
        text("errors", (r) => describeMap(last(r).errors)),
        text("closes", (r) => describeMap(last(r).closes)),
        row(
          "server idle CPU %",
          (r) => r.idleCpuPct,
          (n) => fmt(n, 1),
          false
        ),
        row(
          "connect s",
          (r) => r.connectMs / 1000,
          (n) => fmt(n, 2),
          false
        ),
        text("server exit", (r) => r.serverExit.join(", "))
      ])
    )
  } else {
    for (const run of runs) {
      out.push(`\n${run.target}${run.nodes > 1 ? ` (${run.nodes} nodes)` : ""}:`)
      out.push(
        table([
          [
            "msg/s",
            "deliveries/s",
            "loss %",
            "p50 ms",
            "p99 ms",
            "max ms",
            "CPU µs/deliv",
            "load-gen CPU %",
            "other CPU %",
            "errors"
          ],
          ...run.steps.map((s) => [
            fmt(s.rate, 1),
            fmtInt(s.deliveriesPerSec),
            fmt(s.lossPct, 2),
            fmt(s.p50Ms, 2),
            fmt(s.p99Ms, 2),
            fmt(s.maxMs, 2),
            fmt(s.cpuUsPerDelivery, 2),
            fmtInt((s.loadGenCpuMs / s.measuredMs) * 100),
            s.otherCpuMs === undefined ? "—" : fmtInt((s.otherCpuMs / s.measuredMs) * 100),
            describeMap(s.errors)
          ])
        ])
      )
    }
    out.push("")
    out.push(
      table([
        header,
        row(
          "max sustained msg/s",
          (r) => r.maxSustainedRate,
          (n) => fmt(n, 1)
        ),
        row("max deliveries/s", (r) => r.maxSustainedDeliveriesPerSec, fmtInt),
        row("order gaps / dups", (r) => r.ordering.gaps + r.ordering.firstIdGaps, fmtInt, false).map((c, i) =>
          i > 0 && i <= runs.length ? `${c} / ${fmtInt(runs[i - 1]!.ordering.dups)}` : c
        )
      ])
    )
  }
  process.stdout.write(out.join("\n") + "\n")
}

// ---------------------------------------------------------------------------------------------------------------------
// Repetitions and noise
// ---------------------------------------------------------------------------------------------------------------------

/** Other work above this share of one core during a measurement gets the figures flagged. */
const NOISY_SHARE = 0.25
/** The load generator is one Node process: at this share of one core it, not the server, sets the pace. */
const LOAD_GEN_SATURATED = 0.95

const median = (values: ReadonlyArray<number | undefined>): number | undefined => {
  const known = values.filter((v): v is number => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b)
  if (known.length === 0) return undefined
  const mid = Math.floor(known.length / 2)
  return known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2
}

const mergeTop = (entries: ReadonlyArray<{ pid: number; name: string; ms: number }>) => {
  const byPid = new Map<number, { pid: number; name: string; ms: number }>()
  for (const entry of entries) {
    const known = byPid.get(entry.pid)
    byPid.set(entry.pid, known === undefined ? { ...entry } : { ...known, ms: known.ms + entry.ms })
  }
  return [...byPid.values()].sort((a, b) => b.ms - a.ms).slice(0, 3)
}

/**
 * One target's repetitions folded into one result: the median of every figure of the last (or only) step, the sum
 * of ordering violations and error counts (those are failures whichever repetition saw them).
 */
const combine = (config: Config, runs: ReadonlyArray<RunResult>): RunResult => {
  if (runs.length === 1) return runs[0]!
  const lastSteps = runs.map((r) => r.steps[r.steps.length - 1]!)
  const med = (pick: (s: StepResult) => number | undefined) => median(lastSteps.map(pick))
  const sumMaps = (pick: (s: StepResult) => Record<string, number>) => {
    const out: Record<string, number> = {}
    for (const step of lastSteps) for (const [k, v] of Object.entries(pick(step))) out[k] = (out[k] ?? 0) + v
    return out
  }
  const step: StepResult = {
    rate: med((s) => s.rate)!,
    seconds: med((s) => s.seconds)!,
    measuredMs: med((s) => s.measuredMs)!,
    sent: med((s) => s.sent)!,
    expected: med((s) => s.expected)!,
    delivered: med((s) => s.delivered)!,
    lossPct: med((s) => s.lossPct)!,
    late: med((s) => s.late)!,
    deliveriesPerSec: med((s) => s.deliveriesPerSec)!,
    p50Ms: med((s) => s.p50Ms)!,
    p99Ms: med((s) => s.p99Ms)!,
    maxMs: med((s) => s.maxMs)!,
    serverCpuMs: med((s) => s.serverCpuMs),
    redisCpuMs: med((s) => s.redisCpuMs),
    cpuUsPerDelivery: med((s) => s.cpuUsPerDelivery),
    loadGenCpuMs: med((s) => s.loadGenCpuMs)!,
    otherCpuMs: med((s) => s.otherCpuMs),
    otherTop: mergeTop(lastSteps.flatMap((s) => s.otherTop)),
    errors: sumMaps((s) => s.errors),
    closes: sumMaps((s) => s.closes)
  }
  return {
    target: runs[0]!.target,
    nodes: runs[0]!.nodes,
    connectMs: median(runs.map((r) => r.connectMs))!,
    setupFrames: median(runs.map((r) => r.setupFrames))!,
    idleCpuPct: median(runs.map((r) => r.idleCpuPct)),
    steps: config.max ? runs.flatMap((r) => r.steps) : [step],
    ordering: {
      gaps: runs.reduce((n, r) => n + r.ordering.gaps, 0),
      missing: runs.reduce((n, r) => n + r.ordering.missing, 0),
      dups: runs.reduce((n, r) => n + r.ordering.dups, 0),
      firstIdGaps: runs.reduce((n, r) => n + r.ordering.firstIdGaps, 0),
      misrouted: runs.reduce((n, r) => n + r.ordering.misrouted, 0)
    },
    maxSustainedRate: median(runs.map((r) => r.maxSustainedRate)),
    maxSustainedDeliveriesPerSec: median(runs.map((r) => r.maxSustainedDeliveriesPerSec)),
    serverExit: [...new Set(runs.flatMap((r) => r.serverExit))]
  }
}

const printRepetitions = (config: Config, runs: ReadonlyArray<RunResult>): void => {
  const rows = runs.map((run, i) => {
    const s = run.steps[run.steps.length - 1]!
    return [
      String(Math.floor(i / config.targets.length) + 1),
      run.target,
      config.max ? fmt(run.maxSustainedRate, 1) : fmtInt(s.deliveriesPerSec),
      fmt(s.lossPct, 2),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.cpuUsPerDelivery, 2),
      s.otherCpuMs === undefined ? "—" : fmtInt((s.otherCpuMs / s.measuredMs) * 100)
    ]
  })
  process.stdout.write(
    table([
      [
        "rep",
        "target",
        config.max ? "max msg/s" : "deliveries/s",
        "loss %",
        "p50 ms",
        "p99 ms",
        "CPU µs/deliv",
        "other CPU %"
      ],
      ...rows
    ]) + "\n"
  )
  // Each repetition runs every target back to back: the ratio within a repetition cancels the machine's drift
  // between repetitions, which on this VM is as large as the effects measured.
  const pairs = config.max ? [] : pairsOf(config.targets)
  for (const [a, b] of pairs) {
    const ratios: Array<number> = []
    for (let i = 0; i < config.repeat; i++) {
      const rep = runs.slice(i * config.targets.length, (i + 1) * config.targets.length)
      const cpu = (target: Target) => rep.find((r) => r.target === target)?.steps.at(-1)?.cpuUsPerDelivery ?? Number.NaN
      const value = ratio(cpu(a), cpu(b))
      if (value !== undefined && Number.isFinite(value)) ratios.push(value)
    }
    const sorted = [...ratios].sort((x, y) => x - y)
    process.stdout.write(
      `CPU µs/delivery ${a}/${b} per repetition: ${ratios.map((r) => fmt(r, 2)).join(", ")}` +
        ` (median ${fmt(median(ratios), 2)}, range ${fmt(sorted[0], 2)}–${fmt(sorted.at(-1), 2)})\n`
    )
  }
  process.stdout.write("\nmedian of the repetitions:\n")
}

/** Waits (at most `maxMs`) for a half-second in which the machine is mostly idle, so runs start on quiet cores. */
const waitQuiet = async (maxMs: number, log: (line: string) => void): Promise<void> => {
  if (maxMs <= 0) return
  const deadline = nowMs() + maxMs
  for (;;) {
    const before = machineBusyMs()
    await sleep(500)
    const after = machineBusyMs()
    if (before === undefined || after === undefined) return
    const share = (after - before) / 500
    if (share <= NOISY_SHARE) return
    if (nowMs() > deadline) {
      log(`machine still busy (${Math.round(share * 100)}% of a core in other work); starting anyway`)
      return
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------------------

/** The core a single server is pinned to, apart from the load generator's (unset: nothing pinned). */
let serverCpu: number | undefined

type Redis = { url: string; pid: number | undefined; stop?: () => Promise<void> }

const main = async (): Promise<number> => {
  const config = parseConfig()
  if (config === undefined) return 0
  installCleanup()
  if (config.pin && config.nodes === 1) serverCpu = pinning()?.server
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const notes: Array<string> = []
  let redis: Redis | undefined
  if (config.nodes > 1 && config.targets.includes("effect")) {
    if (config.redis !== undefined) {
      redis = { url: config.redis, pid: await redisPid(config.redis) }
    } else {
      const started = await startRedis()
      redis = started
      log(`redis-server pid ${started.pid} at ${started.url}`)
    }
    if (config.targets.includes("raw")) notes.push("the raw baseline runs as a single process (it has no Redis mode)")
    notes.push("server CPU sums all Effect nodes; Redis CPU is listed apart when its pid is known")
  }
  try {
    if (config.sweep.length === 0) return await measure(config, redis, notes, log)
    const points: Array<SweepPoint> = []
    let code = 0
    for (const rate of config.sweep) {
      log(`sweep: ${rate} msg/s`)
      const result = await measureQuietly({ ...config, rate }, redis, [...notes], log)
      points.push({ rate, ...result })
      code = Math.max(code, result.code)
    }
    printSweep(config, points)
    if (config.svg !== undefined) {
      writeFileSync(config.svg, sweepSvg(config, points))
      log(`chart written to ${config.svg}`)
    }
    return code
  } finally {
    await redis?.stop?.()
  }
}

interface SweepPoint {
  readonly rate: number
  readonly code: number
  readonly summary: ReadonlyArray<RunResult>
  readonly notes: ReadonlyArray<string>
}

const COLORS: Record<Target, string> = { effect: "#6b3fa0", raw: "#e08a00", store: "#2a7f62" }
const LABELS: Record<Target, string> = {
  effect: "effect-chat",
  raw: "raw ws rooms loop",
  store: "effect-chat, embedded store"
}

const sweepSvg = (config: Config, points: ReadonlyArray<SweepPoint>): string => {
  const series = (pick: (s: StepResult) => number | undefined) =>
    config.targets.map((target) => ({
      label: LABELS[target],
      color: COLORS[target],
      points: points.map((point) => {
        const run = point.summary.find((r) => r.target === target)
        return { x: point.rate, y: run === undefined ? undefined : pick(run.steps[run.steps.length - 1]!) }
      })
    }))
  return sweepChart(
    [
      { title: "server CPU per delivery", unit: "µs", series: series((s) => s.cpuUsPerDelivery) },
      { title: "p99 latency", unit: "ms", series: series((s) => s.p99Ms) }
    ],
    "messages per second (all senders)",
    `${config.clients} clients in ${config.rooms} rooms, ${config.senders} senders, ${config.duration} s per rate` +
      (config.repeat > 1 ? `, median of ${config.repeat}` : "") +
      `, node ${process.version}`
  )
}

const printSweep = (config: Config, points: ReadonlyArray<SweepPoint>): void => {
  const pairs = pairsOf(config.targets)
  const cell = (point: SweepPoint, target: Target, pick: (s: StepResult) => number | undefined) => {
    const run = point.summary.find((r) => r.target === target)
    return run === undefined ? undefined : pick(run.steps[run.steps.length - 1]!)
  }
  const header = ["msg/s"]
  for (const figure of ["CPU µs/deliv", "p99 ms"]) {
    for (const target of config.targets) header.push(`${target} ${figure}`)
    for (const [a, b] of pairs) header.push(`${a}/${b}`)
  }
  header.push("loss % (effect-chat)")
  const rows = points.map((point) => {
    const cells = [fmt(point.rate, 0)]
    for (const pick of [(s: StepResult) => s.cpuUsPerDelivery, (s: StepResult) => s.p99Ms]) {
      for (const target of config.targets) cells.push(fmt(cell(point, target, pick), 2))
      for (const [a, b] of pairs) cells.push(fmt(ratio(cell(point, a, pick), cell(point, b, pick)), 2))
    }
    const losses = config.targets.filter((t) => t !== "raw").map((t) => cell(point, t, (s) => s.lossPct) ?? 0)
    cells.push(fmt(losses.length === 0 ? undefined : Math.max(...losses), 2))
    return cells
  })
  const notes = [...new Set(points.flatMap((p) => p.notes))]
  process.stdout.write(
    `\nsweep: ${config.clients} clients, ${config.rooms} room(s), ${config.senders} senders, ` +
      `${config.duration} s per rate\n` +
      notes.map((note) => `note: ${note}\n`).join("") +
      table([header, ...rows]) +
      "\n"
  )
}

/** One rate of a sweep: its summary is kept for the sweep table instead of being printed on its own. */
const measureQuietly = async (
  config: Config,
  redis: Redis | undefined,
  notes: Array<string>,
  log: (line: string) => void
): Promise<{ code: number; summary: ReadonlyArray<RunResult>; notes: ReadonlyArray<string> }> => {
  let captured: { summary: ReadonlyArray<RunResult> } = { summary: [] }
  const code = await measure(config, redis, notes, log, (summary) => (captured = { summary }))
  return { code, summary: captured.summary, notes }
}

const measure = async (
  config: Config,
  redis: Redis | undefined,
  notes: Array<string>,
  log: (line: string) => void,
  onSummary?: (summary: ReadonlyArray<RunResult>) => void
): Promise<number> => {
  const runs: Array<RunResult> = []
  {
    for (let repetition = 0; repetition < config.repeat; repetition++) {
      // Alternate the order so neither target always runs on the warmer (or noisier) half of the run.
      const order = repetition % 2 === 0 ? config.targets : [...config.targets].reverse()
      for (const target of order) {
        await waitQuiet(config.waitQuietMs, log)
        runs.push(await runTarget(config, target, redis, log))
      }
    }
  }
  const summary = config.targets.map((target) =>
    combine(
      config,
      runs.filter((r) => r.target === target)
    )
  )
  for (const run of summary) {
    const step = run.steps[run.steps.length - 1]!
    const busyShare = step.otherCpuMs === undefined ? 0 : step.otherCpuMs / step.measuredMs
    if (busyShare > NOISY_SHARE) {
      notes.push(
        `${run.target}: other processes used ${Math.round(busyShare * 100)}% of a core during the measurement; ` +
          `its figures are skewed (try --repeat 3 or a quieter machine); biggest: ` +
          step.otherTop.map((p) => `${p.name}[${p.pid}] ${fmtInt(p.ms)} ms`).join(", ")
      )
    }
  }
  for (const run of summary) {
    const saturated = run.steps.filter((s) => s.loadGenCpuMs / s.measuredMs >= LOAD_GEN_SATURATED)
    if (saturated.length > 0) {
      notes.push(
        `${run.target}: the load generator used a whole core at ` +
          `${saturated.map((s) => fmt(s.rate, 1)).join(", ")} msg/s; ` +
          "there its latencies include its own queueing and the server's ceiling may be higher than shown"
      )
    }
  }
  const last = (run: RunResult | undefined) => run?.steps[run.steps.length - 1]
  const ratiosOf = (effect: RunResult | undefined, raw: RunResult | undefined) =>
    effect !== undefined && raw !== undefined
      ? config.max
        ? {
            maxSustainedRate: ratio(effect.maxSustainedRate, raw.maxSustainedRate),
            maxDeliveriesPerSec: ratio(effect.maxSustainedDeliveriesPerSec, raw.maxSustainedDeliveriesPerSec)
          }
        : {
            deliveriesPerSec: ratio(last(effect)!.deliveriesPerSec, last(raw)!.deliveriesPerSec),
            p50: ratio(last(effect)!.p50Ms, last(raw)!.p50Ms),
            p99: ratio(last(effect)!.p99Ms, last(raw)!.p99Ms),
            max: ratio(last(effect)!.maxMs, last(raw)!.maxMs),
            serverCpu: ratio(last(effect)!.serverCpuMs, last(raw)!.serverCpuMs),
            cpuPerDelivery: ratio(last(effect)!.cpuUsPerDelivery, last(raw)!.cpuUsPerDelivery)
          }
      : undefined
  const find = (target: Target) => summary.find((r) => r.target === target)
  const ratios = ratiosOf(find("effect"), find("raw"))
  const pairRatios = Object.fromEntries(
    pairsOf(config.targets).map(([a, b]) => [`${a}/${b}`, ratiosOf(find(a), find(b))])
  )
  if (onSummary !== undefined) {
    onSummary(summary)
  } else if (config.json) {
    const { json: _json, ...shown } = config
    process.stdout.write(
      JSON.stringify({
        config: shown,
        node: process.version,
        notes,
        summary,
        ratio: ratios,
        ratios: pairRatios,
        runs
      }) + "\n"
    )
  } else {
    if (config.repeat > 1) printRepetitions(config, runs)
    printTables(config, summary, notes)
  }
  // Reordering anywhere, or loss by the server under test at a fixed rate, is a failed benchmark, not a slow one.
  const broken = runs.some(
    (r) =>
      r.ordering.gaps + r.ordering.dups + r.ordering.firstIdGaps + r.ordering.misrouted > 0 ||
      (!config.max && r.target !== "raw" && r.steps.some((s) => s.lossPct > 0))
  )
  return broken ? 2 : 0
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench-fanout: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
