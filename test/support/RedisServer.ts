/**
 * A real Redis for tests: a throw-away `redis-server` on a free port without persistence, or the server at
 * `REDIS_URL`. Without either the Redis suites are skipped with the reason in their name — except on CI, where
 * they run and fail, so a missing Redis can never pass for green.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Net from "node:net"
import * as Os from "node:os"

const BINARY = "redis-server"

export const hasBinary = spawnSync(BINARY, ["--version"]).status === 0
export const externalUrl = process.env.REDIS_URL || undefined

/** Why the Redis tests cannot run on this machine; undefined when they can, or must (CI). */
export const skipReason =
  hasBinary || externalUrl !== undefined || process.env.CI ? undefined : "no redis-server on PATH and REDIS_URL unset"

/** Why a test that stops and restarts Redis cannot run here (it needs its own redis-server). */
export const restartSkipReason = hasBinary || process.env.CI ? undefined : "no redis-server on PATH to restart"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** A `redis-server` this test owns: it can be stopped and started again on the same port. */
export class RedisProcess {
  private process: ChildProcess | undefined

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  start(): Promise<void> {
    const child = spawn(
      BINARY,
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", Os.tmpdir()],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    this.process = child
    let output = ""
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error("redis-server did not start within 10 s")), 10_000)
      const fail = (error: Error) => {
        clearTimeout(timer)
        child.kill("SIGKILL")
        reject(new Error(`${error.message}\n${output}`))
      }
      child.once("error", fail)
      child.once("exit", (code) => fail(new Error(`redis-server exited with ${code}`)))
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer)
          child.removeAllListeners("exit")
          child.stdout?.off("data", onData)
          child.stdout?.resume()
          resolve()
        }
      }
      child.stdout?.on("data", onData)
      child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    })
  }

  /** Kills the server at once (no shutdown save): to the nodes it is an outage. */
  stop(): Promise<void> {
    const child = this.process
    this.process = undefined
    if (child === undefined || child.exitCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  }

  static async start(): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort())
    await redis.start()
    return redis
  }
}

/** The Redis for tests that only need one: a fresh local server, or `REDIS_URL`. */
export const acquire = async (): Promise<{ readonly url: string; readonly stop: () => Promise<void> }> => {
  if (externalUrl !== undefined) return { url: externalUrl, stop: async () => {} }
  const redis = await RedisProcess.start()
  return { url: redis.url, stop: () => redis.stop() }
}
