/**
 * Shared helpers of the benchmark and soak scripts: starting servers under test as child processes (so their CPU
 * time can be read from /proc like any other process), cleaning them up on every way out, flags, percentiles and
 * small formatting helpers. Scripts cannot import from src/ (different rootDir), so the wire constants the scripts
 * rely on are repeated here.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export const SUBPROTOCOL = "effect-chat.v1"

/** dist/scripts/ → dist/ */
const scriptsDir = dirname(fileURLToPath(import.meta.url))
export const distDir = resolve(scriptsDir, "..")
export const serverEntry = resolve(distDir, "server.js")
export const rawServerEntry = resolve(scriptsDir, "raw-ws-server.js")

/** Monotonic milliseconds, comparable across processes and threads of this machine (CLOCK_MONOTONIC). */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))

export class ScriptError extends Error {
  override readonly name = "ScriptError"
}

// ---------------------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------------------

const children = new Set<ChildProcess>()
let cleanupInstalled = false

const killAll = (signal: NodeJS.Signals): void => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill(signal)
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Kills every child this process started when it leaves, however it leaves: normal exit, an uncaught error, or
 * SIGINT/SIGTERM from the terminal. Without it an interrupted benchmark leaves servers holding ports and CPU.
 */
/** Data directories of embedded stores started by this run, removed when it exits. */
const dataDirs = new Set<string>()

export type Store = "memory" | "sqlite"

export const parseStore = (value: string | undefined): Store => {
  if (value === undefined || value === "memory" || value === "sqlite") return value ?? "memory"
  throw new ScriptError(`--store must be memory or sqlite, got ${JSON.stringify(value)}`)
}

/**
 * The Effect server's flags for `store`: the embedded store gets a fresh data directory (one per call: a restart
 * that must find its data reuses the flags), removed when the run ends.
 */
export const storeArgs = (store: Store): Array<string> => {
  if (store === "memory") return ["--store", "memory"]
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"))
  dataDirs.add(dir)
  installCleanup()
  return ["--store", "sqlite", "--data-dir", dir]
}

export const installCleanup = (): void => {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on("exit", () => {
    killAll("SIGKILL")
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })
  })
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      // Servers under test hold no state worth a graceful stop; leaving at once beats a busy event loop.
      process.stderr.write(`\n${signal}: stopping child processes\n`)
      killAll("SIGKILL")
      process.exit(130)
    })
  }
  process.on("uncaughtException", (error) => {
    process.stderr.write(`uncaught: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    killAll("SIGKILL")
    process.exit(1)
  })
  process.on("unhandledRejection", (error) => {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error)
    process.stderr.write(`unhandled rejection: ${text}\n`)
    killAll("SIGKILL")
    process.exit(1)
  })
}

export interface ServerProcess {
  readonly label: string
  readonly port: number
  readonly pid: number
  readonly process: ChildProcess
  /** The last lines the process wrote, for error messages. */
  readonly tail: () => string
  /** The inspector's WebSocket URL, when started with `--inspect`. */
  readonly inspector: () => string | undefined
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with how it ended. */
  readonly stop: (graceMs?: number) => Promise<string>
}

const LISTENING_RE = /listening on http:\/\/[^\s:]+:(\d+)/

/**
 * Starts `node <entry> ...args` and resolves once it prints `... listening on http://HOST:PORT`. Its output keeps
 * being read afterwards: a child whose stdout pipe fills up blocks on its next write, which would look like a slow
 * server.
 */
export const startNodeServer = (
  label: string,
  entry: string,
  args: ReadonlyArray<string>,
  options: {
    readonly timeoutMs?: number
    readonly nodeArgs?: ReadonlyArray<string>
    /** Pin the process to this CPU (taskset), apart from the load generator's. */
    readonly cpu?: number | undefined
  } = {}
): Promise<ServerProcess> =>
  new Promise((resolvePromise, reject) => {
    installCleanup()
    const command = [process.execPath, ...(options.nodeArgs ?? []), entry, ...args]
    // taskset execs the command: the child's pid is the server's.
    const pinned = options.cpu === undefined ? command : ["taskset", "-c", String(options.cpu), ...command]
    const child = spawn(pinned[0]!, pinned.slice(1), {
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    const lines: Array<string> = []
    const remember = (line: string) => {
      lines.push(line)
      if (lines.length > 40) lines.shift()
    }
    const tail = () => lines.join("\n")
    let settled = false
    let stdoutRest = ""
    let inspector: string | undefined
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      child.kill("SIGKILL")
      reject(new ScriptError(`${label}: no "listening on" line within ${options.timeoutMs ?? 15000} ms\n${tail()}`))
    }, options.timeoutMs ?? 15000)
    child.stdout!.setEncoding("utf8")
    child.stderr!.setEncoding("utf8")
    // BENCH_SERVER_LOG=FILE keeps everything the servers print (e.g. with BENCH_SERVER_NODE_ARGS=--trace-gc)
    const log = process.env.BENCH_SERVER_LOG
    if (log !== undefined && log !== "") {
      for (const stream of [child.stdout!, child.stderr!]) {
        stream.on("data", (chunk: string) => appendFileSync(log, `[${label}] ${chunk}`))
      }
    }
    child.stdout!.on("data", (chunk: string) => {
      stdoutRest += chunk
      let nl: number
      while ((nl = stdoutRest.indexOf("\n")) >= 0) {
        const line = stdoutRest.slice(0, nl)
        stdoutRest = stdoutRest.slice(nl + 1)
        remember(line)
        const match = settled ? null : LISTENING_RE.exec(line)
        if (match) {
          settled = true
          clearTimeout(timer)
          resolvePromise(makeHandle(label, Number(match[1]), child, tail, () => inspector))
        }
      }
    })
    child.stderr!.on("data", (chunk: string) => {
      inspector ??= /Debugger listening on (ws:\/\/\S+)/.exec(chunk)?.[1]
      for (const line of chunk.split("\n")) if (line.length > 0) remember(line)
    })
    child.on("error", (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(new ScriptError(`${label}: could not start: ${error.message}`))
    })
    child.on("exit", (code, signal) => {
      children.delete(child)
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(new ScriptError(`${label}: exited before listening (code ${code}, signal ${signal})\n${tail()}`))
    })
  })

const makeHandle = (
  label: string,
  port: number,
  child: ChildProcess,
  tail: () => string,
  inspector: () => string | undefined
): ServerProcess => {
  const exited = new Promise<string>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done(describeExit(child.exitCode, child.signalCode))
    else child.once("exit", (code, signal) => done(describeExit(code, signal)))
  })
  return {
    label,
    port,
    pid: child.pid!,
    process: child,
    tail,
    inspector,
    stop: async (graceMs = 3000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
      const how = await exited
      clearTimeout(timer)
      return how
    }
  }
}

const describeExit = (code: number | null, signal: NodeJS.Signals | null): string =>
  signal !== null ? `killed by ${signal}` : `exit ${code}`

/** A TCP port that was free a moment ago (for programs, like redis-server, that cannot bind port 0 and report it). */
export const freePort = (): Promise<number> =>
  new Promise((done, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      server.close(() => done(address.port))
    })
  })

/** Starts a throw-away redis-server (no persistence) on a free port; used when several nodes need a Redis. */
export const startRedis = async (): Promise<{ url: string; pid: number; stop: () => Promise<void> }> => {
  installCleanup()
  const port = await freePort()
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  child.on("exit", () => children.delete(child))
  child.stdout!.resume()
  child.stderr!.resume()
  await new Promise<void>((done, reject) => {
    child.once("error", (error) => reject(new ScriptError(`redis-server: ${error.message}`)))
    const deadline = Date.now() + 5000
    const attempt = () => {
      const socket = net.connect(port, "127.0.0.1")
      socket.once("connect", () => {
        socket.destroy()
        done()
      })
      socket.once("error", () => {
        if (Date.now() > deadline) reject(new ScriptError(`redis-server did not listen on ${port}`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((done) => child.once("exit", () => done()))
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 2000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** The pid of the Redis at `url` when it runs on this machine (from `INFO server`), so its CPU can be measured. */
export const redisPid = (url: string): Promise<number | undefined> =>
  new Promise((done) => {
    const parsed = new URL(url)
    const socket = net.connect(Number(parsed.port || 6379), parsed.hostname)
    let text = ""
    const finish = (pid: number | undefined) => {
      socket.destroy()
      done(pid)
    }
    socket.setTimeout(2000, () => finish(undefined))
    socket.once("error", () => finish(undefined))
    socket.once("connect", () => socket.write("INFO server\r\n"))
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      text += chunk
      const match = /process_id:(\d+)/.exec(text)
      if (match) finish(Number(match[1]))
    })
  })

// ---------------------------------------------------------------------------------------------------------------------
// CPU time of a process
// ---------------------------------------------------------------------------------------------------------------------

let clockTicks: number | undefined
const ticksPerSecond = (): number => {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/**
 * User + system CPU time of a process in milliseconds, from /proc/<pid>/stat (fields 14 and 15, in clock ticks;
 * resolution 10 ms). Undefined when the process is gone or /proc is not there.
 */
export const cpuTimeMs = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ")".
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const utime = Number(rest[11])
    const stime = Number(rest[12])
    return ((utime + stime) * 1000) / ticksPerSecond()
  } catch {
    return undefined
  }
}

/**
 * CPU time the whole machine spent busy (all cores, everything but idle and iowait), in milliseconds, from the
 * first line of /proc/stat. Subtracting what the measured processes used shows how much other work shared the
 * cores during a measurement — on a shared 2-core machine that is what makes a figure trustworthy or not.
 */
export const machineBusyMs = (): number | undefined => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
    const fields = line.trim().split(/\s+/).slice(1).map(Number)
    const [user, nice, system, , , irq, softirq, steal] = fields
    const busy = user! + nice! + system! + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)
    return (busy * 1000) / ticksPerSecond()
  } catch {
    return undefined
  }
}

/** CPU milliseconds of every process on the machine, by pid, with its command name. */
export const allProcessCpu = (): Map<number, { readonly name: string; readonly ms: number }> => {
  const out = new Map<number, { name: string; ms: number }>()
  let entries: Array<string>
  try {
    entries = readdirSync("/proc")
  } catch {
    return out
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out.set(Number(entry), { name, ms: ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSecond() })
    } catch {
      // exited while we looked
    }
  }
  return out
}

/** The processes, other than `exclude`, that used the most CPU between two `allProcessCpu` snapshots. */
export const topOtherProcesses = (
  before: ReadonlyMap<number, { readonly name: string; readonly ms: number }>,
  after: ReadonlyMap<number, { readonly name: string; readonly ms: number }>,
  exclude: ReadonlySet<number>,
  count = 3
): Array<{ pid: number; name: string; ms: number }> =>
  [...after.entries()]
    .filter(([pid]) => !exclude.has(pid))
    .map(([pid, { name, ms }]) => ({ pid, name, ms: ms - (before.get(pid)?.ms ?? 0) }))
    .filter((p) => p.ms > 0)
    .sort((a, b) => b.ms - a.ms)
    .slice(0, count)

/**
 * CPU placement for a run: the server on its own core, the load generator on another, as in the measurements the
 * issues quote. `undefined` when the machine has one core or `taskset` is missing (then nothing is pinned).
 */
export const pinning = (): { readonly server: number; readonly loadGen: number } | undefined => {
  const cpus = os.availableParallelism()
  if (cpus < 2) return undefined
  try {
    execFileSync("taskset", ["-a", "-pc", "0", String(process.pid)], { stdio: "ignore" })
    return { server: 1, loadGen: 0 }
  } catch {
    return undefined
  }
}

/** Resident memory of a process in bytes (VmRSS). */
export const rssBytes = (pid: number): number | undefined => {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

/**
 * A full garbage collection in a server started with `--inspect=127.0.0.1:0`, through the inspector protocol, so
 * memory figures count what is live, not what the last collection left behind. Needs the `Debugger listening on`
 * line the process printed.
 */
export const collectGarbage = async (server: ServerProcess): Promise<void> => {
  const url = server.inspector()
  if (url === undefined)
    throw new ScriptError(`${server.label}: no inspector URL (start it with --inspect=127.0.0.1:0)`)
  const { WebSocket } = await import("ws")
  const ws = new WebSocket(url)
  await new Promise<void>((done, fail) => {
    ws.once("error", fail)
    ws.once("open", () => {
      ws.send(JSON.stringify({ id: 1, method: "HeapProfiler.collectGarbage" }))
    })
    ws.on("message", (data) => {
      if ((JSON.parse(data.toString()) as { id?: number }).id === 1) {
        ws.close()
        done()
      }
    })
  })
}

// ---------------------------------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------------------------------

export interface Health {
  readonly status: string
  readonly connections: number
  readonly users: number
  readonly rooms: number
  readonly heapUsed: number
  readonly rss: number
}

export const fetchHealth = async (httpBase: string): Promise<Health> => {
  const response = await fetch(new URL("/healthz", httpBase), { signal: AbortSignal.timeout(5000) })
  if (response.status !== 200) throw new ScriptError(`GET /healthz: HTTP ${response.status}`)
  const body = (await response.json()) as Partial<Health>
  for (const key of ["connections", "users", "rooms", "heapUsed", "rss"] as const) {
    if (typeof body[key] !== "number") throw new ScriptError(`GET /healthz: field "${key}" missing or not a number`)
  }
  return body as Health
}

// ---------------------------------------------------------------------------------------------------------------------
// Flags and figures
// ---------------------------------------------------------------------------------------------------------------------

/** Parses a numeric flag, rejecting junk with a message that names the flag. */
export const numberFlag = (
  name: string,
  value: string | undefined,
  fallback: number,
  check: { readonly min?: number; readonly max?: number; readonly integer?: boolean } = {}
): number => {
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === "" || !Number.isFinite(n)) throw new ScriptError(`--${name}: "${value}" is not a number`)
  if (check.integer === true && !Number.isInteger(n)) throw new ScriptError(`--${name}: "${value}" is not an integer`)
  if (check.min !== undefined && n < check.min) throw new ScriptError(`--${name}: must be at least ${check.min}`)
  if (check.max !== undefined && n > check.max) throw new ScriptError(`--${name}: must be at most ${check.max}`)
  return n
}

/** A growable array of doubles: millions of latency samples without millions of boxed numbers. */
export class Samples {
  private data = new Float64Array(1 << 16)
  length = 0
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = value
  }
  append(other: Samples): void {
    for (let i = 0; i < other.length; i++) this.push(other.data[i]!)
  }
  reset(): void {
    this.length = 0
  }
  /** p in [0, 100]; nearest-rank over the sorted samples. */
  percentiles(ps: ReadonlyArray<number>): Array<number> {
    if (this.length === 0) return ps.map(() => NaN)
    const sorted = this.data.slice(0, this.length).sort()
    return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!)
  }
}

export const fmt = (n: number | undefined, digits = 1): string =>
  n === undefined || Number.isNaN(n)
    ? "—"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

export const fmtInt = (n: number | undefined): string =>
  n === undefined || Number.isNaN(n) ? "—" : Math.round(n).toLocaleString("en-US")

export const fmtBytes = (n: number | undefined): string =>
  n === undefined ? "—" : `${(n / (1024 * 1024)).toFixed(1)} MiB`

/** Renders rows as an aligned text table; the first row is the header. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  const line = (row: ReadonlyArray<string>) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")
  const [header, ...body] = rows
  return [line(header!), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}
