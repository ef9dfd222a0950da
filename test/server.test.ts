import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { SignJWT } from "jose"
import WebSocket from "ws"
import * as ServerProcess from "./support/ServerProcess.js"

const SERVER = Path.resolve(import.meta.dirname, "..", "dist", "server.js")

/** Runs `node dist/server.js ARGS` to its end: exit code and output. */
const run = (args: ReadonlyArray<string>) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    ChildProcess.execFile(process.execPath, [SERVER, ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr }))
    )
  })

describe("dist/server.js", () => {
  it.live("--help lists every option", () =>
    Effect.gen(function* () {
      const { code, stdout } = yield* run(["--help"])
      expect(code).toBe(0)
      for (const flag of [
        "--port",
        "--host",
        "--redis",
        "--max-frame-bytes",
        "--history-size",
        "--history-retain",
        "--history-max-age",
        "--store",
        "--data-dir",
        "--store-sync",
        "--rate",
        "--allowed-origin",
        "--drain-delay",
        "--log-format",
        "--log-level"
      ]) {
        expect(stdout).toContain(flag)
      }
    })
  )

  it.live("--log-format json writes one JSON object a line; --log-level error keeps warnings out", () =>
    Effect.gen(function* () {
      // A warning at start (a JWT key with --auth off), then a port that is taken: exit 1 after the warning.
      const blocker = Net.createServer().listen(0, "127.0.0.1")
      yield* Effect.promise(() => new Promise((resolve) => blocker.once("listening", resolve)))
      const port = String((blocker.address() as Net.AddressInfo).port)
      const common = ["--store", "memory", "--host", "127.0.0.1", "--port", port, "--jwt-secret", "x".repeat(40)]
      const json = yield* run([...common, "--log-format", "json"])
      const lines = (json.stdout + json.stderr).split("\n").filter((line) => line.includes("--auth is off"))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0]!)).toMatchObject({ logLevel: "WARN" })
      const quiet = yield* run([...common, "--log-level", "error"])
      expect(quiet.stdout + quiet.stderr).not.toContain("--auth is off")
      expect((yield* run([...common, "--log-format", "xml"])).code).toBe(2)
      blocker.close()
    })
  )

  it.live("bad arguments exit 2 with a message and no stack trace", () =>
    Effect.gen(function* () {
      const { code, stdout, stderr } = yield* run(["--port", "99999"])
      expect(code).toBe(2)
      expect(stderr).toContain("--port must be between 0 and 65535")
      expect(stdout + stderr).not.toMatch(/\n\s+at /)
      expect((yield* run(["--redis", "http://nope"])).code).toBe(2)
      const both = yield* run(["--store", "memory", "--redis", "redis://127.0.0.1:1"])
      expect(both.code).toBe(2)
      expect(both.stderr).toContain("--store and --redis")
      const age = yield* run(["--store", "memory", "--port", "0", "--history-max-age", "soon"])
      expect(age.code).toBe(2)
      expect(age.stderr).toContain("--history-max-age must be a number with a unit")
      expect((yield* run(["--store", "memory", "--port", "0", "--history-retain", "0"])).code).toBe(2)
    })
  )

  it.live("authentication needs a usable key: none, or one that does not parse, exits 2 with one line", () =>
    Effect.gen(function* () {
      const none = yield* run(["--auth", "required"])
      expect(none.code).toBe(2)
      expect(none.stderr).toContain("--auth required needs --jwt-secret (or JWT_SECRET) or --jwt-public-key FILE")
      const file = Path.join(Os.tmpdir(), `not-a-key-${process.pid}.pem`)
      Fs.writeFileSync(file, "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
      const garbage = yield* run(["--auth", "optional", "--jwt-public-key", file])
      Fs.rmSync(file)
      expect(garbage.code).toBe(2)
      expect(garbage.stdout + garbage.stderr).not.toMatch(/\n\s+at /)
    })
  )

  it.scopedLive("--jwt-public-key FILE: an ES256 token signed with its private key signs the user in", () =>
    Effect.gen(function* () {
      const { privateKey, publicKey } = Crypto.generateKeyPairSync("ec", { namedCurve: "P-256" })
      const file = Path.join(Os.tmpdir(), `es256-${process.pid}.pem`)
      Fs.writeFileSync(file, publicKey.export({ type: "spki", format: "pem" }))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(file, { force: true })))
      const server = yield* ServerProcess.start({ args: ["--auth", "required", "--jwt-public-key", file] })
      const token = yield* Effect.promise(() =>
        new SignJWT({ sub: "k-1", name: "erin" })
          .setProtectedHeader({ alg: "ES256" })
          .setExpirationTime("1h")
          .sign(privateKey)
      )
      const welcome = yield* Effect.async<Record<string, unknown>>((resume) => {
        const ws = new WebSocket(server.url, "effect-chat.v1")
        ws.on("open", () => ws.send(JSON.stringify({ type: "hello", token })))
        ws.on("message", (data) => {
          ws.close()
          resume(Effect.succeed(JSON.parse(data.toString())))
        })
      })
      expect(welcome).toMatchObject({ type: "welcome", name: "erin" })
    })
  )

  it.live("SIGTERM sends 1001 to every client and exits 0 within 2 s, even with a peer that never answers", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const client = new WebSocket(server.url, "effect-chat.v1")
      const closed = new Promise<number>((resolve) => client.on("close", (code) => resolve(code)))
      yield* Effect.promise(() => new Promise((resolve) => client.on("open", resolve)))
      // a raw peer that upgrades and then never reads or answers a close frame
      const silent = Net.connect(server.port, "127.0.0.1")
      silent.write(
        `GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
      silent.on("error", () => {})
      yield* Effect.promise(() => new Promise((resolve) => silent.once("data", resolve)))
      silent.pause()
      const started = Date.now()
      process.kill(server.pid, "SIGTERM")
      expect(yield* Effect.promise(() => closed)).toBe(1001)
      expect(yield* server.exited).toBe(0)
      expect(Date.now() - started).toBeLessThan(2000)
      silent.destroy()
    }).pipe(Effect.scoped)
  )
  it.live("--drain-delay: on SIGTERM /readyz answers 503 at once, clients keep chatting, then get 1001", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start({ args: ["--drain-delay", "1.5"] })
      const readyz = () =>
        Effect.promise(() =>
          fetch(`${server.httpUrl}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() }))
        )
      expect((yield* readyz()).status).toBe(200)
      const client = new WebSocket(server.url, "effect-chat.v1")
      const frames: Array<{ type: string; text?: string }> = []
      client.on("message", (data) => frames.push(JSON.parse(data.toString())))
      const closed = new Promise<number>((resolve) => client.on("close", (code) => resolve(code)))
      yield* Effect.promise(() => new Promise((resolve) => client.on("open", resolve)))
      client.send(JSON.stringify({ type: "hello", name: "stayer" }))
      const started = Date.now()
      process.kill(server.pid, "SIGTERM")
      let drained = yield* readyz()
      while (drained.status === 200 && Date.now() - started < 1000) drained = yield* readyz()
      expect(drained).toEqual({ status: 503, body: { ready: false, draining: true } })
      expect(Date.now() - started).toBeLessThan(1000)
      // Still served while draining.
      client.send(JSON.stringify({ type: "send", room: "lobby", text: "still here", ref: "s" }))
      expect(yield* Effect.promise(() => closed)).toBe(1001)
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(1400)
      expect(elapsed).toBeLessThan(1500 + 2000)
      expect(frames.some((f) => f.type === "message" && f.text === "still here")).toBe(true)
      expect(yield* server.exited).toBe(0)
    }).pipe(Effect.scoped)
  )
})
