/**
 * The terminal client: line parsing and rendering, then the built `dist/client.js` against the real server binary,
 * driven through pipes and, for the prompt, through a real terminal (tmux).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Schedule, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { SignJWT } from "jose"
import { ChatClient, type ChatEvent } from "../src/client/ChatClient.js"
import { ClientCommand, parse } from "../src/terminal/ClientCommand.js"
import type * as Protocol from "../src/protocol/Protocol.js"
import * as TerminalFormat from "../src/terminal/TerminalFormat.js"
import * as ServerProcess from "./support/ServerProcess.js"

const ROOT = Path.resolve(import.meta.dirname, "..")
const CLIENT = Path.join(ROOT, "dist", "client.js")
const GOODBYE = "Connection closed. Goodbye!"

// ---------------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------------

/** Polls `check` every 25 ms until it holds; fails after `timeoutMs` saying what it waited for. */
const waitFor = (what: string | (() => string), check: () => boolean, timeoutMs = 10_000) =>
  Effect.sync(check).pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("25 millis") }),
    Effect.timeoutFail({
      duration: timeoutMs,
      onTimeout: () => new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`)
    }),
    Effect.orDie,
    Effect.asVoid
  )

interface Proc {
  readonly child: ChildProcess.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly lines: () => ReadonlyArray<string>
  /** Waits for the exit code. */
  readonly exit: Effect.Effect<number | null>
}

/** Spawns `node args...`; killed with the scope if still running. */
const spawn = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync((): Proc => {
      for (const file of args.filter((arg) => arg.endsWith(".js"))) {
        if (!Fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build`)
      }
      const child = ChildProcess.spawn(process.execPath, args, {
        cwd: ROOT,
        env: { ...process.env, NO_COLOR: "", ...env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
      child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      return {
        child,
        stdout: () => stdout,
        stderr: () => stderr,
        lines: () => stdout.split("\n").filter((line) => line !== ""),
        exit: Effect.promise(() => exited).pipe(
          Effect.timeoutFail({
            duration: "20 seconds",
            onTimeout: () => new Error(`no exit; stdout: ${stdout} stderr: ${stderr}`)
          }),
          Effect.orDie
        )
      }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** A library client whose events are recorded, to talk to the terminal client under test. */
const peer = (url: string, name: string, rooms?: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(ChatClient.layer({ url, name, rooms }))
    const client = Context.get(context, ChatClient)
    const events: Array<ChatEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(client.events, (event) => Effect.sync(() => events.push(event))))
    const texts = () =>
      events
        .flatMap((e) => (e.type === "message" ? [e] : e.type === "history" ? e.messages : []))
        .map((m) => `${m.from}: ${m.text}`)
    return { client, events, texts }
  })

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

// ---------------------------------------------------------------------------------------------------------------------

describe("ClientCommand.parse", () => {
  it("reads lines and commands", () => {
    assert.deepStrictEqual(parse("hello there"), ClientCommand.Say({ text: "hello there" }))
    assert.deepStrictEqual(parse("//not a command"), ClientCommand.Say({ text: "/not a command" }))
    assert.deepStrictEqual(parse("/join dev"), ClientCommand.Join({ room: "dev" }))
    assert.deepStrictEqual(parse("/leave"), ClientCommand.Leave({ room: undefined }))
    assert.deepStrictEqual(parse("/msg bob two  spaces"), ClientCommand.Msg({ to: "bob", text: "two  spaces" }))
    assert.deepStrictEqual(parse("/history 5"), ClientCommand.History({ limit: 5 }))
    assert.deepStrictEqual(parse("/NICK carol"), ClientCommand.Nick({ name: "carol" }))
    assert.deepStrictEqual([parse("exit"), parse("/quit")], [ClientCommand.Quit(), ClientCommand.Quit()])
    assert.deepStrictEqual(parse("   "), ClientCommand.Empty())
  })

  it("explains a bad command in one line instead of sending it", () => {
    const message = (line: string) => {
      const command = parse(line)
      return command._tag === "Invalid" ? command.message : `not invalid: ${command._tag}`
    }
    assert.strictEqual(message("/frobnicate"), "unknown command /frobnicate (try /help)")
    assert.strictEqual(message("/join"), "usage: /join ROOM")
    assert.match(message("/join no#room"), /^not a valid room: no#room/)
    assert.match(message("/nick user12"), /^not a valid name: user12/)
    assert.strictEqual(message("/msg bob"), "usage: /msg NAME TEXT")
    assert.strictEqual(message("/history 0"), "usage: /history [N] with N from 1 to 100")
    assert.match(message("x".repeat(4001)), /^message too long/)
  })
})

describe("TerminalFormat", () => {
  const message = { type: "message", room: "lobby", id: 1, from: "ann", text: "hi", at: 0 } as const

  it("prints a message of the current room as [name]: text, others with their room", () => {
    assert.strictEqual(TerminalFormat.formatMessage({ room: "lobby", color: false }, message), "[ann]: hi")
    assert.strictEqual(TerminalFormat.formatMessage({ room: "dev", color: false }, message), "#lobby [ann]: hi")
  })

  it("colours names only when asked, the same colour for the same name", () => {
    const colored = TerminalFormat.formatMessage({ room: "lobby", color: true }, message)
    assert.strictEqual(colored, `[\x1b[${TerminalFormat.nameColor("ann")}mann\x1b[0m]: hi`)
    assert.strictEqual(TerminalFormat.nameColor("ann"), TerminalFormat.nameColor("ANN"))
    const plain = (
      [
        { type: "joined", room: "lobby", name: "bob", at: 0 },
        { type: "reconnecting", attempt: 2, delay: Duration.millis(1500) },
        { type: "error", code: "name_taken", message: "bob is taken" }
      ] as const
    ).flatMap((event) => TerminalFormat.formatEvent({ room: "lobby", color: false }, event))
    assert.deepStrictEqual(plain, [
      "* bob joined #lobby",
      "reconnecting (attempt 2, in 1.5s)…",
      "error (name_taken): bob is taken"
    ])
  })

  it("reports reconnecting, and whether the session was resumed", () => {
    const welcome = {
      type: "welcome",
      protocol: 1,
      name: "ann",
      rooms: ["lobby"],
      users: 2,
      resume: "t",
      resumed: true
    } as const
    const lines = (
      [
        { type: "connected", welcome, resumed: false, reconnected: false },
        { type: "disconnected", code: 1006, reason: "" },
        { type: "connected", welcome, resumed: true, reconnected: true },
        { type: "connected", welcome: { ...welcome, resumed: false }, resumed: false, reconnected: true }
      ] as const
    ).flatMap((event) => TerminalFormat.formatEvent({ room: "lobby", color: false }, event))
    assert.deepStrictEqual(lines, [
      "You are connected as ann! There are 2 users here.",
      "disconnected: 1006 connection lost",
      "reconnected (session resumed)",
      "reconnected (new session: earlier messages may be missing)"
    ])
  })

  it("shows control characters in messages instead of obeying them", () => {
    const evil = { ...message, text: "\x1b[2Jgotcha\x07" }
    const shown = TerminalFormat.formatMessage({ room: "lobby", color: false }, evil)
    assert.strictEqual(shown, "[ann]: \ufffd[2Jgotcha\ufffd")
  })
})

describe("dist/client.js through pipes", () => {
  it.scopedLive("two clients chat; the piped one sends every line, then closes and says goodbye", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const bob = yield* spawn([CLIENT, "--url", url, "--name", "bob"])
      const greeting = "You are connected as bob! There is 1 user here."
      yield* waitFor(
        () => `bob to connect: ${bob.stdout()}`,
        () => bob.lines().includes(greeting)
      )

      const alice = yield* spawn([CLIENT, "--url", url, "--name", "alice"])
      alice.child.stdin!.end("hello bob\nhow are you?\n")
      assert.strictEqual(yield* alice.exit, 0)
      assert.strictEqual(alice.lines().at(-1), GOODBYE)
      assert.include(alice.lines(), "[alice]: how are you?")
      assert.strictEqual(alice.stderr(), "")

      yield* waitFor(
        () => `alice's lines at bob: ${bob.stdout()}`,
        () => bob.lines().includes("[alice]: how are you?")
      )
      const fromAlice = bob.lines().filter((line) => line.startsWith("[alice]"))
      assert.deepStrictEqual(fromAlice, ["[alice]: hello bob", "[alice]: how are you?"])
      assert.include(bob.lines(), "* alice joined #lobby")
      // Presence within 250 ms of the last presence write waits for the room's presence window.
      yield* waitFor(
        () => `alice's leaving at bob: ${bob.stdout()}`,
        () => bob.lines().includes("* alice left #lobby")
      )

      bob.child.stdin!.end("/nosuchthing\nbye\n")
      assert.strictEqual(yield* bob.exit, 0)
      assert.deepStrictEqual(bob.lines().slice(-3), ["unknown command /nosuchthing (try /help)", "[bob]: bye", GOODBYE])
      // Piped output holds no escape codes.
      assert.notInclude(bob.stdout() + alice.stdout(), "\x1b")
    })
  )

  it.scopedLive("every piped line is acknowledged before the client exits, beyond the server's rate limit", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const lines = Array.from({ length: 60 }, (_, i) => `line ${i + 1}`)
      const sender = yield* spawn([CLIENT, "--url", url, "--name", "sender", "--room", "dev"])
      sender.child.stdin!.end(lines.join("\n") + "\n")
      assert.strictEqual(yield* sender.exit, 0)
      assert.strictEqual(sender.lines().at(-1), GOODBYE)
      assert.deepStrictEqual(
        sender.lines().filter((line) => line.includes("error")),
        []
      )
      // Exited: so every line is already on the server, once and in order.
      const reader = yield* peer(url, "reader", ["dev"])
      const history = yield* reader.client.history("dev", { limit: 100 })
      assert.deepStrictEqual(
        history.messages.map((m) => m.text),
        lines
      )
    })
  )

  it.scopedLive("an unreachable server: one line on stderr, exit code 1", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const client = yield* spawn([CLIENT, "--url", `ws://127.0.0.1:${port}/chat`])
      assert.strictEqual(yield* client.exit, 1)
      assert.strictEqual(client.stderr(), `Cannot connect to ws://127.0.0.1:${port}/chat: connection refused\n`)
      assert.strictEqual(client.stdout(), "")
    })
  )
})

describe("dist/client.js chat features through pipes", () => {
  it.scopedLive("/reply, /edit, /react (a toggle) and /delete, as the terminal and another client see them", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const ann = yield* peer(url, "ann")
      const cli = yield* spawn([CLIENT, "--url", url, "--name", "cli", "--show-ids"])
      const waitLine = (line: string | RegExp) =>
        waitFor(
          () => `${line}: ${cli.stdout()}`,
          () => cli.lines().some((shown) => (typeof line === "string" ? shown === line : line.test(shown)))
        )
      const annGot = <E extends ChatEvent>(what: string, match: (event: ChatEvent) => event is E) =>
        Effect.map(
          waitFor(
            () => `${what} at ann: ${JSON.stringify(ann.events.slice(-5))}`,
            () => ann.events.some(match)
          ),
          () => ann.events.filter(match)
        )
      yield* waitLine("You are connected as cli! There are 2 users here.")
      const question = yield* ann.client.send("lobby", "what do you all think of the new logo?")
      yield* waitLine(`#${question} [ann]: what do you all think of the new logo?`)

      cli.child.stdin!.write(`/reply ${question} looks good\n`)
      const replyLine = new RegExp(`^#(\\d+) \\[cli\\] ↪ ann "what do you all think of the…": looks good$`)
      yield* waitLine(replyLine)
      const reply = Number(replyLine.exec(cli.lines().find((line) => replyLine.test(line))!)![1])
      const [atAnn] = yield* annGot("the reply", (e): e is Protocol.Message => e.type === "message" && e.id === reply)
      assert.deepStrictEqual([atAnn?.text, atAnn?.reply_to], ["looks good", question])

      cli.child.stdin!.write(`/edit ${reply} looks great\n`)
      yield* waitLine(`#${reply} [cli]: looks great (edited)`)
      yield* annGot("the edit", (e): e is Protocol.Edited => e.type === "edited" && e.text === "looks great")

      cli.child.stdin!.write(`/react ${question} 👍\n`)
      yield* waitLine(`  ↳ #${question} 👍 1`)
      cli.child.stdin!.write(`/react ${question} 👍\n`)
      yield* waitLine(`  ↳ #${question} no reactions`)
      const reactions = yield* annGot("the reaction taken back", (e): e is Protocol.Reaction => e.type === "reaction")
      yield* ann.client.react("lobby", reply, "❤️", true)
      yield* waitLine(`  ↳ #${reply} ❤️ 1`)

      cli.child.stdin!.write(`/delete ${reply}\n/edit ${question} hijacked\n/delete 999\n/react ${question}\n`)
      yield* waitLine(`#${reply} [cli]: [deleted]`)
      yield* annGot("the deletion", (e): e is Protocol.Deleted => e.type === "deleted" && e.id === reply)
      yield* waitLine(/^error \(forbidden\): /)
      yield* waitLine(/^error \(no_such_message\): /)
      yield* waitLine("usage: /react ID EMOJI")
      assert.deepStrictEqual(
        reactions.slice(0, 2).map((r) => [r.id, r.emoji, r.name, r.on]),
        [
          [question, "👍", "cli", true],
          [question, "👍", "cli", false]
        ]
      )
      cli.child.stdin!.end()
      assert.strictEqual(yield* cli.exit, 0)
    })
  )

  it.scopedLive("the read marker follows the current room at most about once a second, however busy the room", () =>
    Effect.gen(function* () {
      const secret = "read-marker-test-secret-read-marker"
      const mint = (sub: string, name: string) =>
        Effect.promise(() =>
          new SignJWT({ sub, name })
            .setProtectedHeader({ alg: "HS256" })
            .setExpirationTime("1h")
            .sign(new TextEncoder().encode(secret))
        )
      const { url } = yield* ServerProcess.start({ args: ["--auth", "required", "--jwt-secret", secret] })
      const cli = yield* spawn([CLIENT, "--url", url], { CHAT_TOKEN: yield* mint("u-reader", "reader") })
      yield* waitFor(
        () => `the connection: ${cli.stdout()}`,
        () => cli.lines().some((line) => line.startsWith("You are connected as reader!"))
      )
      // The same user on another device sees every move of the marker as an unread frame.
      const device = Context.get(
        yield* Layer.build(ChatClient.layer({ url, token: yield* mint("u-reader", "reader") })),
        ChatClient
      )
      const moves: Array<Protocol.Unread> = []
      yield* Effect.forkScoped(
        Stream.runForEach(device.events, (event) => Effect.sync(() => event.type === "unread" && moves.push(event)))
      )
      const talker = Context.get(
        yield* Layer.build(ChatClient.layer({ url, token: yield* mint("u-talker", "talker") })),
        ChatClient
      )
      const started = Date.now()
      const ids = yield* Effect.forEach(
        Array.from({ length: 60 }, (_, i) => `line ${i + 1}`),
        (text) => talker.submit("lobby", text)
      ).pipe(Effect.flatMap(Effect.all))
      const last = ids.at(-1)!
      yield* waitFor(
        () => `the marker at ${last}: ${JSON.stringify(moves)}`,
        () => moves.some((move) => move.last_read === last)
      )
      const seconds = (Date.now() - started) / 1000
      const moved = moves.filter((move) => move.last_read > 0)
      assert.isAtMost(moved.length, Math.ceil(seconds) + 2, `${moved.length} moves in ${seconds} s`)
      assert.deepStrictEqual(
        cli.lines().filter((line) => line.includes("error")),
        []
      )
    })
  )

  it.scopedLive("--show-ids and /ids show message ids; /rooms counts what arrived in the other rooms", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const ann = yield* peer(url, "ann", ["lobby", "dev"])
      const cli = yield* spawn([CLIENT, "--url", url, "--name", "cli", "--room", "lobby", "--show-ids"])
      const shows = (line: string) => () => cli.lines().includes(line)
      const waitLine = (line: string) => waitFor(() => `${line}: ${cli.stdout()}`, shows(line))
      yield* waitLine("You are connected as cli! There are 2 users here.")
      const hello = yield* ann.client.send("lobby", "hello")
      yield* waitLine(`#${hello} [ann]: hello`)

      cli.child.stdin!.write("/join dev\n")
      yield* waitFor(
        () => `the dev join: ${cli.stdout()}`,
        () => cli.lines().some((line) => line.startsWith("in #dev: "))
      )
      const later = yield* Effect.forEach(["one", "two"], (text) => ann.client.send("lobby", text))
      yield* waitLine(`#lobby #${later[1]} [ann]: two`)
      cli.child.stdin!.write("/rooms\n")
      yield* waitLine("Your rooms: #lobby (2 unread), #dev (here)")

      cli.child.stdin!.write("/ids\n")
      yield* waitLine("Message ids are hidden.")
      yield* ann.client.send("dev", "quiet")
      yield* waitLine("[ann]: quiet")
      cli.child.stdin!.write("/ids now\n/join lobby\n/rooms\n")
      yield* waitLine("usage: /ids")
      yield* waitLine("Your rooms: #lobby (here), #dev")
      cli.child.stdin!.end()
      assert.strictEqual(yield* cli.exit, 0)
      assert.strictEqual(cli.stderr(), "")
    })
  )
})

// ---------------------------------------------------------------------------------------------------------------------
// A real terminal: tmux
// ---------------------------------------------------------------------------------------------------------------------

const TMUX = "/usr/bin/tmux"

/** A detached tmux session of fixed size running `command`, on its own server socket; killed with the scope. */
const tmuxSession = (command: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const socket = Path.join(Os.tmpdir(), `effect-chat-tmux-${process.pid}-${Math.random().toString(36).slice(2, 8)}`)
    const tmux = (...args: ReadonlyArray<string>) =>
      ChildProcess.execFileSync(TMUX, ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8" })
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        tmux(
          "new-session",
          "-d",
          "-x",
          "100",
          "-y",
          "30",
          "-c",
          ROOT,
          "-e",
          "NO_COLOR=",
          "-e",
          "TERM=xterm-256color",
          ...command
        )
      ),
      () =>
        Effect.sync(() => {
          ChildProcess.spawnSync(TMUX, ["-S", socket, "kill-server"])
          Fs.rmSync(socket, { force: true })
        })
    )
    tmux("set-option", "-g", "remain-on-exit", "on")
    return {
      /** The visible screen, one string per row, trailing blanks removed. */
      screen: () =>
        tmux("capture-pane", "-p")
          .split("\n")
          .map((row) => row.trimEnd()),
      /** With the escape codes of colours. */
      screenWithColors: () => tmux("capture-pane", "-p", "-e"),
      keys: (...keys: ReadonlyArray<string>) => void tmux("send-keys", ...keys),
      literal: (text: string) => void tmux("send-keys", "-l", text)
    }
  })

describe.skipIf(!Fs.existsSync(TMUX))("dist/client.js in a terminal", () => {
  it.scopedLive("incoming messages print above the prompt and never garble the line being typed", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const term = yield* tmuxSession([process.execPath, CLIENT, "--url", url, "--name", "tina"])
      const lastRow = () =>
        term
          .screen()
          .filter((row) => row !== "")
          .at(-1) ?? ""
      yield* waitFor(
        () => `the prompt: ${term.screen().join("\n")}`,
        () => lastRow() === "lobby>"
      )

      const ann = yield* peer(url, "ann")
      term.literal("half a thou")
      yield* waitFor(
        () => `the typed text: ${lastRow()}`,
        () => lastRow() === "lobby> half a thou"
      )
      yield* ann.client.send("lobby", "first from ann")
      yield* ann.client.send("lobby", "second from ann")
      const shows = (row: string) => () => term.screen().includes(row)
      yield* waitFor(() => `ann's lines: ${term.screen().join("\n")}`, shows("[ann]: second from ann"))

      const rows = term.screen().filter((row) => row !== "")
      assert.strictEqual(rows.at(-1), "lobby> half a thou")
      assert.deepStrictEqual(rows.slice(-3, -1), ["[ann]: first from ann", "[ann]: second from ann"])
      // Names are coloured on a terminal.
      assert.include(term.screenWithColors(), `\x1b[${TerminalFormat.nameColor("ann")}mann`)

      // The partial line is still the client's input: finishing it sends it whole.
      term.literal("ght")
      term.keys("Enter")
      const atAnn = () => ann.texts().includes("tina: half a thought")
      yield* waitFor(() => `tina's line at ann: ${ann.texts().join(" | ")}`, atAnn)

      term.literal("/join dev")
      term.keys("Enter")
      yield* waitFor(
        () => `the dev prompt: ${lastRow()}`,
        () => lastRow() === "dev>"
      )
      yield* ann.client.send("lobby", "lobby line")
      yield* waitFor(() => `the prefixed line: ${term.screen().join("\n")}`, shows("#lobby [ann]: lobby line"))

      term.literal("/quit")
      term.keys("Enter")
      yield* waitFor(
        () => `goodbye: ${term.screen().join("\n")}`,
        () => term.screen().includes(GOODBYE)
      )
      yield* waitFor(
        () => `tina to leave: ${JSON.stringify(ann.events.slice(-3))}`,
        () => ann.events.some((event) => event.type === "left" && event.name === "tina")
      )
    })
  )

  it.scopedLive("who is typing shows on the status line for about 5 s; typing sends hints to the others", () =>
    Effect.gen(function* () {
      const { url } = yield* ServerProcess.start()
      const term = yield* tmuxSession([process.execPath, CLIENT, "--url", url, "--name", "tina"])
      const lastRow = () =>
        term
          .screen()
          .filter((row) => row !== "")
          .at(-1) ?? ""
      yield* waitFor(
        () => `the prompt: ${term.screen().join("\n")}`,
        () => lastRow() === "lobby>"
      )
      const ann = yield* peer(url, "ann")
      yield* waitFor(
        () => `ann's join: ${term.screen().join("\n")}`,
        () => term.screen().includes("* ann joined #lobby")
      )

      term.literal("half")
      yield* ann.client.typing("lobby")
      const shownAt = Date.now()
      yield* waitFor(
        () => `the status: ${lastRow()}`,
        () => lastRow() === "(ann is typing…) lobby> half"
      )
      yield* waitFor(
        () => `the status to expire: ${lastRow()}`,
        () => lastRow() === "lobby> half",
        8000
      )
      const shownMs = Date.now() - shownAt
      assert.isAtLeast(shownMs, 4000)

      // tina typed: ann was told, once for those keys (the client sends at most one hint a second).
      const hints = () => ann.events.filter((e) => e.type === "typing" && e.name === "tina").length
      yield* waitFor(
        () => `tina's typing at ann: ${JSON.stringify(ann.events.slice(-3))}`,
        () => hints() >= 1
      )
      assert.strictEqual(hints(), 1)
      term.literal(" a thought")
      yield* waitFor(
        () => `a second hint, a second later`,
        () => hints() === 2
      )

      // A message ends the hint at once.
      yield* ann.client.typing("lobby").pipe(Effect.delay("1100 millis"))
      yield* waitFor(
        () => `the status again: ${lastRow()}`,
        () => lastRow().startsWith("(ann is typing…) lobby>")
      )
      yield* ann.client.send("lobby", "there")
      yield* waitFor(
        () => `the status cleared by the message: ${lastRow()}`,
        () => lastRow() === "lobby> half a thought"
      )
      assert.deepStrictEqual(
        term
          .screen()
          .filter((row) => row !== "")
          .slice(-2),
        ["[ann]: there", "lobby> half a thought"]
      )
    })
  )
})
