/**
 * Connection churn soak: thousands of short sessions, then a check that the server let go of all of them.
 *
 *   node dist/scripts/churn.js --cycles 5000 --concurrency 50 --duration-max 120
 *   node dist/scripts/churn.js --url ws://127.0.0.1:8080     (an already running server)
 *
 * Each cycle connects (JSON dialect or plain), joins one of a few rooms, sends one message and waits to see it
 * acknowledged / echoed, then disconnects abruptly (terminate: no close frame) or cleanly (close 1000, or `/quit`).
 * A few cycles drop the socket before or right after `hello`. GET /healthz is read before and after: `connections`
 * must return to the baseline at once; `users` and `rooms` must return too (dropped sessions keep only their NAME
 * for the resume window, and are not counted as users). Exit code 1 when they do not settle.
 */
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import {
  fetchHealth,
  fmt,
  fmtBytes,
  fmtInt,
  type Health,
  installCleanup,
  nowMs,
  numberFlag,
  rawServerEntry,
  ScriptError,
  serverEntry,
  type ServerProcess,
  sleep,
  startNodeServer,
  SUBPROTOCOL,
  table
} from "./BenchSupport.js"

interface Config {
  readonly cycles: number
  readonly concurrency: number
  readonly durationMaxMs: number
  readonly rooms: number
  readonly plainShare: number
  readonly abruptShare: number
  readonly earlyShare: number
  readonly cycleTimeoutMs: number
  readonly settleMs: number
  readonly lingerMs: number
  readonly url: string | undefined
  readonly target: "effect" | "raw"
  readonly serverArgs: ReadonlyArray<string>
  readonly json: boolean
  readonly seed: number
}

const HELP = `churn: connect/hello/send/disconnect cycles, then check that the server returns to its baseline

  --cycles N           cycles to run (default 5000)
  --concurrency C      cycles in flight at once (default 50)
  --duration-max S     stop starting cycles after S seconds (default 120)
  --rooms K            rooms to pick from, churn-0..churn-(K-1) (default 4)
  --plain-share F      share of plain-dialect cycles (default 0.3)
  --abrupt-share F     share of cycles that end with terminate() instead of a clean close (default 0.5)
  --early-share F      share of JSON cycles dropped before/right after hello (default 0.1)
  --cycle-timeout MS   give up on a cycle after MS (default 10000)
  --settle S           how long to wait for /healthz to return to the baseline (default 15)
  --linger S           after settling, wait S s more and read /healthz again (e.g. 130 to outlast the 2-minute
                       resume window and see whether memory held for dropped sessions is released)
  --url URL            use a running server (ws://HOST:PORT or http://HOST:PORT) instead of starting one
  --target T           server to start when no --url: effect (dist/server.js) or raw (the bench baseline)
  --server-arg ARG     extra argument for the started server (repeatable)
  --seed N             seed of the cycle mix (default 1)
  --json               print one JSON object
`

const parseConfig = (): Config | undefined => {
  const { values } = parseArgs({
    options: {
      cycles: { type: "string" },
      concurrency: { type: "string" },
      "duration-max": { type: "string" },
      rooms: { type: "string" },
      "plain-share": { type: "string" },
      "abrupt-share": { type: "string" },
      "early-share": { type: "string" },
      "cycle-timeout": { type: "string" },
      settle: { type: "string" },
      linger: { type: "string" },
      url: { type: "string" },
      target: { type: "string" },
      "server-arg": { type: "string", multiple: true },
      seed: { type: "string" },
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
  const target = values.target ?? "effect"
  if (target !== "effect" && target !== "raw") throw new ScriptError(`--target: "${target}" is not effect or raw`)
  if (values.url !== undefined && !/^(ws|http)s?:\/\/[^/]+/.test(values.url)) {
    throw new ScriptError(`--url: "${values.url}" is not ws://HOST:PORT or http://HOST:PORT`)
  }
  return {
    cycles: num("cycles", 5000, { min: 1, integer: true }),
    concurrency: num("concurrency", 50, { min: 1, max: 5000, integer: true }),
    durationMaxMs: num("duration-max", 120, { min: 1 }) * 1000,
    rooms: num("rooms", 4, { min: 1, max: 1000, integer: true }),
    plainShare: num("plain-share", 0.3, { min: 0, max: 1 }),
    abruptShare: num("abrupt-share", 0.5, { min: 0, max: 1 }),
    earlyShare: num("early-share", 0.1, { min: 0, max: 1 }),
    cycleTimeoutMs: num("cycle-timeout", 10000, { min: 100 }),
    settleMs: num("settle", 15, { min: 0 }) * 1000,
    lingerMs: num("linger", 0, { min: 0 }) * 1000,
    url: values.url,
    target,
    serverArgs: values["server-arg"] ?? [],
    json: values.json,
    seed: num("seed", 1, { integer: true })
  }
}

/** mulberry32: a seeded mix, so a failing run can be repeated. */
const makeRandom = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Dialect = "json" | "plain"
type Ending = "terminate" | "close1000" | "quit" | "drop-before-hello" | "drop-after-hello"

interface Plan {
  readonly cycle: number
  readonly dialect: Dialect
  readonly room: string
  readonly name: string | undefined
  readonly ending: Ending
}

const planCycle = (config: Config, random: () => number, cycle: number): Plan => {
  const dialect: Dialect = random() < config.plainShare ? "plain" : "json"
  const room = `churn-${Math.floor(random() * config.rooms)}`
  // Some cycles ask for a name: names held by dropped sessions must not leak into `users`.
  const name = random() < 0.3 ? `ch${cycle}x${Math.floor(random() * 1e6)}` : undefined
  let ending: Ending
  const early = random()
  if (dialect === "json" && early < config.earlyShare / 2) ending = "drop-before-hello"
  else if (dialect === "json" && early < config.earlyShare) ending = "drop-after-hello"
  else if (random() < config.abruptShare) ending = "terminate"
  else ending = dialect === "plain" && random() < 0.5 ? "quit" : "close1000"
  return { cycle, dialect, room, name, ending }
}

/**
 * One cycle. Resolves with undefined on success, or a short error label (phase: reason). Every path ends with the
 * socket closed or terminated, so a failed cycle does not hold a connection open past the run.
 */
const runCycle = (wsBase: string, plan: Plan, timeoutMs: number): Promise<string | undefined> =>
  new Promise((resolve) => {
    const token = `churn ${plan.cycle} ${Math.random().toString(36).slice(2, 10)}`
    const url =
      plan.dialect === "plain" && plan.name !== undefined
        ? `${wsBase}/chat?name=${encodeURIComponent(plan.name)}`
        : `${wsBase}/chat`
    const ws =
      plan.dialect === "json"
        ? new WebSocket(url, SUBPROTOCOL, { perMessageDeflate: false })
        : new WebSocket(url, { perMessageDeflate: false })
    let phase = "open"
    let done = false
    const finish = (error: string | undefined) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(error)
    }
    const timer = setTimeout(() => {
      ws.terminate()
      finish(`${phase}: timeout`)
    }, timeoutMs)
    const end = () => {
      phase = "close"
      switch (plan.ending) {
        case "terminate":
        case "drop-before-hello":
        case "drop-after-hello":
          ws.terminate()
          finish(undefined)
          return
        case "quit":
          ws.send("/quit")
          return // the server's close ends the cycle
        case "close1000":
          ws.close(1000)
          return
      }
    }
    ws.on("error", (error) => {
      ws.terminate()
      finish(`${phase}: ${error.message.slice(0, 60)}`)
    })
    ws.on("close", (code) => {
      if (phase === "close") finish(plan.ending === "quit" && code !== 1000 ? `quit: closed with ${code}` : undefined)
      else finish(`${phase}: closed with ${code}`)
    })
    ws.on("open", () => {
      if (plan.dialect === "plain") {
        phase = "greeting"
        return
      }
      if (plan.ending === "drop-before-hello") return end()
      phase = "welcome"
      const name = plan.name !== undefined ? { name: plan.name } : {}
      ws.send(JSON.stringify({ type: "hello", rooms: [plan.room], ...name }))
      if (plan.ending === "drop-after-hello") end()
    })
    let welcomed = false
    ws.on("message", (data, isBinary) => {
      if (done || phase === "close") return
      if (isBinary) {
        ws.terminate()
        return finish(`${phase}: unexpected binary frame`)
      }
      const text = data.toString()
      if (plan.dialect === "plain") {
        if (phase === "greeting") {
          if (!text.startsWith("You are connected!")) {
            ws.terminate()
            return finish(`greeting: unexpected "${text.slice(0, 40)}"`)
          }
          phase = "echo"
          ws.send(`/join ${plan.room}`)
          ws.send(token)
        } else if (phase === "echo" && text.endsWith(`]: ${token}`)) {
          end()
        }
        return
      }
      let frame: { type?: string; room?: string; ref?: string; code?: string }
      try {
        frame = JSON.parse(text)
      } catch {
        ws.terminate()
        return finish(`${phase}: invalid JSON from server`)
      }
      if (frame.type === "welcome") welcomed = true
      else if (frame.type === "history" && frame.room === plan.room && welcomed && phase === "welcome") {
        phase = "ack"
        ws.send(JSON.stringify({ type: "send", room: plan.room, text: token, ref: `c${plan.cycle}` }))
      } else if (frame.type === "ack" && frame.ref === `c${plan.cycle}`) {
        end()
      } else if (frame.type === "error" && !(frame.code === "name_taken" || frame.code === "invalid_name")) {
        ws.terminate()
        finish(`${phase}: error ${frame.code}`)
      }
    })
  })

interface Sample {
  readonly atS: number
  readonly health: Health
}

const main = async (): Promise<number> => {
  const config = parseConfig()
  if (config === undefined) return 0
  installCleanup()
  const log = (line: string) => process.stderr.write(`${line}\n`)
  let server: ServerProcess | undefined
  let wsBase: string
  let httpBase: string
  if (config.url !== undefined) {
    const parsed = new URL(config.url)
    const secure = parsed.protocol === "wss:" || parsed.protocol === "https:"
    wsBase = `${secure ? "wss" : "ws"}://${parsed.host}`
    httpBase = `${secure ? "https" : "http"}://${parsed.host}`
  } else {
    server = await startNodeServer(config.target, config.target === "effect" ? serverEntry : rawServerEntry, [
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      ...(config.target === "effect" ? config.serverArgs : [])
    ])
    wsBase = `ws://127.0.0.1:${server.port}`
    httpBase = `http://127.0.0.1:${server.port}`
    log(`${config.target} server pid ${server.pid} on port ${server.port}`)
  }

  try {
    const before = await fetchHealth(httpBase)
    const random = makeRandom(config.seed)
    const plans = Array.from({ length: config.cycles }, (_, i) => planCycle(config, random, i))
    const errors = new Map<string, number>()
    const byKind = new Map<string, { ok: number; failed: number }>()
    const samples: Array<Sample> = []
    let completed = 0
    let failed = 0
    let next = 0
    const start = nowMs()
    const deadline = start + config.durationMaxMs

    // Watch the server while it churns: memory peaks show up here, not in the before/after figures.
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        try {
          samples.push({ atS: (nowMs() - start) / 1000, health: await fetchHealth(httpBase) })
        } catch (error) {
          const key = `healthz: ${String(error).slice(0, 60)}`
          errors.set(key, (errors.get(key) ?? 0) + 1)
        }
        await sleep(1000)
      }
    })()
    let lastReport = start
    const worker = async () => {
      while (next < plans.length && nowMs() < deadline) {
        const plan = plans[next++]!
        const error = await runCycle(wsBase, plan, config.cycleTimeoutMs)
        const kind = `${plan.dialect}/${plan.ending}`
        const counts = byKind.get(kind) ?? { ok: 0, failed: 0 }
        byKind.set(kind, counts)
        if (error === undefined) {
          completed++
          counts.ok++
        } else {
          failed++
          counts.failed++
          errors.set(`${kind} ${error}`, (errors.get(`${kind} ${error}`) ?? 0) + 1)
        }
        if (nowMs() - lastReport > 5000) {
          lastReport = nowMs()
          const perSecond = (completed + failed) / ((nowMs() - start) / 1000)
          log(`${completed + failed}/${plans.length} cycles, ${failed} failed, ${fmt(perSecond, 0)}/s`)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(config.concurrency, plans.length) }, worker))
    const elapsedS = (nowMs() - start) / 1000
    sampling = false
    await sampler

    // connections must be back at once; users and rooms may trail by the server's own bookkeeping, within --settle.
    const settleStart = nowMs()
    let after = await fetchHealth(httpBase)
    const settledAt: Partial<Record<"connections" | "users" | "rooms", number>> = {}
    const check = (h: Health) => {
      for (const key of ["connections", "users", "rooms"] as const) {
        if (settledAt[key] === undefined && h[key] === before[key]) settledAt[key] = nowMs() - settleStart
      }
      return settledAt.connections !== undefined && settledAt.users !== undefined && settledAt.rooms !== undefined
    }
    while (!check(after) && nowMs() - settleStart < config.settleMs) {
      await sleep(200)
      after = await fetchHealth(httpBase)
    }
    // A value that reached the baseline and moved away again has not settled.
    for (const key of ["connections", "users", "rooms"] as const) if (after[key] !== before[key]) delete settledAt[key]

    let lingered: Health | undefined
    if (config.lingerMs > 0) {
      log(`lingering ${config.lingerMs / 1000} s`)
      await sleep(config.lingerMs)
      lingered = await fetchHealth(httpBase)
    }

    const peakRss = Math.max(before.rss, ...samples.map((s) => s.health.rss))
    const peakHeap = Math.max(before.heapUsed, ...samples.map((s) => s.health.heapUsed))
    const peakConnections = Math.max(before.connections, ...samples.map((s) => s.health.connections))
    const atBaseline = (h: Health) =>
      h.connections === before.connections && h.users === before.users && h.rooms === before.rooms
    const ok =
      settledAt.connections !== undefined &&
      settledAt.users !== undefined &&
      settledAt.rooms !== undefined &&
      (lingered === undefined || atBaseline(lingered))
    const result = {
      config: { ...config, json: undefined },
      server: server === undefined ? config.url : `${config.target} (pid ${server.pid})`,
      cycles: {
        planned: plans.length,
        run: completed + failed,
        completed,
        failed,
        seconds: elapsedS,
        perSecond: (completed + failed) / elapsedS
      },
      byKind: Object.fromEntries(byKind),
      errors: Object.fromEntries(errors),
      before,
      after,
      lingered,
      peak: { connections: peakConnections, heapUsed: peakHeap, rss: peakRss },
      settleMs: settledAt,
      settled: ok,
      stoppedByDuration: completed + failed < plans.length
    }
    if (config.json) {
      process.stdout.write(JSON.stringify(result) + "\n")
    } else {
      const lines: Array<string> = []
      lines.push(
        `churn: ${result.cycles.run} cycles in ${fmt(elapsedS, 1)} s = ${fmt(result.cycles.perSecond, 1)} cycles/s ` +
          `(concurrency ${config.concurrency}), ${completed} ok, ${failed} failed` +
          (result.stoppedByDuration ? ` — stopped by --duration-max after ${result.cycles.run}/${plans.length}` : "")
      )
      lines.push(
        table([
          ["cycle kind", "ok", "failed"],
          ...[...byKind.entries()].sort().map(([kind, c]) => [kind, fmtInt(c.ok), fmtInt(c.failed)])
        ])
      )
      if (errors.size > 0) {
        lines.push("errors:")
        for (const [error, count] of [...errors.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
          lines.push(`  ${count} × ${error}`)
        }
      }
      const linger = (key: keyof Health): Array<string> =>
        lingered === undefined
          ? []
          : [key === "heapUsed" || key === "rss" ? fmtBytes(lingered[key]) : fmtInt(lingered[key] as number)]
      const settle = (key: "connections" | "users" | "rooms") =>
        settledAt[key] !== undefined ? `${fmt(settledAt[key]! / 1000, 1)} s` : `NOT within ${config.settleMs / 1000} s`
      lines.push(
        table(
          [
            ["/healthz", "before", "peak", "after", "back to baseline"],
            [
              "connections",
              fmtInt(before.connections),
              fmtInt(peakConnections),
              fmtInt(after.connections),
              settle("connections"),
              ...linger("connections")
            ],
            ["users", fmtInt(before.users), "", fmtInt(after.users), settle("users"), ...linger("users")],
            ["rooms", fmtInt(before.rooms), "", fmtInt(after.rooms), settle("rooms"), ...linger("rooms")],
            [
              "heapUsed",
              fmtBytes(before.heapUsed),
              fmtBytes(peakHeap),
              fmtBytes(after.heapUsed),
              "",
              ...linger("heapUsed")
            ],
            ["rss", fmtBytes(before.rss), fmtBytes(peakRss), fmtBytes(after.rss), "", ...linger("rss")]
          ].map((row, i) => (i === 0 && lingered !== undefined ? [...row, `after +${config.lingerMs / 1000} s`] : row))
        )
      )
      lines.push(
        ok
          ? "result: the server returned to its baseline"
          : "result: FAILED — the server did not return to its baseline"
      )
      process.stdout.write(lines.join("\n") + "\n")
    }
    return ok ? 0 : 1
  } catch (error) {
    if (server !== undefined && error instanceof Error) error.message += `\n--- server output ---\n${server.tail()}`
    throw error
  } finally {
    if (server !== undefined) {
      const how = await server.stop(3000)
      if (how !== "exit 0") log(`server ended with ${how}`)
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`churn: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
