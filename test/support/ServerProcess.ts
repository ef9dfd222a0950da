/**
 * The built server binary (`node dist/server.js`, from `npm run build`) as a child process, for tests that need a
 * real process: one that can crash, restart on the same port, or serve a real browser.
 */
import { Data, Effect, Schedule, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as TempDir from "./TempDir.js"

const ROOT = Path.resolve(import.meta.dirname, "..", "..")
const SERVER = Path.join(ROOT, "dist", "server.js")
const LISTENING = /effect-chat listening on http:\/\/127\.0\.0\.1:(\d+)/
const START_TIMEOUT_MS = 20_000
const STOP_GRACE_MS = 5_000

export interface ServerProcess {
  readonly port: number
  /** The chat endpoint, `ws://127.0.0.1:PORT/chat`. */
  readonly url: string
  /** `http://127.0.0.1:PORT`, for `/healthz`, `/readyz` and the web client. */
  readonly httpUrl: string
  readonly pid: number
  /** SIGKILL: the process dies without closing anything, as in a crash. Waits until it is gone. */
  readonly kill: Effect.Effect<void>
  /** SIGTERM, as an operator would, and waits for the exit (SIGKILL if it takes more than 5 s). */
  readonly stop: Effect.Effect<void>
  /** Waits for the process to end: its exit code, or null when a signal ended it. */
  readonly exited: Effect.Effect<number | null>
}

export interface StartOptions {
  /** 0 or absent: any free port. A fixed port is a restart: see `start`. */
  readonly port?: number
  /** Extra command-line options, e.g. `["--redis", url]`. */
  readonly args?: ReadonlyArray<string>
}

export class ServerStartError extends Data.TaggedError("ServerStartError")<{
  readonly reason: "Missing" | "Exited" | "Timeout"
  readonly message: string
}> {}

/**
 * Starts `node dist/server.js --port P --host 127.0.0.1 ...args` and waits for its listening line; the server is
 * stopped (SIGTERM) when the scope closes. On a fixed port (a restart) a start whose process exits at once is retried
 * for about 5 s, while the previous process's port is still being released.
 */
export const start = (options: StartOptions = {}): Effect.Effect<ServerProcess, ServerStartError, Scope.Scope> => {
  const port = options.port ?? 0
  const given = options.args ?? []
  // The embedded store is the default: a server that is not told where to keep it gets a directory of its own,
  // never the project's ./data.
  const ownStore = !given.some((arg) => arg === "--store" || arg === "--redis" || arg === "--data-dir")
  return Effect.acquireRelease(
    Effect.sync(() => (ownStore ? TempDir.make("server-") : undefined)),
    (dir) => Effect.sync(() => dir !== undefined && TempDir.remove(dir))
  ).pipe(Effect.flatMap((dir) => startWith(port, dir === undefined ? given : [...given, "--data-dir", dir])))
}

const startWith = (
  port: number,
  args: ReadonlyArray<string>
): Effect.Effect<ServerProcess, ServerStartError, Scope.Scope> => {
  return Effect.acquireRelease(
    spawnListening(port, args).pipe(
      Effect.retry({
        schedule: Schedule.spaced("250 millis"),
        times: 20,
        while: (error) => port !== 0 && error.reason === "Exited"
      })
    ),
    ({ child }) => stopProcess(child)
  ).pipe(
    Effect.map(({ child, port }): ServerProcess => ({
      port,
      url: `ws://127.0.0.1:${port}/chat`,
      httpUrl: `http://127.0.0.1:${port}`,
      pid: child.pid!,
      kill: killProcess(child, "SIGKILL"),
      stop: stopProcess(child),
      exited: Effect.async<number | null>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
        child.once("exit", (code) => resume(Effect.succeed(code)))
      })
    }))
  )
}

const spawnListening = (port: number, args: ReadonlyArray<string>) =>
  Effect.async<{ readonly child: ChildProcess.ChildProcess; readonly port: number }, ServerStartError>((resume) => {
    if (!Fs.existsSync(SERVER)) {
      const message = `${SERVER} is missing: run npm run build`
      return resume(Effect.fail(new ServerStartError({ reason: "Missing", message })))
    }
    const argv = [SERVER, "--port", String(port), "--host", "127.0.0.1", ...args]
    const child = ChildProcess.spawn(process.execPath, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    let settled = false
    const settle = (effect: Effect.Effect<{ child: ChildProcess.ChildProcess; port: number }, ServerStartError>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.stdout!.off("data", collect)
      child.stderr!.off("data", collect)
      child.off("exit", onExit)
      child.off("error", onError)
      // Nobody reads the pipes from now on: keep them flowing, so a server that logs never blocks on a full pipe.
      child.stdout!.resume()
      child.stderr!.resume()
      resume(effect)
    }
    const fail = (reason: ServerStartError["reason"], what: string) =>
      settle(Effect.fail(new ServerStartError({ reason, message: `the server ${what}; its output:\n${output}` })))
    const collect = (chunk: Buffer) => {
      output += chunk.toString()
      const match = LISTENING.exec(output)
      if (match !== null) settle(Effect.succeed({ child, port: Number(match[1]) }))
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail("Exited", `exited (${signal ?? `code ${code}`}) before listening`)
    const onError = (error: Error) => {
      child.kill("SIGKILL")
      fail("Exited", `could not be started (${error.message})`)
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      fail("Timeout", `did not print its listening line within ${START_TIMEOUT_MS / 1000} s`)
    }, START_TIMEOUT_MS)
    child.stdout!.on("data", collect)
    child.stderr!.on("data", collect)
    child.once("exit", onExit)
    child.once("error", onError)
  })

/** Sends `signal` and waits for the exit; at once if the process has already exited. */
const killProcess = (child: ChildProcess.ChildProcess, signal: NodeJS.Signals = "SIGTERM") =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill(signal)
  })

const stopProcess = (child: ChildProcess.ChildProcess) =>
  killProcess(child, "SIGTERM").pipe(
    Effect.timeout(STOP_GRACE_MS),
    Effect.catchTag("TimeoutException", () => killProcess(child, "SIGKILL"))
  )
