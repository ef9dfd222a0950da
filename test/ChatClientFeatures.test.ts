/**
 * ChatClient's chat features against the real server (in process, real sockets): replies, typing, edits and
 * deletions, reactions and read markers, each as a method and as the events other members see; refusals as typed
 * errors with their code; and what a connection that did not ask for a feature gets (none of its events).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Stream } from "effect"
import { ChatClient, type ChatClientOptions, type ChatEvent } from "../src/client/ChatClient.js"
import * as TestServer from "./support/TestServer.js"

interface Member {
  readonly client: ChatClient["Type"]
  readonly events: Array<ChatEvent>
  /** Waits until the events so far hold one that `match` picks, and returns it. */
  readonly next: <E extends ChatEvent>(what: string, match: (event: ChatEvent) => event is E) => Effect.Effect<E>
  readonly until: (what: string, check: (events: ReadonlyArray<ChatEvent>) => boolean) => Effect.Effect<void>
}

const join = (name: string, options: Partial<ChatClientOptions> = {}) =>
  Effect.gen(function* () {
    const url = yield* TestServer.chatUrl
    const context = yield* Layer.build(ChatClient.layer({ url, name, ...options }))
    const client = Context.get(context, ChatClient)
    const events: Array<ChatEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(client.events, (event) => Effect.sync(() => events.push(event))))
    const until = (what: string, check: (events: ReadonlyArray<ChatEvent>) => boolean) =>
      Effect.sync(() => check(events)).pipe(
        Effect.repeat({ until: (done) => done, schedule: Schedule.spaced("10 millis") }),
        Effect.timeoutFail({
          duration: 5000,
          onTimeout: () => new Error(`${name} timed out waiting for ${what}; events: ${JSON.stringify(events)}`)
        }),
        Effect.orDie,
        Effect.asVoid
      )
    const next = <E extends ChatEvent>(what: string, match: (event: ChatEvent) => event is E) =>
      Effect.map(
        until(what, (events) => events.some(match)),
        () => events.find(match)!
      )
    return { client, events, next, until } satisfies Member
  })

const is =
  <T extends ChatEvent["type"]>(type: T, where: (event: Extract<ChatEvent, { type: T }>) => boolean = () => true) =>
  (event: ChatEvent): event is Extract<ChatEvent, { type: T }> =>
    event.type === type && where(event as Extract<ChatEvent, { type: T }>)

const messages = (member: Member) =>
  member.events.flatMap((e) => (e.type === "message" ? [e] : e.type === "history" ? e.messages : []))

/** Everyone in `lobby`; `members` of alice's join seen by all, so later frames reach everyone. */
const trio = Effect.gen(function* () {
  const alice = yield* join("alice")
  const bob = yield* join("bob")
  const plain = yield* join("plain", { features: [] })
  yield* alice.until("everyone", (events) => events.filter(is("joined")).length === 2)
  return { alice, bob, plain }
})

const refusal = <A>(effect: Effect.Effect<A, { readonly reason: string; readonly code?: string | undefined }>) =>
  Effect.map(Effect.flip(effect), (error) => `${error.reason}:${error.code}`)

describe("ChatClient features against the server", () => {
  it.live("welcome.features answers what was asked for", () =>
    Effect.gen(function* () {
      const all = yield* join("all")
      const some = yield* join("some", { features: ["typing", "receipts"] })
      const none = yield* join("none", { features: [] })
      assert.deepStrictEqual([...(yield* all.client.features)].sort(), ["edits", "reactions", "receipts", "typing"])
      assert.deepStrictEqual([...(yield* some.client.features)].sort(), ["receipts", "typing"])
      assert.deepStrictEqual(yield* none.client.features, [])
    }).pipe(TestServer.serve())
  )

  it.live("a reply carries reply_to for everyone; an id the room never had is no_such_message", () =>
    Effect.gen(function* () {
      const { alice, bob, plain } = yield* trio
      const question = yield* alice.client.send("lobby", "lunch?")
      const answer = yield* bob.client.reply("lobby", question, "yes")
      const atAlice = yield* alice.next(
        "the reply",
        is("message", (m) => m.id === answer)
      )
      assert.deepStrictEqual([atAlice.text, atAlice.reply_to], ["yes", question])
      const atPlain = yield* plain.next(
        "the reply",
        is("message", (m) => m.id === answer)
      )
      assert.strictEqual(atPlain.reply_to, question)
      assert.strictEqual(yield* refusal(bob.client.reply("lobby", 999, "to nothing")), "Rejected:no_such_message")
      const history = yield* bob.client.history("lobby")
      assert.deepStrictEqual(
        history.messages.map((m) => [m.text, m.reply_to]),
        [
          ["lunch?", undefined],
          ["yes", question]
        ]
      )
    }).pipe(TestServer.serve())
  )

  it.live(
    "typing reaches the other members with the feature, not the typist nor those without it; outside a room it is refused",
    () =>
      Effect.gen(function* () {
        const { alice, bob, plain } = yield* trio
        assert.isTrue(yield* alice.client.typing("lobby"))
        assert.strictEqual(yield* refusal(alice.client.typing("elsewhere")), "Rejected:not_in_room")
        const typing = yield* bob.next("alice typing", is("typing"))
        assert.deepStrictEqual(typing, { type: "typing", room: "lobby", name: "alice" })
        // A message after the hint: once it arrived, the hint would have too.
        yield* alice.client.send("lobby", "done typing")
        for (const member of [alice, plain]) {
          yield* member.until("the message", () => messages(member).some((m) => m.text === "done typing"))
        }
        assert.deepStrictEqual(
          [alice, plain].map((member) => member.events.filter(is("typing")).length),
          [0, 0]
        )
      }).pipe(TestServer.serve())
  )

  it.live("edit and delete by the author reach everyone with the feature; others are forbidden", () =>
    Effect.gen(function* () {
      const { alice, bob, plain } = yield* trio
      const id = yield* alice.client.send("lobby", "teh typo")
      const other = yield* alice.client.send("lobby", "regret")
      assert.strictEqual(yield* refusal(bob.client.edit("lobby", id, "not mine")), "Rejected:forbidden")
      assert.strictEqual(yield* refusal(bob.client.delete("lobby", id)), "Rejected:forbidden")
      assert.strictEqual(yield* refusal(alice.client.edit("lobby", 999, "nothing")), "Rejected:no_such_message")

      yield* alice.client.edit("lobby", id, "the typo")
      const edited = yield* bob.next("the edit", is("edited"))
      assert.deepStrictEqual([edited.room, edited.id, edited.text], ["lobby", id, "the typo"])
      yield* alice.client.delete("lobby", other)
      const deleted = yield* bob.next("the deletion", is("deleted"))
      assert.deepStrictEqual([deleted.room, deleted.id], ["lobby", other])

      // History: the edit marked, the deleted text gone for good; "[deleted]" for a client without the feature.
      const history = yield* bob.client.history("lobby")
      const shown = history.messages.map((m) => [m.id, m.text, m.edited !== undefined, m.deleted === true])
      assert.deepStrictEqual(shown, [
        [id, "the typo", true, false],
        [other, "", false, true]
      ])
      const old = yield* plain.client.history("lobby")
      assert.deepStrictEqual(
        old.messages.map((m) => m.text),
        ["the typo", "[deleted]"]
      )
      yield* plain.until("the original message", () => messages(plain).some((m) => m.id === other))
      assert.deepStrictEqual(
        plain.events.filter((e) => e.type === "edited" || e.type === "deleted"),
        []
      )
    }).pipe(TestServer.serve())
  )

  it.live("reactions: on and off reach everyone with the feature, history holds them, 20 emoji at most", () =>
    Effect.gen(function* () {
      const { alice, bob, plain } = yield* trio
      const id = yield* alice.client.send("lobby", "ship it")
      yield* bob.client.react("lobby", id, "👍", true)
      yield* alice.client.react("lobby", id, "👍", true)
      yield* bob.client.react("lobby", id, "❤️", true)
      yield* bob.client.react("lobby", id, "❤️", false)
      yield* alice.until("four reactions", (events) => events.filter(is("reaction")).length === 4)
      assert.deepStrictEqual(
        alice.events.filter(is("reaction")).map((r) => [r.id, r.emoji, r.name, r.on]),
        [
          [id, "👍", "bob", true],
          [id, "👍", "alice", true],
          [id, "❤️", "bob", true],
          [id, "❤️", "bob", false]
        ]
      )
      const history = yield* bob.client.history("lobby")
      assert.deepStrictEqual(history.messages[0]?.reactions, { "👍": ["bob", "alice"] })

      assert.strictEqual(yield* refusal(bob.client.react("lobby", id, "not one", true)), "Rejected:invalid_frame")
      assert.strictEqual(yield* refusal(bob.client.react("lobby", 999, "👍", true)), "Rejected:no_such_message")
      const emoji = Array.from({ length: 19 }, (_, i) => String.fromCodePoint(0x1f600 + i))
      yield* Effect.forEach(emoji, (e) => bob.client.react("lobby", id, e, true))
      assert.strictEqual(yield* refusal(bob.client.react("lobby", id, "🚀", true)), "Rejected:too_many_reactions")
      // An emoji the message has already is no new one.
      yield* alice.client.react("lobby", id, emoji[0]!, true)
      assert.deepStrictEqual(plain.events.filter(is("reaction")), [])
    }).pipe(TestServer.serve())
  )

  it.live("read markers: unread after a join and after markRead, never moving back", () =>
    Effect.gen(function* () {
      const alice = yield* join("alice", { rooms: ["dev"] })
      const ids = yield* Effect.forEach(["one", "two", "three"], (text) => alice.client.send("dev", text))
      const bob = yield* join("bob", { rooms: ["dev"] })
      const first = yield* bob.next(
        "unread after the join",
        is("unread", (u) => u.room === "dev")
      )
      assert.deepStrictEqual(first, { type: "unread", room: "dev", last_read: 0, count: 3 })

      yield* bob.client.markRead("dev", ids[1]!)
      const moved = yield* bob.next(
        "unread after markRead",
        is("unread", (u) => u.last_read === ids[1])
      )
      assert.strictEqual(moved.count, 1)
      // Never back.
      yield* bob.client.markRead("dev", ids[0]!)
      yield* bob.client.markRead("dev", ids[2]!)
      yield* bob.until("read to the end", (events) => events.some(is("unread", (u) => u.last_read === ids[2])))
      assert.isFalse(bob.events.some(is("unread", (u) => u.last_read === ids[0])))

      // A client without the feature gets no unread frames but may move its marker.
      const plain = yield* join("plain", { rooms: ["dev"], features: [] })
      yield* plain.client.markRead("dev", ids[2]!)
      assert.deepStrictEqual(plain.events.filter(is("unread")), [])
    }).pipe(TestServer.serve())
  )
})
