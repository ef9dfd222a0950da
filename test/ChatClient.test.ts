/**
 * ChatClient against the real server binary (dist/server.js, built by `npm run build`): acknowledgements, events,
 * reconnecting to a restarted server with queued lines, and resuming after an abrupt TCP drop.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Schedule, Stream } from "effect"
import * as Net from "node:net"
import { ChatClient, type ChatClientOptions, type ChatEvent, reconnectSchedule } from "../src/client/ChatClient.js"
import type * as Protocol from "../src/protocol/Protocol.js"
import * as ServerProcess from "./support/ServerProcess.js"

// ---------------------------------------------------------------------------------------------------------------------
// Helpers: a TCP proxy that can cut connections, clients with an event log (the server: support/ServerProcess)
// ---------------------------------------------------------------------------------------------------------------------

interface Proxy {
  readonly url: string
  /** Destroys every connection through the proxy, without a close frame: an abrupt network failure. */
  readonly cut: Effect.Effect<void>
  /** Stops forwarding the server's bytes on the current connections, so answers in flight are lost. */
  readonly freeze: Effect.Effect<void>
  /** While refusing, new connections are dropped at once: the server is out of reach. */
  readonly refuse: (refusing: boolean) => Effect.Effect<void>
}

/** A TCP proxy in front of `port`; tests cut it to drop connections the way a network does. */
const startProxy = (port: number) =>
  Effect.gen(function* () {
    const pairs = new Set<{ client: Net.Socket; upstream: Net.Socket; frozen: boolean }>()
    let refusing = false
    const server = Net.createServer((client) => {
      if (refusing) return void client.destroy()
      const upstream = Net.connect(port, "127.0.0.1")
      const pair = { client, upstream, frozen: false }
      pairs.add(pair)
      client.on("data", (data) => upstream.write(data))
      upstream.on("data", (data) => {
        if (!pair.frozen) client.write(data)
      })
      const end = () => {
        pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      }
      for (const socket of [client, upstream]) {
        socket.on("error", end)
        socket.on("close", end)
      }
    })
    const proxyPort = yield* Effect.acquireRelease(
      Effect.async<number>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as Net.AddressInfo).port)))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const { client, upstream } of pairs) (client.destroy(), upstream.destroy())
          server.close(() => resume(Effect.void))
        })
    )
    return {
      url: `ws://127.0.0.1:${proxyPort}/chat`,
      cut: Effect.sync(() => {
        for (const { client, upstream } of pairs) (client.destroy(), upstream.destroy())
      }),
      freeze: Effect.sync(() => {
        for (const pair of pairs) pair.frozen = true
      }),
      refuse: (value) => Effect.sync(() => void (refusing = value))
    } satisfies Proxy
  })

/** A free port: bound, then released. Nothing listens on it afterwards. */
const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const fastReconnect = reconnectSchedule({ initialDelay: "50 millis", maxDelay: "500 millis" })

interface TestChatClient {
  readonly client: ChatClient["Type"]
  /** Every event received so far, in order. */
  readonly events: Array<ChatEvent>
  /** Waits until the events so far satisfy `check`, or fails after `timeoutMs` with `what` and the events. */
  readonly until: (
    what: string,
    check: (events: ReadonlyArray<ChatEvent>) => boolean,
    timeoutMs?: number
  ) => Effect.Effect<void>
  readonly messages: () => ReadonlyArray<Protocol.Message>
}

/** A ChatClient for the test's scope, with its events recorded from the first one on. */
const connect = (options: ChatClientOptions) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(ChatClient.layer({ reconnect: fastReconnect, ...options }))
    const client = Context.get(context, ChatClient)
    const events: Array<ChatEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(client.events, (event) => Effect.sync(() => events.push(event))))
    const until = (what: string, check: (events: ReadonlyArray<ChatEvent>) => boolean, timeoutMs = 10_000) =>
      Effect.sync(() => check(events)).pipe(
        Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("20 millis") }),
        Effect.timeoutFail({
          duration: timeoutMs,
          onTimeout: () => new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events.map(brief))}`)
        }),
        Effect.orDie,
        Effect.asVoid
      )
    const messages = () =>
      events.flatMap((event) => (event.type === "message" ? [event] : event.type === "history" ? event.messages : []))
    return { client, events, until, messages } satisfies TestChatClient
  })

/** An event for a failure message: messages by their text. */
const brief = (event: ChatEvent) =>
  event.type === "message" ? event.text : event.type === "history" ? event.messages.map((m) => m.text) : event

const texts = (messages: ReadonlyArray<Protocol.Message>, from?: string) =>
  messages.filter((message) => from === undefined || message.from === from).map((message) => message.text)

// ---------------------------------------------------------------------------------------------------------------------

describe("ChatClient", () => {
  it.scopedLive("send completes with the id from the ack, and the others receive the message", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const alice = yield* connect({ url: server.url, name: "alice" })
      const bob = yield* connect({ url: server.url, name: "bob" })
      const first = yield* alice.client.send("lobby", "hello bob")
      const second = yield* alice.client.send("lobby", "still there?")
      assert.strictEqual(second, first + 1)
      yield* bob.until("alice's messages", () => texts(bob.messages(), "alice").length === 2)
      const received = bob.messages().filter((message) => message.from === "alice")
      assert.deepStrictEqual(
        received.map(({ id, room, text }) => ({ id, room, text })),
        [
          { id: first, room: "lobby", text: "hello bob" },
          { id: second, room: "lobby", text: "still there?" }
        ]
      )
      const connected = alice.events.find((event) => event.type === "connected")
      assert.deepStrictEqual(
        connected?.type === "connected" && { name: connected.welcome.name, resumed: connected.resumed },
        { name: "alice", resumed: false }
      )
    })
  )

  it.scopedLive("join, who, nick, direct, history and a refused request", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const alice = yield* connect({ url: server.url, name: "alice" })
      const bob = yield* connect({ url: server.url, name: "bob", rooms: ["dev"] })

      const refused = yield* Effect.flip(alice.client.send("dev", "not a member yet"))
      assert.deepStrictEqual([refused.reason, refused.code], ["Rejected", "not_in_room"])

      yield* alice.client.join("dev")
      assert.deepStrictEqual([...(yield* alice.client.who("dev"))].sort(), ["alice", "bob"])
      const id = yield* alice.client.send("dev", "in dev now")
      yield* bob.until(
        "joined and message",
        (events) =>
          events.some((e) => e.type === "joined" && e.name === "alice" && e.room === "dev") &&
          texts(bob.messages()).includes("in dev now")
      )

      yield* alice.client.nick("alicia")
      assert.strictEqual((yield* alice.client.session).name, "alicia")
      yield* bob.until("the rename", (events) =>
        events.some((e) => e.type === "renamed" && e.from === "alice" && e.to === "alicia")
      )

      yield* alice.client.direct("bob", "psst")
      yield* bob.until("the direct message", (events) =>
        events.some((e) => e.type === "direct" && e.from === "alicia" && e.text === "psst")
      )

      const history = yield* alice.client.history("dev", { limit: 10 })
      assert.deepStrictEqual(
        history.messages.map((m) => [m.id, m.text]),
        [[id, "in dev now"]]
      )

      yield* alice.client.leave("dev")
      assert.deepStrictEqual((yield* alice.client.session).rooms, ["lobby"])
      yield* bob.until("alicia left", (events) => events.some((e) => e.type === "left" && e.name === "alicia"))
    })
  )

  it.scopedLive("an unreachable server fails the layer with one readable Connect error", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const url = `ws://127.0.0.1:${port}/chat`
      const exit = yield* Effect.exit(Layer.build(ChatClient.layer({ url })))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(Layer.build(ChatClient.layer({ url })))
      assert.strictEqual(error.reason, "Connect")
      assert.strictEqual(error.message, `Cannot connect to ${url}: connection refused`)
    })
  )

  it.scopedLive("close ends the session with 1000: the events end with closed and the name is free again", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const bob = yield* connect({ url: server.url, name: "bob" })
      const alice = yield* Effect.scoped(
        Effect.gen(function* () {
          const alice = yield* connect({ url: server.url, name: "alice" })
          yield* bob.until("alice joined", (events) => events.some((e) => e.type === "joined" && e.name === "alice"))
          yield* alice.client.close
          yield* alice.until("closed", (events) => events.at(-1)?.type === "closed")
          const failed = yield* Effect.flip(alice.client.send("lobby", "too late"))
          assert.strictEqual(failed.reason, "Closed")
          return alice
        })
      )
      assert.deepStrictEqual(alice.events.at(-1), { type: "closed", code: 1000, reason: "closed by the client" })
      yield* bob.until("alice left", (events) => events.some((e) => e.type === "left" && e.name === "alice"))
      const again = yield* connect({ url: server.url, name: "alice" })
      assert.strictEqual((yield* again.client.session).name, "alice")
    })
  )

  it.scopedLive("lines sent while the server is down are delivered once after it restarts on the same port", () =>
    Effect.gen(function* () {
      const first = yield* ServerProcess.start()
      const alice = yield* connect({ url: first.url, name: "alice" })
      yield* alice.client.send("lobby", "before the crash")
      yield* alice.until("her first line", () => texts(alice.messages()).includes("before the crash"))
      yield* first.kill
      yield* alice.until("the disconnection", (events) => events.some((e) => e.type === "disconnected"))

      const acks = yield* Effect.forEach(["one", "two", "three"], (text) => alice.client.submit("lobby", text))
      yield* ServerProcess.start({ port: first.port })
      const ids = yield* Effect.all(acks).pipe(Effect.timeout("20 seconds"))

      const reconnected = alice.events.find((e) => e.type === "connected" && e.reconnected)
      assert.deepStrictEqual(reconnected?.type === "connected" && reconnected.resumed, false)
      assert.deepStrictEqual(
        alice.events.some((e) => e.type === "reconnecting"),
        true
      )
      // The new server knows only what was sent to it: each queued line once, in order.
      const observer = yield* connect({ url: `ws://127.0.0.1:${first.port}/chat`, name: "observer" })
      yield* observer.until("the join history", (events) => events.some((e) => e.type === "members"))
      const history = yield* observer.client.history("lobby")
      assert.deepStrictEqual(
        history.messages.map((m) => [m.id, m.text]),
        [
          [ids[0], "one"],
          [ids[1], "two"],
          [ids[2], "three"]
        ]
      )
      // And alice shows them once each, although their ids restarted from 1.
      yield* alice.until("alice's own lines", () => texts(alice.messages()).includes("three"))
      assert.deepStrictEqual(texts(alice.messages(), "alice"), ["before the crash", "one", "two", "three"])
    })
  )

  it.scopedLive("resumes after an abrupt TCP drop: every message once, in order, while another client sends", () =>
    Effect.gen(function* () {
      // Bob sends faster than the default rate limit allows; a join shows only 5 messages, so catching up on the
      // 20 or more missed takes the resume's `since`.
      const server = yield* ServerProcess.start({ args: ["--rate", "1000", "--burst", "1000", "--join-history", "5"] })
      const proxy = yield* startProxy(server.port)
      const alice = yield* connect({ url: proxy.url, name: "alice" })
      const bob = yield* connect({ url: server.url, name: "bob" })
      const total = 60
      const sending = yield* Effect.forkScoped(
        Effect.forEach(
          Array.from({ length: total }, (_, i) => `m${i + 1}`),
          (text) => bob.client.send("lobby", text).pipe(Effect.zipLeft(Effect.sleep("5 millis")))
        )
      )
      yield* alice.until("m10", () => texts(alice.messages(), "bob").includes("m10"))
      yield* proxy.refuse(true)
      yield* proxy.cut
      yield* bob.until("m35", () => texts(bob.messages(), "bob").includes("m35"))
      yield* proxy.refuse(false)
      yield* Fiber.join(sending)
      yield* alice.until(`m${total}`, () => texts(alice.messages(), "bob").includes(`m${total}`), 20_000)

      const fromBob = alice.messages().filter((message) => message.from === "bob")
      assert.deepStrictEqual(
        fromBob.map((m) => m.text),
        Array.from({ length: total }, (_, i) => `m${i + 1}`)
      )
      fromBob.forEach((message, i) => i > 0 && assert.strictEqual(message.id, fromBob[i - 1]!.id + 1))
      const reconnected = alice.events.find((e) => e.type === "connected" && e.reconnected)
      assert.deepStrictEqual(reconnected?.type === "connected" && reconnected.resumed, true)
    })
  )

  it.scopedLive("detects a server that stops answering by its heartbeat, reconnects and resumes", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const proxy = yield* startProxy(server.port)
      const alice = yield* connect({ url: proxy.url, name: "alice", heartbeat: "200 millis" })
      yield* proxy.freeze
      yield* alice.until(
        "a reconnect",
        () => alice.events.some((e) => e.type === "connected" && e.reconnected && e.resumed),
        10_000
      )
      assert.ok(alice.events.some((e) => e.type === "disconnected"))
      yield* alice.client.send("lobby", "back again")
    })
  )

  it.scopedLive("a session too old to resume starts afresh in the same rooms and shows no message twice", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start({ args: ["--resume-window", "0.3"] })
      const proxy = yield* startProxy(server.port)
      const alice = yield* connect({ url: proxy.url, name: "alice", rooms: ["lobby", "dev"] })
      const bob = yield* connect({ url: server.url, name: "bob", rooms: ["lobby", "dev"] })
      yield* bob.client.send("lobby", "a1")
      yield* bob.client.send("dev", "d1")
      yield* alice.until("a1 and d1", () => texts(alice.messages()).length === 2)

      yield* proxy.refuse(true)
      yield* proxy.cut
      yield* bob.client.send("lobby", "a2")
      // Out of reach for longer than the resume window: the server drops the session.
      yield* Effect.sleep("1500 millis")
      yield* proxy.refuse(false)
      yield* alice.until("the new session", (events) => events.some((e) => e.type === "connected" && e.reconnected))
      yield* alice.until("a2", () => texts(alice.messages()).includes("a2"))

      const reconnected = alice.events.find((e) => e.type === "connected" && e.reconnected)
      const rooms = reconnected?.type === "connected" ? [...reconnected.welcome.rooms].sort() : []
      assert.deepStrictEqual(rooms, ["dev", "lobby"])
      assert.deepStrictEqual(reconnected?.type === "connected" && reconnected.resumed, false)
      // The join histories repeat a1 and d1; they were shown already.
      assert.deepStrictEqual(texts(alice.messages()), ["a1", "d1", "a2"])
    })
  )

  it.scopedLive("a send whose ack was lost is sent again with the same ref and appears once", () =>
    Effect.gen(function* () {
      const server = yield* ServerProcess.start()
      const proxy = yield* startProxy(server.port)
      const alice = yield* connect({ url: proxy.url, name: "alice" })
      const bob = yield* connect({ url: server.url, name: "bob" })
      yield* proxy.freeze
      const ack = yield* alice.client.submit("lobby", "said once")
      // The server has the message (bob sees it), but its ack never reached alice.
      yield* bob.until("the message", () => texts(bob.messages()).includes("said once"))
      yield* proxy.cut
      const id = yield* ack.pipe(Effect.timeout("20 seconds"))
      const atBob = bob.messages().filter((message) => message.text === "said once")
      assert.deepStrictEqual(
        atBob.map((m) => m.id),
        [id]
      )
      const history = yield* bob.client.history("lobby")
      assert.deepStrictEqual(texts(history.messages), ["said once"])
      yield* alice.until("the message", () => texts(alice.messages()).includes("said once"))
      assert.deepStrictEqual(texts(alice.messages()), ["said once"])
    })
  )

  it.scopedLive(
    "changes made while away arrive as events after a resume, and after a reconnect that starts afresh",
    () =>
      Effect.gen(function* () {
        const server = yield* ServerProcess.start({ args: ["--resume-window", "1"] })
        const proxy = yield* startProxy(server.port)
        const alice = yield* connect({ url: proxy.url, name: "alice" })
        const bob = yield* connect({ url: server.url, name: "bob" })
        const ids = yield* Effect.forEach(["e1", "d1", "r1", "e2", "d2", "r2"], (text) =>
          bob.client.send("lobby", text)
        )
        yield* alice.until("bob's lines", () => texts(alice.messages()).includes("r2"))
        const [e1, d1, r1, e2, d2, r2] = ids as [number, number, number, number, number, number]
        const changes = (events: ReadonlyArray<ChatEvent>) =>
          events.flatMap((e) =>
            e.type === "edited"
              ? [`edited ${e.id} ${e.text}`]
              : e.type === "deleted"
                ? [`deleted ${e.id}`]
                : e.type === "reaction"
                  ? [`${e.name} ${e.on ? "+" : "-"}${e.emoji} ${e.id}`]
                  : []
          )
        const away = (drop: Effect.Effect<void>, edit: number, remove: number, react: number) =>
          Effect.gen(function* () {
            yield* proxy.refuse(true)
            yield* proxy.cut
            yield* bob.client.edit("lobby", edit, "fixed")
            yield* bob.client.delete("lobby", remove)
            yield* bob.client.react("lobby", react, "👍", true)
            yield* drop
            const from = alice.events.length
            yield* proxy.refuse(false)
            yield* alice.until("the three changes", (events) => changes(events.slice(from)).length === 3)
            return alice.events.slice(from)
          })

        // Back within the resume window: the server sends the changes after the catch-up.
        const resumed = yield* away(Effect.void, e1, d1, r1)
        assert.deepStrictEqual(changes(resumed), [`edited ${e1} fixed`, `deleted ${d1}`, `bob +👍 ${r1}`])
        const back = resumed.find((e) => e.type === "connected")
        assert.deepStrictEqual(back?.type === "connected" && back.resumed, true)

        // Away for longer than the window: a new session, whose join history shows the changes; the client tells them.
        const afresh = yield* away(Effect.sleep("2500 millis"), e2, d2, r2)
        assert.deepStrictEqual(changes(afresh), [`edited ${e2} fixed`, `deleted ${d2}`, `bob +👍 ${r2}`])
        const connected = afresh.find((e) => e.type === "connected")
        assert.deepStrictEqual(connected?.type === "connected" && connected.resumed, false)
        // No message is shown twice.
        assert.deepStrictEqual(texts(alice.messages(), "bob"), ["e1", "d1", "r1", "e2", "d2", "r2"])
      })
  )

  it.scopedLive(
    "an edit whose ack was lost is sent again and succeeds; the delete and reaction queued behind it follow once",
    () =>
      Effect.gen(function* () {
        const server = yield* ServerProcess.start()
        const proxy = yield* startProxy(server.port)
        const alice = yield* connect({ url: proxy.url, name: "alice" })
        const bob = yield* connect({ url: server.url, name: "bob" })
        const [first, second] = [yield* alice.client.send("lobby", "one"), yield* alice.client.send("lobby", "two")]
        yield* bob.until("alice's lines", () => texts(bob.messages()).includes("two"))
        yield* proxy.freeze
        const pending = yield* Effect.fork(
          Effect.all([
            alice.client.edit("lobby", first, "one!"),
            alice.client.delete("lobby", second),
            alice.client.react("lobby", first, "🎉", true)
          ])
        )
        // The server did the edit (bob sees it), but alice got no answer; the others wait behind it.
        yield* bob.until("the edit", (events) => events.some((e) => e.type === "edited" && e.id === first))
        yield* proxy.cut
        yield* Fiber.join(pending).pipe(Effect.timeout("20 seconds"))
        yield* bob.until("the reaction", (events) => events.some((e) => e.type === "reaction" && e.id === first))
        const history = yield* bob.client.history("lobby")
        assert.deepStrictEqual(
          history.messages.map((m) => [m.text, m.deleted === true, m.reactions]),
          [
            ["one!", false, { "🎉": ["alice"] }],
            ["", true, undefined]
          ]
        )
        assert.strictEqual(bob.events.filter((e) => e.type === "deleted").length, 1)
        assert.strictEqual(bob.events.filter((e) => e.type === "reaction").length, 1)
      })
  )
})
