/**
 * The terminal client's chat features without a socket: the new commands, how replies, edits, deletions and
 * reactions print, what the transcript remembers (quotes, reaction counts, one's own reactions), unread counts per
 * room and who is typing.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ChatEvent } from "../src/client/ChatClient.js"
import type * as Protocol from "../src/protocol/Protocol.js"
import { ClientCommand, HELP, parse } from "../src/terminal/ClientCommand.js"
import * as TerminalFormat from "../src/terminal/TerminalFormat.js"
import { isChatInput } from "../src/terminal/TerminalUi.js"
import * as Transcript from "../src/terminal/Transcript.js"
import * as Typing from "../src/terminal/Typing.js"
import * as Unread from "../src/terminal/Unread.js"

const message = (id: number, from: string, text: string, extra: Partial<Protocol.Message> = {}): Protocol.Message => ({
  type: "message",
  room: "lobby",
  id,
  from,
  text,
  at: id * 1000,
  ...extra
})

const invalid = (line: string) => {
  const command = parse(line)
  return command._tag === "Invalid" ? command.message : `not invalid: ${command._tag}`
}

describe("ClientCommand.parse: chat features", () => {
  it("reads /reply, /edit, /delete, /react, /ids and /rooms", () => {
    assert.deepStrictEqual(parse("/reply 12 sure  thing"), ClientCommand.Reply({ id: 12, text: "sure  thing" }))
    assert.deepStrictEqual(parse("/reply #12 sure"), ClientCommand.Reply({ id: 12, text: "sure" }))
    assert.deepStrictEqual(parse("/edit 3 fixed typo"), ClientCommand.Edit({ id: 3, text: "fixed typo" }))
    assert.deepStrictEqual(parse("/delete 3"), ClientCommand.Delete({ id: 3 }))
    assert.deepStrictEqual(parse("/react 7 👍"), ClientCommand.React({ id: 7, emoji: "👍" }))
    assert.deepStrictEqual(parse("/react 7 ❤️"), ClientCommand.React({ id: 7, emoji: "❤️" }))
    assert.deepStrictEqual(parse("/REACT 7 :+1:"), ClientCommand.React({ id: 7, emoji: ":+1:" }))
    assert.deepStrictEqual([parse("/ids"), parse("/rooms")], [ClientCommand.Ids(), ClientCommand.Rooms()])
  })

  it("explains bad arguments in one line", () => {
    assert.strictEqual(invalid("/reply"), "usage: /reply ID TEXT")
    assert.strictEqual(invalid("/reply 12"), "usage: /reply ID TEXT")
    assert.strictEqual(invalid("/reply abc hi"), "not a message id: abc (a number; /ids shows them)")
    assert.strictEqual(invalid("/reply 0 hi"), "not a message id: 0 (a number; /ids shows them)")
    assert.strictEqual(invalid("/edit -4 hi"), "not a message id: -4 (a number; /ids shows them)")
    assert.strictEqual(invalid("/edit 4"), "usage: /edit ID TEXT")
    assert.match(invalid(`/edit 4 ${"x".repeat(4001)}`), /^message too long/)
    assert.strictEqual(invalid("/delete"), "usage: /delete ID")
    assert.strictEqual(invalid("/delete 1 2"), "usage: /delete ID")
    assert.strictEqual(invalid("/delete 1.5"), "not a message id: 1.5 (a number; /ids shows them)")
    assert.strictEqual(invalid("/react 7"), "usage: /react ID EMOJI")
    assert.strictEqual(invalid("/react 7 👍 ❤️"), "usage: /react ID EMOJI")
    assert.strictEqual(
      invalid("/react 7 abcdefghijklmnopq"),
      "not an emoji: abcdefghijklmnopq (1-16 characters, no spaces)"
    )
    assert.strictEqual(invalid("/react x 👍"), "not a message id: x (a number; /ids shows them)")
    assert.strictEqual(invalid("/ids now"), "usage: /ids")
    assert.strictEqual(invalid("/rooms all"), "usage: /rooms")
  })

  it("/help lists the new commands", () => {
    for (const command of ["/reply ID TEXT", "/edit ID TEXT", "/delete ID", "/react ID EMOJI", "/ids", "/rooms"]) {
      assert.isTrue(
        HELP.some((line) => line.trimStart().startsWith(command)),
        `${command} in /help`
      )
    }
  })

  it("takes chat lines and /reply for typing, not other commands", () => {
    assert.isTrue(isChatInput("h"))
    assert.isTrue(isChatInput("//slash"))
    assert.isTrue(isChatInput("/reply 3 ok"))
    assert.isFalse(isChatInput("/reply 3"))
    assert.isFalse(isChatInput("/join dev"))
    assert.isFalse(isChatInput("/"))
    assert.isFalse(isChatInput("   "))
  })
})

describe("TerminalFormat: chat features", () => {
  const plain: TerminalFormat.View = { room: "lobby", color: false }

  it("shows ids on request, for the current room and others", () => {
    const withIds = { ...plain, showIds: true }
    assert.strictEqual(TerminalFormat.formatMessage(withIds, message(12, "ann", "hi")), "#12 [ann]: hi")
    assert.strictEqual(TerminalFormat.formatMessage(plain, message(12, "ann", "hi")), "[ann]: hi")
    assert.strictEqual(
      TerminalFormat.formatMessage({ ...withIds, room: "dev" }, message(12, "ann", "hi")),
      "#lobby #12 [ann]: hi"
    )
  })

  it("quotes the start of the original of a reply when it is known, else its id", () => {
    const transcript = Transcript.make(() => "me")
    transcript.apply(message(3, "ann", "what do you all think about the new release notes?"))
    const view = { ...plain, known: transcript.get }
    assert.strictEqual(
      TerminalFormat.formatMessage(view, message(4, "bob", "great", { reply_to: 3 })),
      '[bob] ↪ ann "what do you all think about…": great'
    )
    assert.strictEqual(
      TerminalFormat.formatMessage(view, message(5, "bob", "and this", { reply_to: 1 })),
      "[bob] ↪ #1: and this"
    )
    assert.strictEqual(TerminalFormat.quote("a\n\tb   c"), '"a b c"')
    assert.strictEqual(TerminalFormat.quote("y".repeat(40)), `"${"y".repeat(30)}…"`)
    assert.strictEqual(TerminalFormat.quote("\x1b[2J"), '"\ufffd[2J"')
  })

  it("marks edited messages and shows deleted ones as [deleted], in history and live", () => {
    const transcript = Transcript.make(() => "me")
    const view = { ...plain, known: transcript.get }
    const history: ChatEvent = {
      type: "history",
      room: "lobby",
      more: false,
      messages: [
        message(1, "ann", "first", { edited: 5000 }),
        message(2, "ann", "", { deleted: true }),
        message(3, "bob", "third", { reactions: { "👍": ["ann", "me"], "❤️": ["ann"] } })
      ]
    }
    transcript.apply(history)
    assert.deepStrictEqual(TerminalFormat.formatEvent(view, history), [
      "[ann]: first (edited)",
      "[ann]: [deleted]",
      "[bob]: third",
      "  ↳ #3 👍 2 ❤️ 1"
    ])
    const changes: ReadonlyArray<ChatEvent> = [
      { type: "edited", room: "lobby", id: 3, text: "third, better", at: 9 },
      { type: "deleted", room: "lobby", id: 1, at: 9 },
      { type: "edited", room: "lobby", id: 99, text: "unknown one", at: 9 },
      { type: "deleted", room: "dev", id: 98, at: 9 }
    ]
    const lines = changes.flatMap((event) => {
      transcript.apply(event)
      return TerminalFormat.formatEvent(view, event)
    })
    assert.deepStrictEqual(lines, [
      "#3 [bob]: third, better (edited)",
      "#1 [ann]: [deleted]",
      "#99 (edited): unknown one",
      "#dev #98 [deleted]"
    ])
    assert.deepStrictEqual(transcript.get("lobby", 1), { from: "ann", text: "", deleted: true, reactions: new Map() })
  })

  it("prints the reactions of a message as one line when they change", () => {
    const transcript = Transcript.make(() => "me")
    const view = { ...plain, known: transcript.get }
    transcript.apply(message(12, "ann", "ship it"))
    const events: ReadonlyArray<ChatEvent> = [
      { type: "reaction", room: "lobby", id: 12, emoji: "👍", name: "bob", on: true },
      { type: "reaction", room: "lobby", id: 12, emoji: "👍", name: "cy", on: true },
      { type: "reaction", room: "lobby", id: 12, emoji: "❤️", name: "bob", on: true },
      { type: "reaction", room: "lobby", id: 12, emoji: "👍", name: "bob", on: false },
      { type: "reaction", room: "lobby", id: 12, emoji: "👍", name: "cy", on: false },
      { type: "reaction", room: "lobby", id: 12, emoji: "❤️", name: "bob", on: false },
      { type: "reaction", room: "lobby", id: 40, emoji: "🎉", name: "bob", on: true }
    ]
    const lines = events.flatMap((event) => {
      transcript.apply(event)
      return TerminalFormat.formatEvent(view, event)
    })
    assert.deepStrictEqual(lines, [
      "  ↳ #12 👍 1",
      "  ↳ #12 👍 2",
      "  ↳ #12 👍 2 ❤️ 1",
      "  ↳ #12 👍 1 ❤️ 1",
      "  ↳ #12 ❤️ 1",
      "  ↳ #12 no reactions",
      "  ↳ #40 bob 🎉"
    ])
  })

  it("prints nothing for typing and unread frames: they go to the status line and /rooms", () => {
    assert.deepStrictEqual(TerminalFormat.formatEvent(plain, { type: "typing", room: "lobby", name: "ann" }), [])
    assert.deepStrictEqual(
      TerminalFormat.formatEvent(plain, { type: "unread", room: "dev", last_read: 3, count: 2 }),
      []
    )
  })
})

describe("Transcript", () => {
  it("knows the user's own reactions, also on messages it never showed, and follows renames", () => {
    let me = "me"
    const transcript = Transcript.make(() => me)
    assert.isFalse(transcript.mine("lobby", 5, "👍"))
    transcript.react("lobby", 5, "👍", true)
    assert.isTrue(transcript.mine("lobby", 5, "👍"))
    transcript.apply({ type: "reaction", room: "lobby", id: 5, emoji: "👍", name: "ME", on: false })
    assert.isFalse(transcript.mine("lobby", 5, "👍"))

    transcript.apply(message(6, "ann", "x", { reactions: { "👍": ["me"], "🎉": ["ann"] } }))
    assert.deepStrictEqual([transcript.mine("lobby", 6, "👍"), transcript.mine("lobby", 6, "🎉")], [true, false])
    // A message's reactions in history are the whole truth: removed on another device, not mine any more.
    transcript.apply(message(6, "ann", "x", { reactions: { "🎉": ["ann"] } }))
    assert.isFalse(transcript.mine("lobby", 6, "👍"))

    transcript.apply(message(7, "ann", "y", { reactions: { "👍": ["me"] } }))
    transcript.apply({ type: "renamed", from: "me", to: "myself", at: 0 })
    me = "myself"
    transcript.apply({ type: "reaction", room: "lobby", id: 7, emoji: "👍", name: "myself", on: true })
    assert.deepStrictEqual(transcript.get("lobby", 7)?.reactions.get("👍"), ["myself"])
  })

  it("forgets the oldest messages of a room past its bound", () => {
    const transcript = Transcript.make(() => "me", 2)
    for (const id of [1, 2, 3]) transcript.apply(message(id, "ann", `m${id}`))
    assert.deepStrictEqual(
      [1, 2, 3].map((id) => transcript.get("lobby", id)?.text),
      [undefined, "m2", "m3"]
    )
  })
})

describe("Unread", () => {
  const at = (room: string, id: number): Protocol.Message => ({ ...message(id, "ann", "x"), room })

  it("counts live messages of other rooms on top of the server's count; the current room stays read", () => {
    const unread = Unread.make()
    // A join: history (not counted), then the server's count.
    unread.history([at("dev", 8), at("dev", 9), at("dev", 10)], "lobby")
    assert.strictEqual(unread.get("dev").count, 0)
    unread.unread({ type: "unread", room: "dev", last_read: 8, count: 2 })
    unread.message(at("dev", 11), "lobby")
    unread.message(at("lobby", 4), "lobby")
    assert.deepStrictEqual(unread.get("dev"), { room: "dev", count: 3, latest: 11 })
    assert.deepStrictEqual(unread.get("lobby"), { room: "lobby", count: 0, latest: 4 })

    unread.deleted("dev", 10)
    assert.strictEqual(unread.get("dev").count, 2)
    // Deleting what was read already changes nothing.
    unread.deleted("dev", 7)
    assert.strictEqual(unread.get("dev").count, 2)

    unread.read("dev", 11)
    assert.strictEqual(unread.get("dev").count, 0)
    // The answer to an older marker does not undo that reading.
    unread.unread({ type: "unread", room: "dev", last_read: 8, count: 3 })
    assert.strictEqual(unread.get("dev").count, 0)
    unread.message(at("dev", 12), "lobby")
    assert.strictEqual(unread.get("dev").count, 1)
  })

  it("says 1000+ from the server's cap on", () => {
    assert.deepStrictEqual(
      [Unread.describeCount(999), Unread.describeCount(1000), Unread.describeCount(1003)],
      ["999", "1000+", "1000+"]
    )
  })
})

describe("Typing", () => {
  it("shows who types for 5 s after their last hint, until they say something", () => {
    const typing = Typing.make()
    typing.typing("lobby", "ann", 0)
    typing.typing("lobby", "bob", 1000)
    typing.typing("dev", "cy", 1000)
    assert.deepStrictEqual(typing.who("lobby", 4999), ["ann", "bob"])
    assert.deepStrictEqual(typing.who("lobby", 5000), ["bob"])
    typing.typing("lobby", "ann", 5500)
    assert.deepStrictEqual(typing.who("lobby", 5600), ["bob", "ann"])
    typing.stopped("lobby", "BOB")
    assert.deepStrictEqual(typing.who("lobby", 5600), ["ann"])
    assert.deepStrictEqual(typing.who("dev", 5999), ["cy"])
    assert.deepStrictEqual(typing.who("dev", 6000), [])
  })

  it("says it in a few words", () => {
    assert.deepStrictEqual(
      [[], ["ann"], ["ann", "bob"], ["ann", "bob", "cy"], ["ann", "bob", "cy", "dee"]].map(Typing.describe),
      [
        undefined,
        "ann is typing…",
        "ann and bob are typing…",
        "ann, bob and cy are typing…",
        "ann, bob and 2 others are typing…"
      ]
    )
  })
})
