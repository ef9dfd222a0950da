/**
 * The admin page in a real Chromium against the built server (`node dist/server.js --api-key ...`), with raw
 * WebSocket clients in the rooms: the key entered once and kept for the tab, the live numbers and chart, rooms and
 * counts, a room's members and messages (as text), and the page's publish, delete and disconnect reaching the
 * clients. Needs `npm run build` first. Leaves a screenshot at test-artifacts/admin.png.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { existsSync, mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { type Browser, chromium, type Page } from "playwright-core"
import WebSocket from "ws"
import * as ApiClient from "./support/ApiClient.js"
import * as ServerProcess from "./support/ServerProcess.js"

const root = fileURLToPath(new URL("../", import.meta.url))
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
if (!hasChromium && process.env.CI) {
  throw new Error(`CI must run the browser tests, but there is no Chromium at ${chromiumPath} (set CHROMIUM_PATH)`)
}
const WAIT = 15_000

type Frame = Record<string, any> & { readonly type: string }

/** A JSON-dialect client that keeps every frame and its close, for the page's actions to be checked against. */
class Client {
  readonly frames: Array<Frame> = []
  readonly closed: Promise<number>
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as Frame))
    this.closed = new Promise((resolve) => ws.on("close", (code) => resolve(code)))
  }

  static async open(port: number, hello: Record<string, unknown>): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, ["effect-chat.v1"])
    const client = new Client(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve())
      ws.once("error", reject)
    })
    ws.send(JSON.stringify({ type: "hello", ...hello }))
    await client.waitFor((f) => f.type === "welcome")
    return client
  }

  waitFor(match: (frame: Frame) => boolean, timeout = WAIT): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeout
      const check = () => {
        const found = this.frames.find(match)
        if (found !== undefined) return resolve(found)
        if (Date.now() > deadline)
          return reject(new Error(`no such frame; got ${JSON.stringify(this.frames.slice(-5))}`))
        setTimeout(check, 20)
      }
      check()
    })
  }

  send(frame: Frame) {
    this.ws.send(JSON.stringify(frame))
  }
}

const suite = hasChromium ? describe : describe.skip

suite(hasChromium ? "admin page" : `admin page (SKIPPED: no Chromium at ${chromiumPath})`, () => {
  let browser: Browser
  let scope: Scope.CloseableScope
  let port: number
  const clients: Array<Client> = []

  beforeAll(async () => {
    for (const file of ["dist/server.js", "dist/web/admin.js", "web-admin/admin.html"]) {
      if (!existsSync(`${root}${file}`)) throw new Error(`${file} is missing: run \`npm run build\` first`)
    }
    scope = Effect.runSync(Scope.make())
    const server = await Effect.runPromise(
      ServerProcess.start({ args: ["--store", "memory", "--api-key", ApiClient.KEY] }).pipe(Scope.extend(scope))
    )
    port = server.port
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    })
  })

  afterAll(async () => {
    for (const client of clients) client.ws.terminate()
    await browser?.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  const openAdmin = async (viewport = { width: 1100, height: 1000 }) => {
    const context = await browser.newContext({ viewport })
    const page = await context.newPage()
    const problems: Array<string> = []
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`csp: ${message.text()}`)
    })
    await page.goto(`http://127.0.0.1:${port}/admin`)
    return { page, problems }
  }

  const enterKey = async (page: Page, key: string) => {
    await page.fill("#key-input", key)
    await page.press("#key-input", "Enter")
  }

  it("key entry, live numbers, rooms, members and messages; publish, delete and disconnect reach the clients", async () => {
    const alice = await Client.open(port, { name: "alice", rooms: ["lobby", "dev"], features: ["edits"] })
    const bob = await Client.open(port, { name: "bob", rooms: ["lobby"] })
    clients.push(alice, bob)
    alice.send({ type: "send", room: "lobby", text: "<img src=x onerror=alert(1)> hello", ref: "a1" })
    const { id: aliceMessage } = await alice.waitFor((f) => f.type === "ack" && f.ref === "a1")

    const { page, problems } = await openAdmin()
    await page.locator("#key-form").waitFor({ timeout: WAIT })
    expect(await page.locator("#dashboard").isHidden()).toBe(true)

    await enterKey(page, "not-the-key-0123456789")
    await page.locator("#status[data-kind='error']", { hasText: "does not work" }).waitFor({ timeout: WAIT })
    expect(await page.locator("#dashboard").isHidden()).toBe(true)

    await enterKey(page, ApiClient.KEY)
    await page.locator("#dashboard").waitFor({ state: "visible", timeout: WAIT })
    const row = (room: string) =>
      page.locator("#rooms tr", { has: page.locator("td", { hasText: new RegExp(`^${room}$`) }) })
    await row("lobby").locator("td.count", { hasText: /^2$/ }).waitFor({ timeout: WAIT })
    await row("dev").locator("td.count", { hasText: /^1$/ }).waitFor({ timeout: WAIT })
    await page.locator("#connections", { hasText: /^2$/ }).waitFor({ timeout: WAIT })
    await page.locator("#users", { hasText: /^2$/ }).waitFor({ timeout: WAIT })
    // Traffic while the page polls, so the chart's messages-per-second line has something to show.
    for (let burst = 0; burst < 3; burst++) {
      for (let i = 0; i < 10; i++)
        alice.send({ type: "send", room: "dev", text: `burst ${burst}.${i}`, ref: `b${burst}.${i}` })
      await alice.waitFor((f) => f.type === "ack" && f.ref === `b${burst}.9`)
      await page.waitForTimeout(2100)
    }
    await page.waitForFunction(
      () => (document.querySelector("#chart polyline.rate")?.getAttribute("points") ?? "").split(" ").length >= 4,
      undefined,
      { timeout: WAIT }
    )
    expect(Number(await page.locator("#rate").textContent())).toBeGreaterThanOrEqual(0)

    // Keyboard: focus the room's Open button and press Enter.
    await page.focus("#rooms button[data-room='lobby']")
    await page.keyboard.press("Enter")
    await page.locator("#members li", { hasText: "bob" }).waitFor({ timeout: WAIT })
    expect(await page.locator("#members li .text").allTextContents()).toEqual(["alice", "bob"])
    const shown = page.locator("#messages li", { hasText: "hello" })
    await shown.waitFor({ timeout: WAIT })
    // The markup in the message is text on the page, not an element.
    expect(await shown.locator(".text").textContent()).toBe("<img src=x onerror=alert(1)> hello")
    expect(await page.locator("#messages img").count()).toBe(0)

    // Publish from the page: focus is in the message field after opening the room.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("publish-text")
    await page.keyboard.type("maintenance at noon")
    await page.keyboard.press("Enter")
    const published = await bob.waitFor((f) => f.type === "message" && f.text === "maintenance at noon")
    // lobby's next id: alice's message was 1, the bursts went to dev.
    expect(published).toMatchObject({ room: "lobby", from: "server", id: aliceMessage + 1 })
    await alice.waitFor((f) => f.type === "message" && f.id === published.id)
    await page.locator("#status[data-kind='ok']", { hasText: `Published message ${published.id}` }).waitFor()

    mkdirSync(`${root}test-artifacts`, { recursive: true })
    await page.screenshot({ path: `${root}test-artifacts/admin.png`, fullPage: true })

    // Delete alice's message: members with edits get `deleted`.
    await page.getByRole("button", { name: `Delete message ${aliceMessage} from alice` }).click()
    await alice.waitFor((f) => f.type === "deleted" && f.id === aliceMessage)
    await page.locator("#messages li .deleted").first().waitFor({ timeout: WAIT })

    // Disconnect bob from the member list: his socket closes with 4003.
    await page.getByRole("button", { name: "Disconnect bob" }).click()
    expect(await bob.closed).toBe(4003)
    await page.locator("#status[data-kind='ok']", { hasText: "Disconnected bob: 1 connection" }).waitFor()
    await row("lobby").locator("td.count", { hasText: /^1$/ }).waitFor({ timeout: WAIT })

    // The key is kept for the tab: a reload goes straight to the dashboard; forgetting it asks again.
    await page.reload()
    await page.locator("#dashboard").waitFor({ state: "visible", timeout: WAIT })
    await page.click("#forget-key")
    await page.locator("#key-form").waitFor({ state: "visible", timeout: WAIT })
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(problems).toEqual([])
  }, 90_000)

  it("readable on a phone: nothing wider than the screen; the disconnect form by keyboard", async () => {
    const carol = await Client.open(port, { name: "carol" })
    clients.push(carol)
    const { page, problems } = await openAdmin({ width: 390, height: 844 })
    await enterKey(page, ApiClient.KEY)
    await page.locator("#dashboard").waitFor({ state: "visible", timeout: WAIT })
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true)
    await page.focus("#disconnect-name")
    await page.keyboard.type("carol")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("4000")
    await page.keyboard.press("Enter")
    expect(await carol.closed).toBe(4000)
    await page.locator("#status[data-kind='ok']", { hasText: "closed with 4000" }).waitFor({ timeout: WAIT })
    expect(problems).toEqual([])
  }, 60_000)
})
