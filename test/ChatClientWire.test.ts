/**
 * ChatClient's chat-feature requests as they go on the wire, against a scripted WebSocket server (real sockets):
 * what `hello` asks for, typing written at once or not at all, and feature requests queued across a reconnect and
 * sent again with their ref when the answer was lost. What the real server does with them: ChatClientFeatures.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Stream } from "effect"
import type * as Net from "node:net"
import { WebSocketServer, type WebSocket } from "ws"
import { ChatClient, type ChatClientOptions, type ChatEvent, reconnectSchedule } from "../src/client/ChatClient.js"
import * as Protocol from "../src/protocol/Protocol.js"

/** What the scripted server does with a request after `hello`: the frame to answer with, or none. */
type Answer = (frame: Protocol.ClientFrame) => Protocol.ServerFrame | undefined

interface Scripted {
  readonly url: string
  /** Every frame received, on every connection, in order; `connection` counts from 1. */
  readonly frames: Array<{ readonly connection: number; readonly frame: Protocol.ClientFrame }>
  /** Drops every connection without a close frame. */
  readonly drop: Effect.Effect<void>
  /** While refusing, new connections are closed at once. */
  readonly refuse: (refusing: boolean) => void
  answer: Answer
  /** Frames sent right after each `welcome` (a join's history), by connection number. */
  afterWelcome: (connection: number) => ReadonlyArray<Protocol.ServerFrame>
}

const ackAll: Answer = (frame) =>
  "ref" in frame && frame.ref !== undefined ? { type: "ack", ref: frame.ref } : undefined

/** A server that welcomes every `hello`, enabling `enable` of the features asked for, and answers with `answer`. */
const scripted = (enable: ReadonlyArray<string> = Protocol.FEATURES) =>
  Effect.gen(function* () {
    const server = yield* Effect.acquireRelease(
      Effect.async<WebSocketServer>((resume) => {
        const wss: WebSocketServer = new WebSocketServer(
          { port: 0, host: "127.0.0.1", handleProtocols: () => Protocol.SUBPROTOCOL },
          () => resume(Effect.succeed(wss))
        )
      }),
      (wss) =>
        Effect.async<void>((resume) => {
          for (const ws of wss.clients) ws.terminate()
          wss.close(() => resume(Effect.void))
        })
    )
    let connections = 0
    let refusing = false
    const self: Scripted = {
      url: `ws://127.0.0.1:${(server.address() as Net.AddressInfo).port}/chat`,
      frames: [],
      drop: Effect.sync(() => server.clients.forEach((ws) => ws.terminate())),
      refuse: (value) => void (refusing = value),
      answer: ackAll,
      afterWelcome: () => []
    }
    server.on("connection", (ws: WebSocket) => {
      if (refusing) return void ws.terminate()
      const connection = ++connections
      ws.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Protocol.ClientFrame
        self.frames.push({ connection, frame })
        if (frame.type === "hello") {
          const features = (frame.features ?? []).filter((feature) => enable.includes(feature))
          const welcome: Protocol.ServerFrame = {
            type: "welcome",
            protocol: 1,
            name: frame.name ?? `user${connection}`,
            rooms: frame.rooms ?? ["lobby"],
            users: 1,
            resume: `token-${connection}`,
            resumed: frame.resume !== undefined,
            features
          }
          ws.send(Protocol.encode(welcome))
          for (const next of self.afterWelcome(connection)) ws.send(Protocol.encode(next))
          return
        }
        const answer = self.answer(frame)
        if (answer !== undefined) ws.send(Protocol.encode(answer))
      })
    })
    return self
  })

const connect = (options: ChatClientOptions) =>
  Effect.gen(function* () {
    const reconnect = reconnectSchedule({ initialDelay: "20 millis", maxDelay: "100 millis" })
    const context = yield* Layer.build(ChatClient.layer({ reconnect, ...options }))
    const client = Context.get(context, ChatClient)
    const events: Array<ChatEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(client.events, (event) => Effect.sync(() => events.push(event))))
    return { client, events }
  })

const waitFor = (what: string, check: () => boolean) =>
  Effect.sync(check).pipe(
    Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutFail({ duration: 5000, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie
  )

/** The frames of `type` the server received, without their refs, with the connection they came on. */
const received = (server: Scripted, type: string) =>
  server.frames.filter(({ frame }) => frame.type === type).map(({ connection, frame }) => ({ connection, frame }))

describe("ChatClient on the wire: chat features", () => {
  it.scopedLive("asks for every feature by default and tells which the server enabled", () =>
    Effect.gen(function* () {
      const server = yield* scripted(["typing", "edits"])
      const { client } = yield* connect({ url: server.url })
      const [hello] = received(server, "hello")
      assert.deepStrictEqual(hello?.frame.type === "hello" && hello.frame.features, [
        "typing",
        "edits",
        "reactions",
        "receipts"
      ])
      assert.deepStrictEqual(yield* client.features, ["typing", "edits"])
    })
  )

  it.scopedLive("asks for the features it is given, and for none without the field", () =>
    Effect.gen(function* () {
      const server = yield* scripted()
      const some = yield* connect({ url: server.url, name: "some", features: ["reactions"] })
      const none = yield* connect({ url: server.url, name: "none", features: [] })
      const hellos = received(server, "hello").map(({ frame }) => frame)
      assert.deepStrictEqual(
        hellos.map((hello) => hello.type === "hello" && [hello.name, "features" in hello ? hello.features : "absent"]),
        [
          ["some", ["reactions"]],
          ["none", "absent"]
        ]
      )
      assert.deepStrictEqual([yield* some.client.features, yield* none.client.features], [["reactions"], []])
    })
  )

  it.scopedLive("typing is written at once, at most once a second per room, and never queued or sent again", () =>
    Effect.gen(function* () {
      const server = yield* scripted()
      const { client, events } = yield* connect({ url: server.url, name: "ann", rooms: ["lobby", "dev"] })
      assert.isTrue(yield* client.typing("lobby"))
      assert.isFalse(yield* client.typing("lobby"))
      assert.isTrue(yield* client.typing("dev"))
      const hints = () =>
        received(server, "typing").map(({ connection, frame: { ref, ...frame } }) => ({
          connection,
          frame,
          ref: typeof ref
        }))
      assert.deepStrictEqual(hints(), [
        { connection: 1, frame: { type: "typing", room: "lobby" }, ref: "string" },
        { connection: 1, frame: { type: "typing", room: "dev" }, ref: "string" }
      ])

      // Written while a queued request waits for its answer: a hint does not wait behind it.
      server.answer = (frame) => (frame.type === "edit" ? undefined : ackAll(frame))
      const edit = yield* Effect.fork(client.edit("lobby", 3, "held"))
      yield* waitFor("the edit", () => received(server, "edit").length === 1)
      yield* Effect.sleep("1100 millis")
      assert.isTrue(yield* client.typing("lobby"))

      // A hint whose answer the connection took with it is just gone: false, not an error.
      server.answer = (frame) => (frame.type === "typing" || frame.type === "edit" ? undefined : ackAll(frame))
      yield* Effect.sleep("1100 millis")
      const unanswered = yield* Effect.fork(client.typing("lobby"))
      yield* waitFor("the fourth hint", () => hints().length === 4)
      server.refuse(true)
      yield* server.drop
      assert.isFalse(yield* unanswered)
      yield* waitFor("the disconnection", () => events.some((event) => event.type === "disconnected"))
      yield* Effect.sleep("1100 millis")
      // Out of the rate window, but no connection: not written, and not kept for later either.
      assert.isFalse(yield* client.typing("lobby"))
      server.answer = ackAll
      server.refuse(false)
      yield* waitFor("the reconnection", () => events.some((event) => event.type === "connected" && event.reconnected))
      yield* edit.await
      assert.deepStrictEqual(
        hints().map(({ connection }) => connection),
        [1, 1, 1, 1]
      )
      assert.isTrue(yield* client.typing("lobby"))
      assert.deepStrictEqual(hints()[4], { connection: 2, frame: { type: "typing", room: "lobby" }, ref: "string" })
    })
  )

  it.scopedLive("a refused typing hint fails with the code, and is not retried", () =>
    Effect.gen(function* () {
      const server = yield* scripted()
      server.answer = (frame) =>
        frame.type === "typing" && frame.ref !== undefined
          ? {
              type: "error",
              code: frame.room === "dev" ? "not_in_room" : "rate_limited",
              message: "no",
              ref: frame.ref
            }
          : ackAll(frame)
      const { client, events } = yield* connect({ url: server.url, name: "ann" })
      const notIn = yield* Effect.flip(client.typing("dev"))
      const limited = yield* Effect.flip(client.typing("lobby"))
      assert.deepStrictEqual(
        [notIn.reason, notIn.code, limited.reason, limited.code],
        ["Rejected", "not_in_room", "Rejected", "rate_limited"]
      )
      yield* Effect.sleep("200 millis")
      assert.strictEqual(received(server, "typing").length, 2)
      // Answers to its own requests: not events.
      assert.deepStrictEqual(
        events.filter((event) => event.type === "error"),
        []
      )
    })
  )

  it.scopedLive("reply, edit, delete, react and read go out in order with refs; refusals fail with their code", () =>
    Effect.gen(function* () {
      const server = yield* scripted()
      server.answer = (frame) => {
        if (!("ref" in frame) || frame.ref === undefined) return undefined
        if (frame.type === "send") return { type: "ack", ref: frame.ref, id: 8 }
        if (frame.type === "delete") return { type: "error", code: "forbidden", message: "not yours", ref: frame.ref }
        if (frame.type === "react" && frame.emoji === "🎉")
          return { type: "error", code: "too_many_reactions", message: "20 already", ref: frame.ref }
        return { type: "ack", ref: frame.ref }
      }
      const { client } = yield* connect({ url: server.url, name: "ann" })
      assert.strictEqual(yield* client.reply("lobby", 5, "yes"), 8)
      assert.strictEqual(yield* client.send("lobby", "and", { replyTo: 6 }), 8)
      yield* client.edit("lobby", 8, "yes!")
      const forbidden = yield* Effect.flip(client.delete("lobby", 2))
      yield* client.react("lobby", 8, "👍", true)
      const tooMany = yield* Effect.flip(client.react("lobby", 8, "🎉", true))
      yield* client.react("lobby", 8, "👍", false)
      yield* client.markRead("lobby", 8)
      assert.deepStrictEqual(
        [forbidden.reason, forbidden.code, tooMany.reason, tooMany.code],
        ["Rejected", "forbidden", "Rejected", "too_many_reactions"]
      )
      const requests = server.frames.map(({ frame }) => frame).filter((frame) => frame.type !== "hello")
      assert.isTrue(requests.every((frame) => "ref" in frame && typeof frame.ref === "string"))
      assert.deepStrictEqual(
        requests.map(({ ref: _ref, ...frame }) => frame),
        [
          { type: "send", room: "lobby", text: "yes", reply_to: 5 },
          { type: "send", room: "lobby", text: "and", reply_to: 6 },
          { type: "edit", room: "lobby", id: 8, text: "yes!" },
          { type: "delete", room: "lobby", id: 2 },
          { type: "react", room: "lobby", id: 8, emoji: "👍", on: true },
          { type: "react", room: "lobby", id: 8, emoji: "🎉", on: true },
          { type: "react", room: "lobby", id: 8, emoji: "👍", on: false },
          { type: "read", room: "lobby", id: 8 }
        ]
      )
    })
  )

  it.scopedLive(
    "an edit, a delete or a reaction whose answer was lost is sent again with its ref after a reconnect",
    () =>
      Effect.gen(function* () {
        const server = yield* scripted()
        let answering = false
        server.answer = (frame) => (answering ? ackAll(frame) : undefined)
        const { client } = yield* connect({ url: server.url, name: "ann" })
        const pending = yield* Effect.fork(
          Effect.all([
            client.edit("lobby", 1, "better"),
            client.delete("lobby", 2),
            client.react("lobby", 3, "👍", true),
            client.markRead("lobby", 3)
          ])
        )
        yield* waitFor("the edit", () => received(server, "edit").length === 1)
        answering = true
        yield* server.drop
        yield* pending.await.pipe(Effect.timeout("5 seconds"))
        const sent = server.frames.filter(({ frame }) => frame.type !== "hello")
        const [first, again] = received(server, "edit")
        assert.deepStrictEqual([first?.connection, again?.connection], [1, 2])
        assert.strictEqual(first?.frame.ref, again?.frame.ref)
        assert.deepStrictEqual(
          sent.map(({ connection, frame }) => `${connection}:${frame.type}`),
          ["1:edit", "2:edit", "2:delete", "2:react", "2:read"]
        )
      })
  )

  it.scopedLive("a repeated history that shows known messages changed tells the changes, not the messages again", () =>
    Effect.gen(function* () {
      const server = yield* scripted()
      const message = (id: number, extra: Partial<Protocol.Message> = {}): Protocol.Message => ({
        type: "message",
        room: "lobby",
        id,
        from: "bob",
        text: `m${id}`,
        at: id,
        ...extra
      })
      server.afterWelcome = (connection) => [
        {
          type: "history",
          room: "lobby",
          more: false,
          messages:
            connection === 1
              ? [message(1), message(2, { reactions: { "👍": ["cy"] } })]
              : [
                  message(1, { text: "m1 fixed", edited: 10 }),
                  message(2, { text: "", deleted: true }),
                  message(3, { reactions: { "👍": ["cy"] } })
                ]
        }
      ]
      const { events } = yield* connect({ url: server.url, name: "ann" })
      yield* waitFor("the first history", () => events.some((event) => event.type === "history"))
      yield* server.drop
      yield* waitFor("the change of message 2", () => events.some((event) => event.type === "deleted"))
      const after = events.slice(events.findIndex((event) => event.type === "disconnected"))
      assert.deepStrictEqual(
        after.flatMap((event): ReadonlyArray<unknown> =>
          event.type === "history"
            ? [event.messages.map((m) => m.id)]
            : event.type === "edited" || event.type === "deleted" || event.type === "reaction"
              ? [event]
              : []
        ),
        [
          [3],
          { type: "edited", room: "lobby", id: 1, text: "m1 fixed", at: 10 },
          {
            type: "deleted",
            room: "lobby",
            id: 2,
            at: (after.find((e) => e.type === "deleted") as Protocol.Deleted).at
          }
        ]
      )
    })
  )
})
