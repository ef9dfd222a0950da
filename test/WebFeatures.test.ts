/**
 * The browser client's chat features (web/features.ts through the reducer of web/state.ts): replies, typing hints,
 * edits and deletions, reactions, unread counts and read markers. Driven as the page drives the reducer, read as a
 * person sees the timeline: `[2] bob: hi (edited) {👍 ann,bob} ↪ ann: original`.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ClientFrame, Message, ServerFrame } from "../src/protocol/Protocol.js"
import { type Conversation, type Item, badgeText, typingLine } from "../web/model.js"
import type { Command } from "../web/state.js"
import { type Client, makeClient, START } from "./support/WebClient.js"

const ALL = ["typing", "edits", "reactions", "receipts"]

type MessageFrame = Message
const message = (room: string, id: number, from: string, text: string, extra: Partial<MessageFrame> = {}) =>
  ({ type: "message", room, id, from, text, at: START + id, ...extra }) as MessageFrame

const history = (room: string, messages: Array<MessageFrame>, more = false): ServerFrame => ({
  type: "history",
  room,
  messages,
  more
})

/** Welcomed as `name` with `features` enabled (all by default), each room with its join history. */
const connect = (
  client: Client,
  name: string,
  rooms = ["lobby"],
  histories: Record<string, Array<MessageFrame>> = {},
  /** null: a server from before the features, whose welcome has no `features`. */
  features: Array<string> | null = ALL,
  resumed = false
) => {
  client.on({ kind: "connection", online: true })
  client.frame({
    type: "welcome",
    protocol: 1,
    name,
    rooms,
    users: 1,
    resume: `token-of-${name}`,
    resumed,
    ...(features === null ? {} : { features })
  })
  for (const room of rooms) client.frame(history(room, histories[room] ?? []))
}

const room = (client: Client, name: string): Conversation => {
  const conversation = client.state.conversations.get(`room:${name}`)
  assert.isDefined(conversation, `room ${name}`)
  return conversation!
}

const line = (item: Item): string => {
  const body = item.body
  switch (body.kind) {
    case "message": {
      const quote =
        body.quote === undefined
          ? ""
          : body.quote.kind === "missing"
            ? " ↪ not loaded"
            : ` ↪ ${body.quote.from}: ${body.quote.kind === "deleted" ? "[deleted]" : body.quote.excerpt}`
      if (body.deleted) return `[${body.id}] ${body.from}: [deleted]`
      const reactions = body.reactions.map((g) => `{${g.emoji} ${g.names.join(",")}}`).join("")
      return `[${body.id}] ${body.from}: ${body.text}${body.edited === undefined ? "" : " (edited)"}${
        reactions === "" ? "" : ` ${reactions}`
      }${quote}`
    }
    case "direct":
      return `@ ${body.from} → ${body.to}: ${body.text}`
    case "event":
      return `${body.warning ? "!" : "*"} ${body.text}`
    case "divider":
      return "--- New messages"
    case "pending":
      return `(${body.state}) ${body.text}${body.quote?.kind === "message" ? ` ↪ ${body.quote.from}: ${body.quote.excerpt}` : ""}`
  }
}
const lines = (conversation: Conversation) => conversation.items.map(line)

const sent = (commands: ReadonlyArray<Command>): Array<ClientFrame> =>
  commands.flatMap((c) => (c.kind === "send" || c.kind === "enqueue" ? [c.frame] : []))
/** The frames sent, without their refs. */
const sentPlain = (commands: ReadonlyArray<Command>) =>
  sent(commands).map((frame) => {
    const { ref: _, ...rest } = frame as ClientFrame & { ref?: string }
    return rest
  })
/** Read through a function: an assertion narrowing the field would otherwise stick for the rest of a test. */
const openMode = (client: Client) => client.state.messageMode
const lastRef = (client: Client): string => {
  const frame = sent(client.commands).at(-1)
  assert.isDefined(frame, "a request was sent")
  return (frame as { readonly ref: string }).ref
}

describe("WebFeatures", () => {
  describe("features", () => {
    it("asks for every feature, and offers only what the server enabled", () => {
      const client = makeClient()
      assert.deepInclude(client.state.hello(undefined), { features: ALL })
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "ann", "mine")] }, ["typing", "future-thing"])
      assert.deepStrictEqual([...client.state.features], ["typing"], "unknown names are dropped")
      client.on({ kind: "messageMode", id: 1, mode: "edit" })
      assert.isUndefined(client.state.messageMode, "no edit form without the edits feature")
      assert.deepStrictEqual(sent(client.on({ kind: "react", id: 1, emoji: "👍" })), [])
    })

    it("sends none of the new requests to a server that knows no features", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "hi")] }, null)
      client.on({ kind: "reply", id: 1 })
      assert.isUndefined(client.state.replyTo)
      assert.deepStrictEqual(sent(client.on({ kind: "composing", text: "h" })), [])
      client.frame(message("lobby", 2, "bob", "again"))
      assert.deepStrictEqual(sent(client.commands), [], "no read marker")
    })
  })

  describe("replies", () => {
    it("sends the reply with reply_to and shows a quote of the original", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "Where shall we meet?\nTell me")] })
      client.on({ kind: "reply", id: 1 })
      assert.strictEqual(client.state.replyTo?.id, 1)
      client.type("At the station")
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [
        { type: "send", room: "lobby", text: "At the station", reply_to: 1, ref }
      ])
      assert.isUndefined(client.state.replyTo, "the composer is done replying")
      assert.deepStrictEqual(
        lines(room(client, "lobby")).at(-1),
        "(sending) At the station ↪ bob: Where shall we meet? Tell me"
      )

      client.frame({ type: "ack", ref, id: 2 })
      assert.deepStrictEqual(
        lines(room(client, "lobby")).at(-1),
        "[2] ann: At the station ↪ bob: Where shall we meet? Tell me"
      )
      client.frame(message("lobby", 2, "ann", "At the station", { reply_to: 1 }))
      client.frame(message("lobby", 3, "carol", "me too", { reply_to: 1 }))
      assert.deepStrictEqual(lines(room(client, "lobby")).slice(1), [
        "[2] ann: At the station ↪ bob: Where shall we meet? Tell me",
        "[3] carol: me too ↪ bob: Where shall we meet? Tell me"
      ])
    })

    it("keeps a quote up to date as the original is edited, deleted, or loaded later", () => {
      const client = makeClient()
      connect(
        client,
        "ann",
        ["lobby"],
        {
          lobby: [
            message("lobby", 40, "bob", "first"),
            message("lobby", 41, "carol", "re", { reply_to: 40 }),
            message("lobby", 42, "dave", "re older", { reply_to: 7 })
          ]
        },
        ALL
      )
      const lobby = room(client, "lobby")
      assert.deepStrictEqual(lines(lobby).slice(1), ["[41] carol: re ↪ bob: first", "[42] dave: re older ↪ not loaded"])

      client.frame({ type: "edited", room: "lobby", id: 40, text: "first, corrected", at: START + 100 })
      assert.strictEqual(lines(lobby)[1], "[41] carol: re ↪ bob: first, corrected")
      client.frame({ type: "deleted", room: "lobby", id: 40, at: START + 200 })
      assert.strictEqual(lines(lobby)[1], "[41] carol: re ↪ bob: [deleted]")

      client.frame(history("lobby", [message("lobby", 7, "erin", "an old one")], false))
      assert.strictEqual(lines(lobby).at(-1), "[42] dave: re older ↪ erin: an old one")
    })

    it("cuts a long original to a one-line excerpt", () => {
      const client = makeClient()
      const long = `${"word ".repeat(40)}end`
      connect(client, "ann", ["lobby"], {
        lobby: [message("lobby", 1, "bob", long), message("lobby", 2, "ann", "yes", { reply_to: 1 })]
      })
      const quote = room(client, "lobby").items[1]!.body
      assert.strictEqual(
        quote.kind === "message" && quote.quote?.kind === "message" && [...quote.quote.excerpt].length,
        80
      )
      assert.isTrue(quote.kind === "message" && quote.quote?.kind === "message" && quote.quote.excerpt.endsWith("…"))
    })

    it("cancels a reply, and forgets it when another conversation is opened", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { lobby: [message("lobby", 1, "bob", "hi")] })
      client.on({ kind: "reply", id: 1 })
      client.on({ kind: "cancelReply" })
      client.type("not a reply")
      assert.notProperty(sent(client.commands)[0]!, "reply_to")

      client.on({ kind: "reply", id: 1 })
      client.on({ kind: "open", id: "room:side" })
      assert.isUndefined(client.state.replyTo)
      client.type("in side")
      assert.notProperty(sent(client.commands)[0]!, "reply_to")
      client.on({ kind: "reply", id: 99 })
      assert.isUndefined(client.state.replyTo, "only to a loaded message")
    })
  })

  describe("typing", () => {
    it("shows who is typing for five seconds, until their message comes", () => {
      const client = makeClient()
      connect(client, "ann")
      const lobby = room(client, "lobby")
      const first = client.frame({ type: "typing", room: "lobby", name: "alice" })
      client.frame({ type: "typing", room: "lobby", name: "bob" })
      client.frame({ type: "typing", room: "lobby", name: "ANN" })
      assert.strictEqual(typingLine(lobby.typingNames()), "alice and bob are typing…", "never ourselves")
      const timer = first.find((c) => c.kind === "later")
      assert.deepStrictEqual(timer, { kind: "later", ms: 5_000, event: { kind: "typingDue", room: "lobby" } })

      client.frame(message("lobby", 1, "Alice", "done"))
      assert.strictEqual(typingLine(lobby.typingNames()), "bob is typing…")
      client.tick(4_999)
      client.on(timer!.event)
      assert.deepStrictEqual(lobby.typingNames(), ["bob"])
      client.tick(1)
      client.on(timer!.event)
      assert.deepStrictEqual(lobby.typingNames(), [])
      assert.isUndefined(typingLine([]))
    })

    it("keeps a hint whose timer fired early, and renews it with each frame", () => {
      const client = makeClient()
      connect(client, "ann")
      client.frame({ type: "typing", room: "lobby", name: "bob" })
      client.tick(3_000)
      client.frame({ type: "typing", room: "lobby", name: "bob" })
      client.tick(2_000)
      const due = client.on({ kind: "typingDue", room: "lobby" })
      assert.deepStrictEqual(room(client, "lobby").typingNames(), ["bob"], "renewed 2 s ago")
      assert.deepInclude(due, { kind: "later", ms: 3_000, event: { kind: "typingDue", room: "lobby" } })
      client.frame({ type: "left", room: "lobby", name: "bob", at: START })
      assert.deepStrictEqual(room(client, "lobby").typingNames(), [])
    })

    it("says it is typing at most once a second, not for commands or blank text", () => {
      const client = makeClient()
      connect(client, "ann")
      assert.deepStrictEqual(sentPlain(client.on({ kind: "composing", text: "h" })), [
        { type: "typing", room: "lobby" }
      ])
      client.tick(999)
      assert.deepStrictEqual(sent(client.on({ kind: "composing", text: "he" })), [])
      client.tick(1)
      assert.deepStrictEqual(sentPlain(client.on({ kind: "composing", text: "hel" })), [
        { type: "typing", room: "lobby" }
      ])
      client.tick(5_000)
      assert.deepStrictEqual(sent(client.on({ kind: "composing", text: "/nick bo" })), [])
      assert.deepStrictEqual(sent(client.on({ kind: "composing", text: "   " })), [])
      assert.lengthOf(sent(client.on({ kind: "composing", text: "//slash" })), 1)
      client.on({ kind: "connection", online: false })
      client.tick(5_000)
      assert.deepStrictEqual(sent(client.on({ kind: "composing", text: "offline" })), [])
    })
  })

  describe("edit and delete", () => {
    const mine = () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [message("lobby", 1, "ann", "helo"), message("lobby", 2, "bob", "hi ann")]
      })
      return client
    }

    it("edits our own message: the form, the request, and the (edited) mark", () => {
      const client = mine()
      const lobby = room(client, "lobby")
      client.on({ kind: "messageMode", id: 2, mode: "edit" })
      assert.isUndefined(client.state.messageMode, "not someone else's")
      client.on({ kind: "messageMode", id: 1, mode: "edit" })
      assert.deepInclude(openMode(client), { id: 1, mode: "edit" })

      client.on({ kind: "saveEdit", id: 1, text: "   " })
      assert.match(client.state.composerError ?? "", /cannot be empty/)
      assert.deepStrictEqual(sent(client.commands), [])

      client.on({ kind: "saveEdit", id: 1, text: "hello\n" })
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [{ type: "edit", room: "lobby", id: 1, text: "hello", ref }])
      assert.isDefined(client.state.messageMode, "open until the server says yes")
      // The server's change comes before its ack, with the text it kept: an app's moderation may have changed it.
      client.frame({ type: "edited", room: "lobby", id: 1, text: "hello ***", at: START + 500 })
      assert.strictEqual(lines(lobby)[0], "[1] ann: hello *** (edited)")
      client.frame({ type: "ack", ref })
      assert.isUndefined(client.state.messageMode)
      assert.strictEqual(lines(lobby)[0], "[1] ann: hello *** (edited)", "the ack does not put our text back")
      const body = lobby.items[0]!.body
      assert.isTrue(body.kind === "message" && body.edited === START + 500, "the server's time")
    })

    it("keeps the edit form open and says why when the server refuses", () => {
      const client = mine()
      client.on({ kind: "messageMode", id: 1, mode: "edit" })
      client.on({ kind: "saveEdit", id: 1, text: "hello" })
      client.frame({ type: "error", code: "forbidden", message: "not yours", ref: lastRef(client) })
      assert.strictEqual(client.state.composerError, "Only its author can change a message.")
      assert.deepInclude(openMode(client), { id: 1, mode: "edit" })
      assert.strictEqual(lines(room(client, "lobby"))[0], "[1] ann: helo")
      client.on({ kind: "saveEdit", id: 1, text: "helo" })
      assert.isUndefined(client.state.messageMode, "saving the text unchanged just closes the form")
    })

    it("deletes our own message after asking, and others' deletions show as [deleted]", () => {
      const client = mine()
      const lobby = room(client, "lobby")
      client.on({ kind: "messageMode", id: 1, mode: "confirmDelete" })
      assert.deepInclude(openMode(client), { id: 1, mode: "confirmDelete" })
      client.on({ kind: "delete", id: 1 })
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [{ type: "delete", room: "lobby", id: 1, ref }])
      client.frame({ type: "deleted", room: "lobby", id: 1, at: START + 8 })
      client.frame({ type: "ack", ref })
      assert.strictEqual(lines(lobby)[0], "[1] ann: [deleted]")
      assert.isUndefined(client.state.messageMode)
      client.on({ kind: "delete", id: 1 })
      assert.deepStrictEqual(sent(client.commands), [], "nothing left to delete")

      client.frame({ type: "deleted", room: "lobby", id: 2, at: START + 9 })
      client.frame({ type: "edited", room: "lobby", id: 2, text: "back from the dead", at: START + 10 })
      client.frame({ type: "reaction", room: "lobby", id: 2, emoji: "👍", name: "carol", on: true })
      assert.deepStrictEqual(lines(lobby), ["[1] ann: [deleted]", "[2] bob: [deleted]"])
      const body = lobby.items[1]!.body
      assert.isTrue(body.kind === "message" && body.text === "" && body.reactions.length === 0)
      client.on({ kind: "reply", id: 2 })
      assert.isUndefined(client.state.replyTo, "no replying to a deleted message")
    })

    it("shows what history says of edits and deletions", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [
          message("lobby", 1, "bob", "", { deleted: true }),
          message("lobby", 2, "bob", "fixed", { edited: START + 50 }),
          message("lobby", 3, "bob", "[deleted]", { deleted: true })
        ]
      })
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[1] bob: [deleted]",
        "[2] bob: fixed (edited)",
        "[3] bob: [deleted]"
      ])
    })
  })

  describe("reactions", () => {
    it("shows reactions from history and live frames, and toggles ours", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [message("lobby", 1, "bob", "party", { reactions: { "🎉": ["bob", "carol"], "👍": [] } })]
      })
      const lobby = room(client, "lobby")
      assert.strictEqual(lines(lobby)[0], "[1] bob: party {🎉 bob,carol}")
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "dave", on: true })
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "🎉", name: "bob", on: false })
      assert.strictEqual(lines(lobby)[0], "[1] bob: party {🎉 carol}{👍 dave}")

      client.on({ kind: "react", id: 1, emoji: "🎉" })
      let ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [
        { type: "react", room: "lobby", id: 1, emoji: "🎉", on: true, ref }
      ])
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "🎉", name: "ann", on: true })
      client.frame({ type: "ack", ref })
      assert.strictEqual(lines(lobby)[0], "[1] bob: party {🎉 carol,ann}{👍 dave}")

      client.on({ kind: "react", id: 1, emoji: "🎉" })
      ref = lastRef(client)
      assert.deepInclude(sent(client.commands)[0], { emoji: "🎉", on: false }, "a chip of ours takes it back")
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "🎉", name: "ann", on: false })
      client.frame({ type: "ack", ref })
      assert.strictEqual(lines(lobby)[0], "[1] bob: party {🎉 carol}{👍 dave}")

      // A reaction the server already had (under our old name, say) is acknowledged and changes nothing.
      client.on({ kind: "react", id: 1, emoji: "👍" })
      client.frame({ type: "ack", ref: lastRef(client) })
      assert.strictEqual(lines(lobby)[0], "[1] bob: party {🎉 carol}{👍 dave}")
    })

    it("follows a reactor's new name, as the server's later reaction frames do", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [message("lobby", 1, "bob", "hi", { reactions: { "👍": ["carol", "ann"], "🎉": ["dave"] } })]
      })
      const lobby = room(client, "lobby")
      client.frame({ type: "renamed", from: "carol", to: "caro", at: START })
      // The server took carol's reaction back by her user, under the name she has now.
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "caro", on: false })
      assert.strictEqual(lines(lobby)[0], "[1] bob: hi {👍 ann}{🎉 dave}")

      client.type("/nick anna")
      client.frame({ type: "ack", ref: lastRef(client) })
      client.on({ kind: "react", id: 1, emoji: "👍" })
      assert.deepInclude(sent(client.commands)[0], { emoji: "👍", on: false }, "still ours after our rename")
    })

    it("closes the picker on a pick, and says why the server refused", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "hi")] })
      client.on({ kind: "messageMode", id: 1, mode: "react" })
      assert.deepInclude(openMode(client), { id: 1, mode: "react" })
      client.on({ kind: "messageMode", id: 1, mode: "react" })
      assert.isUndefined(client.state.messageMode, "the React button toggles the picker")
      client.on({ kind: "messageMode", id: 1, mode: "react" })
      client.on({ kind: "react", id: 1, emoji: "😮" })
      assert.isUndefined(client.state.messageMode)
      client.frame({ type: "error", code: "too_many_reactions", message: "20", ref: lastRef(client) })
      assert.match(client.state.composerError ?? "", /more kinds of reactions/)
      assert.strictEqual(lines(room(client, "lobby"))[0], "[1] bob: hi")
      assert.deepStrictEqual(sent(client.on({ kind: "react", id: 1, emoji: "two words" })), [], "not an emoji")
    })
  })

  describe("unread and read markers", () => {
    it("shows the server's count as a badge, and counts on from there", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { side: [message("side", 5, "bob", "old")] })
      client.frame({ type: "unread", room: "side", last_read: 2, count: 3 })
      assert.strictEqual(room(client, "side").unread, 3)
      client.frame(message("side", 6, "bob", "new"))
      assert.strictEqual(room(client, "side").unread, 4)
      client.frame({ type: "deleted", room: "side", id: 6, at: START })
      assert.strictEqual(room(client, "side").unread, 3, "the server counts no deleted messages")
      client.frame({ type: "unread", room: "side", last_read: 6, count: 0 })
      assert.strictEqual(room(client, "side").unread, 0, "read on another device")
    })

    it("does not take a count that trails messages already here (the server counts when the marker moves)", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { side: [message("side", 1, "bob", "one")] })
      client.frame({ type: "unread", room: "side", last_read: 0, count: 1 })
      // Read up to 1 on another device; two messages come before the server's word of that marker.
      client.frame(message("side", 2, "bob", "two"))
      client.frame(message("side", 3, "ann", "mine"))
      client.frame(message("side", 4, "bob", "four"))
      client.frame({ type: "unread", room: "side", last_read: 1, count: 0 })
      assert.strictEqual(room(client, "side").unread, 2, "two of others after the marker are here")
      client.frame({ type: "unread", room: "side", last_read: 4, count: 0 })
      assert.strictEqual(room(client, "side").unread, 0)
    })

    it("says 999+ for the server's cap, and keeps saying it", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "busy"])
      client.frame({ type: "unread", room: "busy", last_read: 0, count: 1000 })
      assert.strictEqual(badgeText(room(client, "busy").unread), "999+")
      client.frame(message("busy", 2000, "bob", "more"))
      assert.strictEqual(badgeText(room(client, "busy").unread), "999+")
      client.frame({ type: "deleted", room: "busy", id: 2000, at: START })
      assert.strictEqual(room(client, "busy").unread, 1001, "at the cap the count says 'at least', so it stays")
      assert.strictEqual(badgeText(999), "999")
      assert.strictEqual(badgeText(1), "1")
    })

    it("puts the New messages line after the read marker when the room is opened", () => {
      const client = makeClient()
      const side = [1, 2, 3, 4].map((id) => message("side", id, "bob", `m${id}`))
      connect(client, "ann", ["lobby", "side"], { side })
      client.frame({ type: "unread", room: "side", last_read: 2, count: 2 })
      const opened = client.on({ kind: "open", id: "room:side" })
      assert.deepStrictEqual(lines(room(client, "side")), [
        "[1] bob: m1",
        "[2] bob: m2",
        "--- New messages",
        "[3] bob: m3",
        "[4] bob: m4"
      ])
      assert.deepStrictEqual(
        sentPlain(opened),
        [{ type: "read", room: "side", id: 4 }],
        "seen at once: opened at the end"
      )

      client.frame({ type: "unread", room: "side", last_read: 4, count: 0 })
      client.frame(message("side", 5, "bob", "m5"))
      assert.strictEqual(lines(room(client, "side")).at(-1), "[5] bob: m5", "the line stays while the room is open")
      assert.include(lines(room(client, "side")), "--- New messages")
      client.on({ kind: "open", id: "room:lobby" })
      client.on({ kind: "open", id: "room:side" })
      assert.notInclude(lines(room(client, "side")), "--- New messages", "all read: no line next time")
    })

    it("places the line in a room opened by its join, from the unread frame after the history", () => {
      const client = makeClient()
      client.on({ kind: "connection", online: true })
      client.frame({
        type: "welcome",
        protocol: 1,
        name: "ann",
        rooms: ["lobby"],
        users: 1,
        resume: "r",
        resumed: false,
        features: ALL
      })
      client.on({ kind: "viewing", visible: false, atBottom: true })
      client.frame(
        history(
          "lobby",
          [1, 2, 3].map((id) => message("lobby", id, "bob", `m${id}`))
        )
      )
      client.frame({ type: "unread", room: "lobby", last_read: 1, count: 2 })
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[1] bob: m1",
        "--- New messages",
        "[2] bob: m2",
        "[3] bob: m3"
      ])
      assert.strictEqual(room(client, "lobby").unread, 2, "a hidden tab counts its open room too")
      assert.deepStrictEqual(sent(client.commands), [], "the tab is hidden: nothing is seen")

      const shown = client.on({ kind: "viewing", visible: true, atBottom: true })
      assert.deepStrictEqual(sentPlain(shown), [{ type: "read", room: "lobby", id: 3 }])
      assert.strictEqual(room(client, "lobby").unread, 0)
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[1] bob: m1",
        "--- New messages",
        "[2] bob: m2",
        "[3] bob: m3"
      ])
    })

    it("marks read only what is seen, and only when the marker moves forward", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "one")] })
      assert.deepStrictEqual(sentPlain(client.commands), [{ type: "read", room: "lobby", id: 1 }])
      client.frame({ type: "unread", room: "lobby", last_read: 1, count: 0 })

      client.on({ kind: "viewing", visible: true, atBottom: false })
      assert.deepStrictEqual(sent(client.frame(message("lobby", 2, "bob", "two"))), [], "scrolled up: not seen")
      client.tick(5_000)
      assert.deepStrictEqual(sentPlain(client.on({ kind: "viewing", visible: true, atBottom: true })), [
        { type: "read", room: "lobby", id: 2 }
      ])
      assert.deepStrictEqual(sent(client.on({ kind: "viewing", visible: false, atBottom: true })), [])
      assert.deepStrictEqual(sent(client.on({ kind: "viewing", visible: true, atBottom: true })), [], "no news")
      assert.deepStrictEqual(sent(client.frame({ type: "typing", room: "lobby", name: "bob" })), [])

      client.frame({ type: "unread", room: "lobby", last_read: 7, count: 0 })
      assert.deepStrictEqual(sent(client.frame(message("lobby", 3, "bob", "three"))), [], "another device read further")
      client.frame({ type: "error", code: "not_in_room", message: "left", ref: "t-unknown" })
      assert.isUndefined(client.state.composerError)
    })

    it("moves the marker at most once a second in a busy room, and the newest seen goes out when it is up", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { lobby: [message("lobby", 1, "bob", "one")] })
      assert.strictEqual(room(client, "lobby").readSent, 1, "read on arrival")
      const reads = (commands: ReadonlyArray<Command>) => sentPlain(commands).filter((f) => f.type === "read")
      client.tick(300)
      const second = client.frame(message("lobby", 2, "bob", "two"))
      assert.deepStrictEqual(reads(second), [], "every frame costs a rate-limit token: not yet")
      const timer = second.find((c) => c.kind === "later")
      assert.deepStrictEqual(timer, { kind: "later", ms: 700, event: { kind: "readDue", room: "lobby" } })
      client.tick(100)
      const third = client.frame(message("lobby", 3, "bob", "three"))
      assert.isFalse(
        third.some((c) => c.kind === "later"),
        "one timer at a time"
      )
      // The user moves on before the second is up: what they saw is still read.
      client.on({ kind: "open", id: "room:side" })
      client.frame(message("lobby", 4, "bob", "not seen"))
      client.tick(600)
      assert.deepStrictEqual(reads(client.on(timer!.event)), [{ type: "read", room: "lobby", id: 3 }])
      assert.strictEqual(room(client, "lobby").unread, 1)
    })

    it("counts in the open room while the tab is hidden, and marks where that began when it is shown", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "seen")] })
      client.frame({ type: "unread", room: "lobby", last_read: 1, count: 0 })
      client.on({ kind: "viewing", visible: false, atBottom: true })
      client.frame(message("lobby", 2, "bob", "while away"))
      client.frame(message("lobby", 3, "bob", "still away"))
      client.frame({ type: "direct", from: "carol", to: "ann", text: "psst", at: START })
      const lobby = room(client, "lobby")
      assert.strictEqual(lobby.unread, 2, "the tab's title can say so")
      assert.deepStrictEqual(sent(client.commands), [], "nothing read")
      client.frame({ type: "unread", room: "lobby", last_read: 1, count: 2 })
      assert.strictEqual(lobby.unread, 2, "the server agrees")

      client.tick(60_000)
      const shown = client.on({ kind: "viewing", visible: true, atBottom: true })
      assert.deepStrictEqual(sentPlain(shown), [{ type: "read", room: "lobby", id: 3 }])
      assert.strictEqual(lobby.unread, 0)
      assert.deepStrictEqual(lines(lobby), [
        "[1] bob: seen",
        "--- New messages",
        "[2] bob: while away",
        "[3] bob: still away"
      ])

      client.on({ kind: "open", id: "dm:carol" })
      client.on({ kind: "viewing", visible: false, atBottom: true })
      client.frame({ type: "direct", from: "carol", to: "ann", text: "again", at: START + 1 })
      assert.strictEqual(client.state.conversations.get("dm:carol")?.unread, 1)
      client.on({ kind: "viewing", visible: true, atBottom: false })
      assert.strictEqual(client.state.conversations.get("dm:carol")?.unread, 0)
    })

    it("does not tell the server about reads without the receipts feature", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { side: [message("side", 1, "bob", "old")] }, ["typing"])
      client.frame(message("side", 2, "bob", "new"))
      const opened = client.on({ kind: "open", id: "room:side" })
      assert.deepStrictEqual(sent(opened), [])
      assert.deepStrictEqual(lines(room(client, "side")), ["[1] bob: old", "--- New messages", "[2] bob: new"])
    })
  })

  describe("after a resume", () => {
    it("applies catch-up changes to messages it had, again without effect", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [
          message("lobby", 1, "bob", "one"),
          message("lobby", 2, "ann", "two"),
          message("lobby", 3, "bob", "three")
        ]
      })
      client.frame({ type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "carol", on: true })
      client.frame({ type: "edited", room: "lobby", id: 3, text: "three!", at: START + 30 })
      const lobby = room(client, "lobby")
      const before = [...lobby.items]

      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame({
        type: "welcome",
        protocol: 1,
        name: "ann",
        rooms: ["lobby"],
        users: 1,
        resume: "r2",
        resumed: true,
        features: ALL
      })
      client.frame(history("lobby", [message("lobby", 4, "bob", "four", { reply_to: 2 })]))
      // What changed while away, some of it already seen before the drop.
      const changes: Array<ServerFrame> = [
        { type: "reaction", room: "lobby", id: 1, emoji: "👍", name: "carol", on: true },
        { type: "edited", room: "lobby", id: 3, text: "three!", at: START + 30 },
        { type: "edited", room: "lobby", id: 2, text: "two, edited elsewhere", at: START + 40 },
        { type: "deleted", room: "lobby", id: 1, at: START + 50 }
      ]
      for (const frame of changes) client.frame(frame)
      const once = lines(lobby)
      assert.deepStrictEqual(once, [
        "[1] bob: [deleted]",
        "[2] ann: two, edited elsewhere (edited)",
        "[3] bob: three! (edited)",
        "[4] bob: four ↪ ann: two, edited elsewhere"
      ])
      assert.strictEqual(lobby.items[2], before[2], "an edit seen before is not even redrawn")
      const items = [...lobby.items]
      for (const frame of changes) client.frame(frame)
      client.frame(history("lobby", [message("lobby", 4, "bob", "four", { reply_to: 2 })]))
      assert.deepStrictEqual(lines(lobby), once)
      assert.isTrue(
        lobby.items.every((item, i) => item === items[i]),
        "applied twice: nothing changes"
      )
    })

    it("drops a reply being written and an open form when a new session renumbers the room", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], {
        lobby: [message("lobby", 7, "bob", "hi"), message("lobby", 8, "ann", "mine")]
      })
      client.on({ kind: "reply", id: 7 })
      client.on({ kind: "messageMode", id: 8, mode: "edit" })
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame({
        type: "welcome",
        protocol: 1,
        name: "ann",
        rooms: ["lobby"],
        users: 1,
        resume: "r",
        resumed: true,
        features: ALL
      })
      assert.strictEqual(client.state.replyTo?.id, 7, "a resumed session keeps its ids")
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame({
        type: "welcome",
        protocol: 1,
        name: "ann",
        rooms: ["lobby"],
        users: 1,
        resume: "r",
        resumed: false,
        features: ALL
      })
      assert.isUndefined(client.state.replyTo)
      assert.isUndefined(client.state.messageMode)
      client.frame(history("lobby", [message("lobby", 1, "carol", "a new 1")]))
      client.type("plain")
      assert.notProperty(sent(client.commands)[0]!, "reply_to")
    })

    it("recognises a message with changed text after a new session", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 7, "bob", "before")] })
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame({
        type: "welcome",
        protocol: 1,
        name: "ann",
        rooms: ["lobby"],
        users: 1,
        resume: "r2",
        resumed: false,
        features: ALL
      })
      client.frame(history("lobby", [message("lobby", 7, "bob", "", { deleted: true })]))
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[7] bob: [deleted]",
        "! Reconnected with a new session: messages sent while you were away may be missing."
      ])
    })
  })
})
