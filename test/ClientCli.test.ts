/**
 * The terminal client's command line (`dist/client.js`, built by `npm run build`): environment variables behind
 * the flags, and the exit code and single stderr line of a flag that cannot work.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { ChatClient } from "../src/client/ChatClient.js"
import * as ServerProcess from "./support/ServerProcess.js"
import { SignJWT } from "jose"

const SECRET = "cli-test-secret-cli-test-secret-cli"

const ROOT = Path.resolve(import.meta.dirname, "..")
const CLIENT = Path.join(ROOT, "dist", "client.js")
const GOODBYE = "Connection closed. Goodbye!"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the client with `args`, `env` (over an environment without CHAT_*) and `input` piped in, to its exit. */
const runClient = (args: ReadonlyArray<string>, env: Record<string, string>, input = "") =>
  Effect.async<Run>((resume) => {
    if (!Fs.existsSync(CLIENT)) throw new Error(`${CLIENT} is missing: run npm run build`)
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("CHAT_")))
    const child = ChildProcess.spawn(process.execPath, [CLIENT, ...args], {
      cwd: ROOT,
      env: { ...inherited, NO_COLOR: "", ...env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    child.stdin.end(input)
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(Effect.timeout("20 seconds"), Effect.orDie)

/** A URL where nothing listens. */
const deadUrl = Effect.async<string>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(`ws://127.0.0.1:${port}/chat`)))
  })
})

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

describe("dist/client.js command line", () => {
  it.scopedLive("CHAT_URL, CHAT_NAME and CHAT_ROOM stand in for --url, --name and --room", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const run = yield* runClient([], { CHAT_URL: server.url, CHAT_NAME: "envie", CHAT_ROOM: "dev" }, "from env\n")
      assert.deepStrictEqual([run.code, run.stderr], [0, ""])
      assert.strictEqual(lines(run.stdout)[0], "You are connected as envie! There is 1 user here.")
      assert.strictEqual(lines(run.stdout).at(-1), GOODBYE)

      const reader = Context.get(yield* Layer.build(ChatClient.layer({ url: server.url, rooms: ["dev"] })), ChatClient)
      const history = yield* reader.history("dev")
      assert.deepStrictEqual(
        history.messages.map((m) => `${m.from}: ${m.text}`),
        ["envie: from env"]
      )
    })
  )

  it.scopedLive("a flag wins over its environment variable, and a variable set but empty counts as unset", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const run = yield* runClient(["--url", server.url], { CHAT_URL: yield* deadUrl, CHAT_NAME: "" })
      assert.deepStrictEqual([run.code, run.stderr], [0, ""])
      assert.match(lines(run.stdout)[0] ?? "", /^You are connected as user\d+! There is 1 user here\.$/)
    })
  )

  it.scopedLive("a flag that cannot work: one line on stderr and exit code 2, without connecting", () =>
    Effect.gen(function* () {
      const url = yield* deadUrl
      const room = yield* runClient(["--url", url, "--room", "no#room"], {})
      assert.deepStrictEqual(room, {
        code: 2,
        stdout: "",
        stderr: "not a valid room: no#room (1-64 letters, digits, _ - .); see --help\n"
      })
      const name = yield* runClient(["--url", url], { CHAT_NAME: "user7" })
      assert.deepStrictEqual([name.code, name.stdout], [2, ""])
      assert.match(name.stderr, /^not a valid name: user7 \(.*\); see --help\n$/)
      const notWs = yield* runClient(["--url", "localhost:8080"], {})
      assert.deepStrictEqual(notWs, {
        code: 2,
        stdout: "",
        stderr: "not a WebSocket URL: localhost:8080 (for example ws://localhost:8080/chat); see --help\n"
      })
      const unknown = yield* runClient(["--url", url, "--frobnicate"], {})
      assert.strictEqual(unknown.code, 2)
    })
  )

  it.scopedLive("--help names the environment variables", () =>
    Effect.gen(function* () {
      const help = yield* runClient(["--help"], {})
      assert.strictEqual(help.code, 0)
      for (const variable of ["CHAT_URL", "CHAT_NAME", "CHAT_ROOM"]) assert.include(help.stdout, variable)
    })
  )
})

describe("dist/client.js with --auth required", () => {
  it.scopedLive("CHAT_TOKEN signs in; no token exits 3 with one line saying to sign in again", () =>
    Effect.gen(function* () {
      const running = yield* ServerProcess.start({ args: ["--auth", "required", "--jwt-secret", SECRET] })
      const token = yield* Effect.promise(() =>
        new SignJWT({ sub: "u-9", name: "dana" })
          .setProtectedHeader({ alg: "HS256" })
          .setExpirationTime("1h")
          .sign(new TextEncoder().encode(SECRET))
      )
      const ok = yield* runClient(["--url", running.url], { CHAT_TOKEN: token }, "hello from dana\n")
      expect(ok.code).toBe(0)
      expect(ok.stdout).toContain("hello from dana")
      expect(ok.stdout).toMatch(/dana\W+hello from dana/)
      const refused = yield* runClient(["--url", running.url], {}, "")
      expect(refused.code).toBe(3)
      expect(refused.stderr.trim().split("\n")).toHaveLength(1)
      expect(refused.stderr).toMatch(/needs a token/)
      expect(refused.stderr).toMatch(/sign in again/)
    })
  )
})
