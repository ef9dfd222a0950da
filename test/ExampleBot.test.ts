/**
 * The example bot (`dist/scripts/example-bot.js`, built by `npm run build`) against the real server binary: it
 * answers `!time` as a reply and reacts 👍 to messages with its keyword.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { ChatClient, type ChatEvent } from "../src/client/ChatClient.js"
import * as ServerProcess from "./support/ServerProcess.js"

const ROOT = Path.resolve(import.meta.dirname, "..")
const BOT = Path.join(ROOT, "dist", "scripts", "example-bot.js")

const startBot = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      if (!Fs.existsSync(BOT)) throw new Error(`${BOT} is missing: run npm run build`)
      const child = ChildProcess.spawn(process.execPath, [BOT, ...args], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => void (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString()))
      return { child, output: () => output }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGTERM"))
  )

const waitFor = (what: () => string, check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("25 millis") }),
    Effect.timeoutFail({ duration: 10_000, onTimeout: () => new Error(`timed out waiting for ${what()}`) }),
    Effect.orDie
  )

describe("example bot", () => {
  it.scopedLive("reacts 👍 to its keyword (any case, another one by argument) and answers !time as a reply", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const context = yield* Layer.build(ChatClient.layer({ url: server.url, name: "ann", rooms: ["dev"] }))
      const ann = Context.get(context, ChatClient)
      const events: Array<ChatEvent> = []
      yield* Effect.forkScoped(Stream.runForEach(ann.events, (event) => Effect.sync(() => events.push(event))))
      const bot = yield* startBot([server.url, "dev", "Ship"])
      yield* waitFor(
        () => `the bot's join: ${bot.output()}`,
        () => events.some((e) => e.type === "joined" && e.name === "bot")
      )

      // Nothing for a message without the keyword: the only reaction below is the keyword's.
      yield* ann.send("dev", "nothing to see")
      const keyword = yield* ann.send("dev", "time to SHIP it")
      const question = yield* ann.send("dev", "!time")
      yield* waitFor(
        () => `the reaction and the answer: ${JSON.stringify(events.slice(-4))}; bot: ${bot.output()}`,
        () =>
          events.some((e) => e.type === "reaction") &&
          events.some((e) => e.type === "message" && e.from === "bot" && e.reply_to === question)
      )
      const reactions = events.flatMap((e) => (e.type === "reaction" ? [[e.id, e.emoji, e.name, e.on]] : []))
      assert.deepStrictEqual(reactions, [[keyword, "👍", "bot", true]])
      const answer = events.find((e) => e.type === "message" && e.from === "bot" && e.reply_to === question)
      assert.match(answer?.type === "message" ? answer.text : "", /^It is \d{4}-\d\d-\d\dT/)
    })
  )
})
