/**
 * The README's embedding example is real: `scripts/example-embedded.ts` (compiled by the test command's build) is
 * the code the README shows, and here it runs as its own process — the app's login route sets a cookie, the chat on
 * the same port signs that user in from it, refuses a connection without it, and filters words.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import WebSocket from "ws"
import { SUBPROTOCOL } from "../src/protocol/Protocol.js"

const root = Path.resolve(import.meta.dirname, "..")

/** Starts the example on a free port and waits for its listening line; killed with the scope. */
const startExample = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly child: ReturnType<typeof spawn> }, Error>((resume) => {
    const child = spawn(process.execPath, [Path.join(root, "dist/scripts/example-embedded.js"), "0"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const timer = setTimeout(() => resume(Effect.fail(new Error(`example did not start: ${output}`))), 15_000)
    const onData = (data: Buffer) => {
      output += data.toString()
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resume(Effect.succeed({ port: Number(match[1]), child }))
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
)

type Frame = Record<string, any>

/** A JSON-dialect socket that says hello and collects frames until it closes. */
const chat = (port: number, cookie?: string) =>
  Effect.async<{ frames: Array<Frame>; ws: WebSocket; closed: Promise<number> }>((resume) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, SUBPROTOCOL, cookie ? { headers: { cookie } } : {})
    const frames: Array<Frame> = []
    const closed = new Promise<number>((done) => ws.on("close", (code) => done(code)))
    ws.on("open", () => {
      ws.send(JSON.stringify({ type: "hello" }))
      resume(Effect.succeed({ frames, ws, closed }))
    })
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())))
  })

const waitFor = (frames: Array<Frame>, match: (frame: Frame) => boolean) =>
  Effect.promise(async () => {
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      const found = frames.find(match)
      if (found !== undefined) return found
      await new Promise((done) => setTimeout(done, 20))
    }
    throw new Error(`no such frame; got ${JSON.stringify(frames).slice(0, 400)}`)
  })

describe("embedding example", () => {
  it("is what the README shows", () => {
    const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
    const source = Fs.readFileSync(Path.join(root, "scripts/example-embedded.ts"), "utf8")
    const block = /<!-- scripts\/example-embedded\.ts -->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(block).toBe(source)
  })

  it.live(
    "signs in from the app's cookie, refuses a connection without one, and filters words",
    () =>
      Effect.gen(function* () {
        const { port } = yield* startExample
        const bad = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/login?name=user1`))
        expect(bad.status).toBe(400)
        const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/login?name=carol`))
        expect(yield* Effect.promise(() => response.text())).toBe("signed in as carol")
        const cookie = response.headers.get("set-cookie")!.split(";")[0]!
        // The chat's own routes are still served next to the app's.
        expect((yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/healthz`))).status).toBe(200)

        const carol = yield* chat(port, cookie)
        expect(yield* waitFor(carol.frames, (f) => f.type === "welcome")).toMatchObject({ name: "carol" })
        carol.ws.send(JSON.stringify({ type: "send", room: "lobby", text: "what the heck", ref: "1" }))
        expect(yield* waitFor(carol.frames, (f) => f.type === "message")).toMatchObject({ text: "what the ****" })
        carol.ws.send(JSON.stringify({ type: "send", room: "lobby", text: "cheap spam here", ref: "2" }))
        expect(yield* waitFor(carol.frames, (f) => f.ref === "2")).toMatchObject({ type: "error", code: "forbidden" })

        const stranger = yield* chat(port)
        expect(yield* waitFor(stranger.frames, (f) => f.type === "error")).toMatchObject({ code: "unauthorized" })
        expect(yield* Effect.promise(() => stranger.closed)).toBe(4001)
        carol.ws.close()
      }).pipe(Effect.scoped),
    30_000
  )
})
