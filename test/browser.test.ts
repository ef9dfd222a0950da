/**
 * The browser client, end to end: real server processes (`node dist/server.js`), a real Chromium driven by
 * playwright-core, and raw WebSocket clients standing in for the terminal. Each test is something a person in front
 * of the page would notice.
 *
 * Needs `npm run build` first (the server and dist/web/*.js). Chromium comes from CHROMIUM_PATH or /usr/bin/chromium;
 * without it the suite is skipped (its name says why), except on CI, where it must run.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { SignJWT } from "jose"
import { existsSync, mkdirSync } from "node:fs"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import WebSocket from "ws"
import * as ServerProcess from "./support/ServerProcess.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
if (!hasChromium && process.env.CI) {
  throw new Error(`CI must run the browser tests, but there is no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`)
}

const WAIT = 20_000
const TEST_TIMEOUT = 90_000

// ---------------------------------------------------------------------------------------------------------------------
// Server processes
// ---------------------------------------------------------------------------------------------------------------------

interface RunningServer {
  readonly port: number
  /** SIGTERM and wait for the exit; does nothing once stopped. */
  readonly stop: () => Promise<void>
}

/** The shared scoped helper, in a scope of its own that `stop` closes: these tests live in promises and hooks. */
const startServer = async (options: ServerProcess.StartOptions = {}): Promise<RunningServer> => {
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(ServerProcess.start(options).pipe(Scope.extend(scope)))
  return { port: server.port, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

// ---------------------------------------------------------------------------------------------------------------------
// WebSocket clients standing in for the terminal
// ---------------------------------------------------------------------------------------------------------------------

type Frame = Record<string, unknown> & { readonly type: string }

/** Waits until `find` returns something for the data seen so far (or seen later). */
class Inbox<A> {
  readonly items: Array<A> = []
  private readonly waiters = new Set<() => void>()

  push(item: A) {
    this.items.push(item)
    for (const waiter of this.waiters) waiter()
  }

  waitFor<B>(find: (items: ReadonlyArray<A>) => B | undefined, what: string, timeout = WAIT): Promise<B> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find(this.items)
        if (found === undefined) return
        cleanup()
        resolve(found)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.items.slice(-10))}`))
      }, timeout)
      const cleanup = () => {
        clearTimeout(timer)
        this.waiters.delete(check)
      }
      this.waiters.add(check)
      check()
    })
  }
}

/** `onMessage` is attached before the socket opens: a server may speak first, in the same read as the handshake. */
const openSocket = (url: string, protocols: ReadonlyArray<string>, onMessage: (text: string) => void) =>
  new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url, [...protocols])
    socket.on("message", (data) => onMessage(String(data)))
    socket.once("open", () => resolve(socket))
    socket.once("error", reject)
  })

interface JsonClient {
  readonly name: string
  readonly frames: Inbox<Frame>
  readonly send: (frame: Frame) => void
  readonly say: (room: string, text: string) => Promise<void>
  readonly close: () => void
}

let refCounter = 0

const jsonClient = async (
  port: number,
  hello: { name: string; rooms?: Array<string>; token?: string; features?: Array<string> }
): Promise<JsonClient> => {
  const frames = new Inbox<Frame>()
  const socket = await openSocket(`ws://127.0.0.1:${port}/chat`, ["effect-chat.v1"], (text) => {
    frames.push(JSON.parse(text) as Frame)
  })
  const send = (frame: Frame) => socket.send(JSON.stringify(frame))
  send({ type: "hello", ...hello })
  const welcome = await frames.waitFor((fs) => fs.find((f) => f.type === "welcome"), "welcome")
  const rooms = hello.rooms ?? ["lobby"]
  for (const room of rooms) {
    await frames.waitFor((fs) => fs.find((f) => f.type === "history" && f.room === room), `history of ${room}`)
  }
  return {
    name: String(welcome.name),
    frames,
    send,
    say: async (room, text) => {
      const ref = `t${++refCounter}`
      send({ type: "send", room, text, ref })
      const reply = await frames.waitFor((fs) => fs.find((f) => f.ref === ref), `ack of ${ref}`)
      assert.strictEqual(reply.type, "ack", JSON.stringify(reply))
    },
    close: () => socket.close(1000)
  }
}

const plainClient = async (port: number, name: string) => {
  const lines = new Inbox<string>()
  const socket = await openSocket(`ws://127.0.0.1:${port}/chat?name=${name}`, [], (text) => lines.push(text))
  await lines.waitFor((ls) => ls.find((l) => l.startsWith("You are connected!")), "plain greeting")
  return { lines, say: (text: string) => socket.send(text), close: () => socket.close(1000) }
}

// ---------------------------------------------------------------------------------------------------------------------
// Sign-in tokens
// ---------------------------------------------------------------------------------------------------------------------

const JWT_SECRET = "browser-test-secret"

/** An HS256 token for `sub` (also its name) that expires at `expiresAt`: seconds since the epoch, or "1h" from now. */
const mint = (sub: string, expiresAt: number | string = "1h") =>
  new SignJWT({ sub, name: sub })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(expiresAt)
    .sign(new TextEncoder().encode(JWT_SECRET))

// ---------------------------------------------------------------------------------------------------------------------
// A TCP pass-through that can cut every connection without a close frame, like a network drop
// ---------------------------------------------------------------------------------------------------------------------

const startProxy = async (targetPort: number) => {
  const pairs = new Set<Net.Socket>()
  let refusing = false
  const server = Net.createServer((client) => {
    if (refusing) return client.destroy()
    const upstream = Net.connect(targetPort, "127.0.0.1")
    pairs.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      pairs.delete(client)
      pairs.delete(upstream)
    }
    client.on("error", drop).on("close", drop)
    upstream.on("error", drop).on("close", drop)
  })
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done))
  return {
    port: (server.address() as Net.AddressInfo).port,
    /** Cuts every connection and refuses new ones until `heal`. */
    cut: () => {
      refusing = true
      for (const socket of pairs) socket.destroy()
      pairs.clear()
    },
    heal: () => {
      refusing = false
    },
    close: () =>
      new Promise<void>((done) => {
        for (const socket of pairs) socket.destroy()
        server.close(() => done())
      })
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------------------------------

let browser: Browser | undefined
const contexts = new Set<BrowserContext>()

interface ChatPage {
  readonly page: Page
  /** Page errors, CSP violations and alert() calls: all must stay empty. */
  readonly problems: Array<string>
  /** Every frame the page sent on any of its WebSockets, in order. */
  readonly sent: Array<Frame>
}

const openChat = async (port: number, name?: string, viewport = { width: 1200, height: 760 }): Promise<ChatPage> => {
  const chat = await openPage(`http://127.0.0.1:${port}/`, viewport)
  await waitOnline(chat.page)
  if (name !== undefined) await setName(chat.page, name)
  return chat
}

/** A new page at `url`, not waiting for anything; `sockets` counts the WebSockets it opens. */
const openPage = async (
  url: string,
  viewport = { width: 1200, height: 760 }
): Promise<ChatPage & { readonly sockets: () => number }> => {
  const context = await browser!.newContext({ viewport })
  contexts.add(context)
  const page = await context.newPage()
  let sockets = 0
  const sent: Array<Frame> = []
  page.on("websocket", (socket) => {
    sockets++
    socket.on("framesent", ({ payload }) => {
      if (typeof payload === "string") sent.push(JSON.parse(payload) as Frame)
    })
  })
  const problems: Array<string> = []
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`)
    void dialog.dismiss()
  })
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`csp: ${message.text()}`)
  })
  await page.goto(url)
  return { page, problems, sent, sockets: () => sockets }
}

const waitOnline = (page: Page) => page.locator("#status[data-state='online']").waitFor({ timeout: WAIT })

const setName = async (page: Page, name: string) => {
  await page.fill("#name-input", name)
  await page.press("#name-input", "Enter")
  await page.locator("#member-list .member.me", { hasText: name }).waitFor({ timeout: WAIT })
}

const say = async (page: Page, text: string) => {
  await page.fill("#composer-input", text)
  await page.press("#composer-input", "Enter")
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** A delivered message (not one still pending) whose text is exactly `text`. */
const message = (page: Page, text: string) =>
  page.locator("#messages .message:not(.pending)").filter({
    has: page.locator(".text", { hasText: new RegExp(`^${escapeRegExp(text)}$`) })
  })

/** Joins `room` from the sidebar's field; the page opens it. */
const joinRoom = async (page: Page, room: string) => {
  await page.fill("#join-input", room)
  await page.press("#join-input", "Enter")
  await page.locator("#conversation-title", { hasText: `# ${room}` }).waitFor({ timeout: WAIT })
}

const FEATURES = ["typing", "edits", "reactions", "receipts"]

/** Polls `check` (something this process sees, not the page) until it holds. */
const eventually = async (check: () => boolean, what: string, timeout = WAIT) => {
  const end = Date.now() + timeout
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((done) => setTimeout(done, 50))
  }
}

/** The id of the room message `from` sent with `text`, as a JSON client saw it. */
const idOf = async (client: JsonClient, room: string, from: string, text: string): Promise<number> => {
  const found = await client.frames.waitFor(
    (fs) => fs.find((f) => f.type === "message" && f.room === room && f.from === from && f.text === text),
    `${from}'s "${text}" in ${room}`
  )
  return Number(found.id)
}

/** The controls of a message show on hover (or keyboard focus); a pointer user hovers first. */
const messageAction = async (page: Page, text: string, label: string | RegExp) => {
  const shown = message(page, text)
  await shown.hover()
  return shown.getByRole("button", { name: label })
}

const closeContexts = async () => {
  for (const context of contexts) await context.close().catch(() => undefined)
  contexts.clear()
}

const suite = hasChromium ? describe : describe.skip
const suiteName = hasChromium
  ? "browser client"
  : `browser client (SKIPPED: no Chromium at ${chromiumPath}; install chromium or set CHROMIUM_PATH)`

suite(suiteName, () => {
  let server: RunningServer

  beforeAll(async () => {
    for (const file of ["dist/server.js", "dist/web/app.js"]) {
      if (!existsSync(`${root}${file}`)) throw new Error(`${file} is missing: run \`npm run build\` first`)
    }
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run"
      ]
    })
    server = await startServer()
  })

  afterAll(async () => {
    await closeContexts()
    await browser?.close()
    await server?.stop()
  })

  it(
    "two pages chat with each other",
    async () => {
      const alice = await openChat(server.port, "alice")
      const bob = await openChat(server.port, "bob")
      try {
        await alice.page.locator("#member-list button.member", { hasText: "bob" }).waitFor({ timeout: WAIT })

        await say(alice.page, "Hi Bob, this is Alice")
        await message(bob.page, "Hi Bob, this is Alice").waitFor({ timeout: WAIT })
        await say(bob.page, "Hello Alice!\nTwo lines from Bob")
        await message(alice.page, "Hello Alice!\nTwo lines from Bob").waitFor({ timeout: WAIT })

        const fromAlice = message(bob.page, "Hi Bob, this is Alice")
        assert.strictEqual(await fromAlice.locator(".from").textContent(), "alice")
        assert.isFalse(await fromAlice.evaluate((el) => el.classList.contains("mine")), "someone else's message")
        const own = message(alice.page, "Hi Bob, this is Alice")
        assert.isTrue(await own.evaluate((el) => el.classList.contains("mine")), "own message is marked")
        assert.match(String(await own.locator("time").getAttribute("datetime")), /^\d{4}-\d\d-\d\dT/)
        // Each message shows once, though the sender got both its ack and its broadcast copy.
        assert.strictEqual(await message(alice.page, "Hi Bob, this is Alice").count(), 1)
        assert.strictEqual(await message(bob.page, "Hello Alice!\nTwo lines from Bob").count(), 1)

        mkdirSync(`${root}test-artifacts`, { recursive: true })
        await alice.page.screenshot({ path: `${root}test-artifacts/two-page-chat.png` })
        assert.deepStrictEqual([...alice.problems, ...bob.problems], [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "chats with terminal clients of both dialects",
    async () => {
      const carol = await jsonClient(server.port, { name: "carol" })
      const dave = await plainClient(server.port, "dave")
      const erin = await openChat(server.port, "erin")
      try {
        await say(erin.page, "hello terminals")
        await carol.frames.waitFor(
          (fs) => fs.find((f) => f.type === "message" && f.from === "erin" && f.text === "hello terminals"),
          "erin's message at carol"
        )
        await dave.lines.waitFor((ls) => ls.find((l) => l === "[erin]: hello terminals"), "erin's line at dave")

        await carol.say("lobby", "hi from the JSON terminal")
        dave.say("hi from the plain terminal")
        await message(erin.page, "hi from the JSON terminal").waitFor({ timeout: WAIT })
        await message(erin.page, "hi from the plain terminal").waitFor({ timeout: WAIT })
        assert.strictEqual(
          await message(erin.page, "hi from the plain terminal").locator(".from").textContent(),
          "dave"
        )
        // Presence is live: the terminals are listed, and one leaving disappears from the list.
        await erin.page.locator("#member-list button.member", { hasText: "carol" }).waitFor({ timeout: WAIT })
        carol.close()
        await erin.page.locator("#member-list button.member", { hasText: "carol" }).waitFor({
          state: "detached",
          timeout: WAIT
        })
        assert.deepStrictEqual(erin.problems, [])
      } finally {
        carol.close()
        dave.close()
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "shows markup in messages as text and never runs it",
    async () => {
      const mallory = await openChat(server.port, "mallory")
      const victim = await openChat(server.port, "victim")
      const payload = "<img src=x onerror=alert(1)>"
      try {
        await say(mallory.page, payload)
        await message(victim.page, payload).waitFor({ timeout: WAIT })
        await message(mallory.page, payload).waitFor({ timeout: WAIT })
        for (const { page } of [mallory, victim]) {
          assert.strictEqual(await page.locator("#messages img").count(), 0, "no img element was created")
          assert.strictEqual(await message(page, payload).locator(".text").textContent(), payload)
        }
        // Give a would-be onerror handler its chance to fire before declaring victory.
        await victim.page.evaluate(() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 200))))
        assert.deepStrictEqual([...mallory.problems, ...victim.problems], [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "sends a direct message from the member list and shows it apart",
    async () => {
      const frank = await openChat(server.port, "frank")
      const grace = await openChat(server.port, "grace")
      try {
        await frank.page.locator("#member-list button.member", { hasText: "grace" }).click()
        assert.strictEqual(await frank.page.inputValue("#composer-input"), "/msg grace ")
        await frank.page.locator("#composer-input").press("End")
        await frank.page.keyboard.type("just between us")
        await frank.page.keyboard.press("Enter")

        await message(frank.page, "just between us").waitFor({ timeout: WAIT })
        assert.strictEqual(await frank.page.textContent("#conversation-title"), "@ grace")

        // Grace is in the lobby; the direct message waits in its own conversation, counted as unread.
        const conversation = grace.page.locator("#dm-list button", { hasText: "frank" })
        await conversation.locator(".badge").waitFor({ timeout: WAIT })
        assert.match(String(await conversation.locator(".badge").textContent()), /^1/)
        await conversation.click()
        const received = message(grace.page, "just between us")
        await received.waitFor({ timeout: WAIT })
        assert.isTrue(await received.evaluate((el) => el.classList.contains("direct")))
        assert.strictEqual(await received.locator(".from").textContent(), "frank")
        assert.strictEqual(await conversation.locator(".badge").count(), 0, "reading clears the unread count")
        assert.deepStrictEqual([...frank.problems, ...grace.problems], [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "explains a taken name next to the name field",
    async () => {
      const first = await openChat(server.port, "heidi")
      const second = await openChat(server.port)
      try {
        const assigned = await second.page.inputValue("#name-input")
        await second.page.fill("#name-input", "HEIDI")
        await second.page.press("#name-input", "Enter")
        const error = second.page.locator("#name-error[data-code='name_taken']")
        await error.waitFor({ timeout: WAIT })
        assert.match(String(await error.textContent()), /taken/i)
        assert.strictEqual(await second.page.getAttribute("#name-input", "aria-invalid"), "true")
        assert.strictEqual(await second.page.textContent("#member-list .member.me"), `${assigned}you`)

        await second.page.fill("#name-input", "bad name!")
        await second.page.press("#name-input", "Enter")
        await second.page.locator("#name-error[data-code='invalid_name']").waitFor({ timeout: WAIT })
        assert.deepStrictEqual([...first.problems, ...second.problems], [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "joins, switches and leaves rooms, counting unread messages",
    async () => {
      const ivan = await openChat(server.port, "ivan")
      const judy = await jsonClient(server.port, { name: "judy", rooms: ["lobby", "side-room"] })
      try {
        await ivan.page.fill("#join-input", "side-room")
        await ivan.page.press("#join-input", "Enter")
        await ivan.page.locator("#conversation-title", { hasText: "# side-room" }).waitFor({ timeout: WAIT })
        await ivan.page.locator("#member-list button.member", { hasText: "judy" }).waitFor({ timeout: WAIT })

        await ivan.page.locator("#room-list button", { hasText: "lobby" }).click()
        await judy.say("side-room", "you missed this")
        const side = ivan.page.locator("#room-list button", { hasText: "side-room" })
        await side.locator(".badge").waitFor({ timeout: WAIT })
        await side.click()
        await message(ivan.page, "you missed this").waitFor({ timeout: WAIT })

        await ivan.page.click("#leave-button")
        await side.waitFor({ state: "detached", timeout: WAIT })
        await ivan.page.locator("#conversation-title", { hasText: "# lobby" }).waitFor({ timeout: WAIT })
        await judy.frames.waitFor(
          (fs) => fs.find((f) => f.type === "left" && f.room === "side-room" && f.name === "ivan"),
          "ivan leaving side-room"
        )
        assert.deepStrictEqual(ivan.problems, [])
      } finally {
        judy.close()
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "resumes after a dropped connection without losing or repeating messages",
    async () => {
      const proxy = await startProxy(server.port)
      const ken = await openChat(proxy.port, "ken")
      const lena = await jsonClient(server.port, { name: "lena" })
      try {
        await lena.say("lobby", "before the drop")
        await message(ken.page, "before the drop").waitFor({ timeout: WAIT })

        proxy.cut()
        await ken.page.locator("#status[data-state='reconnecting']", { hasText: /^Reconnecting in \d+s$/ }).waitFor({
          timeout: WAIT
        })
        for (const text of ["missed one", "missed two", "missed three"]) await lena.say("lobby", text)
        await say(ken.page, "typed while offline")
        await ken.page.locator("#messages .pending.queued").waitFor({ timeout: WAIT })
        proxy.heal()

        await waitOnline(ken.page)
        for (const text of ["missed one", "missed two", "missed three"]) {
          await message(ken.page, text).waitFor({ timeout: WAIT })
        }
        await lena.frames.waitFor(
          (fs) => fs.find((f) => f.type === "message" && f.from === "ken" && f.text === "typed while offline"),
          "the queued message at lena"
        )
        await message(ken.page, "typed while offline").waitFor({ timeout: WAIT })
        await ken.page.locator("#messages .pending").waitFor({ state: "detached", timeout: WAIT })

        // The session was resumed: same name, no warning, and every message exactly once.
        assert.strictEqual(await ken.page.inputValue("#name-input"), "ken")
        assert.isTrue(await ken.page.locator("#notice").isHidden())
        for (const text of ["before the drop", "missed one", "missed two", "missed three", "typed while offline"]) {
          assert.strictEqual(await message(ken.page, text).count(), 1, text)
        }
        const ids = await ken.page.$$eval("#messages .message[data-id]", (els) => els.map((el) => el.dataset.id))
        assert.strictEqual(new Set(ids).size, ids.length, "no id twice")
        assert.strictEqual(
          lena.frames.items.filter((f) => f.type === "message" && f.text === "typed while offline").length,
          1,
          "the queued message was posted once"
        )
        assert.deepStrictEqual(ken.problems, [])
      } finally {
        lena.close()
        await closeContexts()
        await proxy.close()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "keeps the name and rooms across a reload",
    async () => {
      const mike = await openChat(server.port, "mike")
      try {
        await mike.page.fill("#join-input", "reload-room")
        await mike.page.press("#join-input", "Enter")
        await mike.page.locator("#conversation-title", { hasText: "# reload-room" }).waitFor({ timeout: WAIT })
        await say(mike.page, "said before reloading")
        await message(mike.page, "said before reloading").waitFor({ timeout: WAIT })

        await mike.page.reload()
        await waitOnline(mike.page)
        await mike.page.locator("#room-list button", { hasText: "reload-room" }).click()
        await message(mike.page, "said before reloading").waitFor({ timeout: WAIT })
        assert.strictEqual(await mike.page.inputValue("#name-input"), "mike")
        assert.isTrue(await mike.page.locator("#name-error").isHidden(), "the name was not lost to the old session")
        assert.strictEqual(await message(mike.page, "said before reloading").count(), 1)
        assert.deepStrictEqual(mike.problems, [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "survives a server restart: reconnecting, then online, and messages flow again",
    async () => {
      let own = await startServer()
      const port = own.port
      const nina = await openChat(port, "nina")
      try {
        await say(nina.page, "before the restart")
        await message(nina.page, "before the restart").waitFor({ timeout: WAIT })

        await own.stop()
        await nina.page.locator("#status[data-state='reconnecting']").waitFor({ timeout: WAIT })
        await say(nina.page, "queued during the restart")
        await nina.page.locator("#messages .pending.queued").waitFor({ timeout: WAIT })

        own = await startServer({ port })
        await waitOnline(nina.page)
        // A new server cannot resume the old session, and the page says so.
        await nina.page.locator("#notice", { hasText: "may be missing" }).waitFor({ timeout: WAIT })
        assert.strictEqual(await nina.page.inputValue("#name-input"), "nina")

        const oscar = await jsonClient(port, { name: "oscar" })
        try {
          await oscar.frames.waitFor(
            (fs) =>
              fs.find(
                (f) =>
                  (f.type === "message" && f.text === "queued during the restart") ||
                  (f.type === "history" &&
                    (f.messages as Array<Frame>).some((m) => m.text === "queued during the restart"))
              ),
            "the message queued during the restart"
          )
          await say(nina.page, "after the restart")
          await oscar.frames.waitFor(
            (fs) => fs.find((f) => f.type === "message" && f.from === "nina" && f.text === "after the restart"),
            "a message sent after the restart"
          )
          await oscar.say("lobby", "welcome back")
          await message(nina.page, "welcome back").waitFor({ timeout: WAIT })
          assert.strictEqual(await message(nina.page, "queued during the restart").count(), 1)
        } finally {
          oscar.close()
        }
        assert.deepStrictEqual(nina.problems, [])
      } finally {
        await closeContexts()
        await own.stop()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "loads older history with the button and by scrolling up, until the beginning",
    async () => {
      const own = await startServer({
        args: ["--join-history", "3", "--history-size", "200", "--rate", "1000", "--burst", "1000"]
      })
      try {
        const writer = await jsonClient(own.port, { name: "writer", rooms: ["archive"] })
        for (let i = 1; i <= 120; i++) await writer.say("archive", `old message ${i}`)
        writer.close()

        const { page, problems } = await openChat(own.port, "reader")
        await page.fill("#join-input", "archive")
        await page.press("#join-input", "Enter")
        await message(page, "old message 120").waitFor({ timeout: WAIT })
        await message(page, "old message 118").waitFor({ timeout: WAIT })
        assert.strictEqual(await message(page, "old message 117").count(), 0, "only the join history at first")
        assert.isTrue(await page.locator("#history-start").isHidden())

        // Three messages do not fill the screen, so the button is the way to more.
        await page.locator("#load-older").click()
        await message(page, "old message 68").waitFor({ timeout: WAIT })
        assert.strictEqual(await message(page, "old message 67").count(), 0, "one page of 50")

        // Reaching the top asks for the previous page, until the server says there is nothing older.
        const scrollToTop = () =>
          page.locator("#scroller").evaluate((el) => {
            el.scrollTop = 0
          })
        await scrollToTop()
        await message(page, "old message 18").waitFor({ timeout: WAIT })
        await scrollToTop()
        await message(page, "old message 1").waitFor({ timeout: WAIT })
        await page.locator("#history-start").waitFor({ timeout: WAIT })
        assert.isTrue(await page.locator("#load-older").isHidden())

        const texts = await page.$$eval("#messages .message .text", (els) => els.map((el) => el.textContent))
        assert.deepStrictEqual(
          texts,
          Array.from({ length: 120 }, (_, i) => `old message ${i + 1}`)
        )
        assert.deepStrictEqual(problems, [])
      } finally {
        await closeContexts()
        await own.stop()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "works from the keyboard alone, with a visible focus",
    async () => {
      const { page, problems } = await openChat(server.port)
      try {
        const focused = () =>
          page.evaluate(() => {
            const element = document.activeElement as HTMLElement | null
            return {
              id: element?.id ?? "",
              outline: element === null ? "none" : getComputedStyle(element).outlineStyle
            }
          })
        // Nothing is focused on a fresh page: Tab walks from the top.
        const order: Array<string> = []
        for (let i = 0; i < 40 && !order.includes("composer-input"); i++) {
          await page.keyboard.press("Tab")
          const { id, outline } = await focused()
          assert.notStrictEqual(outline, "none", `focus on #${id} is visible`)
          order.push(id)
        }
        const position = (id: string) => order.indexOf(id)
        assert.strictEqual(order[0], "skip-link", order.join(" "))
        assert.isAbove(position("name-input"), 0, order.join(" "))
        assert.isAbove(position("join-input"), position("name-input"), order.join(" "))
        assert.isAbove(position("composer-input"), position("join-input"), order.join(" "))

        await page.keyboard.type("sent with the keyboard")
        await page.keyboard.press("Enter")
        await message(page, "sent with the keyboard").waitFor({ timeout: WAIT })
        assert.strictEqual(await page.inputValue("#composer-input"), "", "the composer is cleared for the next one")
        assert.strictEqual(await page.getAttribute("#announcer", "aria-live"), "polite", "new messages are announced")

        await page.reload()
        await waitOnline(page)
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        assert.strictEqual((await focused()).id, "composer-input", "the skip link lands in the composer")
        assert.deepStrictEqual(problems, [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  it(
    "fits a phone screen, with rooms and members in drawers",
    async () => {
      const { page, problems } = await openChat(server.port, undefined, { width: 390, height: 740 })
      try {
        // The name field is in the collapsed drawer; the command works from the composer.
        await say(page, "/nick pat")
        await page.locator("#member-list .member.me", { hasText: "pat" }).waitFor({ state: "attached", timeout: WAIT })
        assert.isFalse(await page.locator("#sidebar").isVisible(), "room list collapsed")
        assert.isFalse(await page.locator("#members-panel").isVisible(), "members collapsed")
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
        assert.isAtMost(overflow, 0, "no horizontal scrolling")

        await page.click("#rooms-toggle")
        await page.locator("#sidebar").waitFor({ state: "visible", timeout: WAIT })
        assert.strictEqual(await page.getAttribute("#rooms-toggle", "aria-expanded"), "true")
        await page.keyboard.press("Escape")
        await page.locator("#sidebar").waitFor({ state: "hidden", timeout: WAIT })

        await page.click("#members-toggle")
        await page.locator("#members-panel .member.me", { hasText: "pat" }).waitFor({ state: "visible", timeout: WAIT })
        await page.keyboard.press("Escape")

        // Keyboard only: the composer is reachable and Enter sends.
        await page.locator("#composer-input").focus()
        await page.keyboard.type("typed on a phone")
        await page.keyboard.press("Enter")
        await message(page, "typed on a phone").waitFor({ timeout: WAIT })
        assert.deepStrictEqual(problems, [])
      } finally {
        await closeContexts()
      }
    },
    TEST_TIMEOUT
  )

  describe("chat features", () => {
    it(
      "replies quote the original and jump to it; typing shows under the timeline",
      async () => {
        const room = "features-reply"
        const watcher = await jsonClient(server.port, { name: "rwatch", rooms: [room], features: FEATURES })
        const alice = await openChat(server.port, "ralice")
        const bob = await openChat(server.port, "rbob")
        try {
          await joinRoom(alice.page, room)
          await joinRoom(bob.page, room)
          await say(bob.page, "Where shall we meet tomorrow?")
          const original = await idOf(watcher, room, "rbob", "Where shall we meet tomorrow?")
          // Enough after it that the original is scrolled out of view.
          const burst = Date.now()
          const sentBefore = alice.sent.length
          for (let i = 1; i <= 25; i++) await watcher.say(room, `filler ${i}`)
          await message(alice.page, "filler 25").waitFor({ timeout: WAIT })
          // Alice watched them all come; every frame costs her a rate-limit token, so her marker moves once a second.
          const reads = alice.sent.slice(sentBefore).filter((f) => f.type === "read" && f.room === room)
          assert.isAtMost(reads.length, Math.ceil((Date.now() - burst) / 1000) + 2, JSON.stringify(reads))
          await eventually(
            () => alice.sent.some((f) => f.type === "read" && f.room === room && Number(f.id) === original + 25),
            "the newest filler read"
          )

          // Typing bob's first message sent a hint; the page (and the server) pass one a second per room.
          await bob.page.waitForTimeout(1_100)
          await bob.page.locator("#composer-input").focus()
          await bob.page.keyboard.type("See you")
          await alice.page.locator("#typing", { hasText: /^rbob is typing…$/ }).waitFor({ timeout: WAIT })
          await bob.page.keyboard.press("Enter")
          await message(alice.page, "See you").waitFor({ timeout: WAIT })
          assert.strictEqual(await alice.page.textContent("#typing"), "", "their message ends the hint")

          await message(alice.page, "Where shall we meet tomorrow?").scrollIntoViewIfNeeded()
          await (await messageAction(alice.page, "Where shall we meet tomorrow?", "Reply to rbob")).click()
          const bar = alice.page.locator("#reply-bar")
          assert.strictEqual(
            await bar.locator("#reply-text").textContent(),
            "Replying to rbob: Where shall we meet tomorrow?"
          )
          assert.strictEqual(await alice.page.evaluate(() => document.activeElement?.id), "composer-input")
          await alice.page.keyboard.type("At the station")
          await alice.page.keyboard.press("Enter")
          await bar.waitFor({ state: "hidden", timeout: WAIT })
          const sent = await watcher.frames.waitFor(
            (fs) => fs.find((f) => f.type === "message" && f.from === "ralice" && f.text === "At the station"),
            "the reply at the terminal"
          )
          assert.strictEqual(sent.reply_to, original)

          // Bob sees the quote; activating it brings the original into view, highlighted and focused.
          const reply = message(bob.page, "At the station")
          await reply.waitFor({ timeout: WAIT })
          const quote = reply.locator(".quote")
          assert.strictEqual(await quote.locator(".quote-from").textContent(), "rbob")
          assert.strictEqual(await quote.locator(".quote-text").textContent(), "Where shall we meet tomorrow?")
          const target = bob.page.locator(`#messages li[data-id="${original}"]`)
          const inView = () =>
            target.evaluate((li) => {
              const box = li.getBoundingClientRect()
              const view = document.getElementById("scroller")!.getBoundingClientRect()
              return box.top >= view.top && box.bottom <= view.bottom
            })
          assert.isFalse(await inView(), "the original starts out of view")
          await quote.focus()
          await bob.page.keyboard.press("Enter")
          await bob.page.locator(`#messages li.highlight[data-id="${original}"]`).waitFor({ timeout: WAIT })
          assert.isTrue(await inView())
          assert.strictEqual(
            await bob.page.evaluate(() => document.activeElement?.getAttribute("data-id")),
            String(original)
          )

          // A reply can be called off: Escape in the composer, and the message goes out as a plain one.
          await (await messageAction(alice.page, "filler 25", "Reply to rwatch")).click()
          await bar.waitFor({ timeout: WAIT })
          await alice.page.keyboard.press("Escape")
          await bar.waitFor({ state: "hidden", timeout: WAIT })
          await say(alice.page, "not a reply after all")
          const plain = await watcher.frames.waitFor(
            (fs) => fs.find((f) => f.type === "message" && f.text === "not a reply after all"),
            "the plain message"
          )
          assert.notProperty(plain, "reply_to")
          assert.deepStrictEqual([...alice.problems, ...bob.problems], [])
        } finally {
          watcher.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "edits and deletes our own messages from the keyboard; others see (edited) and [deleted]",
      async () => {
        const room = "features-edit"
        const watcher = await jsonClient(server.port, { name: "ewatch", rooms: [room], features: FEATURES })
        const alice = await openChat(server.port, "ealice")
        const bob = await openChat(server.port, "ebob")
        try {
          await joinRoom(alice.page, room)
          await joinRoom(bob.page, room)
          await say(alice.page, "helo wrld")
          await say(alice.page, "to be taken back")
          await say(bob.page, "bob's own words")
          const typo = await idOf(watcher, room, "ealice", "helo wrld")
          const regretted = await idOf(watcher, room, "ealice", "to be taken back")
          await message(alice.page, "bob's own words").waitFor({ timeout: WAIT })
          await message(alice.page, "bob's own words").hover()
          assert.strictEqual(
            await message(alice.page, "bob's own words")
              .locator("[data-action='edit'], [data-action='delete-ask']")
              .count(),
            0,
            "someone else's message offers no edit or delete"
          )

          // Escape leaves the message as it was and gives the focus back to Edit.
          await (await messageAction(alice.page, "helo wrld", "Edit your message")).click()
          const editor = alice.page.locator(`#messages li[data-id="${typo}"] .edit-input`)
          assert.strictEqual(await editor.inputValue(), "helo wrld")
          assert.isTrue(await editor.evaluate((el) => el === document.activeElement), "the form takes the focus")
          await alice.page.keyboard.type(" oops")
          await alice.page.keyboard.press("Escape")
          await editor.waitFor({ state: "detached", timeout: WAIT })
          assert.strictEqual(
            await alice.page.evaluate(() => (document.activeElement as HTMLElement).dataset.action),
            "edit"
          )
          await message(alice.page, "helo wrld").waitFor({ timeout: WAIT })

          // Enter on the focused Edit button opens the form again; Enter in it saves.
          await alice.page.keyboard.press("Enter")
          await editor.fill("hello world")
          await alice.page.keyboard.press("Enter")
          const edited = await watcher.frames.waitFor(
            (fs) => fs.find((f) => f.type === "edited" && f.id === typo),
            "the edit at the terminal"
          )
          assert.strictEqual(edited.text, "hello world")
          for (const page of [alice.page, bob.page]) {
            const fixed = message(page, "hello world")
            await fixed.waitFor({ timeout: WAIT })
            assert.strictEqual(await fixed.locator(".edited").textContent(), "(edited)")
            assert.strictEqual(await fixed.getAttribute("data-id"), String(typo), "the same message, not a new one")
          }

          await (await messageAction(alice.page, "to be taken back", "Delete your message")).click()
          const question = alice.page.locator(`#messages li[data-id="${regretted}"] .confirm`)
          assert.strictEqual(await question.locator(".confirm-text").textContent(), "Delete this message?")
          await question.getByRole("button", { name: "Delete" }).click()
          await watcher.frames.waitFor(
            (fs) => fs.find((f) => f.type === "deleted" && f.id === regretted),
            "the deletion"
          )
          for (const page of [alice.page, bob.page]) {
            const gone = page.locator(`#messages li.deleted[data-id="${regretted}"]`)
            await gone.waitFor({ timeout: WAIT })
            assert.strictEqual(await gone.locator(".text").textContent(), "[deleted]")
            assert.strictEqual(await gone.locator("button").count(), 0, "a deleted message has no actions")
          }

          // Someone who comes later sees the same in the history.
          const carol = await openChat(server.port, "ecarol")
          await joinRoom(carol.page, room)
          await carol.page.locator(`#messages li.deleted[data-id="${regretted}"]`).waitFor({ timeout: WAIT })
          assert.strictEqual(await message(carol.page, "hello world").locator(".edited").count(), 1)
          assert.strictEqual(await message(carol.page, "to be taken back").count(), 0, "the text is gone for good")

          // The server refuses a change by anyone else.
          watcher.send({ type: "edit", room, id: typo, text: "hijacked", ref: "hijack" })
          const refused = await watcher.frames.waitFor((fs) => fs.find((f) => f.ref === "hijack"), "the refusal")
          assert.deepInclude(refused, { type: "error", code: "forbidden" })
          assert.deepStrictEqual([...alice.problems, ...bob.problems, ...carol.problems], [])
        } finally {
          watcher.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "reacts with chips that count, highlight ours and say who on hover and on focus",
      async () => {
        const room = "features-react"
        const carol = await jsonClient(server.port, { name: "xcarol", rooms: [room], features: FEATURES })
        const alice = await openChat(server.port, "xalice")
        const bob = await openChat(server.port, "xbob")
        try {
          await joinRoom(alice.page, room)
          await joinRoom(bob.page, room)
          await say(bob.page, "party tonight")
          const id = await idOf(carol, room, "xbob", "party tonight")
          await message(alice.page, "party tonight").waitFor({ timeout: WAIT })

          await (await messageAction(alice.page, "party tonight", /^React to xbob/)).click()
          await message(alice.page, "party tonight").getByRole("button", { name: "React with 🎉" }).click()
          const chip = (page: Page, emoji: string) =>
            message(page, "party tonight").locator(`.chip[data-emoji="${emoji}"]`)
          await chip(alice.page, "🎉").waitFor({ timeout: WAIT })
          carol.send({ type: "react", room, id, emoji: "🎉", on: true, ref: "r1" })
          carol.send({ type: "react", room, id, emoji: "👍", on: true, ref: "r2" })

          const party = chip(bob.page, "🎉")
          await bob.page.locator(`.chip[data-emoji="🎉"][title="xalice and xcarol"]`).waitFor({ timeout: WAIT })
          assert.strictEqual(await party.locator(".chip-count").textContent(), "2")
          assert.strictEqual(await chip(bob.page, "👍").locator(".chip-count").textContent(), "1")
          assert.strictEqual(await party.getAttribute("aria-pressed"), "false", "not bob's")
          assert.match(String(await party.getAttribute("aria-label")), /^🎉 2: xalice and xcarol\./)
          await chip(alice.page, "🎉").locator(".chip-count", { hasText: "2" }).waitFor({ timeout: WAIT })
          assert.strictEqual(await chip(alice.page, "🎉").getAttribute("aria-pressed"), "true", "alice's own")

          // From the keyboard: the arrow keys reach the message, Tab its first chip, which shows who reacted.
          await bob.page.locator("#scroller").focus()
          await bob.page.keyboard.press("ArrowUp")
          await bob.page.keyboard.press("Tab")
          assert.strictEqual(await bob.page.evaluate(() => (document.activeElement as HTMLElement).dataset.emoji), "🎉")
          const shownOnFocus = await party.evaluate((el) => getComputedStyle(el, "::after").content)
          assert.strictEqual(shownOnFocus, '"xalice and xcarol"')
          mkdirSync(`${root}test-artifacts`, { recursive: true })
          await bob.page.screenshot({ path: `${root}test-artifacts/chat-features.png` })

          // Bob's Enter on the chip adds his; alice's click on hers takes hers back.
          await bob.page.keyboard.press("Enter")
          await party.locator(".chip-count", { hasText: "3" }).waitFor({ timeout: WAIT })
          assert.strictEqual(await party.getAttribute("aria-pressed"), "true")
          await chip(alice.page, "🎉").click()
          await bob.page.locator(`.chip[data-emoji="🎉"][title="xcarol and xbob"]`).waitFor({ timeout: WAIT })
          assert.strictEqual(await chip(alice.page, "🎉").getAttribute("aria-pressed"), "false")
          await carol.frames.waitFor(
            (fs) => fs.find((f) => f.type === "reaction" && f.name === "xalice" && f.on === false),
            "alice's reaction taken back"
          )
          assert.deepStrictEqual([...alice.problems, ...bob.problems], [])
        } finally {
          carol.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "counts unread messages in rooms not on screen, marks where they start, and marks them read once seen",
      async () => {
        const room = "features-news"
        const writer = await jsonClient(server.port, { name: "nwriter", rooms: [room] })
        const reader = await openChat(server.port, "nreader")
        try {
          await writer.say(room, "already there")
          await joinRoom(reader.page, room)
          await message(reader.page, "already there").waitFor({ timeout: WAIT })
          await reader.page.locator("#room-list button", { hasText: "lobby" }).click()
          for (const text of ["news 1", "news 2", "news 3"]) await writer.say(room, text)
          const newest = await idOf(writer, room, "nwriter", "news 3")
          const badge = reader.page.locator("#room-list button", { hasText: room }).locator(".badge")
          await reader.page
            .locator("#room-list button", { hasText: room })
            .locator(".badge", { hasText: /^3 unread$/ })
            .waitFor({ timeout: WAIT })

          await reader.page.locator("#room-list button", { hasText: room }).click()
          await badge.waitFor({ state: "detached", timeout: WAIT })
          const divider = reader.page.locator("#messages li.divider")
          assert.strictEqual(await divider.textContent(), "New messages")
          const after = await divider.evaluate((li) => li.nextElementSibling?.querySelector(".text")?.textContent)
          assert.strictEqual(after, "news 1", "the line is right before the first unread message")
          mkdirSync(`${root}test-artifacts`, { recursive: true })
          await reader.page.screenshot({ path: `${root}test-artifacts/unread-divider.png` })

          const reads = () => reader.sent.filter((f) => f.type === "read" && f.room === room)
          await eventually(() => reads().some((f) => f.id === newest), "the newest message on screen marked read")
          // Nothing new on screen: no more read markers however much the page redraws.
          const count = reads().length
          await say(reader.page, "/help")
          await reader.page.locator("#scroller").evaluate((el) => el.dispatchEvent(new Event("scroll")))
          await reader.page.waitForTimeout(300)
          assert.strictEqual(reads().length, count)
          assert.strictEqual(new Set(reads().map((f) => f.id)).size, count, "each read moves the marker forward")

          // The server kept the marker: a reload shows the room read, with no line.
          await reader.page.reload()
          await waitOnline(reader.page)
          await reader.page.locator("#room-list button", { hasText: room }).click()
          await message(reader.page, "news 3").waitFor({ timeout: WAIT })
          assert.strictEqual(await reader.page.locator("#room-list .badge").count(), 0)
          assert.strictEqual(await divider.count(), 0)
          assert.deepStrictEqual(reader.problems, [])
        } finally {
          writer.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "reads nothing while the tab is hidden, and counts in its title until it is shown",
      async () => {
        const room = "features-hidden"
        const writer = await jsonClient(server.port, { name: "hwriter", rooms: [room] })
        const reader = await openChat(server.port, "hreader")
        try {
          await writer.say(room, "before hiding")
          await joinRoom(reader.page, room)
          await message(reader.page, "before hiding").waitFor({ timeout: WAIT })
          // Headless pages are always visible: the page is told otherwise the way a browser would tell it.
          const setVisibility = (state: "hidden" | "visible") =>
            reader.page.evaluate((value) => {
              Object.defineProperty(document, "visibilityState", { configurable: true, get: () => value })
              document.dispatchEvent(new Event("visibilitychange"))
            }, state)
          // The title sums every conversation's count, the lobby's (earlier tests wrote there) included.
          const titleCount = () => reader.page.evaluate(() => Number(/^\((\d+)\) /.exec(document.title)?.[1] ?? 0))
          const before = await titleCount()
          const badge = reader.page.locator("#room-list button", { hasText: room }).locator(".badge")
          await setVisibility("hidden")
          await writer.say(room, "while hidden 1")
          await writer.say(room, "while hidden 2")
          const newest = await idOf(writer, room, "hwriter", "while hidden 2")
          await message(reader.page, "while hidden 2").waitFor({ timeout: WAIT })
          await badge.filter({ hasText: /^2 unread$/ }).waitFor({ timeout: WAIT })
          assert.strictEqual(await titleCount(), before + 2)
          const reads = () => reader.sent.filter((f) => f.type === "read" && f.room === room)
          assert.isFalse(
            reads().some((f) => Number(f.id) >= newest - 1),
            "nothing that came while hidden was marked read"
          )

          await setVisibility("visible")
          await eventually(() => reads().some((f) => f.id === newest), "the read once shown")
          await badge.waitFor({ state: "detached", timeout: WAIT })
          assert.strictEqual(await titleCount(), before)
          const after = await reader.page
            .locator("#messages li.divider")
            .evaluate((li) => li.nextElementSibling?.querySelector(".text")?.textContent)
          assert.strictEqual(after, "while hidden 1")
          assert.deepStrictEqual(reader.problems, [])
        } finally {
          writer.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "shows what changed while it was cut off, once it has resumed",
      async () => {
        const room = "features-away"
        const proxy = await startProxy(server.port)
        const lena = await jsonClient(server.port, { name: "alena", rooms: [room], features: FEATURES })
        const ken = await openChat(proxy.port, "aken")
        try {
          await joinRoom(ken.page, room)
          for (const text of ["will change", "will go", "will get a reaction"]) await lena.say(room, text)
          const changing = await idOf(lena, room, "alena", "will change")
          const going = await idOf(lena, room, "alena", "will go")
          const liked = await idOf(lena, room, "alena", "will get a reaction")
          await message(ken.page, "will get a reaction").waitFor({ timeout: WAIT })

          proxy.cut()
          await ken.page.locator("#status[data-state='reconnecting']").waitFor({ timeout: WAIT })
          const change = async (frame: Frame) => {
            const ref = `away-${++refCounter}`
            lena.send({ ...frame, room, ref })
            const reply = await lena.frames.waitFor((fs) => fs.find((f) => f.ref === ref), `ack of ${ref}`)
            assert.strictEqual(reply.type, "ack", JSON.stringify(reply))
          }
          await change({ type: "edit", id: changing, text: "changed while away" })
          await change({ type: "delete", id: going })
          await change({ type: "react", id: liked, emoji: "👍", on: true })
          await lena.say(room, "said while away")
          proxy.heal()

          await waitOnline(ken.page)
          await message(ken.page, "said while away").waitFor({ timeout: WAIT })
          const edited = message(ken.page, "changed while away")
          await edited.waitFor({ timeout: WAIT })
          assert.strictEqual(await edited.getAttribute("data-id"), String(changing))
          assert.strictEqual(await edited.locator(".edited").count(), 1)
          await ken.page.locator(`#messages li.deleted[data-id="${going}"]`).waitFor({ timeout: WAIT })
          const chip = message(ken.page, "will get a reaction").locator(`.chip[data-emoji="👍"]`)
          await chip.waitFor({ timeout: WAIT })
          assert.strictEqual(await chip.getAttribute("title"), "alena")
          assert.strictEqual(await chip.locator(".chip-count").textContent(), "1")
          assert.isTrue(await ken.page.locator("#notice").isHidden(), "resumed, not a new session")
          const ids = await ken.page.$$eval("#messages .message[data-id]", (els) => els.map((el) => el.dataset.id))
          assert.strictEqual(new Set(ids).size, ids.length, "no message twice")
          assert.deepStrictEqual(ken.problems, [])
        } finally {
          lena.close()
          await closeContexts()
          await proxy.close()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "says 999+ for a thousand unread or more, as the server counts them",
      async () => {
        const own = await startServer({ args: ["--rate", "100000", "--burst", "100000", "--history-retain", "5000"] })
        try {
          const room = "flood"
          const writer = await jsonClient(own.port, { name: "flooder", rooms: [room] })
          const { page, problems } = await openChat(own.port, "swamped")
          await joinRoom(page, room)
          await page.locator("#room-list button", { hasText: "lobby" }).click()
          const side = page.locator("#room-list button", { hasText: room })
          for (let i = 1; i <= 12; i++) await writer.say(room, `early ${i}`)
          await side.locator(".badge", { hasText: /^12 unread$/ }).waitFor({ timeout: WAIT })

          // Sent without waiting for each ack; the last ack means all are in.
          for (let i = 1; i <= 1_000; i++) writer.send({ type: "send", room, text: `flood ${i}`, ref: `f${i}` })
          await writer.frames.waitFor((fs) => fs.find((f) => f.ref === "f1000"), "the last ack", 60_000)
          await side.locator(".badge", { hasText: /^999\+ unread$/ }).waitFor({ timeout: WAIT })

          // After a reload the count is the server's, which stops at 1,000: still 999+.
          await page.reload()
          await waitOnline(page)
          await page.locator("#room-list button", { hasText: "lobby" }).click()
          await side.locator(".badge", { hasText: /^999\+ unread$/ }).waitFor({ timeout: WAIT })
          mkdirSync(`${root}test-artifacts`, { recursive: true })
          await page.screenshot({ path: `${root}test-artifacts/unread-badges.png` })
          assert.match(await page.title(), /^\(999\+\) effect-chat$/)
          writer.close()
          assert.deepStrictEqual(problems, [])
        } finally {
          await closeContexts()
          await own.stop()
        }
      },
      TEST_TIMEOUT
    )
  })

  describe("signing in", () => {
    let auth: RunningServer
    const origin = () => `http://127.0.0.1:${auth.port}`
    const signedIn = (page: Page, name: string) =>
      page.locator("#identity[data-identity='signed-in']", { hasText: name }).waitFor({ timeout: WAIT })

    beforeAll(async () => {
      // The secret goes in as --jwt-secret: the server process inherits this one's environment, which the other
      // servers of this file share, and they must stay without authentication.
      auth = await startServer({ args: ["--auth", "required", "--jwt-secret", JWT_SECRET, "--auth-grace", "3"] })
    })

    afterAll(async () => {
      await auth?.stop()
    })

    it(
      "signs in with a token from the page URL, takes it out of the address bar, and chats",
      async () => {
        const ops = await jsonClient(auth.port, { name: "ops", token: await mint("ops") })
        const { page, problems } = await openPage(`${origin()}/#token=${await mint("alice")}`)
        try {
          await waitOnline(page)
          await signedIn(page, "alice")
          assert.strictEqual(await page.textContent("#identity"), "alice (signed in)")
          assert.strictEqual(await page.evaluate(() => location.href), `${origin()}/`, "no token left in the URL")
          assert.isTrue(
            await page.locator("#name-input").evaluate((el) => (el as HTMLInputElement).readOnly),
            "the name is the token's: the field does not offer a change"
          )

          await say(page, "hello from a signed-in page")
          await ops.frames.waitFor(
            (fs) =>
              fs.find((f) => f.type === "message" && f.from === "alice" && f.text === "hello from a signed-in page"),
            "alice's message at the terminal"
          )

          // The tab keeps the token: a reload stays signed in, though the address bar no longer has it.
          await page.reload()
          await waitOnline(page)
          await signedIn(page, "alice")

          // Another user's link pasted into the same tab (only the fragment changes): the page switches user and
          // the token leaves the address bar again.
          const bobToken = await mint("bob")
          await page.evaluate((token) => (location.hash = `#token=${token}`), bobToken)
          await signedIn(page, "bob")
          await waitOnline(page)
          assert.strictEqual(await page.evaluate(() => location.href), `${origin()}/`, "no token left in the URL")
          assert.deepStrictEqual(problems, [])
        } finally {
          ops.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "asks a page without a token to sign in, does not retry on its own, and connects with the pasted token",
      async () => {
        const { page, problems, sockets } = await openPage(`${origin()}/`)
        try {
          const form = page.locator("#sign-in")
          await form.waitFor({ timeout: WAIT })
          assert.match(String(await page.textContent("#sign-in-prompt")), /needs you to sign in/)
          await page.locator("#status[data-state='offline']").waitFor({ timeout: WAIT })
          assert.isTrue(await page.locator("#reconnect-now").isHidden(), "no Reconnect that would be refused again")
          assert.isTrue(await page.locator("#sign-in-guest").isHidden(), "this server refuses guests")
          // A reconnect loop would have knocked again by now: its backoff starts at 250 ms.
          await page.waitForTimeout(2_500)
          assert.strictEqual(sockets(), 1, "one refused connection, no retries")

          // From the keyboard: the form has the focus, and its field is labelled.
          assert.strictEqual(await page.evaluate(() => document.activeElement?.id), "sign-in-token")
          await page.getByLabel("Sign-in token").fill(await mint("bob"))
          await page.keyboard.press("Enter")
          await waitOnline(page)
          await signedIn(page, "bob")
          await form.waitFor({ state: "hidden", timeout: WAIT })
          assert.strictEqual(sockets(), 2)
          assert.strictEqual(await page.inputValue("#sign-in-token"), "", "the token does not stay in the form")

          await say(page, "signed in by hand")
          await message(page, "signed in by hand").waitFor({ timeout: WAIT })
          assert.deepStrictEqual(problems, [])
        } finally {
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "keeps one read marker for a user's tabs: reading in one clears the other's badge",
      async () => {
        const room = "shared-news"
        const token = await mint("dora")
        const ops = await jsonClient(auth.port, { name: "ops2", token: await mint("ops2"), rooms: [room] })
        const tabs = [await openPage(`${origin()}/#token=${token}`), await openPage(`${origin()}/#token=${token}`)]
        try {
          for (const { page } of tabs) {
            await waitOnline(page)
            await signedIn(page, "dora")
            await joinRoom(page, room)
            await page.locator("#room-list button", { hasText: "lobby" }).click()
          }
          await ops.say(room, "for dora, one")
          await ops.say(room, "for dora, two")
          const badge = (page: Page) =>
            page.locator("#room-list button", { hasText: room }).locator(".badge", { hasText: /^2 unread$/ })
          for (const { page } of tabs) await badge(page).waitFor({ timeout: WAIT })

          await tabs[0]!.page.locator("#room-list button", { hasText: room }).click()
          await message(tabs[0]!.page, "for dora, two").waitFor({ timeout: WAIT })
          await tabs[1]!.page.locator("#room-list button", { hasText: room }).locator(".badge").waitFor({
            state: "detached",
            timeout: WAIT
          })
          assert.deepStrictEqual([...tabs[0]!.problems, ...tabs[1]!.problems], [])
        } finally {
          ops.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )

    it(
      "asks for a new token when the sign-in expires, and keeps the connection going with it",
      async () => {
        const watcher = await jsonClient(auth.port, { name: "watcher", token: await mint("watcher") })
        // A 2 s lifetime, rounded up to the whole second the exp claim is counted in.
        const expiresAt = Math.ceil(Date.now() / 1000) + 2
        const { page, problems, sockets } = await openPage(`${origin()}/#token=${await mint("carol", expiresAt)}`)
        try {
          await waitOnline(page)
          await signedIn(page, "carol")
          await page.locator("#sign-in", { hasText: "Your sign-in expired" }).waitFor({ timeout: WAIT })
          assert.strictEqual(await page.getAttribute("#status", "data-state"), "online", "still connected, in grace")

          await page.getByLabel("Sign-in token").fill(await mint("carol"))
          await page.keyboard.press("Enter")
          await page.locator("#sign-in").waitFor({ state: "hidden", timeout: WAIT })

          // Past the old token's expiry and the 3 s grace: an unrefreshed connection would be closed by now.
          await page.waitForTimeout(Math.max(0, (expiresAt + 3) * 1000 + 1_000 - Date.now()))
          await say(page, "still here after the grace")
          await watcher.frames.waitFor(
            (fs) =>
              fs.find((f) => f.type === "message" && f.from === "carol" && f.text === "still here after the grace"),
            "carol's message after the grace"
          )
          assert.strictEqual(await page.getAttribute("#status", "data-state"), "online")
          assert.strictEqual(sockets(), 1, "refreshed on the same connection, not reconnected")
          await signedIn(page, "carol")
          assert.deepStrictEqual(problems, [])
        } finally {
          watcher.close()
          await closeContexts()
        }
      },
      TEST_TIMEOUT
    )
  })
})
