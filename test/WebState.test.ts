/**
 * The browser client's reducer (web/state.ts), driven the way the page drives it: server frames, the connection
 * coming and going, and what the user types. Each test reads the result as a person would see it: the lines of a
 * timeline, the badge counts, the notice, and what goes to the server.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ClientFrame, ServerFrame } from "../src/protocol/Protocol.js"
import type { Conversation, Item } from "../web/model.js"
import { REMOVED_NOTICE } from "../web/signin.js"
import type { Command } from "../web/state.js"
import { type Client, makeClient, START } from "./support/WebClient.js"
import { cleanToken, looksLikeToken, subjectOf, takeFragmentToken } from "../web/token.js"

const welcome = (name: string, rooms: Array<string>, resumed = false, user?: string): ServerFrame => ({
  type: "welcome",
  protocol: 1,
  name,
  rooms,
  users: 1,
  resume: `token-of-${name}`,
  resumed,
  ...(user === undefined ? {} : { user })
})

const message = (room: string, id: number, from: string, text: string, at = START + id) =>
  ({ type: "message", room, id, from, text, at }) as const

const history = (room: string, messages: Array<ReturnType<typeof message>>, more = false): ServerFrame => ({
  type: "history",
  room,
  messages,
  more
})

/** Online and welcomed as `name`, in `rooms`, each with its (empty unless given) join history. */
const connect = (
  client: Client,
  name: string,
  rooms = ["lobby"],
  histories: Record<string, Array<ReturnType<typeof message>>> = {}
) => {
  client.on({ kind: "connection", online: true })
  // A server that signed the hello's token in says so in the welcome.
  client.frame(welcome(name, rooms, false, client.state.authToken === undefined ? undefined : `sub-of-${name}`))
  for (const room of rooms) client.frame(history(room, histories[room] ?? []))
}

const room = (client: Client, name: string): Conversation => {
  const conversation = client.state.conversations.get(`room:${name}`)
  assert.isDefined(conversation, `room ${name}`)
  return conversation!
}

/** A timeline as words: `[3] bob: hi`, `(sending) hi`, `* bob joined`, `@ bob → ann: hi`. */
const line = (item: Item): string => {
  const body = item.body
  switch (body.kind) {
    case "message":
      return `[${body.id}] ${body.from}: ${body.text}`
    case "direct":
      return `@ ${body.from} → ${body.to}: ${body.text}`
    case "event":
      return `${body.warning ? "!" : "*"} ${body.text}`
    case "pending":
      return `(${body.state}${body.error === undefined ? "" : `: ${body.error}`}) ${body.text}`
    case "divider":
      return "--- New messages"
  }
}
const lines = (conversation: Conversation) => conversation.items.map(line)

const sent = (commands: ReadonlyArray<Command>): Array<ClientFrame> =>
  commands.flatMap((c) => (c.kind === "send" || c.kind === "enqueue" ? [c.frame] : []))

/** The ref of the request the last update queued or sent. */
const lastRef = (client: Client): string => {
  const frame = sent(client.commands).at(-1)
  assert.isDefined(frame, "a request was sent")
  return (frame as { readonly ref: string }).ref
}

describe("WebState", () => {
  describe("room messages", () => {
    it("shows a message once when it arrives both live and in history", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "one")] })
      client.frame(message("lobby", 2, "bob", "two"))
      client.frame(history("lobby", [message("lobby", 1, "bob", "one"), message("lobby", 2, "bob", "two")]))
      client.frame(message("lobby", 2, "bob", "two"))
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] bob: one", "[2] bob: two"])
    })

    it("orders messages by id, whatever order they arrive in, and asks for a gap", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 3, "bob", "three")] })
      const commands = client.frame(message("lobby", 6, "bob", "six"))
      assert.deepStrictEqual(
        sent(commands).map(({ ref: _, ...frame }) => frame),
        [{ type: "history", room: "lobby", before: 6, limit: 2 }],
        "the missing 4 and 5 are asked for"
      )
      client.frame(history("lobby", [message("lobby", 5, "bob", "five"), message("lobby", 4, "bob", "four")]))
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[3] bob: three",
        "[4] bob: four",
        "[5] bob: five",
        "[6] bob: six"
      ])
    })
  })

  describe("sending", () => {
    it("settles a send by its ack, and keeps one copy when the server's copy follows", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "hi")] })
      client.type("hello")
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [{ type: "send", room: "lobby", text: "hello", ref }])
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] bob: hi", "(sending) hello"])
      assert.isTrue(client.commands.some((c) => c.kind === "clearComposer"))

      const acked = client.frame({ type: "ack", ref, id: 2 })
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] bob: hi", "[2] ann: hello"])
      assert.isTrue(acked.some((c) => c.kind === "settle" && c.ref === ref))

      client.frame(message("lobby", 2, "ann", "hello", START + 5_000))
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] bob: hi", "[2] ann: hello"])
      const shown = room(client, "lobby").items[1]!.body
      assert.deepInclude(
        shown,
        { mine: true, provisional: false, at: START + 5_000 },
        "the server's time replaces ours"
      )
    })

    it("settles a send by the server's copy when that comes before the ack", () => {
      const client = makeClient()
      connect(client, "ann")
      client.type("quick")
      const ref = lastRef(client)
      const echoed = client.frame(message("lobby", 1, "ann", "quick"))
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] ann: quick"])
      assert.isTrue(echoed.some((c) => c.kind === "settle" && c.ref === ref))
      client.frame({ type: "ack", ref, id: 1 })
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] ann: quick"])
    })

    it("shows why a send failed, and retries or discards it", () => {
      const client = makeClient()
      connect(client, "ann")
      client.type("spam")
      const ref = lastRef(client)
      client.frame({ type: "error", code: "rate_limited", message: "too fast", ref })
      assert.deepStrictEqual(lines(room(client, "lobby")), ["(failed: Slow down: too many messages at once.) spam"])

      client.on({ kind: "retry", ref })
      const retried = lastRef(client)
      assert.notStrictEqual(retried, ref, "a retry is a new request")
      assert.deepStrictEqual(lines(room(client, "lobby")), ["(sending) spam"])
      client.frame({ type: "error", code: "rate_limited", message: "too fast", ref: retried })
      client.on({ kind: "discard", ref: retried })
      assert.deepStrictEqual(lines(room(client, "lobby")), [])
    })

    it("queues a send while offline and sends it once the catch-up history is in", () => {
      const client = makeClient()
      connect(client, "ann")
      client.on({ kind: "connection", online: false })
      client.type("later")
      assert.deepStrictEqual(lines(room(client, "lobby")), ["(queued) later"])

      client.on({ kind: "connection", online: true })
      const welcomed = client.frame(welcome("ann", ["lobby"], true))
      assert.isTrue(welcomed.some((c) => c.kind === "holdOutbox"))
      assert.isFalse(
        welcomed.some((c) => c.kind === "releaseOutbox"),
        "held until the history is in"
      )
      const caughtUp = client.frame(history("lobby", []))
      assert.isTrue(caughtUp.some((c) => c.kind === "releaseOutbox"))
      assert.deepStrictEqual(lines(room(client, "lobby")), ["(sending) later"])
    })

    it("recognises a send that arrived before a drop in the catch-up history", () => {
      const client = makeClient()
      connect(client, "ann")
      client.type("did it arrive?")
      const ref = lastRef(client)
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame(welcome("ann", ["lobby"], true))
      const caughtUp = client.frame(history("lobby", [message("lobby", 1, "ann", "did it arrive?")]))
      assert.isTrue(
        caughtUp.some((c) => c.kind === "settle" && c.ref === ref),
        "not sent again"
      )
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] ann: did it arrive?"])
    })

    it("shows an acknowledged direct message as sent when no echo comes", () => {
      const client = makeClient()
      connect(client, "ann")
      client.type("/msg bob psst")
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [{ type: "direct", to: "bob", text: "psst", ref }])
      const dm = client.state.active!
      assert.strictEqual(dm.id, "dm:bob", "the direct conversation opens")
      const acked = client.frame({ type: "ack", ref })
      assert.deepStrictEqual(lines(dm), ["(sent) psst"])
      const timer = acked.find((c) => c.kind === "later")
      assert.deepStrictEqual(timer, { kind: "later", ms: 3_000, event: { kind: "echoDue", ref } })
      client.tick(3_000)
      client.on(timer!.event)
      assert.deepStrictEqual(lines(dm), ["@ ann → bob: psst"])
    })
  })

  describe("presence", () => {
    it("shows who joins, leaves and is renamed, and keeps the member list", () => {
      const client = makeClient()
      connect(client, "ann")
      client.frame({ type: "members", room: "lobby", names: ["ann", "bob"] })
      client.frame({ type: "joined", room: "lobby", name: "carol", at: START })
      client.frame({ type: "joined", room: "lobby", name: "carol", at: START })
      client.frame({ type: "left", room: "lobby", name: "bob", at: START })
      client.frame({ type: "renamed", from: "carol", to: "caro", at: START })
      const lobby = room(client, "lobby")
      assert.deepStrictEqual(lines(lobby), ["* carol joined", "* bob left", "* carol is now known as caro"])
      assert.deepStrictEqual(lobby.members, ["ann", "caro"])
    })

    it("does not announce our own join", () => {
      const client = makeClient()
      connect(client, "ann")
      client.frame({ type: "members", room: "lobby", names: ["bob"] })
      client.frame({ type: "joined", room: "lobby", name: "ANN", at: START })
      assert.deepStrictEqual(lines(room(client, "lobby")), [])
      assert.deepStrictEqual(room(client, "lobby").members, ["ANN", "bob"])
    })
  })

  describe("renames", () => {
    it("follows our own new name, in the rooms and in the next hello", () => {
      const client = makeClient()
      connect(client, "ann")
      client.frame({ type: "members", room: "lobby", names: ["ann", "bob"] })
      client.type("/nick anna")
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(client.commands), [{ type: "nick", name: "anna", ref }])
      const acked = client.frame({ type: "ack", ref })
      assert.strictEqual(client.state.me, "anna")
      assert.deepStrictEqual(lines(room(client, "lobby")), ["* You are now known as anna"])
      assert.deepStrictEqual(room(client, "lobby").members, ["anna", "bob"])
      assert.isTrue(acked.some((c) => c.kind === "rememberName" && c.name === "anna"))
      assert.deepInclude(client.state.hello(undefined), { name: "anna" })
    })

    it("shows a refused name next to the name field", () => {
      const client = makeClient()
      connect(client, "ann")
      client.on({ kind: "rename", name: "bob" })
      client.frame({ type: "error", code: "name_taken", message: "taken", ref: lastRef(client) })
      assert.deepStrictEqual(client.state.nameError, { text: "That name is taken.", code: "name_taken" })
      assert.strictEqual(client.state.me, "ann")
      client.on({ kind: "edited", field: "name" })
      assert.isUndefined(client.state.nameError)
    })

    it("moves a direct conversation along with its peer's new name", () => {
      const client = makeClient()
      connect(client, "ann")
      client.frame({ type: "direct", from: "bob", to: "ann", text: "hey", at: START })
      client.on({ kind: "open", id: "dm:bob" })
      client.frame({ type: "renamed", from: "bob", to: "robert", at: START + 1 })
      assert.isUndefined(client.state.conversations.get("dm:bob"))
      const dm = client.state.conversations.get("dm:robert")
      assert.isDefined(dm)
      assert.strictEqual(dm!.title, "robert")
      assert.strictEqual(client.state.active, dm, "still the open conversation")
      assert.deepStrictEqual(lines(dm!), ["@ bob → ann: hey", "* bob is now known as robert"])
      client.type("welcome back")
      assert.deepStrictEqual(sent(client.commands), [
        { type: "direct", to: "robert", text: "welcome back", ref: lastRef(client) }
      ])
    })
  })

  describe("reconnecting", () => {
    it("resumes quietly when the server restored the session", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 1, "bob", "one")] })
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      assert.deepStrictEqual(client.state.hello(undefined), {
        type: "hello",
        name: "ann",
        rooms: ["lobby"],
        resume: { token: "token-of-ann", since: { lobby: 1 } },
        features: ["typing", "edits", "reactions", "receipts"]
      })
      client.frame(welcome("ann", ["lobby"], true))
      client.frame(history("lobby", [message("lobby", 2, "bob", "two")]))
      assert.isUndefined(client.state.notice)
      assert.deepStrictEqual(lines(room(client, "lobby")), ["[1] bob: one", "[2] bob: two"])
    })

    it("warns when a new session began, and numbers the new server's messages after the old ones", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby"], { lobby: [message("lobby", 7, "bob", "before")] })
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame(welcome("ann", ["lobby"], false))
      // A restarted server without storage numbers from 1 again; the old message 7 it still had is the same one.
      client.frame(history("lobby", [message("lobby", 1, "carol", "after"), message("lobby", 7, "bob", "before")]))
      assert.match(client.state.notice ?? "", /new session.*may be missing/)
      assert.deepStrictEqual(lines(room(client, "lobby")), [
        "[7] bob: before",
        "! Reconnected with a new session: messages sent while you were away may be missing.",
        "[1] carol: after"
      ])
    })

    it("does not warn on the first welcome", () => {
      const client = makeClient()
      connect(client, "ann")
      assert.isUndefined(client.state.notice)
      assert.deepStrictEqual(lines(room(client, "lobby")), [])
    })
  })

  describe("unread counts", () => {
    it("counts news in conversations not on screen, and clears them when opened", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { side: [message("side", 1, "bob", "old news")] })
      assert.strictEqual(client.state.active, room(client, "lobby"))
      client.frame(message("side", 2, "bob", "new"))
      client.frame(message("side", 3, "bob", "newer"))
      client.frame(message("side", 4, "ann", "mine, from another tab"))
      client.frame(message("lobby", 1, "bob", "on screen"))
      client.frame({ type: "direct", from: "carol", to: "ann", text: "psst", at: START })
      assert.strictEqual(room(client, "side").unread, 2, "join history and our own messages are not news")
      assert.strictEqual(room(client, "lobby").unread, 0)
      assert.strictEqual(client.state.conversations.get("dm:carol")?.unread, 1)

      const opened = client.on({ kind: "open", id: "room:side" })
      assert.isTrue(opened.some((c) => c.kind === "opened"))
      assert.strictEqual(room(client, "side").unread, 0)
    })

    it("counts messages caught up after a drop as news", () => {
      const client = makeClient()
      connect(client, "ann", ["lobby", "side"], { side: [message("side", 1, "bob", "seen")] })
      client.on({ kind: "connection", online: false })
      client.on({ kind: "connection", online: true })
      client.frame(welcome("ann", ["lobby", "side"], true))
      client.frame(history("lobby", []))
      client.frame(history("side", [message("side", 2, "bob", "missed")]))
      assert.strictEqual(room(client, "side").unread, 1)
    })
  })
  describe("signing in", () => {
    /** A token of the right shape (the page never verifies one) for `sub`. */
    const jwt = (sub: string) => {
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url")
      return `${part({ alg: "HS256" })}.${part({ sub, exp: 2_000_000_000 })}.c2lnbmF0dXJl`
    }
    const kinds = (commands: ReadonlyArray<Command>) => commands.map((c) => c.kind)
    /** The server refused the last hello: `error` unauthorized, then close 4001. */
    const refuse = (client: Client, message = "this server needs a token") => {
      client.frame({ type: "error", code: "unauthorized", message })
      const commands = client.on({ kind: "sessionEnded", code: 4001 })
      client.on({ kind: "connection", online: false })
      return commands
    }

    it("sends the token in every hello, resumes included, and shows the user as signed in", () => {
      const client = makeClient(jwt("alice"))
      assert.strictEqual(client.state.hello(undefined).token, jwt("alice"))
      connect(client, "alice")
      assert.strictEqual(client.state.identity, "signed-in")
      client.on({ kind: "connection", online: false })
      assert.deepInclude(client.state.hello(undefined), {
        token: jwt("alice"),
        resume: { token: "token-of-alice", since: {} }
      })

      const guest = makeClient()
      connect(guest, "user1")
      assert.strictEqual(guest.state.identity, "guest")
      assert.notProperty(guest.state.hello(undefined), "token")
    })

    it("is a guest when the server did not sign the token in (a server with --auth off ignores tokens)", () => {
      const client = makeClient(jwt("alice"))
      client.on({ kind: "connection", online: true })
      client.frame(welcome("alice", ["lobby"]))
      assert.strictEqual(client.state.identity, "guest")
    })

    it("asks for a token when the server refuses guests, without reconnecting until one is pasted", () => {
      const client = makeClient()
      client.on({ kind: "connection", online: true })
      const closed = refuse(client)
      assert.deepInclude(client.state.signIn, { reason: "required", error: "this server needs a token" })
      assert.isUndefined(client.state.notice, "the refusal shows in the form, not as a notice")
      assert.isTrue(client.state.guestsRefused, "no guest way out")
      assert.notInclude(kinds(closed), "reconnect")
      assert.include(kinds(closed), "focusSignIn")

      assert.notInclude(kinds(client.on({ kind: "signIn", token: "not a token" })), "reconnect")
      assert.match(client.state.signIn?.error ?? "", /not a sign-in token/)

      const signed = client.on({ kind: "signIn", token: `  Bearer ${jwt("alice")}\n` })
      assert.deepStrictEqual(
        signed.filter((c) => c.kind === "saveAuth" || c.kind === "reconnect"),
        [{ kind: "saveAuth", token: jwt("alice") }, { kind: "reconnect" }]
      )
      assert.isTrue(client.state.signIn?.checking)
      assert.strictEqual(client.state.hello(undefined).token, jwt("alice"))
      connect(client, "alice")
      assert.isUndefined(client.state.signIn)
      assert.strictEqual(client.state.identity, "signed-in")
    })

    it("keeps a token pasted while an older hello was still being refused, and tries it", () => {
      const client = makeClient()
      client.on({ kind: "connection", online: true })
      refuse(client)
      client.on({ kind: "signIn", token: jwt("alice") })
      // The hello that went out carried no token; the person pasted alice's meanwhile. Another refusal of the old
      // hello arrives: alice's token is not the one refused.
      const again = refuse(client)
      assert.include(kinds(again), "reconnect")
      assert.notDeepInclude(again, { kind: "saveAuth", token: undefined })
      assert.strictEqual(client.state.hello(undefined).token, jwt("alice"))
    })

    it("a final close other than 4001 while a token is tried says why in the form", () => {
      const client = makeClient()
      client.on({ kind: "connection", online: true })
      refuse(client)
      client.on({ kind: "signIn", token: jwt("alice") })
      client.state.hello(undefined)
      client.on({ kind: "connection", online: true })
      client.frame({ type: "error", code: "name_taken", message: "alice is used by another user" })
      client.on({ kind: "sessionEnded", code: 1008 })
      client.on({ kind: "connection", online: false })
      assert.isFalse(client.state.signIn?.checking)
      assert.isString(client.state.signIn?.error)
    })

    it("forgets a refused token and offers to continue as a guest, since guests may be let in", () => {
      const client = makeClient(jwt("alice"))
      client.on({ kind: "connection", online: true })
      const closed = refuse(client, "bad signature")
      assert.deepInclude(client.state.signIn, { reason: "rejected", error: "bad signature" })
      assert.deepInclude(closed, { kind: "saveAuth", token: undefined })
      assert.isFalse(client.state.guestsRefused)

      const guest = client.on({ kind: "continueAsGuest" })
      assert.include(kinds(guest), "reconnect")
      assert.isUndefined(client.state.signIn)
      assert.notProperty(client.state.hello(undefined), "token")
    })

    it("refreshes an expired token on the live connection instead of reconnecting", () => {
      const client = makeClient(jwt("alice"))
      connect(client, "alice")
      const expired = client.frame({ type: "error", code: "token_expired", message: "send refresh within 30 s" })
      assert.deepInclude(client.state.signIn, { reason: "expired" })
      assert.notInclude(kinds(expired), "focusSignIn", "the composer keeps the focus")

      const submitted = client.on({ kind: "signIn", token: jwt("alice2") })
      assert.notInclude(kinds(submitted), "reconnect")
      const ref = lastRef(client)
      assert.deepStrictEqual(sent(submitted), [{ type: "refresh", token: jwt("alice2"), ref }])

      client.frame({ type: "error", code: "unauthorized", message: "invalid signature", ref })
      assert.deepInclude(client.state.signIn, { reason: "expired", checking: false })
      assert.match(client.state.signIn?.error ?? "", /not accepted: invalid signature/)
      assert.strictEqual(client.state.authToken, jwt("alice"), "a refused token is not kept")

      client.on({ kind: "signIn", token: jwt("alice") })
      const acked = client.frame({ type: "ack", ref: lastRef(client) })
      assert.deepInclude(acked, { kind: "saveAuth", token: jwt("alice") })
      assert.isUndefined(client.state.signIn)
      assert.strictEqual(client.state.identity, "signed-in")
    })

    it("reconnects with the new token when the grace ran out before it was pasted", () => {
      const client = makeClient(jwt("alice"))
      connect(client, "alice")
      client.frame({ type: "error", code: "token_expired", message: "send refresh within 3 s" })
      client.on({ kind: "sessionEnded", code: 4001 })
      client.on({ kind: "connection", online: false })
      assert.deepInclude(client.state.signIn, { reason: "expired" })
      const submitted = client.on({ kind: "signIn", token: jwt("alice") })
      assert.include(kinds(submitted), "reconnect")
      assert.deepStrictEqual(sent(submitted), [])
    })

    it("tells a removed user so, and neither reconnects nor asks for a token", () => {
      const client = makeClient(jwt("alice"))
      connect(client, "alice")
      const removed = client.on({ kind: "sessionEnded", code: 4003 })
      assert.strictEqual(client.state.notice, REMOVED_NOTICE)
      assert.isUndefined(client.state.signIn)
      assert.deepInclude(removed, { kind: "saveAuth", token: undefined })
      assert.notInclude(kinds(removed), "reconnect")
    })

    it("shows why a signed-in user cannot take another name", () => {
      const client = makeClient(jwt("alice"))
      connect(client, "alice")
      client.type("/nick bob")
      const ref = lastRef(client)
      client.frame({ type: "error", code: "forbidden", message: "your name comes from your token", ref })
      assert.strictEqual(client.state.composerError, "You are signed in as alice: your name comes from your sign-in.")
      assert.strictEqual(client.state.me, "alice")
    })

    it("takes the token out of the page URL's fragment, leaving the rest", () => {
      assert.deepStrictEqual(takeFragmentToken("#token=a.b.c"), { token: "a.b.c", rest: "" })
      assert.deepStrictEqual(takeFragmentToken("#room=x&token=a.b.c"), { token: "a.b.c", rest: "#room=x" })
      assert.deepStrictEqual(takeFragmentToken("#composer-input"), { token: undefined, rest: "#composer-input" })
      assert.deepStrictEqual(takeFragmentToken(""), { token: undefined, rest: "" })
      assert.deepStrictEqual(takeFragmentToken("#token="), { token: undefined, rest: "" })
      assert.isTrue(looksLikeToken(jwt("alice")))
      assert.isFalse(looksLikeToken("hello world"))
      assert.strictEqual(cleanToken(" bearer a.b.c "), "a.b.c")
      assert.strictEqual(subjectOf(jwt("alice")), "alice")
      assert.isUndefined(subjectOf("garbage"))
    })
  })
})
